"""Checks on what a visitor sends, made before any pixel is decoded.

Gradio decodes an editor's background, every brush layer and the composite, and a
``data:`` URL given for an image, before the app's callback runs. These checks read
only what the bytes declare (the count of layers, the length of a ``data:`` URL, the
width and height in an image header via ``PIL.Image.open`` without ``load``) and
raise a one-line InputError naming the field ("support 2 brush layer 5") and the limit.
Formats whose header cannot be trusted to state the size (ICO decodes its embedded
image while opening) are refused here.
"""
from __future__ import annotations

import base64
import binascii
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..errors import InputError, describe
from ..inputs import MAX_PIXELS, REFUSED_FORMATS

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_BRUSH_LAYERS = 3  # the app's editor shows one layer; a little room for the browser's own
EDITOR_PIXEL_BUDGET = 3 * MAX_PIXELS  # background + layers + composite of one editor, as declared
UNSAFE_FORMATS = frozenset({*REFUSED_FORMATS, "ICO"})  # ICO: Pillow decodes the embedded image inside Image.open


def _formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in Image.OPEN if f not in UNSAFE_FORMATS)


def data_url_bytes(url: str, what: str) -> bytes:
    """The bytes of a ``data:`` URL, refusing one over MAX_UPLOAD_BYTES from its length before decoding it."""
    header, comma, payload = url.partition(",")
    if not comma or not header.startswith("data:"):
        raise InputError(f"{what} is a malformed data: URL; upload the image as a file")
    if len(payload) // 4 * 3 > MAX_UPLOAD_BYTES:
        raise InputError(f"{what} is a data: URL of about {round(len(payload) * 3 / 4 / 2**20)} MB, over the "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB upload limit; send a smaller image")
    if not header.endswith(";base64"):
        raise InputError(f"{what} is a data: URL that is not base64; upload the image as a file")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} is a data: URL with invalid base64 ({describe(exc)}); upload the image as a file") \
            from exc


def declared_size(source: str | os.PathLike | bytes, what: str) -> tuple[int, int]:
    """(width, height) as the image's header states it, without decoding pixels; InputError over MAX_PIXELS."""
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            opened = Image.open(io.BytesIO(source), formats=_formats())
        else:
            try:
                length = os.path.getsize(source)
            except OSError as exc:  # its reason names a server path: not for visitors
                raise InputError(f"{what} is no longer on the server; upload it again") from exc
            if length > MAX_UPLOAD_BYTES:
                raise InputError(f"{what} is over the {MAX_UPLOAD_BYTES // 2**20} MB upload limit; send a smaller image")
            opened = Image.open(source, formats=_formats())
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{what} declares far more than the {MAX_PIXELS // 1_000_000} megapixel limit; "
                         "downscale it first") from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"{what} is not an image that can be read safely; upload a PNG or JPEG") from exc
    except Exception as exc:  # noqa: BLE001 - any header parser failure means unreadable bytes (truncated included)
        raise InputError(f"{what} is truncated or corrupt ({describe(exc)}); save or export it again") from exc
    with opened:
        width, height = opened.size
    if width * height > MAX_PIXELS:
        raise InputError(f"{what} declares {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} "
                         "megapixel limit; downscale it first")
    return width, height


def _field(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def file_size(file: Any, what: str) -> tuple[int, int]:
    """Declared (width, height) of a Gradio file payload (FileData or its dict): a ``data:`` URL, a path, or bytes."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        return declared_size(bytes(file), what)
    url = _field(file, "url")
    if isinstance(url, str) and url.startswith("data:"):
        return declared_size(data_url_bytes(url, what), what)
    path = _field(file, "path")
    if not path:
        raise InputError(f"{what} has no file; upload the image again")
    return declared_size(path, what)


def check_image_payload(payload: Any, what: str) -> None:
    """An image component's payload (FileData/ImageData or dict, None when empty) within the limits."""
    if payload is not None:
        file_size(payload, what)


def check_editor_payload(background: Any, layers: Sequence[Any] | None, composite: Any, what: str) -> None:
    """An image editor's parts (file payloads or bytes, None when absent) within the layer and pixel limits."""
    layers = list(layers or [])
    if len(layers) > MAX_BRUSH_LAYERS:
        raise InputError(f"{what} has {len(layers)} brush layers; at most {MAX_BRUSH_LAYERS} are accepted, "
                         "paint on one layer")
    total = 0
    background_size = file_size(background, f"{what} image") if background is not None else None
    if background_size is not None:
        total += background_size[0] * background_size[1]
    for index, layer in enumerate(layers, start=1):
        if layer is None:
            continue
        width, height = file_size(layer, f"{what} brush layer {index}")
        if background_size is not None and width * height > background_size[0] * background_size[1]:
            raise InputError(f"{what} brush layer {index} is {width}x{height}, larger than its "
                             f"{background_size[0]}x{background_size[1]} image; paint on the image itself")
        total += width * height
    if composite is not None:
        width, height = file_size(composite, f"{what} composite")
        total += width * height
    if total > EDITOR_PIXEL_BUDGET:
        raise InputError(f"{what} image and brush layers declare {total / 1e6:.0f} megapixels together, over the "
                         f"{EDITOR_PIXEL_BUDGET // 1_000_000} megapixel limit; use a smaller image")


def check_editor_blob(kind: Any, index: Any, data: bytes, what: str) -> None:
    """One part of an editor value the browser posts ahead of the request (background, layer N or composite)."""
    if kind not in ("background", "layer", "composite"):
        raise InputError(f"{what} sent an unknown part {str(kind)[:20]!r}; reload the page")
    label = f"{what} {'image' if kind == 'background' else kind}"
    if kind == "layer":
        try:
            number = int(index)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{what} sent a brush layer without a valid number; reload the page") from exc
        if not 0 <= number < MAX_BRUSH_LAYERS:
            raise InputError(f"{what} brush layer {number + 1} is over the limit of {MAX_BRUSH_LAYERS} brush layers; "
                             "paint on one layer")
        label = f"{what} brush layer {number + 1}"
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(f"{label} is over the {MAX_UPLOAD_BYTES // 2**20} MB upload limit; use a smaller image")
    declared_size(bytes(data), label)
