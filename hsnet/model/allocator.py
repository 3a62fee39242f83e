"""Back large CPU tensors with transparent huge pages.

An episode allocates and frees hundreds of megabytes (the level-2 correlation
alone is 100 MB per shot at 400x400). The C allocator hands blocks that large
back to the OS on free, so the next episode page-faults every 4 KiB page in
again: about 24,000 faults per 100 MB, measured at roughly a quarter of a
1-shot ResNet-50 episode's CPU time on a 2-core VM (docs/performance.md).
PyTorch's ``THP_MEM_ALLOC_ENABLE`` switch aligns CPU tensors of 2 MB and more
to huge pages and advises the kernel to use them: ~400 faults per 100 MB.

It must be set before PyTorch's first large CPU allocation, so ``hsnet.model``
sets it on import. An explicit ``THP_MEM_ALLOC_ENABLE=0`` in the environment
is respected. On kernels without transparent huge pages it has no effect.
"""
from __future__ import annotations

import os
from pathlib import Path

THP_SWITCH = "THP_MEM_ALLOC_ENABLE"
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def use_huge_pages() -> bool:
    """Turn PyTorch's huge-page CPU allocation on unless the environment says otherwise; True if in effect."""
    os.environ.setdefault(THP_SWITCH, "1")
    try:
        kernel_allows = "[never]" not in THP_SETTING.read_text()
    except OSError:
        kernel_allows = False
    return os.environ[THP_SWITCH] == "1" and kernel_allows
