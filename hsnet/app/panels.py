"""The views of a segmentation, one entry each: its components, its label, its help text and its draw function.

``PANELS`` is the page's registry: app.py lays the entries out, the callbacks draw
them from an ``Exploration`` into values keyed by output name, and the ``/segment``
API returns the outputs named in ``SEGMENT_API``, in that order. A new view is one
``Panel`` here (and one test: tests/test_app.py iterates the registry).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from ..visualize import (ColourScale, colourbar, display_size, fit, heatmap, level_title, mark_point, overlay_mask,
                         shared_scale, with_colourbar)
from .probe_view import ALONE, LEVELS, OVER_PHOTO, PROBE_EMPTY, probe_html
from .view import DISPLAY_SIDE, MIN_DISPLAY_SIDE, THUMB_SIDE, Exploration

LAYER_SCALE_LABEL = "Correlation (cosine, best match over the painted support)"
PROBABILITY_SCALE = ColourScale(0.0, 1.0, "Foreground probability")
LAYER_SCALE_ALT = ("Colour scale of the layer maps: dark for the lowest correlation shown, bright for the highest; "
                   "the two ends' values are printed under the bar")
MASK_BUTTON = "Download the mask (PNG at the query's size)"
Draw = Callable[[Exploration, str], dict[str, Any]]


@dataclass(frozen=True)
class Output:
    """One output of a panel: its API name, the label the page shows, what it is, and how to make its component."""

    name: str
    label: str
    description: str
    kind: type[gr.components.Component]
    options: dict[str, Any] = field(default_factory=dict)  # the page's settings for the component
    empty: Any = None  # the value before any result (and after a failed one)

    def component(self, on_page: bool = True) -> gr.components.Component:
        """The page's component (labelled for people) or, hidden, the API's (labelled with the output's name)."""
        if not on_page:
            return describe_output(self.kind(label=self.name, visible=False), self.description)
        return self.kind(label=self.label, elem_id=self.name.replace("_", "-"), **self.options)


def describe_output(component: gr.components.Component, text: str) -> gr.components.Component:
    """``component`` with ``text`` as its description in the API's documentation (gradio_client's view_api)."""
    info = component.api_info_as_output()
    component.api_info_as_output = lambda: {**info, "description": text}  # type: ignore[method-assign]
    return component


def describe_input(component: gr.components.Component, text: str) -> gr.components.Component:
    """``component`` with ``text`` as its parameter's description in the API's documentation."""
    info = component.api_info_as_input() if hasattr(component, "api_info_as_input") else component.api_info()
    component.api_info_as_input = lambda: {**info, "additional_description": text}  # type: ignore[attr-defined]
    return component


@dataclass(frozen=True)
class Panel:
    """A view of a segmentation: what it is called, what it explains, its outputs, and how it draws them."""

    name: str
    label: str
    help: str
    outputs: tuple[Output, ...]
    draw: Draw
    follows_mode: bool = False  # redrawn when the visitor switches heatmaps between "over the photo" and "alone"
    side_by_side: bool = False  # its outputs in a row (stacked on a phone)

    def render(self) -> dict[str, gr.components.Component]:
        """The panel's help and components on the page, in the current layout block, by output name."""
        if self.help:
            gr.Markdown(self.help, elem_classes="hs-help")
        with gr.Row(equal_height=False) if self.side_by_side else gr.Column():
            return {output.name: output.component() for output in self.outputs}


def _photo(view: Exploration, mode: str, side: int) -> tuple[Any, tuple[int, int]]:
    small = fit(view.display, side) if side < DISPLAY_SIDE else view.display
    return (small if mode == OVER_PHOTO else None), small.size


def draw_result(view: Exploration, mode: str) -> dict[str, Any]:
    """The query with its mask (and the probed point), the mask file, and the summary."""
    overlay = view.overlay
    if view.point is not None:
        overlay = mark_point(overlay, view.point[0] * view.scale, view.point[1] * view.scale)
    return {"result": overlay, "mask_png": view.mask_path, "summary": view.summary}


def draw_probability(view: Exploration, mode: str) -> dict[str, Any]:
    """The foreground probability on its fixed 0..1 scale, alone or over the photo, with the colourbar."""
    size = display_size(view.size, DISPLAY_SIDE, MIN_DISPLAY_SIDE)
    photo = view.display if mode == OVER_PHOTO else None
    values = view.probability.astype(np.float32) / 255
    return {"probability": with_colourbar(heatmap(values, size, PROBABILITY_SCALE, photo), PROBABILITY_SCALE)}


def draw_layers(view: Exploration, mode: str) -> dict[str, Any]:
    """One heatmap per backbone layer on one shared scale, a gallery per pyramid level, and that scale's colourbar."""
    scale = shared_scale([m.values for m in view.layer_maps], LAYER_SCALE_LABEL)
    photo, size = _photo(view, mode, THUMB_SIDE)
    galleries = {f"level_{level}": [(heatmap(m.values, size, scale, photo), m.name)
                                    for m in view.layer_maps if m.level == level] for level in LEVELS}
    return {"layer_scale": colourbar(scale, width=480), **galleries}


def draw_probe(view: Exploration, mode: str) -> dict[str, Any]:
    """The probed point against every support pixel, per support and layer (a note before any point)."""
    return {"probe": probe_html(view, mode)}


def draw_vote(view: Exploration, mode: str) -> dict[str, Any]:
    """Each support's own mask and the share of supports voting foreground (K > 1; empty for one support)."""
    if len(view.votes) < 2:
        return {"support_predictions": [], "vote_map": None}
    thumb = fit(view.display, THUMB_SIDE * 2)
    scale = ColourScale(0.0, 1.0, f"Share of the {len(view.votes)} supports saying foreground", "viridis")
    shots = [(overlay_mask(thumb, m), f"Support {i} alone: {m.mean() * 100:.1f}% foreground")
             for i, m in enumerate(view.votes, start=1)]
    return {"support_predictions": shots,
            "vote_map": with_colourbar(heatmap(view.votes.mean(axis=0), thumb.size, scale, thumb), scale)}


def _gallery(**options: Any) -> dict[str, Any]:
    return {"height": "auto", "object_fit": "contain", "elem_classes": "hs-gallery", "buttons": [], **options}


LAYERS_HELP = """
**What this shows.** HSNet compares the query with the painted part of each support at 13 (ResNet-50),
30 (ResNet-101) or 7 (VGG-16) **layers** of its image backbone; a name like `layer4.0` means block 0 of
ResNet stage 4. The layers are grouped in three **levels**: level 4 (deepest) tells what things are,
level 2 (shallowest) responds to edges and texture. Each map shows, for every query position, its best
cosine similarity with the painted support: bright = something like the object. All maps of this view
share one colour scale (below). Click a map for a larger view.
"""

PROBE_HELP = """
**The probe.** Click a point on the result, or type its x and y (in the query's pixels) and press **Probe**:
for each support, each layer shows how much every support pixel looks like that query point. A good match
lights up the same part of the object.
"""

VOTE_HELP = """
**The vote** (two or more supports). Each support predicts a mask on its own; with the rule *vote* the
final mask keeps the pixels enough of them agree on, with *mean-prob* it averages their probabilities.
"""

PANELS: dict[str, Panel] = {panel.name: panel for panel in (
    Panel("result", "Result", "", (
        Output("result", "Result: click a point to probe it", "the query with the predicted mask, at display size",
               gr.Image, {"interactive": False, "buttons": ["fullscreen"]}),
        Output("mask_png", MASK_BUTTON, "the mask as a 0/255 PNG at the query's original size", gr.DownloadButton,
               {"variant": "secondary", "interactive": False}),
        Output("summary", "Summary", "Markdown: share of foreground, shots, rule, weights, device, seconds per stage",
               gr.Markdown, {"value": "Press **Segment** to see the result, the time of each stage and the device."},
               empty=""),
    ), draw_result),
    Panel("probability", "Foreground probability", "", (
        Output("probability", "Foreground probability", "foreground probability on a fixed 0..1 scale, with its "
               "colourbar", gr.Image, {"interactive": False, "buttons": ["fullscreen"]}),
    ), draw_probability, follows_mode=True),
    Panel("layers", "Layers", LAYERS_HELP, (
        Output("layer_scale", "Colour scale of the layer maps", "the colourbar shared by the three level galleries, "
               "with the range it maps", gr.Image, {"interactive": False, "buttons": [], "show_label": False,
                                                   "container": False, "alt_text": LAYER_SCALE_ALT}),
        *(Output(f"level_{level}", level_title(level), f"gallery: one heatmap per layer of pyramid level {level}, "
                 "captioned with the layer's name", gr.Gallery, _gallery(columns=6, preview=False), empty=[])
          for level in LEVELS),
    ), draw_layers, follows_mode=True),
    Panel("probe", "Probe", PROBE_HELP, (
        Output("probe", "Probe of the clicked point", "not in the API: a probe needs the page's session", gr.HTML,
               {"value": PROBE_EMPTY}, empty=PROBE_EMPTY),
    ), draw_probe, follows_mode=True),
    Panel("vote", "Vote", VOTE_HELP, (
        Output("support_predictions", "Each support's own prediction", "gallery: each support's own mask "
               "(K > 1; an empty list for one support)", gr.Gallery, _gallery(columns=3, min_width=300, scale=2),
               empty=[]),
        Output("vote_map", "Vote map", "share of supports voting foreground, with its colourbar (K > 1; None for one "
               "support)", gr.Image, {"interactive": False, "buttons": [], "min_width": 300, "scale": 1}),
    ), draw_vote, side_by_side=True),
)}

# The `/segment` outputs, in the order existing clients unpack them (docs/app.md).
SEGMENT_API = ("result", "probability", "mask_png", "summary", "level_4", "level_3", "level_2", "layer_scale",
               "support_predictions", "vote_map")
OUTPUTS: dict[str, Output] = {output.name: output for panel in PANELS.values() for output in panel.outputs}


def draw(view: Exploration, mode: str, panels: Any = None) -> dict[str, Any]:
    """Every output of ``panels`` (default: all) drawn from ``view``, by output name."""
    values: dict[str, Any] = {}
    for panel in panels if panels is not None else PANELS.values():
        values.update(panel.draw(view, mode))
    return values


def mask_button(path: str | None) -> gr.DownloadButton:
    """The page's download button: named after the file it gives, or disabled before there is one."""
    if not path:
        return gr.DownloadButton(MASK_BUTTON, value=None, interactive=False)
    return gr.DownloadButton(f"Download {Path(path).name} (the mask, at the query's size)", value=path,
                             interactive=True)


__all__ = ["ALONE", "OUTPUTS", "OVER_PHOTO", "PANELS", "SEGMENT_API", "Output", "Panel", "draw", "mask_button"]
