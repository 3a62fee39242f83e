"""Running episodes fast on a device: precision, torch.compile and CUDA graphs.

The model itself already picks the fastest exact evaluation on any device
(channels-last backbone, batched supports, sparse correlation on the CPU). This
module adds the options that trade exactness or start-up time for speed:

- ``precision``: "fp32" (exact, the default everywhere), "bf16" or "fp16"
  autocast. On the reference inputs, CPU bf16 autocast agrees with the authors'
  fp32 argmax on 99.4-99.97% of the pixels (below the 99.9% the reference check
  asks for), and on CPUs without bf16 units it is ~20x slower than fp32.
- ``compile``: ``torch.compile`` of the whole episode (minutes of compilation on
  first use of each input shape).
- ``cuda_graphs``: capture each input shape's episode once and replay it (CUDA
  only; removes the per-kernel launch cost that dominates small batches).

None of compile, cuda_graphs or reduced precision is a default: their GPU
speed-ups were not measured in the environment this was written in (no GPU), so
the safe, exact path stays the default until a measurement says otherwise
(``benchmarks/inference.py`` measures all of them where a GPU is present).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch

from ..errors import InputError
from .hsnet import FeaturePyramid, HSNet

Precision = Literal["fp32", "bf16", "fp16"]
PRECISION_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
Episode = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SpeedOptions:
    """How to run episodes; the defaults are exact and need no warm-up."""

    precision: Precision = "fp32"
    compile: bool = False
    cuda_graphs: bool = False

    def check(self, device: torch.device) -> None:
        """Raise InputError for a combination the device cannot run."""
        if self.precision not in PRECISION_DTYPES:
            raise InputError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISION_DTYPES)}")
        if self.precision == "fp16" and device.type != "cuda":
            raise InputError("fp16 needs a CUDA device; use precision 'fp32' (or 'bf16') on the CPU")
        if self.cuda_graphs and device.type != "cuda":
            raise InputError("CUDA graphs need a CUDA device; leave cuda_graphs off on the CPU")


class _CapturedEpisode:
    """One episode shape captured in a CUDA graph: inputs are copied into static buffers, then replayed."""

    def __init__(self, episode: Episode, example: tuple[torch.Tensor, ...]):
        self.inputs = tuple(x.clone() for x in example)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up outside the capture (cuDNN choices, lazy init)
            for _ in range(2):
                episode(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = episode(*self.inputs)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        for static, given in zip(self.inputs, inputs):
            static.copy_(given)
        self.graph.replay()
        return self.output.clone()


class EpisodeRunner:
    """Runs ``model.shot_logits`` (and the cached-support path) under ``SpeedOptions``.

    Captured CUDA graphs read the model's parameters in place: reloading weights
    with ``hsnet.load_weights`` is seen, but after moving the model to another
    device or dtype build a new runner.
    """

    def __init__(self, model: HSNet, options: SpeedOptions = SpeedOptions()):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        options.check(self.device)
        self.options = options
        episode: Episode = self._episode
        if options.compile:
            mode = "reduce-overhead" if options.cuda_graphs else None  # compile manages the graphs itself
            episode = torch.compile(episode, mode=mode)
        self._compiled = episode
        self._graphs: dict[tuple, _CapturedEpisode] = {}

    @contextmanager
    def autocast(self) -> Iterator[None]:
        """Inference mode with the chosen precision's autocast (no cast cache: CUDA graphs need none)."""
        dtype = PRECISION_DTYPES[self.options.precision]
        with torch.inference_mode(), torch.autocast(self.device.type, dtype, enabled=dtype != torch.float32,
                                                    cache_enabled=False):
            yield

    def _episode(self, query: torch.Tensor, supports: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.model.shot_logits(query, supports, masks)

    def shot_logits(self, query: torch.Tensor, supports: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W), (B,K,3,H,W), (B,K,H,W) -> (B, K, 2, H, W) logits (float32)."""
        if not (self.options.cuda_graphs and not self.options.compile):
            return self._compiled(query, supports, masks).float()
        key = tuple((tuple(x.shape), x.dtype) for x in (query, supports, masks))
        if key not in self._graphs:
            self._graphs[key] = _CapturedEpisode(self._episode, (query, supports, masks))
        return self._graphs[key](query, supports, masks).float()

    def support_features(self, supports: torch.Tensor, masks: torch.Tensor) -> FeaturePyramid:
        """(N,3,H,W), (N,H,W) -> the masked support pyramid to reuse for later queries."""
        with self.autocast():
            return self.model.support_features(supports, masks)

    def cached_shot_logits(self, query: torch.Tensor, support: FeaturePyramid, shots: int) -> torch.Tensor:
        """The second query against cached supports: query features, correlation and learner only."""
        with self.autocast():
            query_pyramid = self.model.query_features(query)
            return self.model.feature_logits(query_pyramid, support, shots, tuple(query.shape[-2:])).float()
