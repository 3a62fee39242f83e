"""What a session keeps of one segmentation (well under 1 MB), from which every panel is drawn.

The inputs a click needs again live in the process's ``PROBES`` (at model resolution,
within a byte budget), under the session's key; this keeps compressed pictures and
small maps, so that switching how heatmaps are drawn never runs the model.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..predictor import LayerMap, Prediction
from ..visualize import display_size, fit, overlay_mask, resized_mask, resized_values
from .forms import SegmentRequest

DISPLAY_SIDE = 1024  # longest side of the result pictures sent to the browser
MIN_DISPLAY_SIDE = 512  # smaller queries are enlarged to this for display and clicking
THUMB_SIDE = 256  # longest side of each per-layer heatmap
PROBE_TILE = 160  # longest side of each probe heatmap


def jpeg(image: Image.Image) -> bytes:
    """``image`` compressed, for what a session keeps."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@dataclass
class Exploration:
    """One segmentation as the page shows it: pictures at display size, maps at model resolution."""

    key: str  # the Gradio session, the key of its Probe in PROBES
    weights: str  # the menu name
    size: tuple[int, int]  # the query's (width, height)
    display_jpeg: bytes  # the query at display size (small queries enlarged)
    overlay_jpeg: bytes  # the result picture, without a marker
    probability: np.ndarray  # uint8 (0..255 for 0..1), at most THUMB_SIDE * 2 on its longer side
    votes: np.ndarray  # (K, h, w) bool: each support's own mask at the probability's size (K > 1; else empty)
    layer_maps: list[LayerMap]
    supports: list[Image.Image]  # at PROBE_TILE
    mask_path: str  # the downloadable mask
    summary: str  # Markdown: what was found, where and how fast
    point: tuple[float, float] | None = None  # the last probed point, in query pixels
    probe: list[list[LayerMap]] = field(default_factory=list)

    @classmethod
    def of(cls, request: SegmentRequest, prediction: Prediction, key: str, mask_path: str,
           summary: str) -> Exploration:
        """What to keep of ``prediction``, drawn from one display-size copy of the query (resized once)."""
        display = fit(request.query, DISPLAY_SIDE, MIN_DISPLAY_SIDE)
        overlay = overlay_mask(display, resized_mask(prediction.mask, display.size))
        shots = prediction.shot_probabilities  # (K, S, S) at model resolution: resized only to what is shown
        small = display_size(display.size, THUMB_SIDE * 2)
        probability = resized_values(shots.mean(axis=0), small)
        votes = np.stack([resized_values(p, small) > 0.5 for p in shots]) if len(shots) > 1 else \
            np.zeros((0, small[1], small[0]), bool)
        return cls(key, request.weights, request.query.size, jpeg(display), jpeg(overlay),
                   (np.clip(probability, 0, 1) * 255).round().astype(np.uint8), votes, prediction.layer_maps,
                   [fit(s, PROBE_TILE) for s in request.supports], mask_path, summary)

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


def summary(prediction: Prediction, weights: str, rule: str, notes: tuple[str, ...] = ()) -> str:
    """Markdown: what was found, on which device, and the time of each stage."""
    width, height = prediction.size
    shots = len(prediction.shot_probabilities)
    stages = " | ".join(f"{stage.replace('_', ' ')} {seconds:.2f} s" for stage, seconds in prediction.timings.items()
                        if stage != "total")
    cache = " (support features reused from the cache)" if prediction.support_cache_hit else ""
    return (f"**{prediction.mask.mean() * 100:.1f}%** of the {width}×{height} query is foreground · "
            f"{shots}-shot" + (f", rule *{rule}*" if shots > 1 else "") + f" · weights `{weights}`\n\n"
            f"**{prediction.timings['total']:.2f} s on {prediction.device}**{cache}: {stages}"
            + "".join(f"\n\n{note}" for note in notes))
