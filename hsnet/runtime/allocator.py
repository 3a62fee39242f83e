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
import platform

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_MAX = -4
KEEP_FREE_BYTES = 2**31 - 1  # the largest trim threshold mallopt accepts (an int)


def retain_freed_memory() -> bool:
    """Make glibc reuse freed memory instead of returning it to the OS; False where that is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES))
