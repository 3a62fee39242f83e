"""The largest side the Predictor (the app, ``hsnet predict``) resizes images to, so that an episode stays responsive.

The 4D correlation and the first layers of the learner grow with the fourth power
of the input side (the number of query positions times the number of support
positions), the backbone with its square. Measured on a 2-core CPU with
ResNet-50 (docs/performance.md, "Scaling"): a 1-shot episode takes about 0.8 s
at 400x400 (the authors' size), 3.2 s at 640x640 and 11 s at 800x800, and the
level-2 correlation alone needs 4 * (side/8)^4 floats per shot: 100 MB at 400,
655 MB at 640, 1.6 GB at 800. A 640 cap keeps a 1-shot episode within a few
seconds and a 5-shot episode within memory on a 16 GB CPU Space. Evaluation and
training take any side: they are for researchers with the hardware to choose.
"""
from __future__ import annotations

from .errors import InputError

MAX_IMAGE_SIDE = 640
DEFAULT_IMAGE_SIDE = 400  # the authors' training and evaluation size


def check_image_size(size: int) -> None:
    """Raise InputError unless ``size`` is a square side the Predictor accepts."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise InputError(f"image size {size!r} is not an integer side")
    if size < 1:
        raise InputError(f"image size {size} must be positive; the authors use {DEFAULT_IMAGE_SIDE}")
    if size > MAX_IMAGE_SIDE:
        raise InputError(
            f"image size {size} is above the {MAX_IMAGE_SIDE}-pixel cap: cost grows with the fourth power "
            f"of the side; use at most {MAX_IMAGE_SIDE} (the authors use {DEFAULT_IMAGE_SIDE})"
        )
