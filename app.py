"""HSNet exploration app: segment a query from a few annotated supports and see why.

Run ``python app.py`` (or ``make app``) and open the printed address; the same file
is the app of a Hugging Face Space. Weights come from ``--weights`` or the
``HSNET_WEIGHTS`` environment variable (a registry name, a Hub repo id, or a local
file or folder), else the registry default. This file holds the page only: the
model work lives in ``hsnet.predictor`` and the pictures in ``hsnet.visualize``.
"""
from __future__ import annotations

import argparse
import atexit
import functools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import numpy as np
import torch
from PIL import Image

from hsnet import hub
from hsnet.errors import HSNetError, InputError
from hsnet.inputs import MAX_PIXELS, load_mask, load_rgb
from hsnet.predictor import Prediction, Predictor
from hsnet.visualize import (
    fit,
    heatmap_over,
    layer_grid,
    layers_mask,
    level_title,
    mark_point,
    mask_image,
    overlay_mask,
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
MAX_SUPPORTS = 5
MAX_UPLOAD = "20mb"
MASK_DIR = Path(tempfile.mkdtemp(prefix="hsnet-masks-"))  # this process's downloadable masks, removed at exit
MASK_FILE_LIFETIME_S = 600  # Gradio serves its own copy once the answer is sent
DISPLAY_SIDE = 1024  # longest side of the result pictures sent to the browser
THUMB_SIDE = 256  # longest side of each per-layer heatmap
LEVELS = (4, 3, 2)  # pyramid levels, deepest first, as the model stacks them
PAPER = "https://arxiv.org/abs/2104.01538"
ON_CUDA = torch.cuda.is_available()
F = TypeVar("F", bound=Callable[..., Any])


def on_gpu(fn: F) -> F:
    """``fn`` wrapped the way ZeroGPU expects when the ``spaces`` package is there; ``fn`` itself otherwise."""
    return spaces.GPU(duration=120)(fn) if spaces is not None else fn


# ------------------------------------------------------------------------------------------ the models


class ModelStore:
    """Loads each checkpoint once per process, keeps the last few, and remembers why a load failed."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._predictors: OrderedDict[str, Predictor] = OrderedDict()
        self._errors: dict[str, str] = {}
        self._loading: set[str] = set()
        self._lock = threading.Lock()
        self._name_locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> Predictor:
        """The predictor for weights ``name``, loading them on first use (HSNetError when they cannot be had)."""
        with self._lock:
            name_lock = self._name_locks.setdefault(name, threading.Lock())
        with name_lock:
            with self._lock:
                if name in self._predictors:
                    self._predictors.move_to_end(name)
                    return self._predictors[name]
                self._loading.add(name)
            try:
                predictor = Predictor(hub.from_pretrained(name))
            except HSNetError as exc:
                self._errors[name] = str(exc)
                raise
            finally:
                with self._lock:
                    self._loading.discard(name)
            with self._lock:
                self._errors.pop(name, None)
                self._predictors[name] = predictor
                while len(self._predictors) > self.keep:
                    self._predictors.popitem(last=False)
            return predictor

    def preload(self, name: str) -> threading.Thread:
        """Start loading ``name`` in the background, so the page is up while the weights download."""

        def load() -> None:
            try:
                self.get(name)
            except HSNetError as exc:
                log.warning("weights %s are not available: %s", name, exc)
            except Exception:  # a broken file must not stop the page from starting
                log.exception("loading weights %s failed", name)
                self._errors[name] = "loading failed unexpectedly; the details are in the server log"

        thread = threading.Thread(target=load, name=f"preload-{name}", daemon=True)
        thread.start()
        return thread

    def status(self, name: str) -> tuple[str, str]:
        """("ready" | "loading" | "failed" | "unloaded", detail) for weights ``name``."""
        with self._lock:
            if name in self._predictors:
                predictor = self._predictors[name]
                return "ready", f"{predictor.model.backbone_name} on {predictor.device}"
            if name in self._loading:
                return "loading", ""
            if name in self._errors:
                return "failed", self._errors[name]
        return "unloaded", ""


# One store per process, at module level: ZeroGPU runs ``run_model`` in a worker that sees module globals.
STORE = ModelStore()


def weights_choices(default: str) -> list[tuple[str, str]]:
    """Dropdown entries (label, value): the weights given by flag or environment first, then the registry."""
    entries = hub.registry()
    choices = [] if default in entries else [(f"{default} (from --weights / {WEIGHTS_ENV})", default)]
    for name, entry in entries.items():
        fold = "" if entry.fold is None else f" fold {entry.fold}"
        choices.append((f"{name}  ({entry.backbone}, {entry.benchmark}{fold})", name))
    return choices


def banner(name: str) -> str:
    """The line at the top of the page: which weights are in use, or what is missing and how to provide it."""
    state, detail = STORE.status(name)
    if state == "ready":
        return f"<div class='hs-banner hs-ok'>Weights <b>{name}</b> loaded ({detail}).</div>"
    if state in ("loading", "unloaded"):
        return (f"<div class='hs-banner hs-wait'>Loading weights <b>{name}</b>. This happens once per process; "
                "a segmentation started now waits for it.</div>")
    return (
        f"<div class='hs-banner hs-missing'><b>No weights: {name} could not be loaded.</b> {_escape(detail)}<br>"
        f"To provide weights, point <code>{WEIGHTS_ENV}</code> (or <code>python app.py --weights ...</code>) at a "
        "local <code>best_model.pt</code>, <code>.safetensors</code> or folder from <code>hsnet convert</code>, "
        "or at a Hub repository id (<code>owner/name</code>); on a Space, set it as a variable in the settings. "
        "The page works again as soon as the weights load.</div>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


# ------------------------------------------------------------------------------------------ callbacks


@dataclass
class Exploration:
    """What the page keeps after a segmentation, for clicks on the result."""

    weights: str
    prediction: Prediction  # features on the CPU
    query: Image.Image
    supports: list[Image.Image]
    display_scale: float  # result picture pixels per query pixel


def friendly(fn: F) -> F:
    """Show hsnet's one-line errors on the page and keep the app serving whatever else goes wrong."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except HSNetError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        except Exception as exc:
            log.exception("%s failed", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}); the details are in the server log. "
                           "Your inputs are kept: check them and try again.", print_exception=False) from exc

    return wrapper  # type: ignore[return-value]


UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
C = TypeVar("C", bound=gr.components.Component)


def reports_unreadable(component: C, what: str) -> C:
    """``component`` whose unreadable uploads fail with a message naming ``what``, not an opaque error.

    Gradio opens an uploaded image before any callback runs; a text file renamed .png would
    otherwise fail the request with "Could not preprocess input component". The instance's
    ``preprocess`` is wrapped rather than subclassed: Gradio writes a .pyi stub beside the
    module of every Component subclass.
    """
    original = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return original(payload)
        except UNREADABLE as exc:
            raise gr.Error(f"{what}: the file is not an image that can be read; upload a PNG or JPEG",
                           print_exception=False) from exc

    component.preprocess = preprocess  # type: ignore[method-assign]
    return component


def collect_supports(editors: Sequence[dict | None], uploads: Sequence[str | None]) -> tuple[list[Image.Image], list[np.ndarray]]:
    """Support images and masks from the filled tabs; an uploaded mask wins over brush strokes."""
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


@on_gpu
def run_model(weights: str, query: Image.Image, images: list[Image.Image], masks: list[np.ndarray],
              rule: str) -> Prediction:
    """The one GPU step: the prediction, with its features moved to the CPU.

    It takes the weights' name, not the predictor, and returns only CPU data, because on ZeroGPU
    it runs in a worker process that arguments and results are passed to and from.
    """
    return STORE.get(weights).predict(query, images, masks, rule=rule).to("cpu")


def level_galleries(prediction: Prediction, query: Image.Image) -> list[list[tuple[Image.Image, str]]]:
    """Three galleries (levels 4, 3, 2): each layer's hypercorrelation over the query, captioned with its name."""
    small = fit(query, THUMB_SIDE)
    return [[(heatmap_over(small, m.values), m.name) for m in prediction.layer_maps if m.level == level]
            for level in LEVELS]


def summary(prediction: Prediction, weights: str, rule: str) -> str:
    """Markdown: what was found, on which device, and the time of each stage."""
    width, height = prediction.size
    shots = max(1, len(prediction.shot_masks))
    stages = " | ".join(f"{stage.replace('_', ' ')} {seconds:.2f} s" for stage, seconds in prediction.timings.items()
                        if stage != "total")
    cache = " (support features reused from the cache)" if prediction.support_cache_hit else ""
    return (f"**{prediction.mask.mean() * 100:.1f}%** of the {width}×{height} query is foreground · "
            f"{shots}-shot" + (f", rule *{rule}*" if shots > 1 else "") + f" · weights `{weights}`\n\n"
            f"**{prediction.timings['total']:.2f} s on {prediction.device}**{cache}: {stages}")


@friendly
def segment(query: str | None, weights: str, rule: str,
            support_1: dict | None = None, support_2: dict | None = None, support_3: dict | None = None,
            support_4: dict | None = None, support_5: dict | None = None,
            mask_1: str | None = None, mask_2: str | None = None, mask_3: str | None = None,
            mask_4: str | None = None, mask_5: str | None = None,
            progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
    """The Segment button: the prediction and every picture of it (one named parameter per input for API users)."""
    editors = (support_1, support_2, support_3, support_4, support_5)
    uploads = (mask_1, mask_2, mask_3, mask_4, mask_5)
    if query is None:
        raise InputError("no query image; upload the photo to segment (or pick an example)")
    query_image = load_rgb(query, "query image")
    images, masks = collect_supports(editors, uploads)
    if STORE.status(weights)[0] != "ready":
        progress(0.05, desc=f"Loading weights {weights} (first use only)")
        STORE.get(weights)  # here, not in the GPU step, so that the model is kept in this process
    progress(0.3, desc=f"Segmenting with {len(images)} support(s)")
    prediction = run_model(weights, query_image, images, masks, rule)
    progress(0.9, desc="Drawing")
    display = fit(query_image, DISPLAY_SIDE)
    scale = display.width / query_image.width
    small_mask = np.asarray(mask_image(prediction.mask).resize(display.size, Image.NEAREST)) > 0
    overlay = overlay_mask(display, small_mask)
    probability = heatmap_over(display, prediction.probability, alpha=0.75)
    mask_path = save_mask_file(prediction.mask, f"{Path(query).stem}_mask.png")
    shots = [(overlay_mask(fit(query_image, THUMB_SIDE * 2), _fit_mask(m, THUMB_SIDE * 2)),
              f"support {i}: {m.mean() * 100:.1f}% foreground")
             for i, m in enumerate(prediction.shot_masks, start=1)]
    vote = heatmap_over(display, prediction.vote_map, cmap="viridis") if prediction.vote_map is not None else None
    state = Exploration(weights, prediction, query_image, images, scale)
    return (overlay, probability, str(mask_path), summary(prediction, weights, rule),
            *level_galleries(prediction, query_image), shots, vote, state, None, [], banner(weights))


def save_mask_file(mask: np.ndarray, name: str) -> Path:
    """Write the full-size mask PNG for download under MASK_DIR, removing the ones older than MASK_FILE_LIFETIME_S."""
    cutoff = time.time() - MASK_FILE_LIFETIME_S
    for folder in MASK_DIR.iterdir():
        try:
            old = folder.stat().st_mtime < cutoff
        except OSError:  # removed meanwhile by a concurrent answer
            continue
        if old:
            shutil.rmtree(folder, ignore_errors=True)
    path = Path(tempfile.mkdtemp(dir=MASK_DIR)) / name  # a folder per answer keeps the readable file name unique
    mask_image(mask).save(path)
    return path


atexit.register(shutil.rmtree, MASK_DIR, ignore_errors=True)


def _fit_mask(mask: np.ndarray, max_side: int) -> np.ndarray:
    """A boolean mask scaled like ``fit`` scales its image."""
    return np.asarray(fit(mask_image(mask), max_side).convert("L")) > 127


@friendly
def explore(state: Exploration | None, evt: gr.SelectData) -> tuple:
    """A click on the result: that query point's correlation with every support pixel, per support and layer."""
    if state is None:
        raise gr.Error("Segment first, then click a point on the result.", print_exception=False)
    x, y = (v / state.display_scale for v in evt.index[:2])
    prediction = state.prediction
    per_support = STORE.get(state.weights).point_correlation(prediction.supports, prediction.query_features, x, y)
    grids = [(layer_grid(support, maps, title=f"Support {k}: match with the query point ({x:.0f}, {y:.0f})"),
              f"support {k}")
             for k, (support, maps) in enumerate(zip(state.supports, per_support), start=1)]
    marked = mark_point(fit(state.query, DISPLAY_SIDE), x * state.display_scale, y * state.display_scale)
    return marked, grids



# ------------------------------------------------------------------------------------------ the page

INTRO = f"""
# HSNet: find an object from a few examples

Show the model **one to five photos of an object, each with the object painted**, and it finds that kind of
object in a new photo, with no training. Then look inside: how each backbone layer matched the supports.

**1.** Pick an example below, or upload a **query** photo and a photo in **Support 1**.
**2.** Paint over the object in each support with the brush (or upload a mask). More supports: tabs 2 to 5.
**3.** Press **Segment**, then **click a point on the result** to see where it matches the supports.

<small>HSNet: Juhong Min, Dahyun Kang and Minsu Cho, *Hypercorrelation Squeeze for Few-Shot Segmentation*,
ICCV 2021 ([paper]({PAPER})). This is an independent reimplementation; the weights are the authors'.</small>
"""

CSS = """
.hs-banner {padding: 0.6rem 0.9rem; border-radius: 8px; font-size: 0.95rem}
.hs-ok {background: #e8f5e9; color: #1b5e20}
.hs-wait {background: #fff8e1; color: #6d4c00}
.hs-missing {background: #fdecea; color: #8a1c13; border: 1px solid #f5c2bd}
.hs-missing code, .hs-wait code {background: rgba(0,0,0,0.06)}
"""


def build_demo(default_weights: str, episodes: Sequence[Episode]) -> gr.Blocks:
    """The page: inputs, examples, results and the three ways of looking inside the model."""
    with gr.Blocks(title="HSNet few-shot segmentation", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        status = gr.HTML(banner(default_weights))
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                query = reports_unreadable(gr.Image(label="Query: the photo to segment", type="filepath",
                                                    image_mode=None, sources=["upload", "clipboard"], height=360),
                                           "query image")
                with gr.Row():
                    weights = gr.Dropdown(weights_choices(default_weights), value=default_weights,
                                          label="Checkpoint", scale=3)
                    rule = gr.Radio(["vote", "mean-prob"], value="vote", label="K-shot rule", scale=2,
                                    info="vote: the authors' rule; mean-prob: average probability")
                run = gr.Button("Segment", variant="primary", size="lg")
            with gr.Column(scale=1):
                editors, uploads = [], []
                with gr.Tabs():
                    for i in range(1, MAX_SUPPORTS + 1):
                        with gr.Tab(f"Support {i}"):
                            editors.append(reports_unreadable(gr.ImageEditor(
                                label=f"Support {i}: paint over the object" + (" (optional)" if i > 1 else ""),
                                type="pil", format="png", sources=["upload", "clipboard"], transforms=(),
                                layers=False, height=360, brush=gr.Brush(colors=[("#ff4040", 0.7)],
                                                                         color_mode="fixed")), f"support {i} image"))
                            with gr.Accordion("...or upload its mask (an uploaded mask wins over painting)",
                                              open=False) as accordion:
                                uploads.append(reports_unreadable(gr.Image(label=f"Support {i} mask", type="filepath",
                                                                image_mode=None, sources=["upload"], height=200,
                                                                elem_id=f"support-{i}-mask"),
                                                     f"support {i} mask"))
                            # Open the box when a mask arrives (an example's), so that the mask in use is seen.
                            uploads[-1].change(lambda mask: gr.Accordion(open=mask is not None), uploads[-1],
                                               accordion, api_name=False, queue=False)
        if episodes:
            gr.Examples(example_rows(episodes), inputs=[query, *editors, *uploads, rule],
                        example_labels=[e.title for e in episodes], label="Examples: click one, then Segment")
        with gr.Row(equal_height=False):
            overlay = gr.Image(label="Result: click a point to explore it", interactive=False, height=400,
                               elem_id="result-image")
            probability = gr.Image(label="Foreground probability (dark 0, bright 1)", interactive=False,
                                   height=400)
        with gr.Row(equal_height=False):
            timing = gr.Markdown("Press **Segment** to see the result, the time of each stage and the device.")
            mask_file = gr.File(label="Download the mask (PNG at the query's size)", interactive=False, height=90,
                                elem_id="mask-file")
        with gr.Tabs():
            with gr.Tab("Per-layer hypercorrelation"):
                gr.Markdown("How strongly each query position matches the painted support, for every backbone "
                            "layer HSNet correlates (best match over the support, averaged over supports).")
                levels = [gr.Gallery(label=level_title(level), columns=8, fit_columns=False, height=230,
                                     object_fit="contain", elem_id=f"level-{level}")
                          for level in LEVELS]
            with gr.Tab("Click a point"):
                gr.Markdown("Click the result above: each support shows, per layer, how that query point "
                            "correlates with every support pixel.")
                with gr.Row(equal_height=False):
                    point = gr.Image(label="Query point", interactive=False, height=300, scale=1)
                    point_maps = gr.Gallery(label="Correlation with each support", columns=1, height="auto",
                                            object_fit="contain", scale=3, elem_id="point-maps")
            with gr.Tab("Each support's vote (K > 1)"):
                gr.Markdown("With several supports, each one predicts alone; the final mask keeps the pixels "
                            "enough of them agree on.")
                with gr.Row(equal_height=False):
                    shots = gr.Gallery(label="Each support's own prediction", columns=3, height="auto",
                                       object_fit="contain", scale=2)
                    vote = gr.Image(label="Vote map (share of supports saying foreground)", interactive=False,
                                    scale=1)
        state = gr.State(None, time_to_live=1800)

        run.click(segment, [query, weights, rule, *editors, *uploads],
                  [overlay, probability, mask_file, timing, *levels, shots, vote, state, point, point_maps, status],
                  api_name="segment", concurrency_limit=2 if ON_CUDA else 1, concurrency_id="model")
        overlay.select(explore, [state], [point, point_maps], api_name=False,
                       concurrency_limit=4, concurrency_id="explore")
        weights.change(load_weights, [weights], [status], api_name=False, concurrency_id="model")
        demo.load(load_weights, [weights], [status], api_name=False)
    return demo


def load_weights(name: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> str:
    """Load weights ``name`` (waiting for a preload under way) and return the banner saying how it went."""
    if STORE.status(name)[0] != "ready":
        progress(0.1, desc=f"Loading weights {name}")
        try:
            STORE.get(name)
        except HSNetError:
            pass  # the banner says what is missing
    return banner(name)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, start loading the weights, and serve the page."""
    parser = argparse.ArgumentParser(description="HSNet few-shot segmentation explorer (Gradio).")
    parser.add_argument("--weights", default=os.environ.get(WEIGHTS_ENV) or hub.DEFAULT_WEIGHTS,
                        help=f"registry name, Hub repo id, or local checkpoint file or folder (default: ${WEIGHTS_ENV} "
                             f"or {hub.DEFAULT_WEIGHTS})")
    parser.add_argument("--port", type=int, default=None, help="port to serve on (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop (e.g. a Space restarting) runs the atexit cleanup
    STORE.preload(args.weights)
    demo = build_demo(args.weights, read_episodes())
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), server_port=args.port,
                max_file_size=MAX_UPLOAD, css=CSS, theme=gr.themes.Soft())


if __name__ == "__main__":
    main()
