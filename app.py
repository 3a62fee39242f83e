"""HSNet exploration app: segment a query from a few annotated supports and see why.

Run ``python app.py`` (or ``make app``) and open the printed address; the same file
is the app of a Hugging Face Space. Weights come from ``--weights`` or the
``HSNET_WEIGHTS`` environment variable (a registry name, a Hub repo id, or a local
file or folder), else the registry default. This file holds the page: layout and
callbacks. The model work is ``hsnet.predictor``'s and the pictures ``hsnet.visualize``'s.
"""
from __future__ import annotations

import argparse
import base64
import functools
import html
import inspect
import io
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import numpy as np
from PIL import Image

from hsnet import hub
from hsnet.errors import HSNetError, InputError
from hsnet.inputs import MAX_PIXELS, load_mask, load_rgb
from hsnet.limits import check_image_size
from hsnet.predictor import LayerMap, Prediction
from hsnet.predictor.results import resized
from hsnet.serving import (
    DELETE_CACHE,
    MAX_LABEL_BYTES,
    MAX_LABEL_QUERIES,
    MAX_UPLOAD_BYTES,
    LoadState,
    MaskFiles,
    ModelStore,
    Probe,
    ProbeStore,
    label_many,
    point_maps,
    private_temp_dir,
    public_name,
)
from hsnet.serving.guards import guard_editor, guard_image, launch_kwargs
from hsnet.serving.queues import EXPLORE_QUEUE, LABEL_CHUNK, LABEL_QUEUE, QUEUE, SEGMENT_QUEUE, TURNS
from hsnet.visualize import (
    ColourScale,
    colourbar,
    display_size,
    fit,
    heatmap,
    layers_mask,
    level_title,
    mark_point,
    overlay_mask,
    resized_mask,
    shared_scale,
    with_colourbar,
)

# Gradio decodes some uploads itself before hsnet reads them; Pillow refuses more than twice its
# MAX_IMAGE_PIXELS, so this makes that decoding stop at hsnet's own pixel limit too.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2

try:  # present on Hugging Face Spaces; on ZeroGPU hardware its decorator lends a GPU per call
    import spaces
except ImportError:
    spaces = None

log = logging.getLogger("hsnet.app")

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
WEIGHTS_ENV = "HSNET_WEIGHTS"
IMAGE_SIZE_ENV = "HSNET_IMAGE_SIZE"
MAX_SUPPORTS = 5
WAIT_FOR_WEIGHTS_S = 600  # how long a segmentation waits for weights that are still loading
DISPLAY_SIDE = 1024  # longest side of the result pictures sent to the browser
MIN_DISPLAY_SIDE = 512  # smaller queries are enlarged to this for display and clicking
THUMB_SIDE = 256  # longest side of each per-layer heatmap
PROBE_TILE = 160  # longest side of each probe heatmap
LEVELS = (4, 3, 2)  # pyramid levels, deepest first, as the model stacks them
PAPER = "https://arxiv.org/abs/2104.01538"
OVER_PHOTO, ALONE = "over the photo", "alone"
F = TypeVar("F", bound=Callable[..., Any])


def on_gpu(fn: F) -> F:
    """``fn`` wrapped the way ZeroGPU expects when the ``spaces`` package is there; ``fn`` itself otherwise."""
    return spaces.GPU(duration=120)(fn) if spaces is not None else fn


# ------------------------------------------------------------------------------------------ the models


def image_size_setting() -> int | None:
    """$HSNET_IMAGE_SIZE, the model's input side for every visitor (unset: the weights' own, 400 for the authors')."""
    text = os.environ.get(IMAGE_SIZE_ENV, "").strip()
    if not text:
        return None
    try:
        return check_image_size(int(text))
    except (ValueError, InputError) as exc:
        raise SystemExit(f"{IMAGE_SIZE_ENV}={text!r} is not usable ({exc}); give a side from 32 to 640") from None


# One of each per process, at module level: ZeroGPU runs ``run_model`` in a worker that sees module globals.
STORE = ModelStore(os.environ.get(WEIGHTS_ENV) or hub.DEFAULT_WEIGHTS, image_size=image_size_setting())
PROBES = ProbeStore()


@dataclass(frozen=True)
class WeightsMenu:
    """The checkpoint choices: names visitors see, each mapped to the source the server loads (maybe a path)."""

    sources: dict[str, str]  # shown name -> registry name, Hub repo id or local path
    labels: dict[str, str]  # shown name -> dropdown label
    default: str  # shown name of the default weights

    @classmethod
    def build(cls, default_source: str) -> WeightsMenu:
        """The operator's weights first (a local path shown by its last part only), then every registry name."""
        entries = hub.registry()
        default = public_name(default_source)
        sources = {default: default_source}
        labels = {default: default if default_source in entries else f"{default} (chosen by the server)"}
        for name, entry in entries.items():
            fold = "" if entry.fold is None else f" fold {entry.fold}"
            sources[name] = name
            labels[name] = f"{name}  ({entry.backbone}, {entry.benchmark}{fold})"
        return cls(sources, labels, default)

    def choices(self) -> list[tuple[str, str]]:
        """(label, shown name) pairs for the dropdown."""
        return [(label, name) for name, label in self.labels.items()]

    def shown(self, value: str) -> str:
        """The visitor-facing name of ``value`` (a shown name, or the operator's own source string)."""
        if value in self.sources:
            return value
        for name, source in self.sources.items():
            if source == value:
                return name
        raise InputError(f"unknown weights {public_name(value)!r}; choose one of {', '.join(self.sources)}")

    def source(self, value: str) -> str:
        """What the server loads for ``value`` (InputError for a name that is not on the menu)."""
        return self.sources[self.shown(value)]


# ------------------------------------------------------------------------------------------ examples


@dataclass
class Episode:
    """One example from ``examples/episodes.json``: a query and its supports with masks."""

    title: str
    query: Path
    supports: list[tuple[Path, Path]]  # (image, mask)
    rule: str


def read_episodes(folder: Path = EXAMPLES_DIR) -> list[Episode]:
    """The example episodes listed in ``folder/episodes.json`` (none when the file is missing)."""
    manifest = folder / "episodes.json"
    if not manifest.is_file():
        return []
    episodes = []
    for item in json.loads(manifest.read_text(encoding="utf-8"))["episodes"]:
        supports = [(folder / s["image"], folder / s["mask"]) for s in item["supports"]]
        episodes.append(Episode(item["title"], folder / item["query"], supports, item.get("rule", "vote")))
    return episodes


def example_rows(episodes: Sequence[Episode]) -> list[list[Any]]:
    """Example rows (query, editors..., mask uploads..., rule): each support's mask goes in its upload slot.

    (Gradio 6.31's editor draws a layer given with its value shifted on screen, though the data
    is right, so the masks are shown as uploads rather than as brush layers.)
    """
    rows = []
    for episode in episodes:
        editors: list[Any] = [{"background": str(image), "layers": [], "composite": None}
                              for image, _ in episode.supports]
        masks: list[Any] = [str(mask) for _, mask in episode.supports]
        padding = [None] * (MAX_SUPPORTS - len(episode.supports))
        rows.append([str(episode.query), *editors, *padding, *masks, *padding, episode.rule])
    return rows


# ------------------------------------------------------------------------------------------ requests and answers


@contextmanager
def one_line_errors(name: str) -> Iterator[None]:
    """hsnet's one-line errors as page messages; anything else logged for the operator and summed up in a line."""
    try:
        yield
    except gr.Error:
        raise
    except HSNetError as exc:
        raise gr.Error(str(exc), print_exception=False) from exc
    except Exception as exc:
        log.exception("%s failed", name)
        raise gr.Error(f"Something went wrong ({type(exc).__name__}); the details are in the server log. "
                       "Your inputs are kept: check them and try again.", print_exception=False) from exc


def friendly(fn: F) -> F:
    """``fn`` (a function or a generator) showing errors as one line on the page; the app keeps serving."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            with one_line_errors(fn.__name__):
                yield from fn(*args, **kwargs)
        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_line_errors(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def read_supports(editors: Sequence[dict | None],
                  uploads: Sequence[str | None]) -> tuple[list[Image.Image], list[np.ndarray]]:
    """Support images and masks from the filled tabs (an uploaded mask wins over brush strokes), decoded once."""
    images, masks = [], []
    for i, (editor, upload) in enumerate(zip(editors, uploads), start=1):
        background = editor.get("background") if editor else None
        if background is None:
            if upload is not None:
                raise InputError(f"support {i} has a mask but no image; add the support image in tab Support {i}")
            continue
        image = load_rgb(background, f"support {i} image")
        if upload is not None:
            if editor.get("layers") and layers_mask(editor["layers"]).any():
                gr.Info(f"Support {i}: using the uploaded mask; the brush strokes are ignored.")
            mask = load_mask(upload, image.size, f"support {i} uploaded mask")
        else:
            painted = layers_mask(editor.get("layers") or [])
            if painted is None:
                raise InputError(f"support {i} has no mask; paint over the object with the brush or upload a mask")
            mask = load_mask(painted, image.size, f"support {i} brush mask")
        images.append(image)
        masks.append(mask)
    if not images:
        raise InputError("no support image; add at least one support image in tab Support 1 and paint its object")
    return images, masks


@dataclass(frozen=True)
class SegmentRequest:
    """What the Segment button sends, decoded and checked once: exactly what the predictor consumes."""

    query: Image.Image
    query_name: str  # the upload's file stem, for the download's name
    weights: str  # the name visitors see
    source: str  # what the server loads for it
    rule: str
    supports: list[Image.Image]
    masks: list[np.ndarray]

    @classmethod
    def from_form(cls, menu: WeightsMenu, query: str | None, weights: str, rule: str,
                  editors: Sequence[dict | None], uploads: Sequence[str | None]) -> SegmentRequest:
        """Decode the form's values (InputError naming the field when one is missing or unusable)."""
        if query is None:
            raise InputError("no query image; upload the photo to segment (or pick an example)")
        shown = menu.shown(weights)
        images, masks = read_supports(editors, uploads)
        return cls(load_rgb(query, "query image"), Path(query).stem, shown, menu.source(weights), rule, images, masks)


@dataclass
class Exploration:
    """What a session keeps after a segmentation (well under 1 MB): compressed pictures and small maps.

    The inputs a click needs again live in the process's ``PROBES`` (at model resolution,
    within a byte budget), under the session's key.
    """

    key: str  # the Gradio session, the key of its Probe in PROBES
    weights: str  # the name visitors see
    size: tuple[int, int]  # the query's (width, height)
    display_jpeg: bytes  # the query at display size (small queries enlarged)
    overlay_jpeg: bytes  # the result picture, without a marker
    probability: np.ndarray  # uint8 (0..255 for 0..1), at most THUMB_SIDE * 2 on its longer side
    layer_maps: list[LayerMap]
    supports: list[Image.Image]  # at PROBE_TILE
    point: tuple[float, float] | None = None  # the last clicked point, in query pixels
    probe: list[list[LayerMap]] = field(default_factory=list)

    @property
    def display(self) -> Image.Image:
        return Image.open(io.BytesIO(self.display_jpeg)).convert("RGB")

    @property
    def overlay(self) -> Image.Image:
        return Image.open(io.BytesIO(self.overlay_jpeg)).convert("RGB")

    @property
    def scale(self) -> float:
        """Display pixels per query pixel."""
        return display_size(self.size, DISPLAY_SIDE, MIN_DISPLAY_SIDE)[0] / self.size[0]


def jpeg(image: Image.Image) -> bytes:
    """``image`` compressed, for what a session keeps."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@dataclass
class SegmentAnswer:
    """The `/segment` outputs in API order; each field's name is the output's label key (docs/app.md)."""

    result: Image.Image  # the query with the mask; click it to probe
    probability: Image.Image  # foreground probability, with its colourbar
    mask_png: str  # the mask at the query's size, 0/255
    summary: str  # share of foreground, shots, rule, weights, device and time per stage
    level_4: list[tuple[Image.Image, str]]  # per-layer correlation maps, one gallery per pyramid level
    level_3: list[tuple[Image.Image, str]]
    level_2: list[tuple[Image.Image, str]]
    layer_scale: Image.Image  # the colourbar shared by the three galleries, with the range it maps
    support_predictions: list[tuple[Image.Image, str]]  # each support's own mask (K > 1; else empty)
    vote_map: Image.Image | None  # share of supports voting foreground, with its colourbar (K > 1; else None)


OUTPUT_LABELS = {
    "result": "Result: click a point to probe it",
    "probability": "Foreground probability",
    "mask_png": "Download the mask (PNG at the query's size)",
    "summary": "Summary",
    "level_4": level_title(4),
    "level_3": level_title(3),
    "level_2": level_title(2),
    "layer_scale": "Colour scale of the layer maps",
    "support_predictions": "Each support's own prediction",
    "vote_map": "Vote map",
}

LAYER_SCALE_LABEL = "Correlation (cosine, best match over the painted support)"
PROBE_SCALE_LABEL = "Correlation of the clicked point with each support pixel (cosine)"
PROBABILITY_SCALE = ColourScale(0.0, 1.0, "Foreground probability")


@on_gpu
def run_model(source: str, query: Image.Image, images: list[Image.Image], masks: list[np.ndarray],
              rule: str) -> Prediction:
    """The one GPU step: the prediction, with its features moved to the CPU.

    It takes the weights' source, not the predictor, and returns only CPU data, because on
    ZeroGPU it runs in a worker process that arguments and results are passed to and from.
    """
    return STORE.predictor(source).predict(query, images, masks, rule=rule).to("cpu")


@on_gpu
def probe_point(probe: Probe, x: float, y: float) -> list[list[LayerMap]]:
    """The query point (x, y) (original pixels) against every support cell, per support and layer, from ``probe``."""
    return point_maps(STORE.predictor(probe.weights), probe, x, y)


@TURNS.between
@on_gpu
def label_batch(source: str, images: list[Image.Image], masks: list[np.ndarray], rule: str,
                queries: list[Image.Image]) -> list[np.ndarray]:
    """The "Label many" GPU step: masks of a batch of queries (the supports' features come from the cache)."""
    predictor = STORE.predictor(source)
    supports = predictor.set_supports(images, masks)
    return [p.mask for p in predictor.predict_many(queries, supports, batch_size=len(queries), rule=rule)]


def level_galleries(maps: Sequence[LayerMap], display: Image.Image, scale: ColourScale,
                    mode: str) -> list[list[tuple[Image.Image, str]]]:
    """Three galleries (levels 4, 3, 2): each layer's correlation map on ``scale``, captioned with its name."""
    small = fit(display, THUMB_SIDE)
    photo = small if mode == OVER_PHOTO else None
    return [[(heatmap(m.values, small.size, scale, photo), m.name) for m in maps if m.level == level]
            for level in LEVELS]


def summary(prediction: Prediction, weights: str, rule: str) -> str:
    """Markdown: what was found, on which device, and the time of each stage."""
    width, height = prediction.size
    shots = len(prediction.shot_probabilities)
    stages = " | ".join(f"{stage.replace('_', ' ')} {seconds:.2f} s" for stage, seconds in prediction.timings.items()
                        if stage != "total")
    cache = " (support features reused from the cache)" if prediction.support_cache_hit else ""
    return (f"**{prediction.mask.mean() * 100:.1f}%** of the {width}×{height} query is foreground · "
            f"{shots}-shot" + (f", rule *{rule}*" if shots > 1 else "") + f" · weights `{weights}`\n\n"
            f"**{prediction.timings['total']:.2f} s on {prediction.device}**{cache}: {stages}")


def answer(request: SegmentRequest, prediction: Prediction, mode: str, masks: MaskFiles,
           key: str) -> tuple[SegmentAnswer, Exploration]:
    """Every picture of one prediction, drawn from one display-size copy of the query (resized once)."""
    display = fit(request.query, DISPLAY_SIDE, MIN_DISPLAY_SIDE)
    overlay = overlay_mask(display, resized_mask(prediction.mask, display.size))
    shots = prediction.shot_probabilities  # (K, S, S) at model resolution: resized only to what is shown
    thumb = fit(display, THUMB_SIDE * 2)
    probability = resized(shots.mean(axis=0), thumb.size)
    layer_scale = shared_scale([m.values for m in prediction.layer_maps], LAYER_SCALE_LABEL)
    vote_scale = ColourScale(0.0, 1.0, f"Share of the {len(shots)} supports saying foreground", "viridis")
    votes = [resized(p, thumb.size) > 0.5 for p in shots] if len(shots) > 1 else []
    support_predictions = [
        (overlay_mask(thumb, m), f"Support {i} alone: {m.mean() * 100:.1f}% foreground")
        for i, m in enumerate(votes, start=1)]
    state = Exploration(key, request.weights, request.query.size, jpeg(display), jpeg(overlay),
                        (np.clip(probability, 0, 1) * 255).round().astype(np.uint8), prediction.layer_maps,
                        [fit(s, PROBE_TILE) for s in request.supports])
    result = SegmentAnswer(
        result=overlay,
        probability=probability_picture(state, mode, display),
        mask_png=str(masks.save(prediction.mask, request.query_name)),
        summary=summary(prediction, request.weights, request.rule),
        level_4=[], level_3=[], level_2=[],
        layer_scale=colourbar(layer_scale, width=480),
        support_predictions=support_predictions,
        vote_map=with_colourbar(heatmap(np.mean(votes, axis=0), thumb.size, vote_scale, thumb), vote_scale)
        if votes else None,
    )
    result.level_4, result.level_3, result.level_2 = level_galleries(prediction.layer_maps, display, layer_scale, mode)
    return result, state


def probability_picture(state: Exploration, mode: str, display: Image.Image | None = None) -> Image.Image:
    """The foreground probability on its fixed 0..1 scale, alone or over the photo, with the colourbar."""
    photo = (display or state.display) if mode == OVER_PHOTO else None
    size = display.size if display is not None else display_size(state.size, DISPLAY_SIDE, MIN_DISPLAY_SIDE)
    values = state.probability.astype(np.float32) / 255
    return with_colourbar(heatmap(values, size, PROBABILITY_SCALE, photo), PROBABILITY_SCALE)


def data_url(image: Image.Image) -> str:
    """``image`` as an inline PNG for the page's HTML views."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure(image: Image.Image, caption: str, alt: str, classes: str = "hs-fig") -> str:
    """An HTML figure: the picture inline, its alt text, and its caption below it (never over it)."""
    return (f"<figure class='{classes}'><img src='{data_url(image)}' alt='{html.escape(alt, quote=True)}' "
            f"width='{image.width}' height='{image.height}'><figcaption>{html.escape(caption)}</figcaption></figure>")


PROBE_EMPTY = ("<p class='hs-note'>Segment first, then click a point on the result: this view then shows, for each "
               "support, how that point correlates with every support pixel, layer by layer.</p>")


def probe_html(state: Exploration, mode: str) -> str:
    """The probe view: per support and pyramid level, every layer's map of the clicked point, on one scale."""
    if state.point is None:
        return PROBE_EMPTY
    x, y = state.point
    scale = shared_scale([m.values for maps in state.probe for m in maps], PROBE_SCALE_LABEL)
    small = fit(state.overlay, PROBE_TILE * 2)
    to_small = state.scale * small.width / state.overlay.width  # query pixels to thumbnail pixels
    marked = mark_point(small, x * to_small, y * to_small)
    parts = [f"<p class='hs-note'>Query point ({x:.0f}, {y:.0f}), marked on the result. Bright: support pixels "
             f"that look like that point to this layer. One scale for every map below: {scale.range_text}.</p>"
             "<div class='hs-probe-head'>",
             figure(marked, "The clicked point", f"The query with the clicked point ({x:.0f}, {y:.0f}) marked",
                    "hs-fig hs-scale"),
             figure(colourbar(scale, width=420), "Colour scale of every probe map", f"Colour scale: {scale.range_text}",
                    "hs-fig hs-scale"), "</div>"]
    for k, (support, maps) in enumerate(zip(state.supports, state.probe), start=1):
        parts.append(f"<section class='hs-support' aria-label='Support {k}'><h3>Support {k}</h3>")
        for level in LEVELS:
            level_maps = [m for m in maps if m.level == level]
            parts.append(f"<h4>{html.escape(level_title(level, len(level_maps)))}</h4><div class='hs-grid'>")
            photo = support if mode == OVER_PHOTO else None
            parts += [figure(heatmap(m.values, support.size, scale, photo), m.name,
                             f"Support {k}, {m.name}: correlation with the query point ({x:.0f}, {y:.0f})")
                      for m in level_maps]
            parts.append("</div>")
        parts.append("</section>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------ callbacks


def wait_for_weights(source: str, progress: gr.Progress) -> None:
    """Wait (showing the banner's words as progress) while weights ``source`` load; up to WAIT_FOR_WEIGHTS_S."""
    state = STORE.start(source)
    deadline = time.monotonic() + WAIT_FOR_WEIGHTS_S
    while state.status == "loading" and time.monotonic() < deadline:
        progress(state.progress, desc=state.message)
        time.sleep(0.5)
        state = STORE.state(source)


def make_segment(menu: WeightsMenu, masks: MaskFiles) -> Callable[..., tuple]:
    """The Segment button's callback; its parameter names are the `/segment` API's (kept for existing clients)."""

    @TURNS.first
    @friendly
    def segment(query: str | None, weights: str, rule: str,
                support_1: dict | None = None, support_2: dict | None = None, support_3: dict | None = None,
                support_4: dict | None = None, support_5: dict | None = None,
                mask_1: str | None = None, mask_2: str | None = None, mask_3: str | None = None,
                mask_4: str | None = None, mask_5: str | None = None, mode: str = OVER_PHOTO,
                request: gr.Request | None = None, progress: gr.Progress = gr.Progress()) -> tuple:
        """Segment the query from the supports and draw every picture of the prediction."""
        form = SegmentRequest.from_form(menu, query, weights, rule,
                                        (support_1, support_2, support_3, support_4, support_5),
                                        (mask_1, mask_2, mask_3, mask_4, mask_5))
        wait_for_weights(form.source, progress)
        predictor = STORE.predictor(form.source)  # here, not in the GPU step: the model stays in this process
        progress(0.3, desc=f"Segmenting with {len(form.supports)} support(s)")
        prediction = run_model(form.source, form.query, form.supports, form.masks, form.rule)
        progress(0.9, desc="Drawing")
        key = request.session_hash if request is not None and request.session_hash else "api"
        PROBES.put(key, Probe.build(form.source, form.query, form.supports, form.masks, predictor.image_size))
        result, exploration = answer(form, prediction, mode, masks, key)
        return (*astuple_shallow(result), exploration)

    return segment


def label_status(done: int, total: int, skipped: dict[str, str], finished: bool) -> str:
    """Markdown: how far labelling is, and each photo skipped with its reason."""
    head = (f"**{done} of {total} photos labelled.**" + (" Download the zip below." if finished and done else "")
            if total else "")
    return "\n".join([head, *(f"- skipped {html.escape(name)}: {html.escape(why)}" for name, why in skipped.items())])


def make_label(menu: WeightsMenu, masks: MaskFiles) -> Callable[..., Iterator[tuple]]:
    """The "Label them" button: every photo against the main view's supports, the gallery filling in as they finish."""

    @friendly
    def label(photos: list[str] | None, weights: str, rule: str,
              support_1: dict | None = None, support_2: dict | None = None, support_3: dict | None = None,
              support_4: dict | None = None, support_5: dict | None = None,
              mask_1: str | None = None, mask_2: str | None = None, mask_3: str | None = None,
              mask_4: str | None = None, mask_5: str | None = None, category: str = "object",
              progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Label the uploaded photos (or zip) with the supports of the main view; the last answer has the zip."""
        if not photos:
            raise InputError(f"no photos to label; upload up to {MAX_LABEL_QUERIES} photos or one zip of them")
        images, support_masks = read_supports((support_1, support_2, support_3, support_4, support_5),
                                              (mask_1, mask_2, mask_3, mask_4, mask_5))
        source = menu.source(weights)
        wait_for_weights(source, progress)
        STORE.predictor(source)  # loaded in this process, not in the GPU step
        segment = functools.partial(label_batch, source, images, support_masks, rule)
        gallery: list[tuple[Image.Image, str]] = []
        yield gallery, "Starting…", None
        for update in label_many(segment, photos, masks.answer_folder(), category=category.strip() or "object",
                                 batch_size=LABEL_CHUNK):
            progress(update.done / max(update.total, 1), desc=f"{update.done} of {update.total} labelled")
            if update.overlay is not None:
                gallery.append((update.overlay, update.name))
            finished = update.archive is not None
            yield (gallery, label_status(update.done, update.total, update.skipped, finished),
                   str(update.archive) if finished else None)

    return label


def astuple_shallow(answer: SegmentAnswer) -> tuple:
    """The answer's fields in order, without copying them (``dataclasses.astuple`` deep-copies)."""
    return tuple(getattr(answer, f.name) for f in fields(answer))


@TURNS.first
@friendly
def explore(state: Exploration | None, mode: str, evt: gr.SelectData) -> tuple:
    """A click on the result: the marker where it landed, and that point's correlation with every support pixel."""
    if state is None:
        raise InputError("no result to explore yet; press Segment first, then click a point on the result")
    x, y = (v / state.scale for v in evt.index[:2])
    state.probe = probe_point(PROBES.get(state.key), x, y)
    state.point = (x, y)
    marked = mark_point(state.overlay, x * state.scale, y * state.scale)
    return marked, probe_html(state, mode), gr.Tabs(selected="probe"), state


def download_label(path: str | None) -> gr.DownloadButton:
    """The download button, named after the file it gives (the query's name), in full."""
    name = Path(path).name if path else "the mask"
    return gr.DownloadButton(f"Download {name} (the mask, at the query's size)")


def redraw(state: Exploration | None, mode: str) -> tuple:
    """The heatmap views again, alone or over the photo, from what the session keeps."""
    if state is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), PROBE_EMPTY
    scale = shared_scale([m.values for m in state.layer_maps], LAYER_SCALE_LABEL)
    return (probability_picture(state, mode), *level_galleries(state.layer_maps, state.display, scale, mode),
            probe_html(state, mode))


def banner_html(state: LoadState) -> str:
    """The line at the top of the page: the weights in use, or how their loading goes, or that it failed."""
    message = html.escape(state.message)
    if state.status in ("idle", "loading"):
        bar = (f"<progress value='{state.progress:.2f}' max='1'" if state.progress is not None else "<progress") + \
            " aria-label='Loading the weights'></progress>"
        return f"<div class='hs-banner hs-wait' role='status' aria-live='polite'><b>{message}</b>{bar}</div>"
    if state.status == "ready":
        return f"<div class='hs-banner hs-ok' role='status' aria-live='polite'>{message}</div>"
    return (f"<div class='hs-banner hs-missing' role='alert'><b>{message}</b> Meanwhile, choose other weights in the "
            "Checkpoint menu.</div>")


def make_banner(menu: WeightsMenu) -> Callable[[str], tuple]:
    """The banner's callback: start loading the chosen weights and report; the timer polls while they load."""

    def banner(weights: str) -> tuple:
        try:
            source = menu.source(weights)
        except InputError as exc:
            return banner_html(LoadState(public_name(weights), "failed", str(exc))), gr.Timer(active=False)
        state = STORE.start(source)
        return banner_html(state), gr.Timer(active=state.status in ("idle", "loading"))

    return banner


# ------------------------------------------------------------------------------------------ the page

INTRO = f"""
# HSNet: find an object from a few examples

Show the model **one to five photos of an object, each with the object painted**, and it finds that kind of
object in a new photo, with no training. Then look inside: how each backbone layer matched the supports.

1. Pick an example below, or upload a **query** photo and a photo in **Support 1** (PNG or JPEG, up to
   {MAX_UPLOAD_BYTES // 2**20} MB each).
2. Paint over the object in each support with the brush (or upload a mask). More supports: tabs 2 to 5.
3. Press **Segment**, then **click a point on the result** to see where it matches the supports.

<small>HSNet: Juhong Min, Dahyun Kang and Minsu Cho, *Hypercorrelation Squeeze for Few-Shot Segmentation*,
ICCV 2021 ([paper]({PAPER})). This is an independent reimplementation; the weights are the authors'.</small>
"""

LAYERS_HELP = """
**What this shows.** HSNet compares the query with the painted part of each support at 13 (ResNet-50),
30 (ResNet-101) or 7 (VGG-16) **layers** of its image backbone; a name like `layer4.0` means block 0 of
ResNet stage 4. The layers are grouped in three **levels**: level 4 (deepest) tells what things are,
level 2 (shallowest) responds to edges and texture. Each map shows, for every query position, its best
cosine similarity with the painted support: bright = something like the object. All maps of this view
share one colour scale (below). Click a map for a larger view.
"""

PROBE_HELP = """
**The probe.** Click a point on the result: for each support, each layer shows how much every support
pixel looks like the clicked query point. A good match lights up the same part of the object.
"""

VOTE_HELP = """
**The vote** (two or more supports). Each support predicts a mask on its own; with the rule *vote* the
final mask keeps the pixels enough of them agree on, with *mean-prob* it averages their probabilities.
"""

LABEL_HELP = f"""
**Label many photos with the same supports.** Paint the object on one to five supports above, then upload the
photos to label (up to {MAX_LABEL_QUERIES} images, or one zip of them; {MAX_UPLOAD_BYTES // 2**20} MB per file and
{MAX_LABEL_BYTES // 2**20} MB in all per request). The gallery fills in as each photo is done; at the end, download
a zip of the dataset `hsnet label` writes: `images/`, `annotations/instances_default.json` (COCO, one category) and
`masks/<name>.png` (0/255, each photo's own size). Files that cannot be read are skipped and listed.
"""

CSS = """
.hs-banner {padding: 0.6rem 0.9rem; border-radius: 8px; font-size: 1rem}
.hs-banner progress {display: block; width: 100%; margin-top: 0.4rem}
.hs-ok {background: #e8f5e9; color: #1b5e20}
.hs-wait {background: #fff8e1; color: #5c4000}
.hs-missing {background: #fdecea; color: #7a1a12; border: 1px solid #f5c2bd}
.hs-note {color: #1f2937; font-size: 0.95rem}
.hs-grid {display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 8px}
.hs-probe-head {display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end}
/* Labels above the pictures rather than floating over them. */
#result-image label.float, #probability-image label.float, #vote-map label.float, .hs-gallery label.float
  {position: static !important; margin: var(--block-label-margin)}
.hs-gallery .grid-container {padding-top: 0 !important}
/* A clicked map opens large: the gallery grows while it previews one picture. */
.hs-gallery:has(.preview) .gallery-container {min-height: min(75vh, 640px)}
.hs-fig {margin: 0; min-width: 0}
.hs-fig img {display: block; width: 100%; height: auto}
.hs-scale img {width: auto; max-width: 100%}
.hs-fig figcaption {color: #1f2937; font-size: 0.9rem; padding-top: 2px; overflow-wrap: anywhere}
.hs-support h3 {margin: 1rem 0 0.3rem} .hs-support h4 {margin: 0.6rem 0 0.3rem; color: #1f2937}
/* Gallery captions below their thumbnails, not over them; every thumbnail shown, none clipped. */
.hs-gallery .caption-label {position: static !important; transform: none !important; max-width: 100% !important;
  background: transparent !important; color: #1f2937 !important; white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; padding: 2px 0 !important; font-size: 0.9rem !important}
.hs-gallery .thumbnail-item {height: auto !important; aspect-ratio: auto !important; overflow: visible !important}
.hs-gallery .thumbnail-item img {height: auto !important}
.hs-gallery .fixed-height {min-height: 0 !important; max-height: none !important}
.hs-gallery .grid-container {grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)) !important;
  grid-auto-rows: auto !important; height: auto !important}
.hs-gallery .grid-wrap {height: auto !important; max-height: none !important; overflow: visible !important}
#mask-file .file-name, #mask-file td {white-space: normal !important; overflow-wrap: anywhere; text-overflow: clip}
"""

THEME = gr.themes.Soft().set(
    # Text on the page's light background at WCAG AA (4.5:1) or better: labels, help text, small print.
    body_text_color_subdued="#374151",
    block_label_text_color="#1f2937",
    block_info_text_color="#374151",
    block_title_text_color="#1f2937",
    checkbox_label_text_color="#1f2937",
    # White text on the primary colour, and the primary colour as text (selected tabs), at 4.5:1 or better.
    color_accent="*primary_700",
    button_primary_background_fill="*primary_600",
    button_primary_background_fill_hover="*primary_700",
    checkbox_label_background_fill_selected="*primary_600",
)

# Names for what Gradio draws without one (the editor's canvas, pictures without alt text) and keyboard order.
HEAD = """
<script>
(() => {
  const name = () => {
    document.querySelectorAll('canvas:not([aria-label])').forEach((c) => {
      const tab = c.closest('[id^=support-editor-]');
      c.setAttribute('role', 'img');
      c.setAttribute('aria-label', tab ? `Support ${tab.id.slice(-1)}: drawing area, paint over the object`
                                       : 'drawing area');
    });
    document.querySelectorAll('img:not([alt]), img[alt=""]').forEach((img) => {
      const block = img.closest('[id]');
      const label = block && block.querySelector('[data-testid=block-label], label span');
      img.setAttribute('alt', (label && label.textContent.trim()) || 'picture');
    });
  };
  new MutationObserver(name).observe(document.documentElement, {childList: true, subtree: true});
  // Gradio's dropdown drops keyboard focus on the page body when left with Tab: move it on to the next control.
  document.addEventListener('keydown', (event) => {
    const menu = event.target.closest && event.target.closest('.hs-keep-focus');
    if (event.key !== 'Tab' || !menu) return;
    const focusable = [...document.querySelectorAll('input, button, select, textarea, a[href], [tabindex]')]
      .filter((e) => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length && !menu.contains(e));
    const after = focusable.filter((e) => menu.compareDocumentPosition(e) &
      (event.shiftKey ? Node.DOCUMENT_POSITION_PRECEDING : Node.DOCUMENT_POSITION_FOLLOWING));
    const next = event.shiftKey ? after[after.length - 1] : after[0];
    if (!next) return;
    event.preventDefault();
    event.target.blur();
    setTimeout(() => next.focus(), 60);
  }, true);
})();
</script>
"""

SCROLL_TO = ("(id) => setTimeout(() => document.getElementById(id)?.scrollIntoView({behavior: 'instant', "
             "block: 'start'}), 150)")  # after Gradio has drawn the new outputs


def build_demo(default_weights: str, episodes: Sequence[Episode], masks: MaskFiles) -> gr.Blocks:
    """The page: inputs, examples, results and the three ways of looking inside the model."""
    menu = WeightsMenu.build(default_weights)
    with gr.Blocks(title="HSNet few-shot segmentation", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(INTRO)
        status = gr.HTML(banner_html(STORE.state(menu.source(menu.default))), label="Weights status",
                         elem_id="weights-banner")
        poll = gr.Timer(1.0, active=True)
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320):
                query = guard_image(gr.Image(label="Query: the photo to segment", type="filepath",
                                                    image_mode=None, sources=["upload", "clipboard"], height=360,
                                                    elem_id="query-image"),
                                           "query image")
            with gr.Column(min_width=320):
                editors, uploads = [], []
                with gr.Tabs(elem_id="support-tabs"):
                    for i in range(1, MAX_SUPPORTS + 1):
                        with gr.Tab(f"Support {i}" if i == 1 else str(i), id=f"support-{i}"):
                            editors.append(guard_editor(gr.ImageEditor(
                                label=f"Support {i}: paint over the object" + (" (optional)" if i > 1 else ""),
                                type="pil", format="png", sources=["upload", "clipboard"], transforms=(),
                                layers=False, height=360, elem_id=f"support-editor-{i}",
                                brush=gr.Brush(colors=[("#ff4040", 0.7)], color_mode="fixed")), f"support {i}"))
                            with gr.Accordion("...or upload its mask (an uploaded mask wins over painting)",
                                              open=False) as accordion:
                                uploads.append(guard_image(gr.Image(label=f"Support {i} mask", type="filepath",
                                                                image_mode=None, sources=["upload"], height=200,
                                                                elem_id=f"support-{i}-mask"),
                                                     f"support {i} mask"))
                            # Open the box when a mask arrives (an example's), so that the mask in use is seen.
                            uploads[-1].change(lambda mask: gr.Accordion(open=mask is not None), uploads[-1],
                                               accordion, api_name=False, queue=False)
        with gr.Row(equal_height=False):
            weights = gr.Dropdown(menu.choices(), value=menu.default, label="Checkpoint", allow_custom_value=True,
                                  min_width=240, elem_id="weights-menu", elem_classes="hs-keep-focus")
            rule = gr.Radio(["vote", "mean-prob"], value="vote", label="K-shot rule", min_width=240,
                            info="vote: the authors' rule; mean-prob: average probability")
            mode = gr.Radio([OVER_PHOTO, ALONE], value=OVER_PHOTO, label="Heatmaps", min_width=240,
                            info="colour alone, or blended over the photo")
        run = gr.Button("Segment", variant="primary", size="lg", elem_id="segment-button")
        summary_box = gr.Markdown("Press **Segment** to see the result, the time of each stage and the device.",
                                  label=OUTPUT_LABELS["summary"], elem_id="summary")
        if episodes:
            gr.Examples(example_rows(episodes), inputs=[query, *editors, *uploads, rule],
                        example_labels=[e.title for e in episodes], label="Examples: click one, then Segment")
        with gr.Row(equal_height=False, elem_id="results"):
            with gr.Column(min_width=320):
                result = gr.Image(label=OUTPUT_LABELS["result"], interactive=False, elem_id="result-image",
                                  buttons=["fullscreen"])
                mask_file = gr.DownloadButton(OUTPUT_LABELS["mask_png"], variant="secondary",
                                              elem_id="mask-file")
            with gr.Column(min_width=320):
                probability = gr.Image(label=OUTPUT_LABELS["probability"], interactive=False,
                                       elem_id="probability-image", buttons=["fullscreen"])
        with gr.Tabs(elem_id="views") as views:
            with gr.Tab("Layers", id="layers"):
                gr.Markdown(LAYERS_HELP)
                layer_scale = gr.Image(label=OUTPUT_LABELS["layer_scale"], interactive=False, elem_id="layer-scale",
                                       buttons=[], show_label=False, container=False)
                levels = [gr.Gallery(label=OUTPUT_LABELS[f"level_{level}"], columns=6, height="auto",
                                     object_fit="contain", elem_id=f"level-{level}", elem_classes="hs-gallery",
                                     buttons=[], preview=False)
                          for level in LEVELS]
            with gr.Tab("Probe", id="probe"):
                gr.Markdown(PROBE_HELP)
                probe = gr.HTML(PROBE_EMPTY, label="Probe of the clicked point", elem_id="probe-view")
            with gr.Tab("Vote", id="vote"):
                gr.Markdown(VOTE_HELP)
                with gr.Row(equal_height=False):
                    shots = gr.Gallery(label=OUTPUT_LABELS["support_predictions"], columns=3, height="auto",
                                       object_fit="contain", elem_id="support-predictions", elem_classes="hs-gallery",
                                       buttons=[], min_width=300, scale=2)
                    vote = gr.Image(label=OUTPUT_LABELS["vote_map"], interactive=False, elem_id="vote-map",
                                    buttons=[], min_width=300, scale=1)
        with gr.Accordion("Label many photos with these supports", open=False, elem_id="label-many"):
            gr.Markdown(LABEL_HELP)
            photos = gr.File(label=f"Photos to label: up to {MAX_LABEL_QUERIES} images, or a zip of them",
                             file_count="multiple", file_types=["image", ".zip"], elem_id="label-photos")
            with gr.Row(equal_height=False):
                category = gr.Textbox("object", label="Name of the object (the category in the COCO annotations)",
                                      max_length=60, min_width=240, elem_id="label-category")
                label_run = gr.Button("Label them", variant="primary", min_width=160, scale=0, elem_id="label-run")
            label_progress = gr.Markdown("", label="Labelling progress", elem_id="label-progress")
            labelled = gr.Gallery(label="Labelled photos", columns=4, height="auto", object_fit="contain",
                                  elem_id="label-gallery", elem_classes="hs-gallery", buttons=[], preview=False)
            label_zip = gr.DownloadButton("Download the labelled dataset (zip)", variant="secondary",
                                          elem_id="label-zip", label="Labels (zip: images, COCO annotations, masks)")
        state = gr.State(None, time_to_live=1800)

        segment_outputs = [result, probability, mask_file, summary_box, *levels, layer_scale, shots, vote, state]
        run.click(lambda: PROBE_EMPTY, None, probe, api_name=False, queue=False)
        run.click(make_segment(menu, masks), [query, weights, rule, *editors, *uploads, mode], segment_outputs,
                  api_name="segment", **SEGMENT_QUEUE,
                  show_progress_on=[summary_box]).success(
            download_label, mask_file, mask_file, api_name=False, queue=False, show_progress="hidden").success(
            None, None, None, js=f"() => ({SCROLL_TO})('results')")
        label_run.click(make_label(menu, masks), [photos, weights, rule, *editors, *uploads, category],
                        [labelled, label_progress, label_zip], api_name="label_many", **LABEL_QUEUE,
                        show_progress_on=[label_progress])
        result.select(explore, [state, mode], [result, probe, views, state], api_name=False, **EXPLORE_QUEUE,
                      show_progress_on=[probe]).success(None, None, None, js=f"() => ({SCROLL_TO})('views')")
        mode.change(redraw, [state, mode], [probability, *levels, probe], api_name=False, **EXPLORE_QUEUE)
        banner = make_banner(menu)
        gr.on([demo.load, weights.change], banner, [weights], [status, poll], api_name=False, queue=False,
              show_progress="hidden")
        poll.tick(banner, [weights], [status, poll], api_name=False, queue=False, show_progress="hidden")
    return demo


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, start loading the weights, and serve the page."""
    parser = argparse.ArgumentParser(description="HSNet few-shot segmentation explorer (Gradio).")
    parser.add_argument("--weights", default=os.environ.get(WEIGHTS_ENV) or hub.DEFAULT_WEIGHTS,
                        help=f"registry name, Hub repo id, or local checkpoint file or folder (default: ${WEIGHTS_ENV} "
                             f"or {hub.DEFAULT_WEIGHTS})")
    parser.add_argument("--port", type=int, default=None,
                        help="port to serve on (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop (e.g. a Space restarting) runs the atexit cleanup
    private_temp_dir()  # before the page is built: Gradio's cache and the masks go in this process's own folder
    STORE.default = args.weights
    STORE.start(args.weights)
    demo = build_demo(args.weights, read_episodes(), MaskFiles())
    demo.queue(**QUEUE)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), server_port=args.port, css=CSS,
                theme=THEME, head=HEAD, **launch_kwargs())


if __name__ == "__main__":
    main()
