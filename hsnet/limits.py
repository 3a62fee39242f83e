"""The square sides the Predictor (the app, ``hsnet predict``) accepts: large enough for the backbone, small
enough that an episode stays responsive (cost grows with the fourth power of the side; see docs/performance.md).
Evaluation and training take any side from ``MIN_IMAGE_SIDE`` up: they are for researchers with the hardware.
"""
from __future__ import annotations

import operator

from .errors import InputError
from .model import DEFAULT_IMAGE_SIDE

MIN_IMAGE_SIDE = 32  # the backbone's total stride: smaller inputs have no level-4 feature
MAX_IMAGE_SIDE = 640

__all__ = ["DEFAULT_IMAGE_SIDE", "MAX_IMAGE_SIDE", "MIN_IMAGE_SIDE", "check_image_size"]


def check_image_size(size: object) -> int:
    """``size`` as an int (numpy integers included) if it is a side the Predictor accepts; InputError otherwise."""
    if isinstance(size, bool):
        raise InputError(f"image size {size!r} is not an integer side; give e.g. {DEFAULT_IMAGE_SIDE}")
    try:
        side = operator.index(size)
    except TypeError:
        raise InputError(f"image size {size!r} is not an integer side; give e.g. {DEFAULT_IMAGE_SIDE}") from None
    if side < MIN_IMAGE_SIDE:
        raise InputError(f"image size {side} is below {MIN_IMAGE_SIDE}, too small for the backbone; "
                         f"use {MIN_IMAGE_SIDE}..{MAX_IMAGE_SIDE} (the authors use {DEFAULT_IMAGE_SIDE})")
    if side > MAX_IMAGE_SIDE:
        raise InputError(
            f"image size {side} is above the {MAX_IMAGE_SIDE}-pixel cap: cost grows with the fourth power "
            f"of the side; use at most {MAX_IMAGE_SIDE} (the authors use {DEFAULT_IMAGE_SIDE})"
        )
    return side
