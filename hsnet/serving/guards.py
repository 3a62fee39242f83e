"""The upload checks wired into Gradio at the points where a payload arrives, before Gradio decodes it.

Where things arrive (gradio 6): an uploaded file lands on disk through ``/upload``
(Gradio caps each file at ``max_file_size``); the request's JSON body (which may
carry ``data:`` URLs) is read whole by FastAPI; the browser's image editor posts its
background, each brush layer and the composite as separate blobs to
``/component_server`` (``ImageEditor.accept_blobs``, kept in memory until the next
request); then ``Component.preprocess`` receives the payload (FileData paths,
``data:`` URLs or the stored blobs) and decodes it. So:

- ``RequestSizeLimit``: ASGI middleware refusing a request body over its limit (HTTP 413)
  before it is read: MAX_UPLOAD_REQUEST_BYTES for Gradio's file upload route (the photos of one
  "Label many", or a zip of them, streamed to disk), MAX_REQUEST_BYTES for any other (JSON that
  may carry a ``data:`` URL); pass ``launch_kwargs()`` to launch. Images are held to
  MAX_UPLOAD_BYTES a file by the component guards below.
- ``guard_image`` / ``guard_editor``: wrap a component's ``preprocess`` (and the
  editor's ``accept_blobs``) so that the checks of ``uploads`` run first and a refusal
  is a one-line message on the page. The editor's pending blobs are bounded too.
"""
from __future__ import annotations

import functools
import math
import threading
from collections import OrderedDict
from typing import Any, TypeVar

import gradio as gr
from fastapi import HTTPException
from PIL import Image
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import InputError
from .label_many import MAX_LABEL_BYTES, MAX_LABEL_QUERIES
from .memory import MAX_SESSIONS, TrimAfterRequests, limit_arenas
from .uploads import MAX_UPLOAD_BYTES, check_editor_blob, check_editor_payload, check_image_payload

# The largest JSON body: one MAX_UPLOAD_BYTES image as base64, plus room for the rest of the request.
MAX_REQUEST_BYTES = math.ceil(MAX_UPLOAD_BYTES * 4 / 3) + 1024 * 1024
# The largest upload: every photo of one Label many (the browser sends them in one request), plus multipart headers.
MAX_UPLOAD_REQUEST_BYTES = MAX_LABEL_BYTES + 1024 * 1024
UPLOAD_ROUTE = "/upload"  # the end of Gradio's upload path (/gradio_api/upload)
MAX_PENDING_EDITS = 32  # editor values posted by browsers and not yet used by a request, over all visitors
MAX_PENDING_EDIT_BYTES = 256 * 2**20  # the bytes those values may hold together
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
C = TypeVar("C", bound=gr.components.Component)


def _refusal(exc: InputError) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def _unreadable(what: str) -> gr.Error:
    return gr.Error(f"{what}: the file is not an image that can be read; upload a PNG or JPEG", print_exception=False)


def guard_image(component: C, what: str) -> C:
    """``component`` (a gr.Image) whose payload is checked before Gradio decodes it; ``what`` names it in messages."""
    original = component.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            check_image_payload(payload, what)
            return original(payload)
        except InputError as exc:
            raise _refusal(exc) from exc
        except UNREADABLE as exc:
            raise _unreadable(what) from exc

    component.preprocess = preprocess  # type: ignore[method-assign]  (an instance attribute: see guard_editor)
    return component


def guard_editor(component: C, what: str) -> C:
    """``component`` (a gr.ImageEditor) whose posted blobs and payload are checked before Gradio decodes them.

    The instance's methods are wrapped rather than subclassed: Gradio writes a .pyi stub
    beside the module of every Component subclass. A blob refused when posted is dropped
    and remembered by its value id, so that the request that uses it shows the reason.
    """
    original_preprocess = component.preprocess
    original_accept = component.accept_blobs
    storage: dict = component.blob_storage
    refused: OrderedDict[str, str] = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(original_accept)
    def accept_blobs(data: Any) -> Any:
        fields = getattr(data, "data", None) or {}
        value_id = str(fields.get("id"))
        try:
            files = getattr(data, "files", None) or []
            if len(files) != 1:
                raise InputError(f"{what} sent {len(files)} files in one part; reload the page")
            check_editor_blob(fields.get("type"), fields.get("index"), files[0][1], what)
        except InputError as exc:  # not raised here: the browser would show nothing; the request says why
            with lock:
                storage.pop(value_id, None)
                refused[value_id] = str(exc)
                while len(refused) > MAX_PENDING_EDITS:
                    refused.popitem(last=False)
            return None
        with lock:
            result = original_accept(data)
            while len(storage) > MAX_PENDING_EDITS or (len(storage) > 1 and _pending_bytes(storage) > MAX_PENDING_EDIT_BYTES):
                storage.pop(next(iter(storage)))
        return result

    def preprocess(payload: Any) -> Any:
        if payload is None:
            return original_preprocess(payload)
        value_id = getattr(payload, "id", None)
        try:
            if value_id is not None:
                with lock:
                    reason = refused.pop(value_id, None)
                    stored = storage.get(value_id)
                if reason is not None:
                    raise InputError(reason)
                if stored is not None:
                    check_editor_payload(stored.background, stored.layers, stored.composite, what)
            else:
                check_editor_payload(payload.background, payload.layers, payload.composite, what)
            return original_preprocess(payload)
        except InputError as exc:
            if value_id is not None:
                with lock:
                    storage.pop(value_id, None)
            raise _refusal(exc) from exc
        except UNREADABLE as exc:
            raise _unreadable(what) from exc

    component.preprocess = preprocess  # type: ignore[method-assign]
    component.accept_blobs = accept_blobs  # type: ignore[method-assign]
    return component


def _pending_bytes(storage: dict) -> int:
    """Bytes of the editor values an ImageEditor holds for requests to come."""
    return sum(len(part) for value in storage.values()
               for part in (value.background, value.composite, *value.layers) if part is not None)


class RequestSizeLimit:
    """ASGI middleware: HTTP 413 for a request whose body is over its limit, by its header or as it streams in.

    ``max_upload_bytes`` applies to Gradio's upload route, ``max_bytes`` to every other request.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BYTES,
                 max_upload_bytes: int = MAX_UPLOAD_REQUEST_BYTES):
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        """The body limit of this request, and the one-line message that refuses it."""
        if str(scope.get("path", "")).rstrip("/").endswith(UPLOAD_ROUTE):
            return self.max_upload_bytes, (
                f"the upload is over the maximum allowed size of {MAX_LABEL_BYTES // 2**20} MB in all "
                f"(up to {MAX_LABEL_QUERIES} photos of up to {MAX_UPLOAD_BYTES // 2**20} MB each, or a zip of them); "
                "send fewer or smaller files at a time")
        return self.max_bytes, (f"the request is over the maximum allowed size of {self.max_bytes // 2**20} MB "
                                f"(images up to {MAX_UPLOAD_BYTES // 2**20} MB, also as data: URLs)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, refusal = self._limit(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            body = refusal.encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise HTTPException(status_code=413, detail=refusal)
            return message

        await self.app(scope, counted, send)


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: Gradio's per-file upload cap (a zip of one Label many; an image over
    MAX_UPLOAD_BYTES is refused by its component's guard in one line), the request size limits, a heap trim
    after requests and the sessions kept; called before the launch, it also limits glibc's heaps for the threads
    Gradio will start (``hsnet.serving.memory``)."""
    limit_arenas()
    return {"max_file_size": MAX_LABEL_BYTES, "state_session_capacity": MAX_SESSIONS,
            "app_kwargs": {"middleware": [Middleware(RequestSizeLimit), Middleware(TrimAfterRequests)]}}
