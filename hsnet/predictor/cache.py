"""One byte-bounded LRU cache: the Predictor's encoded supports and the app's probes both keep their entries here."""
from __future__ import annotations

import math
import operator
import threading
from collections import OrderedDict
from typing import Generic, Protocol, TypeVar

from ..errors import InputError

DEFAULT_CACHE_BYTES = 1 << 30  # ~25 supports at 400x400 (ResNet-50, fp32)


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=Sized)


def check_budget(value: object, what: str = "cache_bytes") -> int:
    """``value`` as a byte budget (a whole number >= 0); InputError for NaN, infinities, negatives and non-numbers."""
    if isinstance(value, bool):
        raise InputError(f"{what} {value!r} is not a number of bytes; give a whole number such as {DEFAULT_CACHE_BYTES}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        budget = operator.index(value)
    except TypeError:
        shown = repr(value)[:40]
        hint = " (NaN and infinities are not budgets)" if isinstance(value, float) and not math.isfinite(value) else ""
        raise InputError(f"{what} {shown} is not a whole number of bytes{hint}; give e.g. {DEFAULT_CACHE_BYTES}, "
                         "or 0 to keep nothing") from None
    if budget < 0:
        raise InputError(f"{what} {budget} is negative; give a number of bytes >= 0 (0 keeps nothing)")
    return budget


class ByteLRU(Generic[V]):
    """Entries by key, at most ``max_bytes`` of their ``nbytes`` in all: the least recently used go first, and an
    entry larger than the whole budget is not kept (thread-safe)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES, what: str = "cache_bytes"):
        self.max_bytes = check_budget(max_bytes, what)
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now (never more than ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V | None:
        """The entry under ``key`` (now the most recently used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: str, value: V) -> None:
        """Keep ``value`` under ``key`` (replacing what was there), dropping the least recently used beyond the
        budget; a value larger than the budget is not kept."""
        with self._lock:
            self._pop(key)
            if value.nbytes > self.max_bytes:
                return
            self._entries[key] = value
            self._bytes += value.nbytes
            while self._bytes > self.max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1].nbytes

    def discard(self, key: str) -> None:
        """Forget ``key``'s entry, if any."""
        with self._lock:
            self._pop(key)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _pop(self, key: str) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
