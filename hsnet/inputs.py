"""Turn what a person has (file paths, PIL images, numpy arrays) into RGB images and binary masks.

Every problem becomes an ``InputError`` with one line naming the input and what to do.
A public demo receives any file, so decoding is defensive: the pixel count is
checked from the headers before anything is decoded (an ICO's embedded images
included), only the first frame of a multi-frame file is read, formats that run
an external program (EPS) or hide an unchecked embedded image are refused, and
whatever a Pillow decoder raises on damaged bytes is reported as an
``InputError`` rather than escaping. Files are closed before returning.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import InputError, describe, one_line

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

# Larger images are refused before they are decoded (decompression bombs included).
MAX_PIXELS = 40_000_000
# A mask may differ from its image in size when the aspect ratios agree this closely.
ASPECT_TOLERANCE = 0.02
# Formats never decoded, and why: EPS runs Ghostscript on the file; the others embed an image whose
# size their header does not state, so it could not be checked before decoding.
REFUSED_FORMATS = {
    "EPS": "reading it runs Ghostscript",
    "ICNS": "it can hide an image far larger than its header says",
    "BLP": "it can hide an image far larger than its header says",
    "IPTC": "it can hide an image far larger than its header says",
}
EXIF_ORIENTATION = 0x0112
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ICO_MAGIC = b"\x00\x00\x01\x00"
# Integer and float modes are scaled to 8 bits before conversion to RGB.
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# Premultiplied-alpha modes that Pillow converts only to their straight-alpha form.
PREMULTIPLIED = {"La": "LA", "RGBa": "RGBA"}


def _check_pixels(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InputError(f"{what} is empty ({width}x{height} pixels); give a real image")
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{what} is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit; downscale it first"
        )


def _refusal(image: Image.Image) -> str | None:
    """Why an opened (not yet decoded) image must not be decoded at all, or None."""
    if image.format in REFUSED_FORMATS:
        return REFUSED_FORMATS[image.format]
    if isinstance(image, ImageFile.StubImageFile):
        return "Pillow has no decoder for it here"
    return None


def _ico_frame_sizes(fp: BinaryIO) -> list[tuple[int, int]]:
    """The real sizes of the PNG or BMP images inside an ICO file, read from their headers.

    An ICO directory states at most 256x256, but Pillow decodes the embedded image
    at whatever size that image declares, and does so inside ``Image.open``; so
    the embedded headers are read here, before Pillow sees the file.
    """
    fp.seek(4)
    (count,) = struct.unpack("<H", fp.read(2))
    directory = fp.read(16 * count)
    sizes = []
    for start in range(0, len(directory) - 15, 16):
        fp.seek(struct.unpack("<I", directory[start + 12: start + 16])[0])
        head = fp.read(24)
        if head.startswith(PNG_MAGIC) and len(head) == 24:
            sizes.append(struct.unpack(">II", head[16:24]))
        elif len(head) >= 12:  # a BMP without file header; its height counts the XOR image and the AND mask
            width, height = struct.unpack("<ii", head[4:12])
            sizes.append((abs(width), abs(height) // 2))
    return sizes


def _decode(image: Image.Image, what: str) -> Image.Image:
    """Decode the current (first) frame after the size check, upright by its EXIF orientation.

    A copy detached from any file, except an already upright in-memory image, which is
    returned as it is (what this module returns is not decoded again).

    Pillow's decoders raise many exception types on damaged bytes (OSError,
    SyntaxError, ValueError, IndexError, NotImplementedError, RuntimeError,
    AttributeError, struct.error ...), so everything raised while decoding is
    reported as a damaged file; nothing outside this call is covered.
    """
    _check_pixels(image.size, what)
    reason = _refusal(image)
    if reason:
        raise InputError(f"{what} is a {image.format} file, which is not accepted ({reason}); export it as PNG or JPEG")
    try:
        image.load()
    except MemoryError as exc:
        raise InputError(f"{what} is too large to decode in the memory available; downscale it first") from exc
    except Exception as exc:  # noqa: BLE001 - see the docstring: any decoder failure means unreadable bytes
        raise InputError(f"{what} is truncated or corrupt ({describe(exc)}); save or export it again") from exc
    try:
        if getattr(image, "fp", None) is None and image.getexif().get(EXIF_ORIENTATION, 1) == 1:
            return image
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF blocks fail in many ways inside Pillow
        raise InputError(f"{what} has unreadable EXIF metadata ({describe(exc)}); save it again without metadata") from exc


def _open(source: str | os.PathLike, what: str) -> Image.Image:
    if not os.fspath(source):
        raise InputError(f"no {what} given; give the path of an image file")
    path = Path(source)
    name = one_line(str(path))
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as exc:  # e.g. a folder on the way that may not be listed
        raise InputError(f"{what} path {name} is not valid ({describe(exc)}); check the path") from exc
    if not exists:
        raise InputError(f"{what} file {name} does not exist; check the path")
    if not is_file:
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise InputError(f"{what} {name} is {kind}; give the path of an image file")
    label = f"{what} {one_line(path.name)}"
    try:
        fp = path.open("rb")
    except OSError as exc:
        raise InputError(f"{label} cannot be read ({describe(exc)}); check the file's permissions") from exc
    with fp, open_header(fp, label) as opened:
        return _decode(opened, label)


def open_header(fp: BinaryIO, label: str, *, formats: tuple[str, ...] | None = None,
                not_an_image: str = "is not an image Pillow can read; give a PNG, JPEG or similar file") -> Image.Image:
    """``Image.open`` on a binary file: its header read, no pixels decoded (an ICO's embedded sizes checked first
    when ``formats`` allows ICO),
    every failure one InputError naming ``label``; ``not_an_image`` ends the message for unrecognised bytes.
    The one place where opening an image's header is mapped to hsnet's errors (files and uploads alike)."""
    try:
        if (formats is None or "ICO" in formats) and fp.read(4) == ICO_MAGIC:
            for size in _ico_frame_sizes(fp):
                _check_pixels(size, label)
        fp.seek(0)
        return Image.open(fp, formats=formats)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{label} declares far more than the {MAX_PIXELS // 1_000_000} megapixel limit "
                         "(a decompression bomb?); downscale it first") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{label} {not_an_image}") from exc
    except Exception as exc:  # noqa: BLE001 - plugins may raise anything while parsing a header
        raise InputError(f"{label} is truncated or corrupt ({describe(exc)}); save or export it again") from exc


def _from_array(array: np.ndarray, what: str) -> Image.Image:
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise InputError(f"{what} array has shape {a.shape}; expected (H, W), (H, W, 2), (H, W, 3) or (H, W, 4)")
    _check_pixels((a.shape[1], a.shape[0]), what)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise InputError(f"{what} array has dtype {a.dtype}; give numbers (uint8, uint16 or float)")
        a = _to_uint8(a)
    return Image.fromarray(np.ascontiguousarray(a))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Scale floats in [0, 1], 8-bit or 16-bit ranges to uint8 (NaN and infinities become 0).

    Works in float32 and in place so that a large 16-bit image costs two copies, not five.
    """
    values = np.array(values, dtype=np.float32)
    values[~np.isfinite(values)] = 0.0
    top = float(values.max(initial=0.0))
    scale = 255.0 if top <= 1.0 else 1.0 if top <= 255.0 else 255.0 / 65535.0
    values *= scale
    np.clip(values, 0, 255, out=values)
    return np.rint(values, out=values).astype(np.uint8)


def read_image(source: ImageLike, what: str = "image") -> Image.Image:
    """Any supported input as a PIL image, EXIF orientation applied, in its own mode.

    Files are opened and closed here; the result never holds a file handle.
    """
    if isinstance(source, Image.Image):
        return _decode(source, what)
    if isinstance(source, np.ndarray):
        return _from_array(source, what)
    if isinstance(source, (str, os.PathLike)):
        return _open(source, what)
    raise InputError(f"{what} is a {type(source).__name__}; give a file path, a PIL image or a numpy array")


def load_rgb(source: ImageLike, what: str = "image") -> Image.Image:
    """An RGB image from any mode (grayscale, palette, RGBA, CMYK, 16-bit, float)."""
    image = read_image(source, what)
    if image.mode == "RGB":
        return image
    if image.mode in WIDE_MODES:
        image = Image.fromarray(_to_uint8(np.asarray(image)))
    image = image.convert(PREMULTIPLIED.get(image.mode, image.mode))
    return image.convert("RGB")


def load_mask(source: ImageLike, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """A boolean (H, W) foreground mask for an image of ``size`` = (width, height).

    Understands 0/1 and 0/255 masks, grayscale-palette masks (a black-and-white
    mask saved as GIF), label-palette masks (PASCAL style: index 0 is background
    and 255 the boundary), masks in an alpha channel (brush strokes on a
    transparent layer) and 16-bit masks. A mask of another size is resized when
    its aspect ratio matches the image's; an empty mask is refused, a full one is
    used as it is.
    """
    width, height = size
    if isinstance(source, np.ndarray) and source.dtype == bool and source.shape == (height, width):
        foreground = source  # what this function returned before: used as it is
    else:
        foreground = _foreground(read_image(source, what))
    if not foreground.any():
        raise InputError(f"{what} marks no pixels; paint or upload a mask that covers the object")
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
    """Which pixels are marked: alpha if the image has transparency, else palette label or intensity."""
    image = image.convert(PREMULTIPLIED.get(image.mode, image.mode))
    if image.mode == "P" and image.info.get("transparency") is None:
        index = np.asarray(image)
        palette = np.frombuffer(bytes(image.getpalette("RGB") or []), np.uint8).reshape(-1, 3)[:256]
        colors = np.zeros((256, 3), np.uint8)
        colors[: len(palette)] = palette
        used = colors[np.unique(index)]
        if len(palette) and (used == used[:, :1]).all():  # every used color is a gray: a grayscale mask
            return _bright(colors[:, 0][index])
        if not colors[0].any():  # index 0 is black (or there is no palette): a label mask
            return (index != 0) & (index != 255)
        return _bright(colors[index].max(axis=2))
    if image.mode in ("P", "PA") or "A" in image.getbands():
        alpha = np.asarray(image.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            return alpha >= 128
    if image.mode in WIDE_MODES or image.mode in ("1", "L"):
        return _bright(np.asarray(image))
    return _bright(np.asarray(image.convert("RGB")).max(axis=2))


def _bright(values: np.ndarray) -> np.ndarray:
    """Pixels above half the brightest value: works for 0/1, 0/255, 16-bit and float masks alike."""
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return values > values.max(initial=0.0) / 2
