"""Keep freed CPU memory in the process for the next episode (glibc), instead of page-faulting it in again.

An episode allocates and frees hundreds of megabytes; glibc serves blocks that
large with fresh ``mmap``s and unmaps them on free, so every episode faults its
working memory in again. This changes how the whole process allocates (its
resident memory stays at its peak), so it is opt-in: ``hsnet evaluate``,
``hsnet train`` and the benchmark call it at start; the app does not.
Measurements: docs/performance.md, "Design notes".
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_MAX = -4
KEEP_FREE_BYTES = 2**31 - 1  # the largest trim threshold mallopt accepts (an int)


@cache
def glibc() -> ctypes.CDLL | None:
    """glibc, when this process runs on it (it has mallopt and malloc_trim), else None (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def retain_freed_memory() -> bool:
    """Make glibc reuse freed memory instead of returning it to the OS; False where that is not glibc."""
    libc = glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                         KEEP_FREE_BYTES))
