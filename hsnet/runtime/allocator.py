"""Keep freed CPU memory in the process for the next episode (glibc), instead of page-faulting it in again.

An episode allocates and frees hundreds of megabytes (the level-2 correlation
alone is 100 MB per shot at 400x400). glibc serves blocks that large with fresh
``mmap``s and unmaps them on free, so every episode page-faults its working
memory in again and the kernel zeroes it. Measured on a 2-core VM, ResNet-50
400x400, one thread, per episode: 1-shot 80,000 faults, 1.55 s wall (0.16 s in
the kernel); 5-shot 465,000 faults, 6.3 s (1.1 s in the kernel). With large
blocks taken from the heap and the heap never trimmed below 2 GiB of free
memory: 1,250 and 15,600 faults, 1.32 s and 5.75 s.

(PyTorch's ``THP_MEM_ALLOC_ENABLE`` huge pages were measured too and rejected:
fewer faults, but the kernel compacts memory to find huge pages, 2.6 s of
kernel time in the 5-shot episode.)

This changes how the whole process allocates (its resident memory stays at its
peak), so it is opt-in: ``hsnet evaluate``, ``hsnet train`` and the benchmark
call it at start. The app does not: its work runs in worker threads, whose glibc
arenas keep the default for blocks over 64 MB anyway.
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
