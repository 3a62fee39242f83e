"""Keep the app's resident memory (what a host kills a Space by) near the memory it actually uses.

glibc keeps memory that the program has freed for reuse, in one heap ("arena") per thread
that allocated concurrently, up to 8 per CPU core; Gradio answers requests on dozens of
threads, and each decoded photo, tensor and picture of a request is freed into whichever
arena served it. Resident memory then grows by hundreds of MiB with nothing in use
(docs/robustness.md, "App memory under load"). So the server:

- limits glibc to MALLOC_ARENAS arenas (``mallopt(M_ARENA_MAX)``) before Gradio starts its threads;
- returns freed heap to the system (``malloc_trim``) once requests have finished, at most every
  TRIM_INTERVAL_S, from a thread of its own: ``TrimAfterRequests``, an ASGI middleware;
- keeps the state of MAX_SESSIONS sessions (``demo.launch(state_session_capacity=...)``): Gradio
  keeps, per session, a copy of the page's configuration (128 KiB for app.py's) with the last
  value of every input and output (the probe view's pictures inline: up to about 4 MB with 5
  supports) for as long as the session is among the last 10,000 by default, whatever its age.

Elsewhere than glibc (macOS, musl) the first two are skipped: those allocators return memory themselves.
"""
from __future__ import annotations

import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from ..runtime.allocator import glibc

MALLOC_ARENAS = 2
MAX_SESSIONS = 128  # an older session's page keeps working; its result must be segmented again to be probed
TRIM_INTERVAL_S = 1.0
M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Limit glibc to ``arenas`` heaps for the threads that start from now on; False where that does not apply."""
    libc = glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))


def trim_heap() -> bool:
    """Return the heap memory freed so far to the system (glibc); True when some was returned."""
    libc = glibc()
    return bool(libc is not None and libc.malloc_trim(0))


class HeapTrimmer:
    """A daemon thread that trims the heap after activity: ``poke()`` after a request, trimmed within the interval."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S):
        self.interval_s = interval_s
        self._poked = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """A request has finished: trim soon (several pokes within the interval make one trim)."""
        self._poked.set()
        with self._lock:
            if self._thread is None and glibc() is not None:
                self._thread = threading.Thread(target=self._run, name="hsnet-heap-trim", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._poked.wait()
            time.sleep(self.interval_s)  # the requests of a burst finish meanwhile: one trim for all of them
            self._poked.clear()
            trim_heap()


TRIMMER = HeapTrimmer()  # one per process


class TrimAfterRequests:
    """ASGI middleware: pokes ``trimmer`` when each HTTP request has ended (answered, failed or abandoned)."""

    def __init__(self, app: ASGIApp, trimmer: HeapTrimmer = TRIMMER):
        self.app = app
        self.trimmer = trimmer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.trimmer.poke()
