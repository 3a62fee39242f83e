"""What the page sends, decoded and checked once: the query, the supports with their masks, the settings.

The page's events take raw payloads (``preprocess=False``) and decode them here with
each component's own checks (``decoded``), so that a refusal of any input, the upload
guards' included, is an hsnet one-line error the page can keep in view.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ..errors import InputError
from ..inputs import load_mask, load_rgb
from ..visualize import layers_mask
from .weights_menu import WeightsMenu

MAX_SUPPORTS = 5


def decoded(component: gr.components.Component, raw: Any) -> Any:
    """``raw`` (a payload as the browser sent it) through ``component``'s preprocessing; gr.Error as InputError."""
    model = getattr(component, "data_model", None)
    value = model.model_validate(raw) if model is not None and raw is not None else raw
    try:
        return component.preprocess(value)
    except gr.Error as exc:
        raise InputError(str(exc.message)) from exc


def read_supports(editors: Sequence[dict | None],
                  uploads: Sequence[str | None]) -> tuple[list[Image.Image], list[np.ndarray], list[str]]:
    """Support images, masks and notes from the filled tabs (an uploaded mask wins over brush strokes)."""
    images, masks, notes = [], [], []
    for i, (editor, upload) in enumerate(zip(editors, uploads), start=1):
        background = editor.get("background") if editor else None
        if background is None:
            if upload is not None:
                raise InputError(f"support {i} has a mask but no image; add the support image in tab Support {i}")
            continue
        image = load_rgb(background, f"support {i} image")
        if upload is not None:
            painted = layers_mask(editor.get("layers") or [])
            if painted is not None and painted.any():
                notes.append(f"Support {i}: the uploaded mask was used; the brush strokes were ignored.")
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
    return images, masks, notes


@dataclass(frozen=True)
class SegmentRequest:
    """A Segment's inputs, decoded and checked once: exactly what the predictor consumes."""

    query: Image.Image
    query_name: str  # the upload's file stem, for the download's name
    weights: str  # the menu name
    source: str  # what the server loads for it
    rule: str
    supports: list[Image.Image]
    masks: list[np.ndarray]
    notes: tuple[str, ...] = ()

    @classmethod
    def from_form(cls, menu: WeightsMenu, form: dict[str, Any]) -> SegmentRequest:
        """Decode the form's values by name (InputError naming the field when one is missing or unusable)."""
        query = form.get("query")
        if query is None:
            raise InputError("no query image; upload the photo to segment (or pick an example)")
        shown = menu.shown(form.get("weights"))
        rule = form.get("rule") or "vote"
        if rule not in ("vote", "mean-prob"):
            raise InputError(f"unknown rule {str(rule)[:20]!r}; use vote or mean-prob")
        images, masks, notes = read_supports([form.get(f"support_{i}") for i in range(1, MAX_SUPPORTS + 1)],
                                             [form.get(f"mask_{i}") for i in range(1, MAX_SUPPORTS + 1)])
        return cls(load_rgb(query, "query image"), Path(query).stem, shown, menu.source(shown), rule, images, masks,
                   tuple(notes))
