"""The Predictor's memory of encoded supports: keyed by content, least recently used dropped beyond a byte budget."""
from __future__ import annotations

import threading
from collections import OrderedDict

from .results import SupportSet

DEFAULT_CACHE_BYTES = 1 << 30  # ~25 supports at 400x400 (ResNet-50, fp32)


class SupportCache:
    """Encoded supports by content digest, at most ``max_bytes`` of features in all (thread-safe)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, SupportSet] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the features held now."""
        with self._lock:
            return sum(s.nbytes for s in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> SupportSet | None:
        """The supports encoded under ``key`` (now the most recently used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, supports: SupportSet) -> None:
        """Keep ``supports`` under its key, dropping the least recently used beyond the budget (itself if too big)."""
        with self._lock:
            self._entries[supports.key] = supports
            self._entries.move_to_end(supports.key)
            total = sum(s.nbytes for s in self._entries.values())
            while total > self.max_bytes and self._entries:
                total -= self._entries.popitem(last=False)[1].nbytes

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
