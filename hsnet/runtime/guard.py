"""fp16 that cannot lie: a pass whose result fp16 made non-finite is computed again in the context's fallback.

fp16 overflows where features grow past 65504 (the deeper levels of some weights): the
correlation becomes NaN and the mask silently empty. Each guarded pass checks its
outputs once at its end (one host sync per pass on CUDA, fp16 only); a pass that fails
runs again under the fallback precision (bf16, or fp32 where the GPU lacks bf16), and
the context says so once in one warning line. Other precisions are not checked.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TypeVar

import torch

from .context import AUTOCAST_DTYPES, InferenceContext, autocast

T = TypeVar("T")


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every value is finite (one host sync for all of them)."""
    checks = [torch.isfinite(t).all() for t in tensors]
    return bool(torch.stack(checks).all()) if checks else True


def guarded(context: InferenceContext, compute: Callable[[], T], outputs: Callable[[T], Iterable[torch.Tensor]],
            what: str, again: Callable[[], T] | None = None) -> tuple[T, str]:
    """``compute()`` and the precision that produced it: under fp16, ``again()`` (default ``compute()``) in the
    fallback when ``outputs`` of its result are not all finite (a replayed CUDA graph is computed again eagerly)."""
    result = compute()
    if context.precision != "fp16" or all_finite(outputs(result)):
        return result, context.precision
    fallback = context.fallback
    message = (f"fp16 overflowed in the {what} (non-finite values); those passes are computed again in {fallback}: "
               f"use precision '{fallback}' to skip the fp16 attempt")
    if message not in context.announced:
        context.announced.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    with autocast(context.device, AUTOCAST_DTYPES.get(fallback)):
        return (again or compute)(), f"fp16->{fallback}"
