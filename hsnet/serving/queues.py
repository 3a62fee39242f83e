"""Who gets the model when: the app's Gradio queues, and short requests before long work between its chunks.

Each kind of work has its own Gradio queue (``concurrency_id``) and limit, so that one visitor's
"Label many" never holds the slot another visitor's Segment waits for; pass the dicts to the
events (``.click(..., **SEGMENT_QUEUE)``) and ``QUEUE`` to ``demo.queue``. Both kinds still
share one CPU or GPU, so ``TURNS`` orders them: a Segment or a probe runs at once
(``TURNS.first`` on its callback: decoding, model and drawing), and long work takes each
chunk (LABEL_CHUNK photos) only while no such request is running (``TURNS.between``). A
Segment therefore waits at most for the chunk in progress; long work waits at most
LONG_WORK_MAX_WAIT_S for its next chunk, so a stream of Segments slows it without stopping
it. The measured bound is in docs/robustness.md.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import torch

ON_CUDA = torch.cuda.is_available()
SEGMENT_QUEUE: dict[str, Any] = {"concurrency_id": "segment", "concurrency_limit": 2 if ON_CUDA else 1}
LABEL_QUEUE: dict[str, Any] = {"concurrency_id": "label", "concurrency_limit": 1}
EXPLORE_QUEUE: dict[str, Any] = {"concurrency_id": "explore", "concurrency_limit": 4}
QUEUE: dict[str, Any] = {"default_concurrency_limit": 1, "max_size": 32}  # demo.queue(**QUEUE)
LABEL_CHUNK = 4 if ON_CUDA else 1  # photos per model call of Label many: batching measured no faster on a CPU
LONG_WORK_MAX_WAIT_S = 10.0
F = TypeVar("F", bound=Callable[..., Any])


class Turns:
    """Short model calls run at once; each chunk of long work starts only when none is running (or after a wait)."""

    def __init__(self, max_wait_s: float = LONG_WORK_MAX_WAIT_S):
        self.max_wait_s = max_wait_s
        self._running = 0
        self._changed = threading.Condition()

    def first(self, fn: F) -> F:
        """``fn`` as a short call: counted while it runs, so that long work holds back its next chunk."""
        @functools.wraps(fn)
        def short(*args: Any, **kwargs: Any) -> Any:
            with self._changed:
                self._running += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()
        return short  # type: ignore[return-value]

    def between(self, fn: F) -> F:
        """``fn`` as one chunk of long work: it starts once no short call runs, or after ``max_wait_s``."""
        @functools.wraps(fn)
        def chunk(*args: Any, **kwargs: Any) -> Any:
            with self._changed:
                self._changed.wait_for(lambda: self._running == 0, timeout=self.max_wait_s)
            return fn(*args, **kwargs)
        return chunk  # type: ignore[return-value]


TURNS = Turns()  # one per process: every visitor's calls share the model
