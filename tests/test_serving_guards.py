"""The upload guards as wired into a served Gradio page: each hostile payload refused before decoding, over HTTP.

A small page built the way app.py is told to (hsnet.serving.__init__): a guarded query
image, a guarded image editor, the request size limit, the per-process folder and the
mask files. It is served on 127.0.0.1 and driven with raw HTTP, as a hostile visitor
would, through Gradio's documented ``/gradio_api/call`` API and the editor's blob route.
"""
from __future__ import annotations

import base64
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from crafted_files import png_claiming
from hsnet.serving.guards import MAX_PENDING_EDIT_BYTES, MAX_PENDING_EDITS, MAX_UPLOAD_REQUEST_BYTES
from hsnet.serving.label_many import MAX_LABEL_QUERIES
from loadkit import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parent.parent
API = "gradio_api"

PAGE = """
import signal, sys
from hsnet.serving import MaskFiles, files
files.private_temp_dir()
import gradio as gr
import numpy as np
from hsnet.inputs import load_rgb
from hsnet.serving import guards

MASKS = MaskFiles()

def run(query, editor):
    image = load_rgb(query, "query image")
    background = editor["background"] if editor else None
    layers = len(editor["layers"]) if editor else 0
    described = "no background" if background is None else f"background {background.size[0]}x{background.size[1]}"
    return f"query {image.size[0]}x{image.size[1]}, {described}, {layers} layers", str(
        MASKS.save(np.ones((image.size[1], image.size[0]), bool), "query"))

with gr.Blocks(delete_cache=files.DELETE_CACHE) as demo:
    query = guards.guard_image(gr.Image(type="filepath", image_mode=None), "query image")
    editor = guards.guard_editor(gr.ImageEditor(type="pil", layers=False), "support 1")
    text, mask = gr.Textbox(), gr.File()
    gr.Button().click(run, [query, editor], [text, mask], api_name="run")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), **guards.launch_kwargs())
"""


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


class Page:
    """The served page, driven over raw HTTP."""

    def __init__(self, url: str, process: subprocess.Popen, tmp: Path):
        self.url, self.process, self.tmp = url, process, tmp
        self.http = httpx.Client(base_url=f"{url}{API}/", timeout=60)
        config = httpx.get(f"{url}config", timeout=30).json()
        self.editor_id = next(c["id"] for c in config["components"] if c["type"] == "imageeditor")

    def upload(self, name: str, data: bytes) -> dict:
        response = self.http.post("upload", files=[("files", (name, data, "image/png"))])
        response.raise_for_status()
        return {"path": response.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    def call(self, query: dict | None, editor: dict | None) -> tuple[bool, object]:
        """(True, outputs) or (False, the error message) for one /run call."""
        response = self.http.post("call/run", json={"data": [query, editor]})
        if response.status_code != 200:
            return False, f"HTTP {response.status_code}: {response.text}"
        event = response.json()["event_id"]
        with self.http.stream("GET", f"call/run/{event}") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind in ("complete", "error"):
                    payload = json.loads(line[6:])
                    return kind == "complete", payload
        return False, "no answer"

    def post_blob(self, value_id: str, kind: str, index: str | None, data: bytes) -> int:
        body = {"session_hash": "guard-test", "component_id": str(self.editor_id), "fn_name": "accept_blobs",
                "id": value_id, "type": kind, "index": "null" if index is None else index}  # as the browser posts it
        response = self.http.post("component_server", data=body, files=[("files", ("blob.png", data, "image/png"))])
        return response.status_code


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    folder = tmp_path_factory.mktemp("guarded-page")
    tmp = folder / "tmp"
    tmp.mkdir()
    script = folder / "page.py"
    script.write_text(PAGE)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)
    log = (folder / "page.log").open("w")
    process = subprocess.Popen([sys.executable, str(script), str(port)], cwd=folder, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((folder / "page.log").read_text()[-3000:])
        time.sleep(0.5)
    served = Page(url, process, tmp)
    yield served
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def editor_value(background: dict | None, layers: list[dict], composite: dict | None = None) -> dict:
    return {"background": background, "layers": layers, "composite": composite, "id": None}


def test_an_ordinary_request_is_answered(page: Page) -> None:
    query = page.upload("query.png", png(64, 48))
    ok, outputs = page.call(query, editor_value(page.upload("s.png", png(32, 32)), [page.upload("l.png", png(32, 32, "RGBA"))]))
    assert ok, outputs
    assert outputs[0] == "query 64x48, background 32x32, 1 layers"


def test_many_identical_layers_are_refused_before_decoding(page: Page) -> None:
    layer = page.upload("layer.png", png_claiming(6000, 6000))
    ok, message = page.call(page.upload("q.png", png(8, 8)),
                            editor_value(page.upload("bg.png", png_claiming(6000, 6000)), [layer] * 40))
    assert not ok and "support 1 has 40 brush layers; at most 3" in str(message)


def test_a_layer_header_claiming_30000_squared_is_refused(page: Page) -> None:
    ok, message = page.call(page.upload("q.png", png(8, 8)),
                            editor_value(None, [page.upload("bomb.png", png_claiming(30000, 30000))]))
    assert not ok and "support 1 brush layer 1 declares" in str(message)


def test_a_data_url_with_a_bomb_header_is_refused(page: Page) -> None:
    # Without Gradio's file marker the value skips the upload-folder check and reaches Image.preprocess as it is.
    query = {"path": "anything", "url": "data:image/png;base64," + base64.b64encode(png_claiming(30000, 30000)).decode()}
    ok, message = page.call(query, None)
    assert not ok and "query image declares" in str(message)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_25_mb_data_url_body_is_refused_with_413(page: Page, chunked: bool) -> None:
    body = json.dumps({"data": [{"path": "x", "url": "data:image/png;base64," + "A" * (25 * 2**20 * 4 // 3),
                                 "meta": {"_type": "gradio.FileData"}}, None]}).encode()
    content = (body[i: i + 2**20] for i in range(0, len(body), 2**20)) if chunked else body
    response = page.http.post("call/run", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "maximum allowed size" in response.text
    test_an_ordinary_request_is_answered(page)


def test_fifty_phone_photos_upload_in_one_request_and_more_is_refused_in_one_line(page: Page, tmp_path: Path) -> None:
    height, width = 3024, 4032  # a 12-megapixel JPEG of about 4.3 MB, as a phone writes (issue 23: 36 MB for 8)
    ramp = np.linspace(20, 200, width).astype(np.int16)[None, :, None]
    noise = np.random.default_rng(0).integers(-20, 21, (height, width, 3), dtype=np.int16)
    Image.fromarray((ramp + noise).astype(np.uint8)).save(tmp_path / "IMG.jpg", quality=90)
    handles = [(tmp_path / "IMG.jpg").open("rb") for _ in range(MAX_LABEL_QUERIES)]
    try:  # streamed from the open files, as a browser sends the Label many selection
        response = page.http.post("upload", files=[("files", (f"IMG_{i}.jpg", handle, "image/jpeg"))
                                                   for i, handle in enumerate(handles)])
    finally:
        for handle in handles:
            handle.close()
    assert response.status_code == 200 and len(response.json()) == MAX_LABEL_QUERIES
    with socket.create_connection(("127.0.0.1", int(page.url.rsplit(":", 1)[1].strip("/")))) as raw:
        raw.sendall(f"POST /{API}/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                    f"boundary=x\r\nContent-Length: {MAX_UPLOAD_REQUEST_BYTES + 1}\r\n\r\n".encode())
        answer = http.client.HTTPResponse(raw)  # read as it comes: the body may follow the headers later
        answer.begin()
        status, body = answer.status, answer.read().decode()
    assert status == 413 and "maximum allowed size" in body and "\n" not in body
    test_an_ordinary_request_is_answered(page)


def test_an_editor_blob_with_a_huge_layer_index_is_refused_and_the_request_says_why(page: Page) -> None:
    assert page.post_blob("hostile", "layer", str(10**9), png(8, 8, "RGBA")) == 200  # dropped, not stored
    ok, message = page.call(page.upload("q.png", png(8, 8)), {"id": "hostile"})
    assert not ok and "support 1 brush layer 1000000001 is over the limit of 3 brush layers" in str(message)


def test_pending_editor_blobs_are_bounded(page: Page) -> None:
    for number in range(MAX_PENDING_EDITS + 8):
        assert page.post_blob(f"visit-{number}", "background", None, png(16, 16)) == 200
    query = page.upload("q.png", png(8, 8))
    ok, outputs = page.call(query, {"id": "visit-0"})  # evicted: the editor arrives empty
    assert ok and "no background" in outputs[0]
    ok, outputs = page.call(query, {"id": f"visit-{MAX_PENDING_EDITS + 7}"})
    assert ok and "background 16x16" in outputs[0]


def test_pending_editor_bytes_are_bounded(page: Page) -> None:
    large = png(2, 2) + bytes(19 * 2**20)  # a valid header, then bytes Pillow never reads while checking
    count = MAX_PENDING_EDIT_BYTES // len(large) + 2
    for number in range(count):
        assert page.post_blob(f"large-{number}", "background", None, large) == 200
    query = page.upload("q.png", png(8, 8))
    ok, outputs = page.call(query, {"id": "large-0"})  # dropped to hold the byte budget: the editor arrives empty
    assert ok and "no background" in outputs[0]


def test_nothing_a_visitor_sent_remains_after_shutdown(page: Page) -> None:
    test_an_ordinary_request_is_answered(page)
    assert any(page.tmp.rglob("*.png"))  # uploads, results and masks live in the process folder meanwhile
    page.process.send_signal(signal.SIGTERM)
    page.process.wait(30)
    assert list(page.tmp.rglob("*")) == []
