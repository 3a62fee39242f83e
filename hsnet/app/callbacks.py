"""What the page's events do: each takes and returns values keyed by component, through one form by name.

A Segment decodes the form (``forms``), runs the model step (``steps``), keeps an
``Exploration`` for the session and draws every panel (``panels``); every picture an
event returns goes out as a finished file of its own answer (``pictures``). On the page a
failure is a message kept under Segment and the pictures of the previous run are
cleared, so nothing stale looks current; the ``/segment`` API raises it as a one-line
error instead.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..errors import InputError
from ..serving import MAX_LABEL_QUERIES, MaskFiles, Probe, label_many
from ..serving.queues import LABEL_CHUNK, TURNS
from .banner import menu_banner, wait_for_weights
from .forms import MAX_SUPPORTS, SegmentRequest, decoded, read_supports
from .messages import error_html, error_line, friendly
from .panels import OUTPUTS, PANELS, SEGMENT_API, draw, mask_button
from .pictures import published
from .probe_view import OVER_PHOTO
from .steps import PROBES, STORE, label_batch, probe_point, run_model
from .view import Exploration, summary

Component = gr.components.Component
FORM = ("query", "weights", "rule", *(f"support_{i}" for i in range(1, MAX_SUPPORTS + 1)),
        *(f"mask_{i}" for i in range(1, MAX_SUPPORTS + 1)), "mode")


@dataclass
class Page:
    """The page's components by name: the form, every panel's outputs, and the controls around them."""

    form: dict[str, Component]  # FORM names
    outputs: dict[str, Component]  # panel output names
    error: Component  # the message box under Segment
    state: Component  # the session's Exploration
    views: Component  # the tabs of the layers, probe and vote views
    probe_x: Component
    probe_y: Component


def session_key(request: gr.Request | None) -> str:
    return request.session_hash if request is not None and request.session_hash else "api"


def segment_view(menu: Any, masks: MaskFiles, form: dict[str, Any], key: str,
                 progress: Callable[..., None]) -> Exploration:
    """The Segment itself: decode the form, wait for the weights, predict, keep the probe, save the mask."""
    request = SegmentRequest.from_form(menu, form)
    wait_for_weights(request.source, progress)
    STORE.predictor(request.source)  # loaded here, not in the GPU step: the model stays in this process
    progress(0.3, desc=f"Segmenting with {len(request.supports)} support(s)")
    prediction = run_model(request.source, request.query, request.supports, request.masks, request.rule)
    progress(0.9, desc="Drawing")
    PROBES.put(key, Probe.of(request.source, prediction))  # its features: a click runs no backbone again
    mask_path = str(masks.save(prediction.mask, request.query_name))
    return Exploration.of(request, prediction, key, mask_path,
                          summary(prediction, menu.label(request.weights), request.rule, request.notes))


def on_page(name: str, value: Any) -> Any:
    """An output's value as the page shows it (the download button names its file, or is disabled)."""
    return mask_button(value) if name == "mask_png" else value


def cleared(page: Page) -> dict[Component, Any]:
    """Every output emptied: what a failed run leaves, so that no earlier picture looks like its result."""
    return {page.outputs[name]: on_page(name, output.empty) for name, output in OUTPUTS.items()}


def make_segment_page(page: Page, menu: Any, masks: MaskFiles) -> Callable[..., dict[Component, Any]]:
    """The Segment button: raw form values in, every panel's outputs, the message box and the state out."""

    @TURNS.first
    def segment_page(values: dict[Component, Any], request: gr.Request,
                     progress: gr.Progress = gr.Progress()) -> dict[Component, Any]:
        try:
            form = {name: decoded(component, values.get(component)) for name, component in page.form.items()}
            view = segment_view(menu, masks, form, session_key(request), progress)
            shown = published(draw(view, form["mode"] or OVER_PHOTO), masks.answer_folder())
        except Exception as exc:  # noqa: BLE001 - every failure is one kept line on the page, its cause logged
            return {**cleared(page), page.error: error_html(error_line(exc, "segment")), page.state: None}
        return {**{page.outputs[name]: on_page(name, value) for name, value in shown.items()}, page.error: "",
                page.state: view}

    return segment_page


def make_segment_api(menu: Any, masks: MaskFiles) -> Callable[..., tuple]:
    """The `/segment` endpoint; its parameter names are the API's (kept for existing clients)."""
    api_panels = [panel for panel in PANELS.values() if any(o.name in SEGMENT_API for o in panel.outputs)]

    @TURNS.first
    @friendly
    def segment(query: str | None, weights: str | None = menu.default, rule: str = "vote",
                support_1: dict | None = None, support_2: dict | None = None, support_3: dict | None = None,
                support_4: dict | None = None, support_5: dict | None = None,
                mask_1: str | None = None, mask_2: str | None = None, mask_3: str | None = None,
                mask_4: str | None = None, mask_5: str | None = None, mode: str = OVER_PHOTO,
                request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> tuple:
        """Segment the query from the supports; every picture of the prediction, by output name (docs/app.md)."""
        form = dict(zip(FORM, (query, weights, rule, support_1, support_2, support_3, support_4, support_5,
                               mask_1, mask_2, mask_3, mask_4, mask_5, mode)))
        view = segment_view(menu, masks, form, session_key(request), progress)
        shown = published(draw(view, mode or OVER_PHOTO, api_panels), masks.answer_folder())
        return tuple(shown[name] for name in SEGMENT_API)

    return segment


def make_explore(page: Page, masks: MaskFiles) -> tuple[Callable[..., dict[Component, Any]],
                                                       Callable[..., dict[Component, Any]]]:
    """A probe of one query point: (on a click on the result, on x and y typed and Probe pressed)."""

    @TURNS.first
    def probe(values: dict[Component, Any], x: float, y: float) -> dict[Component, Any]:
        view: Exploration | None = values.get(page.state)
        mode = values.get(page.form["mode"]) or OVER_PHOTO
        try:
            if view is None:
                raise InputError("no result to probe yet; press Segment first, then click a point on the result")
            if x is None or y is None:
                raise InputError("give the point's x and y in the query's pixels, then press Probe")
            view.probe = probe_point(PROBES.get(view.key), float(x), float(y))
            view.point = (float(x), float(y))
        except Exception as exc:  # noqa: BLE001 - shown in the probe view, cause logged
            return {page.outputs["probe"]: error_html(error_line(exc, "probe"))}
        result = published(PANELS["result"].draw(view, mode), masks.answer_folder())["result"]
        return {page.outputs["result"]: result, page.outputs["probe"]: PANELS["probe"].draw(view, mode)["probe"],
                page.views: gr.Tabs(selected="probe"), page.state: view,
                page.probe_x: round(view.point[0]), page.probe_y: round(view.point[1])}

    def clicked(values: dict[Component, Any], evt: gr.SelectData) -> dict[Component, Any]:
        view: Exploration | None = values.get(page.state)
        scale = view.scale if view is not None else 1.0
        return probe(values, evt.index[0] / scale, evt.index[1] / scale)

    def typed(values: dict[Component, Any]) -> dict[Component, Any]:
        return probe(values, values.get(page.probe_x), values.get(page.probe_y))

    return clicked, typed


def make_redraw(page: Page, masks: MaskFiles) -> Callable[[dict[Component, Any]], dict[Component, Any]]:
    """The heatmap views again, alone or over the photo, from what the session keeps (no model work)."""
    panels = [panel for panel in PANELS.values() if panel.follows_mode]

    def redraw(values: dict[Component, Any]) -> dict[Component, Any]:
        view = values.get(page.state)
        if view is None:
            return {}
        shown = published(draw(view, values.get(page.form["mode"]) or OVER_PHOTO, panels), masks.answer_folder())
        return {page.outputs[name]: value for name, value in shown.items()}

    return redraw


def make_upload_check(component: Component, error: Component) -> Callable[[dict[Component, Any]], dict]:
    """On upload: the component's own checks at once, so that a file that is no image is named before Segment."""

    def check(values: dict[Component, Any]) -> dict[Component, Any]:
        try:
            decoded(component, values.get(component))
        except Exception as exc:  # noqa: BLE001 - shown under Segment, cause logged
            return {error: error_html(error_line(exc, "upload"))}
        return {error: ""}

    return check


def make_banner(menu: Any) -> Callable[[str], tuple]:
    """The banner's callback: start loading the chosen weights and report; the timer polls while they load."""

    def banner(weights: str) -> tuple:
        text, loading = menu_banner(menu, weights)
        return text, gr.Timer(active=loading)

    return banner


def label_status(done: int, total: int, skipped: dict[str, str], finished: bool) -> str:
    """Markdown: how far labelling is, and each photo skipped with its reason."""
    head = (f"**{done} of {total} photos labelled.**" + (" Download the zip below." if finished and done else "")
            if total else "")
    return "\n".join([head, *(f"- skipped: {why}" for why in skipped.values())])


def make_label(menu: Any, masks: MaskFiles) -> Callable[..., Iterator[tuple]]:
    """The "Label them" button: every photo against the main view's supports, the gallery filling in as they finish."""

    @friendly
    def label(photos: list[str] | None, weights: str | None = menu.default, rule: str = "vote",
              support_1: dict | None = None, support_2: dict | None = None, support_3: dict | None = None,
              support_4: dict | None = None, support_5: dict | None = None,
              mask_1: str | None = None, mask_2: str | None = None, mask_3: str | None = None,
              mask_4: str | None = None, mask_5: str | None = None, category: str = "object",
              progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Label the uploaded photos (or zip) with the supports of the main view; the last answer has the zip."""
        if not photos:
            raise InputError(f"no photos to label; upload up to {MAX_LABEL_QUERIES} photos or one zip of them")
        images, support_masks, _ = read_supports((support_1, support_2, support_3, support_4, support_5),
                                                 (mask_1, mask_2, mask_3, mask_4, mask_5))
        source = menu.source(weights)
        wait_for_weights(source, progress)
        STORE.predictor(source)  # loaded in this process, not in the GPU step
        segment = functools.partial(label_batch, source, images, support_masks, rule)
        folder = masks.answer_folder()
        gallery: list[tuple[str, str]] = []
        yield gallery, "Starting…", None
        for update in label_many(segment, photos, folder, category=(category or "").strip() or "object",
                                 batch_size=LABEL_CHUNK):
            progress(update.done / max(update.total, 1), desc=f"{update.done} of {update.total} labelled")
            if update.overlay is not None:  # a finished file: the browser never fetches one still being written
                gallery.append((published(update.overlay, folder, "labelled"),
                                update.name))
            finished = update.archive is not None
            yield (gallery, label_status(update.done, update.total, update.skipped, finished),
                   str(update.archive) if finished else None)

    return label


__all__ = ["FORM", "Page", "make_banner", "make_explore", "make_label", "make_redraw",
           "make_segment_api", "make_segment_page", "make_upload_check"]
