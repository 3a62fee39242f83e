"""Where and how a model runs: device, precision and compilation, resolved and checked in one place.

The Predictor, ``hsnet evaluate`` and the benchmark all run the model inside an
``InferenceContext``; a bad device or precision becomes one ``InputError`` line.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..model import HSNet
from .folding import fold_batchnorm
from .passes import CPU_PASS_BYTES, GPU_PASS_BYTES

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "auto")  # auto: bf16 or fp16 on CUDA, fp32 elsewhere
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device this machine has; None is CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device {str(device)[:40]!r}; use 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type not in DEVICE_TYPES:
        raise InputError(f"device {str(device)[:40]!r} cannot run hsnet; use 'cpu' or 'cuda'")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {str(device)!r} asked for, but this machine has no usable CUDA GPU; use 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise InputError(f"device {str(device)!r} does not exist: this machine has {torch.cuda.device_count()} "
                             f"CUDA GPU(s), cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {str(device)!r} asked for, but Apple's MPS is not available here; use 'cpu'")
    return resolved


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``; None means plain float32."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {str(precision)[:40]!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type == "cpu":
        raise InputError("precision fp16 needs a GPU; use 'fp32' (or 'bf16') on the CPU")
    return torch.bfloat16 if precision == "bf16" else torch.float16


@contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Mixed precision with ``dtype`` on ``device``; plain float32 when ``dtype`` is None."""
    with torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None):
        yield


@dataclass(frozen=True)
class InferenceContext:
    """A checked device + precision, the memory budget of one pass, and the optional compilation of the learner.

    ``compile`` runs the learner through ``torch.compile`` (slow first call per shape);
    ``cuda_graphs`` (CUDA only) compiles it with CUDA graphs ("reduce-overhead");
    ``max_pass_bytes`` overrides the device's budget of one pass (see passes.py).
    """

    device: torch.device
    precision: str = "fp32"
    compile: bool = False
    cuda_graphs: bool = False
    max_pass_bytes: int | None = None

    @classmethod
    def create(cls, device: str | torch.device | None = None, precision: str = "fp32", *, compile: bool = False,
               cuda_graphs: bool = False, max_pass_bytes: int | None = None) -> "InferenceContext":
        """The context for ``device`` (None: CUDA when available) and ``precision``; InputError if it cannot run."""
        context = cls(resolve_device(device), precision, compile, cuda_graphs, max_pass_bytes)
        context.dtype  # noqa: B018 - checks the precision on this device
        if cuda_graphs and context.device.type != "cuda":
            raise InputError("CUDA graphs need a CUDA device; leave cuda_graphs off on the CPU")
        return context

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for float32."""
        return autocast_dtype(self.device, self.precision)

    @property
    def pass_bytes(self) -> int:
        """Bytes one pass may hold: the correlation of its (query, support) pairs, or its backbone batch."""
        if self.max_pass_bytes is not None:
            return self.max_pass_bytes
        return CPU_PASS_BYTES if self.device.type == "cpu" else GPU_PASS_BYTES

    @contextmanager
    def inference(self) -> Iterator[None]:
        """Inference mode under this context's precision."""
        with torch.inference_mode(), autocast(self.device, self.dtype):
            yield

    def prepare(self, model: HSNet) -> HSNet:
        """``model`` in eval mode on this device, BatchNorm folded for the CPU, its learner compiled if asked."""
        model = fold_batchnorm(model.eval().to(self.device))
        if self.compile or self.cuda_graphs:
            model.hpn_learner.compile(mode="reduce-overhead" if self.cuda_graphs else None)
        return model

    def synchronize(self) -> None:
        """Wait for the device to finish queued work (for honest stage timings)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
