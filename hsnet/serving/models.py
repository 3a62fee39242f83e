"""Weights loaded by name in the background, so that the page answers while a checkpoint downloads.

Each name loads in its own thread; a request never waits for a load (``predictor``
raises at once while the weights are loading or have failed), so one slow or broken
name cannot hold up visitors of another. A failure is remembered for
``retry_after_s`` before the next request tries again. Visitors see weight names
only; the reason with paths and settings goes to the server log.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import hub
from ..errors import CheckpointError, HSNetError, HubError, WeightsNotFoundError, one_line
from ..predictor import Predictor

log = logging.getLogger("hsnet.serving")

LoadStatus = Literal["idle", "loading", "ready", "failed"]
Progress = Callable[[float | None, str], None]  # (fraction done or None when unknown, what is happening)
Loader = Callable[[str, Progress], Predictor]
RETRY_AFTER_S = 300.0
DOWNLOAD_SHARE = 0.85  # of the progress bar: the rest is converting and preparing the model
HUB_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


@dataclass(frozen=True)
class LoadState:
    """Where the weights ``name`` stand, worded for visitors (no server paths, no setting names)."""

    name: str  # as the visitor sees it
    status: LoadStatus
    message: str
    progress: float | None = None  # 0..1 while loading when known
    started_at: float | None = None  # time.time() when the load began


class WeightsNotReadyError(HSNetError):
    """The weights asked for are still loading or could not be loaded; ``state`` says which."""

    def __init__(self, state: LoadState):
        super().__init__(state.message)
        self.state = state


def public_name(name: str) -> str:
    """How weights ``name`` are named to visitors: registry names and Hub ids as they are, a local path by its last part."""
    try:
        exists = Path(name).exists()
    except (OSError, ValueError):  # a name too long for a path, or holding a NUL
        exists = False
    looks_local = exists or ("/" in name and not HUB_REPO_ID.fullmatch(name)) or "\\" in name
    return f"the server's local weights '{one_line(Path(name).name, 60)}'" if looks_local else one_line(name, 80)


def _why(exc: BaseException) -> str:
    """The kind of failure, in words that reveal nothing about the server."""
    if isinstance(exc, WeightsNotFoundError):
        return "are not available on this server (not found, or not downloaded yet and offline)"
    if isinstance(exc, HubError):
        return "could not be downloaded (the weights host did not answer as expected)"
    if isinstance(exc, CheckpointError):
        return "are not a usable HSNet checkpoint"
    if isinstance(exc, HSNetError):
        return "could not be loaded"
    return "could not be loaded because of an unexpected error"


def load_predictor(name: str, device: str | None, progress: Progress, image_size: int | None = None) -> Predictor:
    """The production loader: weights by registry name, Hub repo id or local path, then a Predictor on ``device``
    at ``image_size`` (None: the side the weights' config names)."""
    def downloading(done: int, total: int | None) -> None:
        if total:
            progress(DOWNLOAD_SHARE * done / total, f"downloading the weights, {done / 2**20:.0f} of {total / 2**20:.0f} MB")
        else:
            progress(None, f"downloading the weights, {done / 2**20:.0f} MB so far")

    progress(None, "reading or downloading the weights")
    model = hub.from_pretrained(name, progress=downloading)
    progress(0.9, "preparing the model")
    return Predictor(model, device=device, image_size=image_size)


@dataclass
class _Entry:
    status: LoadStatus
    started_at: float
    done: threading.Event
    detail: str = ""
    progress: float | None = None
    predictor: Predictor | None = None
    failed_at: float = 0.0  # time.monotonic()
    reason: str = ""
    last_used: float = 0.0


class ModelStore:
    """Predictors by weights name, loaded in background threads; at most ``keep`` kept ready.

    ``loader(name, progress)`` builds a Predictor (default: ``load_predictor`` on ``device`` at ``image_size``);
    tests inject slow or failing loaders. One store per process at module level lets a
    ZeroGPU worker reach it: the GPU step receives the weights name and calls ``predictor``.
    """

    def __init__(self, default: str, device: str | None = None, *, image_size: int | None = None,
                 loader: Loader | None = None, keep: int = 2, retry_after_s: float = RETRY_AFTER_S):
        self.default = default
        self.keep = keep
        self.retry_after_s = retry_after_s
        self._loader: Loader = loader or (lambda name, progress: load_predictor(name, device, progress, image_size))
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def start(self, name: str | None = None) -> LoadState:
        """Begin loading ``name`` (default: the store's default) unless it is loading, ready or failed recently."""
        name = name or self.default
        with self._lock:
            entry = self._entries.get(name)
            recent_failure = entry is not None and entry.status == "failed" and \
                time.monotonic() - entry.failed_at < self.retry_after_s
            if entry is None or not (entry.status in ("loading", "ready") or recent_failure):
                entry = _Entry("loading", time.time(), threading.Event())
                self._entries[name] = entry
                threading.Thread(target=self._load, args=(name, entry), name=f"load-{public_name(name)}",
                                 daemon=True).start()
            return self._state(name, entry)

    def state(self, name: str | None = None) -> LoadState:
        """The current state of ``name`` (status "idle" when it was never started or was dropped)."""
        name = name or self.default
        with self._lock:
            return self._state(name, self._entries.get(name))

    def predictor(self, name: str | None = None) -> Predictor:
        """The ready Predictor for ``name``; else starts the load if needed and raises WeightsNotReadyError at once."""
        name = name or self.default
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and entry.predictor is not None:
                entry.last_used = time.monotonic()
                return entry.predictor
        raise WeightsNotReadyError(self.start(name))

    def wait(self, name: str | None = None, timeout: float | None = None) -> LoadState:
        """Start ``name`` if needed and wait up to ``timeout`` seconds for its load to end; the state then."""
        name = name or self.default
        self.start(name)
        with self._lock:
            entry = self._entries.get(name)
        if entry is not None:
            entry.done.wait(timeout)
        return self.state(name)

    def _state(self, name: str, entry: _Entry | None) -> LoadState:
        shown = public_name(name)
        if entry is None:
            return LoadState(shown, "idle", f"Weights {shown} are not loaded yet.")
        if entry.status == "ready":
            return LoadState(shown, "ready", f"Weights {shown} are loaded.", 1.0, entry.started_at)
        if entry.status == "failed":
            wait = max(0.0, self.retry_after_s - (time.monotonic() - entry.failed_at))
            again = f"the server tries again in {wait / 60:.0f} min" if wait >= 60 else "the next request tries again"
            return LoadState(shown, "failed", f"Weights {shown} {entry.reason}; {again}. "
                             "The server log has the details for its operator.", None, entry.started_at)
        done = f" ({entry.progress:.0%})" if entry.progress is not None else ""
        elapsed = time.time() - entry.started_at
        return LoadState(shown, "loading", f"Loading weights {shown}: {entry.detail or 'starting'}{done}, "
                         f"{elapsed:.0f} s so far. Try again in a moment.", entry.progress, entry.started_at)

    def _load(self, name: str, entry: _Entry) -> None:
        def progress(fraction: float | None, detail: str) -> None:
            entry.progress, entry.detail = fraction, detail

        try:
            predictor = self._loader(name, progress)
        except Exception as exc:  # noqa: BLE001 - a broken file or host must not stop the server; logged in full
            if isinstance(exc, HSNetError):
                log.warning("weights %s could not be loaded: %s", name, exc)
            else:
                log.exception("loading weights %s failed unexpectedly", name)
            with self._lock:
                entry.status, entry.reason, entry.failed_at = "failed", _why(exc), time.monotonic()
            entry.done.set()
            return
        log.info("weights %s loaded in %.1f s", name, time.time() - entry.started_at)
        with self._lock:
            entry.status, entry.predictor, entry.progress = "ready", predictor, 1.0
            entry.last_used = time.monotonic()
            ready = sorted((e.last_used, n) for n, e in self._entries.items() if e.status == "ready")
            for _, dropped in ready[: max(0, len(ready) - self.keep)]:
                del self._entries[dropped]
        entry.done.set()
