"""hsnet.inputs on real files of every kind a public demo receives: what is accepted, what is refused and how.

Every refusal must be an ``InputError`` whose message is one line; nothing else may escape.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features
from PIL.IcoImagePlugin import IcoImageFile

from crafted_files import icon_hiding, png_claiming
from hsnet.errors import InputError
from hsnet.inputs import MAX_PIXELS, load_mask, load_rgb, read_image

# Four 16x16 blocks of distinct colors, so that any flip or rotation is visible after JPEG compression.
BLOCKS = np.array([[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (0, 255, 255), (255, 0, 255)]], np.uint8)
PHOTO = BLOCKS.repeat(16, axis=0).repeat(16, axis=1)  # (32, 48, 3): 48 wide, 32 high


def refused(call, *args, match: str | None = None) -> str:
    """Run ``call`` expecting an InputError; returns its message after checking it is one line."""
    with pytest.raises(InputError, match=match) as info:
        call(*args)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# ---------------------------------------------------------------- images: formats and modes

LOSSLESS = ["png", "bmp", "tiff", "tga", "ppm", "pcx", "sgi", "im", "qoi", "dds"]
LOSSY = ["jpg", "webp", "jp2"] + (["avif"] if features.check("avif") else [])


@pytest.mark.parametrize("suffix", LOSSLESS)
def test_lossless_formats_read_exactly(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(PHOTO).save(path)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (48, 32)
    assert np.array_equal(np.asarray(image), PHOTO)


@pytest.mark.parametrize("suffix", LOSSY)
def test_lossy_formats_read_closely(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(PHOTO).save(path, quality=95)
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (48, 32)
    assert np.abs(np.asarray(image, np.int16)[4::16, 4::16] - BLOCKS).max() < 40


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "PA", "La", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
                                  "I", "I;16", "I;16B", "F"])
def test_every_pil_mode_becomes_rgb(mode: str) -> None:
    image = load_rgb(Image.new(mode, (5, 3)))
    assert image.mode == "RGB" and image.size == (5, 3)


@pytest.mark.parametrize("name,make", [
    ("gray.png", lambda: Image.fromarray(PHOTO).convert("L")),
    ("palette.gif", lambda: Image.fromarray(PHOTO).convert("P")),
    ("rgba.png", lambda: Image.fromarray(PHOTO).convert("RGBA")),
    ("la.png", lambda: Image.fromarray(PHOTO).convert("LA")),
    ("cmyk.jpg", lambda: Image.fromarray(PHOTO).convert("CMYK")),
    ("cmyk.tif", lambda: Image.fromarray(PHOTO).convert("CMYK")),
    ("depth16.png", lambda: Image.fromarray((PHOTO[..., 0].astype(np.uint16) * 257))),
    ("depth16.tif", lambda: Image.fromarray((PHOTO[..., 0].astype(np.uint16) * 257))),
    ("float.tif", lambda: Image.fromarray(PHOTO[..., 0].astype(np.float32) / 255)),
    ("icon.ico", lambda: Image.fromarray(PHOTO).resize((32, 32))),
])
def test_files_in_other_modes_become_rgb(tmp_path: Path, name: str, make) -> None:
    source = make()
    source.save(tmp_path / name)
    image = load_rgb(tmp_path / name)
    assert image.mode == "RGB" and image.size == source.size


def test_sixteen_bit_and_float_images_keep_their_brightness(tmp_path: Path) -> None:
    ramp = np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(8, axis=0)
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(tmp_path / "ramp16.png")
    Image.fromarray(ramp).save(tmp_path / "rampf.tif")
    for name in ("ramp16.png", "rampf.tif"):
        row = np.asarray(load_rgb(tmp_path / name))[0, :, 0].astype(int)
        assert abs(row[0]) <= 1 and abs(row[-1] - 255) <= 1 and np.all(np.diff(row) >= 0)


def exif_displayed(stored: np.ndarray, orientation: int) -> np.ndarray:
    """How a viewer shows ``stored`` pixels tagged with EXIF ``orientation`` (from the EXIF specification)."""
    return {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1],  # mirrored vertically
        5: lambda a: a.swapaxes(0, 1),  # mirrored along the top-left diagonal
        6: lambda a: np.rot90(a, -1),  # rotated 90 clockwise
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # mirrored along the top-right diagonal
        8: lambda a: np.rot90(a, 1),  # rotated 90 counter-clockwise
    }[orientation](stored)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(PHOTO).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    image = np.asarray(load_rgb(tmp_path / "phone.jpg"), np.int16)
    expected = exif_displayed(BLOCKS, orientation)
    assert image.shape[:2] == (expected.shape[0] * 16, expected.shape[1] * 16)
    assert np.abs(image[8::16, 8::16] - expected).max() < 40


@pytest.mark.parametrize("orientation", range(1, 9))
def test_what_load_rgb_returns_is_not_decoded_again(tmp_path: Path, orientation: int) -> None:
    """An upright decoded image goes through load_rgb as it is; an image the caller opened is still turned."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(PHOTO).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "phone.jpg") as opened:
        upright = load_rgb(opened)
    assert np.array_equal(np.asarray(upright), np.asarray(load_rgb(tmp_path / "phone.jpg")))
    assert load_rgb(upright) is upright
    mask = load_mask(np.asarray(upright)[:, :, 0] > 128, upright.size)
    assert load_mask(mask, upright.size) is mask


def test_a_boolean_mask_of_another_size_is_still_checked() -> None:
    with pytest.raises(InputError, match="marks no pixels"):
        load_mask(np.zeros((4, 6), bool), (6, 4))
    assert load_mask(np.ones((2, 3), bool), (6, 4)).shape == (4, 6)
    with pytest.raises(InputError, match="give the mask drawn on that image"):
        load_mask(np.ones((6, 2), bool), (6, 4))


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 2), (1, 40)])
def test_tiny_images_are_accepted(tmp_path: Path, size: tuple[int, int]) -> None:
    Image.new("RGB", size, (10, 20, 30)).save(tmp_path / "tiny.png")
    image = load_rgb(tmp_path / "tiny.png")
    assert image.size == size and image.getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize("name", ["anim.gif", "pages.tif", "anim.png", "anim.webp"])
def test_multi_frame_files_give_their_first_frame(tmp_path: Path, name: str) -> None:
    frames = [Image.new("RGB", (20, 10), color) for color in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], lossless=True)
    image = load_rgb(tmp_path / name)
    assert image.size == (20, 10)
    assert np.abs(np.asarray(image, np.int16)[5, 10] - (200, 0, 0)).max() < 10


def test_files_are_closed_after_reading(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = read_image(tmp_path / "anim.gif")
    assert getattr(image, "fp", None) is None
    (tmp_path / "anim.gif").unlink()  # nothing holds it open
    assert image.load() is not None


# ---------------------------------------------------------------- images: refused

def test_too_many_pixels_is_refused_with_the_limit(tmp_path: Path) -> None:
    (tmp_path / "huge.png").write_bytes(png_claiming(8000, 6000))
    message = refused(load_rgb, tmp_path / "huge.png")
    assert "8000x6000" in message and "megapixel limit" in message and "downscale" in message


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (8000, 6000), (MAX_PIXELS + 1, 1)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path, monkeypatch, width: int, height: int) -> None:
    (tmp_path / "bomb.png").write_bytes(png_claiming(width, height))

    def no_decoding(self):
        raise AssertionError("a bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    refused(load_rgb, tmp_path / "bomb.png", match="megapixel limit")


def test_icon_hiding_a_huge_image_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    """An ICO directory says 16x16 but the embedded PNG is 12000x12000: Pillow would decode it in Image.open."""
    (tmp_path / "bomb.ico").write_bytes(icon_hiding(png_claiming(12_000, 12_000)))
    calls = []
    monkeypatch.setattr(IcoImageFile, "load", lambda self: calls.append(1))
    refused(load_rgb, tmp_path / "bomb.ico", match="12000x12000 pixels, more than")
    assert not calls


@pytest.mark.parametrize("suffix", ["png", "jpg", "gif", "webp", "tiff", "bmp"])
def test_truncated_files_are_refused(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / f"full.{suffix}")
    data = (tmp_path / f"full.{suffix}").read_bytes()
    (tmp_path / f"cut.{suffix}").write_bytes(data[: len(data) // 2])
    message = refused(load_rgb, tmp_path / f"cut.{suffix}")
    assert f"cut.{suffix}" in message


@pytest.mark.parametrize("name,content,expected", [
    ("notes.txt", b"hello, this is not an image\n", "not an image Pillow can read"),
    ("empty.png", b"", "not an image Pillow can read"),
    ("fake.jpg", b"\xff\xd8\xff" + b"\0" * 20, "not an image|truncated or corrupt"),
    ("script.png", b"#!/bin/sh\necho pwned\n", "not an image Pillow can read"),
])
def test_non_images_are_refused(tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    (tmp_path / name).write_bytes(content)
    refused(load_rgb, tmp_path / name, match=expected)


def test_eps_is_refused_without_running_ghostscript(tmp_path: Path, monkeypatch) -> None:
    Image.new("RGB", (8, 6)).save(tmp_path / "drawing.eps")
    monkeypatch.setattr("subprocess.check_call", lambda *a, **k: pytest.fail("Ghostscript was started"))
    refused(load_rgb, tmp_path / "drawing.eps", match="EPS file, which is not accepted")


@pytest.mark.parametrize("make_path,expected", [
    (lambda tmp: tmp / "missing.png", "does not exist"),
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: "", "no image given"),
    (lambda tmp: str(tmp / "a\0b.png"), "does not exist"),
    (lambda tmp: Path("/dev/null"), "not a regular file"),
])
def test_bad_paths_are_refused(tmp_path: Path, make_path, expected: str) -> None:
    refused(load_rgb, make_path(tmp_path), match=expected)


def test_file_names_with_newlines_still_give_one_line(tmp_path: Path) -> None:
    path = tmp_path / "two\nlines.png"
    path.write_bytes(b"not an image")
    refused(load_rgb, path)


@pytest.mark.parametrize("value", [b"\x89PNG", 42, None, [[0, 1]], {"image": "x.png"}])
def test_unsupported_input_types_are_refused(value) -> None:
    refused(load_rgb, value, match="give a file path, a PIL image or a numpy array")


# ---------------------------------------------------------------- images: numpy arrays

@pytest.mark.parametrize("array", [
    np.zeros((4, 5), bool), np.zeros((4, 5), np.uint16), np.ones((4, 5, 1), np.float32), np.zeros((4, 5, 3), np.int64),
    np.full((4, 5, 4), np.nan), np.zeros((4, 5, 3), ">u2"), np.zeros((4, 5, 2), np.uint8),
    np.zeros((10, 12, 3), np.uint8)[::2, ::3],
])
def test_numeric_arrays_are_accepted(array: np.ndarray) -> None:
    assert load_rgb(array).size == (array.shape[1], array.shape[0])


@pytest.mark.parametrize("array,expected", [
    (np.zeros((4, 5, 5)), "expected \\(H, W\\)"),
    (np.zeros(7), "expected \\(H, W\\)"),
    (np.zeros((0, 5)), "empty"),
    (np.zeros((4, 5), complex), "dtype"),
    (np.array([["a"]]), "dtype"),
])
def test_unusable_arrays_are_refused(array: np.ndarray, expected: str) -> None:
    refused(load_rgb, array, match=expected)


# ---------------------------------------------------------------- masks

def blob(width: int = 40, height: int = 30) -> np.ndarray:
    """A boolean mask with a rectangle marked (rows 5..19, columns 10..29)."""
    mask = np.zeros((height, width), bool)
    mask[5:20, 10:30] = True
    return mask


def voc_palette() -> list[int]:
    """PASCAL VOC's label palette: index 0 black, 1 dark red, ..., 255 the cream boundary color."""
    palette = [0] * 768
    for label in range(256):
        r = g = b = 0
        c = label
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[3 * label: 3 * label + 3] = [r, g, b]
    return palette


def labelled(mask: np.ndarray, label: int) -> Image.Image:
    """A PASCAL-style palette mask: ``label`` inside, a boundary of 255 around it, 0 elsewhere."""
    index = np.where(mask, label, 0).astype(np.uint8)
    index[4, 10:30] = index[20, 10:30] = 255
    image = Image.fromarray(index, "P")
    image.putpalette(voc_palette())
    return image


def brush_strokes(mask: np.ndarray, color: tuple[int, int, int]) -> Image.Image:
    """Strokes of ``color`` on a fully transparent layer, as a drawing app exports them."""
    rgba = np.zeros(mask.shape + (4,), np.uint8)
    rgba[mask] = (*color, 255)
    return Image.fromarray(rgba, "RGBA")


MASK_FILES = {
    "binary01.png": lambda m: Image.fromarray(m.astype(np.uint8)),
    "binary255.png": lambda m: Image.fromarray(m.astype(np.uint8) * 255),
    "onebit.png": lambda m: Image.fromarray(m),
    "white_on_black.jpg": lambda m: Image.fromarray(np.stack([m.astype(np.uint8) * 255] * 3, axis=2)),
    "red_on_black.png": lambda m: Image.fromarray(np.stack([m.astype(np.uint8) * 200, 0 * m, 0 * m], axis=2).astype(np.uint8)),
    "gray_palette.png": lambda m: Image.fromarray(m.astype(np.uint8) * 255).convert("P"),
    "black_white.gif": lambda m: Image.fromarray(np.stack([m.astype(np.uint8) * 255] * 3, axis=2)),
    "voc_label.png": lambda m: labelled(m, 8),
    "voc_label_15.png": lambda m: labelled(m, 15),
    "strokes_black.png": lambda m: brush_strokes(m, (0, 0, 0)),
    "strokes_white.png": lambda m: brush_strokes(m, (255, 255, 255)),
    "alpha_gray.png": lambda m: Image.fromarray(np.stack([m.astype(np.uint8) * 0 + 90, m.astype(np.uint8) * 255], 2), "LA"),
    "depth16.png": lambda m: Image.fromarray(m.astype(np.uint16) * 65535),
    "float.tif": lambda m: Image.fromarray(m.astype(np.float32)),
    "cmyk.tif": lambda m: Image.fromarray(np.stack([m.astype(np.uint8) * 255] * 3, axis=2)).convert("CMYK"),
}


@pytest.mark.parametrize("name", sorted(MASK_FILES))
def test_mask_kinds_mark_the_object(tmp_path: Path, name: str) -> None:
    MASK_FILES[name](blob()).save(tmp_path / name)
    mask = load_mask(tmp_path / name, (40, 30))
    assert mask.dtype == bool and mask.shape == (30, 40)
    assert np.array_equal(mask, blob()), f"{name}: {mask.sum()} pixels marked, {blob().sum()} expected"


def test_palette_mask_with_transparency_uses_it() -> None:
    index = np.where(blob(), 1, 0).astype(np.uint8)
    image = Image.fromarray(index, "P")
    image.putpalette([255, 255, 255, 255, 0, 0])
    image.info["transparency"] = 0
    assert np.array_equal(load_mask(image, (40, 30)), blob())


@pytest.mark.parametrize("mask", [blob(), blob().astype(np.uint8), blob().astype(np.float64) * 0.9, blob().astype(np.uint16) * 300])
def test_mask_arrays_of_any_dtype(mask: np.ndarray) -> None:
    assert np.array_equal(load_mask(mask, (40, 30)), blob())


def test_a_full_mask_is_used_as_it_is() -> None:
    assert load_mask(np.full((30, 40), 255, np.uint8), (40, 30)).all()


@pytest.mark.parametrize("empty", [
    np.zeros((30, 40), np.uint8),
    Image.new("RGBA", (40, 30), (255, 255, 255, 0)),
    Image.new("P", (40, 30), 0),
    np.full((30, 40), np.nan),
])
def test_an_empty_mask_is_refused(empty) -> None:
    refused(load_mask, empty, (40, 30), match="marks no pixels; paint or upload a mask")


def test_a_mask_of_another_size_but_the_same_shape_is_resized() -> None:
    big = blob().repeat(3, axis=0).repeat(3, axis=1)  # 120x90 for a 40x30 image
    assert np.array_equal(load_mask(big, (40, 30)), blob())


def test_a_mask_of_another_shape_is_refused() -> None:
    message = refused(load_mask, blob(), (30, 40))
    assert "40x30 but its image is 30x40" in message and "give the mask drawn on that image" in message


def test_a_mask_follows_its_exif_orientation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.fromarray(blob().astype(np.uint8) * 255).save(tmp_path / "mask.png", exif=exif)
    assert np.array_equal(load_mask(tmp_path / "mask.png", (30, 40)), np.rot90(blob(), -1))


@pytest.mark.parametrize("name", ["cut.png", "notes.txt"])
def test_damaged_mask_files_are_refused(tmp_path: Path, name: str) -> None:
    Image.fromarray(blob().astype(np.uint8) * 255).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2] if name == "cut.png" else b"mask")
    refused(load_mask, tmp_path / name, (40, 30), match="support mask|mask")
