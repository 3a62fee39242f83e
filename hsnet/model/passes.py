"""Splitting an episode's (query, support) pairs into passes that bound the correlation's memory on the CPU.

Every pair holds its own 4D correlation, 100 MB at 400x400 and 720 MB at
640x640 (ResNet-50, fp32), and the learner's first layers several times that.
On the CPU, pairs go through correlation and learner a few at a time: measured
on 2 cores, 4-5 pairs per pass cost the same per pair as one, so the passes
bound peak memory (a 5-shot batch of 4 at 400x400 peaked at 8.7 GB in one
pass) without slowing anything down. On GPUs the whole batch stays in one pass:
their throughput needs the batch.
"""
from __future__ import annotations

import torch

CPU_PASS_BYTES = 512 * 2**20  # correlation bytes per pass on the CPU: 4 pairs at 400x400


def pair_bytes(query: list[torch.Tensor], support: list[torch.Tensor]) -> int:
    """Bytes of the correlation pyramid of one pair, from the query's and support's feature levels."""
    total = 0
    for q, s in zip(query, support):
        total += q.shape[1] * q.shape[-2] * q.shape[-1] * s.shape[-2] * s.shape[-1] * q.element_size()
    return total


def pairs_per_pass(query: list[torch.Tensor], support: list[torch.Tensor]) -> int | None:
    """How many pairs one pass may hold, from the feature levels; None for no limit (not on the CPU)."""
    if query[0].device.type != "cpu":
        return None
    return max(1, CPU_PASS_BYTES // pair_bytes(query, support))


def pair_passes(batch: int, shots: int, per_pass: int) -> list[tuple[slice, slice]]:
    """(query slice, shot slice) blocks covering batch x shots pairs, at most ``per_pass`` pairs each (one at least)."""
    if per_pass >= shots:
        step = per_pass // shots
        return [(slice(i, min(i + step, batch)), slice(0, shots)) for i in range(0, batch, step)]
    return [(slice(i, i + 1), slice(j, min(j + per_pass, shots)))
            for i in range(batch) for j in range(0, shots, per_pass)]
