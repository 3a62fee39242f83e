"""Where and how a model runs: device, precision and compilation, resolved and checked in one place.

The Predictor, ``hsnet evaluate``, training's validation and the benchmark all run the
model inside an ``InferenceContext``; a bad device or precision becomes one ``InputError``
line. The precision policy: "fp32" is float32 (TF32 off on CUDA within the context's
scope, restored afterwards), "tf32" allows TF32, "bf16"/"fp16" are autocast, "auto" is
the measured default of the device; a pass that fp16 makes non-finite is recomputed in
``fallback`` precision (``hsnet.runtime.guard``).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from ..errors import InputError
from ..model import HSNet
from .passes import CPU_PASS_BYTES, GPU_PASS_BYTES

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "auto")
# The precision inference runs in on CUDA when none is given, chosen from measurement (benchmarks/, issue 21):
# float32, exact, until the CUDA benchmarks name a faster precision whose masks agree with it. fp32 elsewhere.
CUDA_DEFAULT_PRECISION = "fp32"
# Whether whole episodes are replayed from CUDA graphs on CUDA when the caller passes None: off until the CUDA
# benchmarks (benchmarks/inference.py --cuda-suite, "predictor" against "predictor-graphs") measure them faster.
CUDA_GRAPHS_DEFAULT = False
DEVICE_TYPES = ("cpu", "cuda", "mps")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}  # the precisions that autocast; the rest: float32
T = TypeVar("T")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device this machine has; None or "auto" is CUDA when available, else the CPU."""
    if device is None or device == "auto":
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


def resolve_precision(device: torch.device, precision: str | None = None) -> str:
    """``precision`` checked for ``device``: None is the device's default (``CUDA_DEFAULT_PRECISION`` on CUDA, fp32
    elsewhere), "auto" its fastest autocast (bf16 on CUDA where supported, else fp16; fp32 elsewhere); InputError
    for a name hsnet does not know or one the device cannot run."""
    if precision is None:
        return CUDA_DEFAULT_PRECISION if device.type == "cuda" else "fp32"
    if precision == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {str(precision)[:40]!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise InputError("precision fp16 needs a GPU; use 'fp32' (or 'bf16') on the CPU")
    return precision


def autocast_dtype(device: torch.device, precision: str | None) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``; None means plain float32."""
    precision = resolve_precision(device, precision)
    return AUTOCAST_DTYPES.get(precision)


@contextmanager
def float32_matmul(device: torch.device, allow_tf32: bool) -> Iterator[None]:
    """Whether CUDA float32 matmuls and convolutions may use TF32, within this block only (restored after)."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Mixed precision with ``dtype`` on ``device``; plain float32 when ``dtype`` is None."""
    with torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None):
        yield


@dataclass(frozen=True)
class InferenceContext:
    """A checked device + precision, the memory budget of one pass, and the optional compilation of the learner.

    ``compile`` runs the learner through ``torch.compile`` (slow first call per shape);
    ``cuda_graphs`` (CUDA only) replays whole episodes from CUDA graphs (``hsnet.runtime.cuda_graphs``; the
    graphs are kept in ``graphs``, per model);
    ``max_pass_bytes`` overrides the device's budget of one pass (see passes.py).
    Made by ``create`` (which checks); the fields are taken as given.
    """

    device: torch.device
    precision: str = "fp32"
    compile: bool = False
    cuda_graphs: bool = False
    max_pass_bytes: int | None = None
    announced: set[str] = field(default_factory=set, init=False, repr=False, compare=False)  # warnings said once
    graphs: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # (model id, what) -> kept

    @classmethod
    def create(cls, device: str | torch.device | None = None, precision: str | None = None, *, compile: bool = False,
               cuda_graphs: bool | None = None, max_pass_bytes: int | None = None) -> "InferenceContext":
        """The context for ``device`` (None: CUDA when available) and ``precision`` (None: the device's default);
        ``cuda_graphs`` None is ``CUDA_GRAPHS_DEFAULT`` on CUDA, off elsewhere; InputError if it cannot run."""
        resolved = resolve_device(device)
        if cuda_graphs is None:
            cuda_graphs = CUDA_GRAPHS_DEFAULT and resolved.type == "cuda"
        context = cls(resolved, resolve_precision(resolved, precision), compile, cuda_graphs, max_pass_bytes)
        if cuda_graphs and context.device.type != "cuda":
            raise InputError("CUDA graphs need a CUDA device; leave cuda_graphs off on the CPU")
        return context

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for float32."""
        return AUTOCAST_DTYPES.get(self.precision)

    @property
    def fallback(self) -> str:
        """The precision a pass that fp16 made non-finite is computed again in: bf16 where the device has it."""
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return "fp32"
        return "bf16"

    @property
    def pass_bytes(self) -> int:
        """Bytes one pass may hold: the correlation of its (query, support) pairs, or its backbone batch."""
        if self.max_pass_bytes is not None:
            return self.max_pass_bytes
        return CPU_PASS_BYTES if self.device.type == "cpu" else GPU_PASS_BYTES

    @contextmanager
    def inference(self) -> Iterator[None]:
        """Inference mode under this context's precision (TF32 only for "tf32")."""
        with torch.inference_mode(), float32_matmul(self.device, self.precision == "tf32"), \
                autocast(self.device, self.dtype):
            yield

    def prepare(self, model: HSNet) -> HSNet:
        """``model`` in eval mode on this device, its learner compiled if asked."""
        model = model.eval().to(self.device)
        if self.compile:
            model.hpn_learner.compile()
        return model

    def kept(self, model: HSNet, what: Hashable, make: Callable[[], T]) -> T:
        """What this context keeps for ``model`` under ``what`` (its CUDA graphs), made by ``make()`` on first use."""
        key = (id(model), what)
        entry = self.graphs.get(key)
        if entry is None or entry[0] is not model:  # the model is kept beside it: its id is not reused meanwhile
            entry = self.graphs[key] = (model, make())
        return entry[1]

    def synchronize(self) -> None:
        """Wait for the device to finish queued work (for honest stage timings)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
