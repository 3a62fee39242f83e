"""Upload checks from headers and lengths only: layer counts, declared sizes, data: URLs, truncated headers."""
from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from crafted_files import icon_hiding, png_claiming
from hsnet.errors import InputError
from hsnet.inputs import MAX_PIXELS
from hsnet.serving.uploads import (
    EDITOR_PIXEL_BUDGET,
    MAX_BRUSH_LAYERS,
    MAX_UPLOAD_BYTES,
    check_editor_blob,
    check_editor_payload,
    check_image_payload,
    declared_size,
)


def png_bytes(width: int, height: int, mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def files(tmp_path: Path):
    """write(name, bytes) -> a FileData-like dict pointing at the written file."""
    def write(name: str, data: bytes) -> dict:
        (tmp_path / name).write_bytes(data)
        return {"path": str(tmp_path / name), "url": None, "orig_name": name}
    return write


def test_ordinary_uploads_pass(files) -> None:
    photo = files("photo.png", png_bytes(640, 480, "RGB"))
    check_image_payload(photo, "query image")
    check_image_payload(None, "query image")
    check_image_payload({"path": photo["path"], "url": data_url(png_bytes(64, 48))}, "query image")
    layer = files("layer.png", png_bytes(640, 480))
    check_editor_payload(photo, [layer], files("composite.png", png_bytes(640, 480)), "support 1")
    check_editor_payload(png_bytes(640, 480), [png_bytes(640, 480)], png_bytes(640, 480), "support 1")  # blobs
    check_editor_blob("layer", "0", png_bytes(640, 480), "support 1")


@pytest.mark.parametrize("count", [MAX_BRUSH_LAYERS + 1, 40])
def test_many_identical_large_layers_are_refused_by_their_count(files, count: int) -> None:
    layer = files("big-layer.png", png_claiming(30000, 30000))  # never opened: the count refuses first
    with pytest.raises(InputError, match=f"support 2 has {count} brush layers; at most {MAX_BRUSH_LAYERS}"):
        check_editor_payload(files("photo.png", png_bytes(64, 64)), [layer] * count, None, "support 2")


def test_layers_within_the_count_are_refused_by_their_declared_pixels(files) -> None:
    side = int((MAX_PIXELS * 0.9) ** 0.5)  # each image just under the per-image limit
    big = files("big.png", png_claiming(side, side))
    assert 5 * side * side > EDITOR_PIXEL_BUDGET
    with pytest.raises(InputError, match="support 1 image and brush layers declare .* megapixel limit"):
        check_editor_payload(big, [big] * MAX_BRUSH_LAYERS, big, "support 1")
    with pytest.raises(InputError, match="support 1 brush layer 1 is .* larger than its 64x64 image"):
        check_editor_payload(files("small.png", png_bytes(64, 64)), [big], None, "support 1")


@pytest.mark.parametrize("where", ["background", "layer", "composite", "query"])
def test_a_header_claiming_30000_squared_is_refused_naming_the_field(files, where: str) -> None:
    bomb = files("bomb.png", png_claiming(30000, 30000))
    ok = files("ok.png", png_bytes(32, 32))
    expected = {"background": "support 3 image", "layer": "support 3 brush layer 1", "composite": "support 3 composite",
                "query": "query image"}[where]
    with pytest.raises(InputError, match=f"^{expected} declares .*megapixel limit") as raised:
        if where == "query":
            check_image_payload(bomb, "query image")
        else:
            parts = {"background": ok, "layers": [ok], "composite": None}
            parts["layers" if where == "layer" else where] = [bomb] if where == "layer" else bomb
            if where == "layer":
                parts["background"] = None
            check_editor_payload(parts["background"], parts["layers"], parts["composite"], "support 3")
    assert "\n" not in str(raised.value)


def test_a_25_mb_data_url_is_refused_from_its_length() -> None:
    url = "data:image/png;base64," + "A" * (25 * 2**20 * 4 // 3)
    with pytest.raises(InputError, match="query image is a data: URL of about 25 MB, over the 20 MB upload limit"):
        check_image_payload({"path": "/not/read", "url": url}, "query image")


@pytest.mark.parametrize("url,expected", [
    (data_url(png_claiming(30000, 30000)), "declares"),
    ("data:image/png;base64,!!!not base64!!!", "invalid base64"),
    ("data:image/png,rawbytes", "not base64"),
    ("data:image/png;base64", "malformed"),
    (data_url(b"just some text"), "not an image that can be read safely"),
], ids=["bomb header", "bad base64", "not base64", "no comma", "not an image"])
def test_bad_data_urls_are_refused(url: str, expected: str) -> None:
    with pytest.raises(InputError, match=f"^support 1 mask .*{expected}"):
        check_image_payload({"path": "/not/read", "url": url}, "support 1 mask")


@pytest.mark.parametrize("data", [
    png_claiming(640, 480)[:20],  # cut inside the IHDR chunk
    b"\x89PNG\r\n\x1a\n",  # the signature alone
    b"\xff\xd8\xff\xe0\x00\x10JFIF",  # a JPEG cut before its frame header
    b"",
], ids=["png ihdr", "png signature", "jpeg", "empty"])
def test_a_truncated_header_is_refused(files, data: bytes) -> None:
    with pytest.raises(InputError, match="^query image is (truncated or corrupt|not an image that can be read)"):
        check_image_payload(files("cut.png", data), "query image")


def test_an_icon_that_hides_a_large_image_is_refused_without_opening_it(files) -> None:
    with pytest.raises(InputError, match="query image is not an image that can be read safely"):
        check_image_payload(files("icon.ico", icon_hiding(png_claiming(30000, 30000))), "query image")


def test_a_file_over_the_upload_limit_or_gone_is_refused(files, tmp_path: Path) -> None:
    big = files("big.png", png_bytes(8, 8) + bytes(MAX_UPLOAD_BYTES))
    with pytest.raises(InputError, match="over the 20 MB upload limit"):
        check_image_payload(big, "query image")
    with pytest.raises(InputError, match="^query image is no longer on the server; upload it again$"):
        check_image_payload({"path": str(tmp_path / "gone.png")}, "query image")


@pytest.mark.parametrize("kind,index,data,expected", [
    ("layer", str(10**9), b"", f"support 2 brush layer 1000000001 is over the limit of {MAX_BRUSH_LAYERS}"),
    ("layer", "-1", b"", "support 2 brush layer 0 is over the limit"),
    ("layer", "null", b"", "support 2 sent a brush layer without a valid number"),
    ("mask", None, b"", "support 2 sent an unknown part 'mask'"),
    ("background", None, png_claiming(30000, 30000), "support 2 image declares"),
    ("composite", None, bytes(MAX_UPLOAD_BYTES + 1), "support 2 composite is over the 20 MB upload limit"),
], ids=["huge index", "negative index", "no index", "unknown part", "bomb", "too large"])
def test_editor_blobs_posted_ahead_are_refused(kind: str, index: str | None, data: bytes, expected: str) -> None:
    with pytest.raises(InputError, match=f"^{expected}"):
        check_editor_blob(kind, index, data, "support 2")


def test_declared_size_reads_headers_only() -> None:
    assert declared_size(png_claiming(4000, 3000), "x") == (4000, 3000)  # its pixel data is 64 bytes
