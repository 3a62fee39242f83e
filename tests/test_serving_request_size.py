"""The app's request size limits against what its page promises: "Label many" takes 50 phone photos in one upload.

The browser sends all the files of one upload in one request (issue 23: 8 phone photos, 36 MB,
got HTTP 413 from a limit meant for one image). ``RequestSizeLimit`` is driven here as an ASGI
middleware in front of an app that reads the whole body, with a body of 50 phone-size JPEGs
(sent chunk by chunk, never held whole); the served upload route is tested in test_serving_guards.py.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from fastapi import HTTPException
from PIL import Image

from hsnet.serving.guards import MAX_REQUEST_BYTES, MAX_UPLOAD_REQUEST_BYTES, RequestSizeLimit, launch_kwargs
from hsnet.serving.label_many import MAX_LABEL_BYTES, MAX_LABEL_QUERIES, gather_queries
from hsnet.serving.uploads import MAX_UPLOAD_BYTES, check_image_payload

UPLOAD_PATH = "/gradio_api/upload"
CHUNK = bytes(2**20)


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-megapixel JPEG of about 4.8 MB, the size of the phone photos in issue 23 (36 MB for 8)."""
    height, width = 3024, 4032
    rng = np.random.default_rng(0)
    ramp = np.linspace(20, 200, width).astype(np.int16)[None, :, None] + np.linspace(0, 35, height).astype(np.int16)[:, None, None]
    pixels = (ramp + rng.integers(-20, 21, (height, width, 3), dtype=np.int16)).astype(np.uint8)
    path = tmp_path_factory.mktemp("phone") / "IMG_0001.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    assert 3.5e6 < path.stat().st_size < 6e6
    return path


def send_body(path: str, size: int, declare: bool = True) -> tuple[int, bytes, int]:
    """(status, response body, bytes the app read) for a request of ``size`` bytes through RequestSizeLimit."""
    read, sent = [0], {}

    async def app(scope, receive, send) -> None:
        while True:
            message = await receive()
            read[0] += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chunks = [len(CHUNK)] * (size // len(CHUNK)) + ([size % len(CHUNK)] if size % len(CHUNK) else [])

    async def receive() -> dict:
        length = chunks.pop(0) if chunks else 0
        return {"type": "http.request", "body": CHUNK[:length], "more_body": bool(chunks)}

    async def send(message: dict) -> None:
        sent.setdefault(message["type"], message)

    headers = [(b"content-length", str(size).encode())] if declare else []
    scope = {"type": "http", "path": path, "headers": headers}
    asyncio.run(RequestSizeLimit(app)(scope, receive, send))
    return sent["http.response.start"]["status"], sent["http.response.body"]["body"], read[0]


def test_fifty_phone_photos_fit_every_limit_of_label_many(phone_photo: Path, tmp_path: Path) -> None:
    check_image_payload({"path": str(phone_photo)}, "photo")  # one photo: within the per-file and pixel limits
    photos = [phone_photo] * MAX_LABEL_QUERIES
    gathered, skipped = gather_queries(photos, tmp_path)  # the request's count and total bytes
    assert len(gathered) == MAX_LABEL_QUERIES and skipped == {}
    body = MAX_LABEL_QUERIES * (phone_photo.stat().st_size + 300)  # each file with its multipart headers
    assert body > MAX_REQUEST_BYTES  # more than one image's request may be: the upload route has its own limit
    status, _, read = send_body(UPLOAD_PATH, body)
    assert (status, read) == (200, body)
    assert launch_kwargs()["max_file_size"] >= MAX_LABEL_QUERIES * phone_photo.stat().st_size  # or as one zip


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "streamed"])
def test_an_upload_over_what_label_many_takes_is_refused_in_one_line(declare: bool) -> None:
    size = MAX_UPLOAD_REQUEST_BYTES + 1
    if declare:
        status, body, read = send_body(UPLOAD_PATH, size)
        message = body.decode()
        assert status == 413 and read == 0  # refused from its header, before a byte is read
    else:
        with pytest.raises(HTTPException) as refused:  # FastAPI answers 413 with this detail
            send_body(UPLOAD_PATH, size, declare=False)
        assert refused.value.status_code == 413
        message = refused.value.detail
    assert "\n" not in message and f"{MAX_LABEL_BYTES // 2**20} MB in all" in message
    assert f"up to {MAX_LABEL_QUERIES} photos of up to {MAX_UPLOAD_BYTES // 2**20} MB each, or a zip" in message


def test_other_requests_keep_the_limit_of_one_image() -> None:
    status, body, _ = send_body("/gradio_api/queue/join", MAX_REQUEST_BYTES + 1)
    assert status == 413 and b"maximum allowed size" in body
    assert send_body("/gradio_api/queue/join", MAX_REQUEST_BYTES)[0] == 200
