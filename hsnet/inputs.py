"""Turn what a person has (file paths, PIL images, numpy arrays) into RGB images and binary masks.

Every problem becomes an ``InputError`` with one line naming the input and what to do.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

# Larger images are refused before they are decoded (decompression bombs included).
MAX_PIXELS = 40_000_000
# A mask may differ from its image in size when the aspect ratios agree this closely.
ASPECT_TOLERANCE = 0.02


def _open(source: str | os.PathLike, what: str) -> Image.Image:
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{what} file {path} does not exist; check the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
        _check_pixels(image.size, what)
        image.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{what} {path.name} is not an image Pillow can read ({exc}); give a PNG, JPEG or similar file") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{what} {path.name} is truncated or corrupt ({exc}); save or export it again") from exc
    return image


def _check_pixels(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"{what} is empty ({width}x{height} pixels); give a real image")
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{what} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit; downscale it first"
        )


def _from_array(array: np.ndarray, what: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InputError(f"{what} array has shape {a.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    _check_pixels((a.shape[1], a.shape[0]), what)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number):
            raise InputError(f"{what} array has dtype {a.dtype}; give numbers (uint8, uint16 or float)")
        a = _to_uint8(a.astype(np.float64))
    return Image.fromarray(a)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale floats in [0, 1], 8-bit or 16-bit ranges to uint8."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    top = values.max(initial=0.0)
    scale = 255.0 if top <= 1.0 else 1.0 if top <= 255.0 else 255.0 / 65535.0
    return np.clip(values * scale, 0, 255).round().astype(np.uint8)


def read_image(source: ImageLike, what: str = "image") -> Image.Image:
    """Any supported input as a PIL image, EXIF orientation applied, in its own mode."""
    if isinstance(source, Image.Image):
        _check_pixels(source.size, what)
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source, what)
    elif isinstance(source, (str, os.PathLike)):
        image = _open(source, what)
    else:
        raise InputError(f"{what} is a {type(source).__name__}; give a file path, a PIL image or a numpy array")
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{what} has unreadable EXIF metadata ({exc}); save it again without metadata") from exc


def load_rgb(source: ImageLike, what: str = "image") -> Image.Image:
    """An RGB image from any mode (grayscale, palette, RGBA, CMYK, 16-bit, float)."""
    image = read_image(source, what)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = Image.fromarray(_to_uint8(np.asarray(image, dtype=np.float64)))
    return image.convert("RGB")


def load_mask(source: ImageLike, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """A boolean (H, W) foreground mask for an image of ``size`` = (width, height).

    Understands 0/1 and 0/255 masks, palette masks (index 0 and 255 are background
    and boundary), masks in an alpha channel (brush strokes on a transparent
    layer) and 16-bit masks. A mask of another size is resized when its aspect
    ratio matches the image's; an empty mask is refused.
    """
    image = read_image(source, what)
    foreground = _foreground(image)
    if not foreground.any():
        raise InputError(f"{what} marks no pixels; paint or upload a mask that covers the object")
    width, height = size
    if foreground.shape != (height, width):
        mask_aspect = foreground.shape[1] / foreground.shape[0]
        if abs(mask_aspect / (width / height) - 1) > ASPECT_TOLERANCE:
            raise InputError(
                f"{what} is {foreground.shape[1]}x{foreground.shape[0]} but its image is {width}x{height}; "
                "give the mask drawn on that image"
            )
        resized = Image.fromarray(foreground).resize((width, height), Image.NEAREST)
        foreground = np.asarray(resized, dtype=bool)
    return foreground


def _foreground(image: Image.Image) -> np.ndarray:
    """Which pixels are marked: alpha if the image has transparency, else palette index or intensity."""
    if image.mode == "P" and image.info.get("transparency") is None:
        index = np.asarray(image)
        return (index != 0) & (index != 255)
    if image.mode == "P" or "A" in image.getbands():
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            return alpha >= 128
    if image.mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
    else:
        values = np.asarray(image.convert("RGB")).max(axis=2).astype(np.float64)
    return values > values.max(initial=0.0) / 2
