"""Splitting an episode's (query, support) pairs into passes whose correlation fits a byte budget.

Every pair holds its own 4D correlation (ResNet-50, fp32: 100 MB at 400x400, 720 MB
at 640x640) and the learner's first layers a few times that, so K supports and B
queries go through correlation and learner a few pairs at a time: peak memory
depends on the budget, not on K or B. Measurements: docs/performance.md, "Design notes".
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from ..model import FeaturePyramid, HSNet

CPU_PASS_BYTES = 512 * 2**20  # correlation bytes per pass on the CPU: 4 pairs at 400x400
GPU_PASS_BYTES = 2 * 2**30  # on a GPU: 20 pairs at 400x400, 2 at 640x640
# Live bytes per input pixel at the peak of a features pass in fp32 (activations, taps, one stacked level), per
# backbone: what bounds backbone batches. tests/test_backbone_memory.py measures each and needs one per backbone.
PEAK_BYTES_PER_PIXEL = {"resnet50": 450, "resnet101": 990, "vgg16": 560}


def pair_bytes(query: list[torch.Tensor], support: list[torch.Tensor]) -> int:
    """Bytes of the correlation pyramid of one pair, from the query's and support's feature levels."""
    total = 0
    for q, s in zip(query, support):
        total += q.shape[1] * q.shape[-2] * q.shape[-1] * s.shape[-2] * s.shape[-1] * q.element_size()
    return total


def pair_passes(batch: int, shots: int, per_pass: int) -> list[tuple[slice, slice]]:
    """(query slice, shot slice) blocks covering batch x shots pairs, at most ``per_pass`` pairs each (one at least)."""
    if per_pass >= shots:
        step = per_pass // shots
        return [(slice(i, min(i + step, batch)), slice(0, shots)) for i in range(0, batch, step)]
    return [(slice(i, i + 1), slice(j, min(j + per_pass, shots)))
            for i in range(batch) for j in range(0, shots, per_pass)]


def image_bytes(model: HSNet, height: int, width: int) -> int:
    """Live bytes one height x width image takes at the peak of ``model``'s features pass (fp32)."""
    return PEAK_BYTES_PER_PIXEL[model.backbone_name] * height * width


def backbone_passes(images: int, image_bytes: int, budget: int) -> list[slice]:
    """Slices of ``images`` images, each taking ``image_bytes`` at a features pass's peak (``image_bytes()``),
    that go through the backbone within ``budget`` bytes."""
    step = max(1, budget // image_bytes)
    return [slice(i, min(i + step, images)) for i in range(0, images, step)]


def one_pass(images: int, image_bytes: int, batch: int, shots: int, pair: int, budget: int) -> bool:
    """Whether ``images`` images of ``image_bytes`` go through the backbone, and ``batch`` x ``shots`` pairs of
    ``pair`` correlation bytes through correlation and learner, each in one pass within ``budget`` bytes."""
    return len(backbone_passes(images, image_bytes, budget)) == 1 and len(pair_passes(batch, shots,
                                                                                     max(1, budget // pair))) == 1


def bounded_passes(query: FeaturePyramid, support: FeaturePyramid, shots: int,
                   budget: int) -> Iterator[tuple[slice, slice, FeaturePyramid, FeaturePyramid]]:
    """(query slice, shot slice, query block, support block) covering every pair within ``budget`` bytes a pass.

    ``support`` holds B*K items (K per query) or K items shared by every query.
    """
    batch = query.levels[0].shape[0]
    shared = support.levels[0].shape[0] == shots
    per_pass = max(1, budget // pair_bytes(query.levels, support.levels))
    for queries, shot_range in pair_passes(batch, shots, per_pass):
        if shared:
            block = support.select(shot_range)
        else:
            block = FeaturePyramid([x.view(batch, shots, *x.shape[1:])[queries, shot_range].flatten(0, 1)
                                    for x in support.levels])
        yield queries, shot_range, query.select(queries), block
