"""Property-based tests: whatever image or mask a person gives, hsnet answers or says what is wrong.

The predictor returns a mask of the query's (width, height) or raises ``InputError``;
reading damaged files raises ``InputError``; nothing else ever escapes.
"""
from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from hsnet.errors import InputError
from hsnet.inputs import ASPECT_TOLERANCE, load_mask, load_rgb
from hsnet.predictor import Predictor

MODES = ["RGB", "L", "RGBA", "LA", "P", "CMYK", "I;16", "I", "F", "1"]
MASK_KINDS = ["empty", "full", "blobs", "zero-one", "zero-255", "palette", "alpha", "noise"]
CONTAINERS = ["array", "pil", "png", "jpg", "tif"]
_files = itertools.count()


@pytest.fixture(scope="module")
def predictor(predictor_resnet50) -> Predictor:
    """The random-weight ResNet-50 at a 64x64 input: every forward is cheap, every code path the same."""
    return Predictor(predictor_resnet50, device="cpu", image_size=64)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("property-files")


def in_mode(rgb: np.ndarray, mode: str) -> Image.Image:
    """``rgb`` pixels as a PIL image in ``mode`` (16-bit and float modes from the gray values)."""
    image = Image.fromarray(rgb)
    gray = np.asarray(image.convert("L"))
    if mode == "I;16":
        return Image.fromarray(gray.astype(np.uint16) * 257)
    if mode == "F":
        return Image.fromarray(gray.astype(np.float32) / 255)
    if mode == "I":
        return Image.fromarray(gray.astype(np.int32) * 1000)
    return image.convert(mode)


def packaged(image: Image.Image, container: str, folder: Path):
    """``image`` as the predictor may receive it: a PIL image, a numpy array or a file path."""
    if container == "pil":
        return image
    if container == "array":
        return np.asarray(image)
    if container == "jpg" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    if container == "png" and image.mode in ("CMYK", "F"):
        image = image.convert("RGB")
    path = folder / f"{next(_files)}.{container}"
    image.save(path)
    return path


@st.composite
def sizes(draw, largest: int = 600) -> tuple[int, int]:
    """(width, height) from 1 to ``largest`` pixels a side, extreme aspect ratios included."""
    return draw(st.integers(1, largest)), draw(st.integers(1, largest))


@st.composite
def images(draw, folder: Path, size: tuple[int, int] | None = None):
    width, height = size or draw(sizes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return packaged(in_mode(rgb, draw(st.sampled_from(MODES))), draw(st.sampled_from(CONTAINERS)), folder)


def mask_pixels(kind: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A mask image of ``kind``; its foreground is non-empty unless ``kind`` is "empty"."""
    marked = np.zeros((height, width), bool)
    if kind == "full":
        marked[:] = True
    elif kind == "noise":
        marked = rng.random((height, width)) < 0.5
        marked.flat[rng.integers(marked.size)] = True
    elif kind != "empty":
        for _ in range(rng.integers(1, 4)):
            x0, y0 = rng.integers(width), rng.integers(height)
            marked[y0: y0 + rng.integers(1, height + 1), x0: x0 + rng.integers(1, width + 1)] = True
    if kind == "zero-one":
        return Image.fromarray(marked.astype(np.uint8))
    if kind == "palette":
        image = Image.fromarray(np.where(marked, 7, 0).astype(np.uint8), "P")
        image.putpalette([0, 0, 0] + [200, 30, 30] * 255)
        return image
    if kind == "alpha":
        rgba = np.zeros((height, width, 4), np.uint8)
        rgba[marked] = (30, 200, 30, 255)
        return Image.fromarray(rgba, "RGBA")
    return Image.fromarray(marked.astype(np.uint8) * 255)


@st.composite
def masks(draw, folder: Path, width: int, height: int):
    """(mask input, kind, whether its shape fits the image); sometimes scaled, sometimes of another shape."""
    kind = draw(st.sampled_from(MASK_KINDS))
    shape = draw(st.sampled_from(["same", "scaled", "other"]))
    w, h = {"same": (width, height), "scaled": (width * 2, height * 2), "other": (width + 7, height * 3 + 5)}[shape]
    image = mask_pixels(kind, w, h, np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    container = draw(st.sampled_from(["array", "pil", "png"] if kind != "palette" else ["pil", "png"]))
    # "other" keeps the image's aspect ratio for a few sizes (1x1 -> 8x8): whether it fits is the ratio's to say
    fits = shape != "other" or abs((w / h) / (width / height) - 1) <= ASPECT_TOLERANCE
    return packaged(image, container, folder), kind, fits


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_predict_answers_at_query_size_or_raises_input_error(predictor: Predictor, folder: Path, data) -> None:
    query_size = data.draw(sizes(), label="query size")
    query = data.draw(images(folder, query_size), label="query")
    shots = data.draw(st.integers(1, 2), label="shots")
    supports, support_masks, kinds, fits = [], [], [], []
    for _ in range(shots):
        width, height = data.draw(sizes(300), label="support size")
        supports.append(data.draw(images(folder, (width, height)), label="support"))
        mask, kind, fit = data.draw(masks(folder, width, height), label="mask")
        support_masks.append(mask)
        kinds.append(kind)
        fits.append(fit)
    try:
        result = predictor.predict(query, supports, support_masks)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message
        expected = ("empty" in kinds and "marks no pixels" in message) or (not all(fits) and "give the mask drawn" in message)
        assert expected or "vanish" in message, message
        event("refused")
        return
    event("answered")
    assert "empty" not in kinds and all(fits)
    assert result.mask.shape == (query_size[1], query_size[0]) and result.mask.dtype == bool
    assert result.probability.shape == result.mask.shape


# ---------------------------------------------------------------- damaged files

def valid_file(fmt: str) -> bytes:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8))
    if fmt in ("GIF", "BMP"):
        image = image.convert("P")
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


FORMATS = ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "ICO", "TGA", "PPM", "PCX", "JPEG2000", "QOI", "DDS", "SGI", "IM"]
VALID = {fmt: valid_file(fmt) for fmt in FORMATS}


@st.composite
def damaged(draw) -> bytes:
    """A valid file cut short, with bytes overwritten, or a valid header followed by random bytes."""
    data = bytearray(VALID[draw(st.sampled_from(FORMATS))])
    how = draw(st.sampled_from(["cut", "flip", "header"]))
    if how == "header":
        return bytes(data[: draw(st.integers(4, 64))]) + draw(st.binary(max_size=2000))
    if how == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    for position, value in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8)):
        if data:
            data[position % len(data)] = value
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=damaged())
def test_damaged_files_give_an_image_or_input_error(folder: Path, content: bytes) -> None:
    path = folder / "damaged.bin"
    path.write_bytes(content)
    for read in (lambda: load_rgb(path), lambda: load_mask(path, (9, 12))):
        try:
            result = read()
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        assert isinstance(result, (Image.Image, np.ndarray))


def test_a_mark_too_small_to_survive_resizing_is_refused(predictor: Predictor) -> None:
    support = np.zeros((600, 600, 3), np.uint8)
    mask = np.zeros((600, 600), bool)
    mask[301, 301] = True  # one pixel; nearest resizing to 64x64 samples every ~9th row and column
    with pytest.raises(InputError, match="support mask 1 marks only 1 pixel.*mark a larger part"):
        predictor.predict(support, support, mask)
