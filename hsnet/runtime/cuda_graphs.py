"""Whole episodes replayed from CUDA graphs: one graph per fixed shape, the batch rounded up to a bucket.

At batch 1 an episode on a GPU is bound by kernel launches, not arithmetic (hundreds of small
kernels; docs/performance.md, "CUDA"). A CUDA graph launches everything one call captured at once.

    graphs = EpisodeGraphs(fn, context)          # fn(*inputs, *shared) -> tensor or tuple of tensors, batch first
    logits = graphs.run(query, supports, masks)  # equals fn(query, supports, masks), replayed
    logits = graphs.run(queries, shared=levels)  # ``shared`` inputs (e.g. encoded supports) have no batch dim

- Shapes: a call's batch B is rounded up to the smallest bucket of ``BUCKETS`` that holds it
  (larger batches run in chunks of the largest); a graph is kept per (bucket, every input's
  shape after the batch and dtype, each shared input's shape and dtype, the autocast state).
  Rows past B are copies of the last real row, so they stay finite; outputs are sliced to B
  and cloned (the next replay overwrites them).
- Capture: the first call of a key copies its inputs into static buffers, runs ``fn`` three
  times on a side stream (cuDNN and cuBLAS pick their algorithms), then captures one call into
  a ``torch.cuda.CUDAGraph``. All graphs share one memory pool (safe: each replay's outputs
  are cloned before another graph runs); at most ``max_graphs`` are kept (least recently used
  goes first). The autocast weight cache is off while warming and
  capturing: a weight cast kept from the warm-up would be freed while the graph still reads it.
- ``fn`` must not synchronise with the host (no ``.item()``, ``.cpu()``, ``nonzero``, Python
  branches on device values) and its shapes must follow from its inputs' shapes alone; the
  model's GPU path is such (its sparse fast paths are CPU only). Checks that need the host,
  such as the fp16 guard's look for non-finite values, go on the outputs after ``run`` (an fp16
  episode is captured without its guard and its outputs checked after each replay).
- Switch: ``InferenceContext(cuda_graphs=True)`` means "run whole episodes through
  ``EpisodeGraphs``"; the front ends reach it through the runtime's one forward path
  (``hsnet.runtime.episode``: ``episode_logits`` and the Predictor's ``query_episode``).
  ``compile=True`` stays the separate ``torch.compile`` of the learner.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, Iterator, TypeVar

import torch

from ..errors import InputError
from .context import InferenceContext

BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
WARMUP_CALLS = 3
MAX_GRAPHS = 16

Outputs = torch.Tensor | tuple[torch.Tensor, ...]
Key = tuple[Hashable, ...]
T = TypeVar("T")


def bucket_of(batch: int, buckets: tuple[int, ...] = BUCKETS) -> int:
    """The smallest bucket holding ``batch`` items (the largest bucket for more: they run in chunks)."""
    if batch < 1:
        raise ValueError(f"batch {batch} must be at least 1")
    return next((b for b in buckets if b >= batch), buckets[-1])


def chunks(batch: int, buckets: tuple[int, ...] = BUCKETS) -> list[slice]:
    """Slices of ``batch`` items, each at most the largest bucket."""
    step = buckets[-1]
    return [slice(i, min(i + step, batch)) for i in range(0, batch, step)]


def fill_padded(buffer: torch.Tensor, items: torch.Tensor) -> None:
    """Copy ``items`` into the first rows of ``buffer`` and the last item into the rows after them."""
    n = items.shape[0]
    buffer[:n].copy_(items, non_blocking=True)
    if n < buffer.shape[0]:
        buffer[n:].copy_(items[-1:].expand(buffer.shape[0] - n, *items.shape[1:]), non_blocking=True)


def sliced(outputs: Outputs, n: int) -> Outputs:
    """The first ``n`` rows of each output, cloned so that they outlive the next replay."""
    if isinstance(outputs, torch.Tensor):
        return outputs[:n].clone()
    return tuple(o[:n].clone() for o in outputs)


def shape_key(inputs: tuple[torch.Tensor, ...], bucket: int, shared: tuple[torch.Tensor, ...] = ()) -> Key:
    """What a graph is fixed to: the bucket, every input's shape after the batch and its dtype, every shared
    input's shape and dtype, and autocast."""
    autocast = (torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))
    return (bucket, *((tuple(x.shape[1:]), x.dtype) for x in inputs), "shared",
            *((tuple(x.shape), x.dtype) for x in shared), autocast)


class GraphCache(Generic[T]):
    """Up to ``limit`` entries by key, each made on first use; the least recently used goes first."""

    def __init__(self, limit: int = MAX_GRAPHS):
        self.limit = limit
        self.entries: OrderedDict[Key, T] = OrderedDict()

    def get(self, key: Key, make: Callable[[], T]) -> T:
        """The entry of ``key``, made by ``make()`` if there is none."""
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        entry = self.entries[key] = make()
        while len(self.entries) > self.limit:
            self.entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self.entries)


@contextmanager
def autocast_cache_off() -> Iterator[None]:
    """Autocast keeps no casts of weights inside (graphs must own every tensor they read or write)."""
    before = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(False)
    try:
        yield
    finally:
        torch.set_autocast_cache_enabled(before)


@dataclass
class CapturedEpisode:
    """One captured graph: its static input buffers (batched, shared) and the outputs each replay writes."""

    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    shared: tuple[torch.Tensor, ...]
    outputs: Outputs

    def __call__(self, inputs: tuple[torch.Tensor, ...], shared: tuple[torch.Tensor, ...]) -> Outputs:
        for buffer, items in zip(self.inputs, inputs):
            fill_padded(buffer, items)
        for buffer, value in zip(self.shared, shared):
            buffer.copy_(value, non_blocking=True)
        self.graph.replay()
        return sliced(self.outputs, inputs[0].shape[0])


class EpisodeGraphs:
    """``fn`` (batch-first tensors in and out) replayed from one CUDA graph per shape and batch bucket."""

    def __init__(self, fn: Callable[..., Outputs], context: InferenceContext, *,
                 buckets: tuple[int, ...] = BUCKETS, max_graphs: int = MAX_GRAPHS):
        if context.device.type != "cuda":
            raise InputError(f"CUDA graphs need a CUDA device, not {context.device}; leave cuda_graphs off there")
        self.fn, self.context, self.buckets = fn, context, tuple(sorted(buckets))
        self.cache: GraphCache[CapturedEpisode] = GraphCache(max_graphs)
        self.pool = torch.cuda.graph_pool_handle()
        self.lock = threading.Lock()  # one replay at a time: the static buffers are shared

    def run(self, *inputs: torch.Tensor, shared: tuple[torch.Tensor, ...] = ()) -> Outputs:
        """``fn(*inputs, *shared)`` from the graph of their shapes (captured on first use); batch is dim 0 of every
        input, ``shared`` inputs are the same for every item."""
        device = self.context.device
        inputs = tuple(x.to(device, non_blocking=True) for x in inputs)
        shared = tuple(x.to(device, non_blocking=True) for x in shared)
        parts = []
        for part in chunks(inputs[0].shape[0], self.buckets):
            piece = tuple(x[part] for x in inputs)
            bucket = bucket_of(piece[0].shape[0], self.buckets)
            with self.lock:
                episode = self.cache.get(shape_key(piece, bucket, shared),
                                         lambda: self._capture(piece, bucket, shared))
                parts.append(episode(piece, shared))
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], torch.Tensor):
            return torch.cat(parts)
        return tuple(torch.cat(column) for column in zip(*parts))

    def __len__(self) -> int:
        """Graphs captured and kept."""
        return len(self.cache)

    def _capture(self, items: tuple[torch.Tensor, ...], bucket: int,
                 shared: tuple[torch.Tensor, ...]) -> CapturedEpisode:
        """Warm ``fn`` up on a side stream, then capture it on static buffers of ``bucket`` rows (and the shared)."""
        buffers = tuple(torch.empty((bucket, *x.shape[1:]), dtype=x.dtype, device=x.device) for x in items)
        for buffer, x in zip(buffers, items):
            fill_padded(buffer, x)
        kept = tuple(x.clone() for x in shared)
        graph = torch.cuda.CUDAGraph()
        with autocast_cache_off():
            side = torch.cuda.Stream(self.context.device)
            side.wait_stream(torch.cuda.current_stream(self.context.device))
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    self.fn(*buffers, *kept)
            torch.cuda.current_stream(self.context.device).wait_stream(side)
            try:
                with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):  # others run on
                    outputs = self.fn(*buffers, *kept)
            except RuntimeError as error:
                raise RuntimeError(f"the episode cannot be captured as a CUDA graph: it synchronises with the host "
                                   f"or allocates outside the capture ({str(error)[:160]}); run it eagerly") from error
        return CapturedEpisode(graph, buffers, kept, outputs)
