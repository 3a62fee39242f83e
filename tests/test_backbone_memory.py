"""Each backbone's ``PEAK_BYTES_PER_PIXEL`` (what bounds backbone batches) is what a features pass takes.

Measured from the profiler's record of every CPU allocation and free: the live bytes at the
peak of encoding three masked supports, less those of one, per added pixel (what does not
grow with the batch, such as oneDNN's buffers, cancels out). The figure must hold the
measurement and not overstate it by much: an overstated figure splits batches that fit.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from hsnet.model import BACKBONES
from hsnet.runtime import InferenceContext, build_model, encode
from hsnet.runtime.passes import PEAK_BYTES_PER_PIXEL

SIDE = 256  # per-pixel figures are the same from here up (400, 640 measured alike)


def peak_live_bytes(call, trace_path) -> int:
    """The most CPU bytes allocated at once by ``call`` (and not yet freed), from the profiler's memory events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as recorded:
        call()
    recorded.export_chrome_trace(str(trace_path))
    events = json.loads(trace_path.read_text())["traceEvents"]
    return max(e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]")


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_peak_bytes_per_pixel_is_measured(backbone: str, tmp_path) -> None:
    context = InferenceContext.create("cpu", "fp32")
    model = context.prepare(build_model(backbone).eval())
    generator = torch.Generator().manual_seed(0)

    def encode_supports(n: int) -> None:
        images = torch.randn(n, 3, SIDE, SIDE, generator=generator)
        masks = (torch.rand(n, SIDE, SIDE, generator=generator) > 0.5).float()
        encode(model, context, images, masks)

    encode_supports(1)  # oneDNN's primitives and the folded weights exist before measuring
    one, three = (peak_live_bytes(lambda: encode_supports(n), tmp_path / f"{n}.json") for n in (1, 3))
    per_pixel = (three - one) / (2 * SIDE * SIDE)
    declared = PEAK_BYTES_PER_PIXEL[backbone]  # every backbone needs its figure
    assert 0.85 * declared <= per_pixel <= declared, f"{backbone}: measured {per_pixel:.0f} B/px, declared {declared}"
