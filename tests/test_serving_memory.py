"""The server returns freed heap to the system (hsnet.serving.memory): resident memory follows memory in use.

Measured in this process through /proc (glibc only; skipped elsewhere). The served app under load is
tested in tests/test_app_load.py.
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from hsnet.serving import memory
from hsnet.serving.guards import launch_kwargs

pytestmark = pytest.mark.skipif(memory.glibc() is None or not Path("/proc/self/status").exists(),
                                reason="glibc's malloc_trim and /proc are Linux/glibc features")


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trimming_returns_freed_heap_that_free_alone_keeps() -> None:
    blocks = [bytearray(64 * 1024) for _ in range(3200)]  # 200 MiB in chunks glibc serves from its heap
    pinned = bytearray(64 * 1024)  # on top of the heap: free() alone cannot shrink it
    before = resident_mib()
    del blocks
    kept = resident_mib()
    memory.trim_heap()
    after = resident_mib()
    assert kept - after > 100, (before, kept, after)
    del pinned


def test_requests_that_end_make_one_trim_soon_after(monkeypatch: pytest.MonkeyPatch) -> None:
    trims, trimmed = [], threading.Event()
    monkeypatch.setattr(memory, "trim_heap", lambda: trims.append(1) or trimmed.set())

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def sent(message: dict) -> None:
        return None

    middleware = memory.TrimAfterRequests(app, memory.HeapTrimmer(interval_s=0.5))
    for _ in range(5):  # a burst of requests
        asyncio.run(middleware({"type": "http", "path": "/", "headers": []}, None, sent))
    assert trimmed.wait(30)
    assert len(trims) <= 2  # the burst folded into one trim (two if the first ran before the burst ended)


def test_the_app_keeps_a_bounded_number_of_sessions() -> None:
    assert launch_kwargs()["state_session_capacity"] == memory.MAX_SESSIONS <= 1000
