"""Every Predictor path bounds its peak memory (issue 13): K supports and B queries go through the backbone,
correlation and learner in bounded passes, and a large query is worked at model resolution."""
from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hsnet import Predictor
from hsnet.runtime.passes import image_bytes, pair_bytes

SIDE = 64


@pytest.fixture()
def recorded(predictor_resnet50, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Images per backbone call and (query, support) pairs per correlation call of ``predictor_resnet50``."""
    calls: dict[str, list[int]] = {"backbone": [], "pairs": []}
    backbone, hypercorrelation = predictor_resnet50.backbone_features, predictor_resnet50.hypercorrelation

    def record_backbone(images: torch.Tensor, *args) -> list[torch.Tensor]:
        calls["backbone"].append(images.shape[0])
        return backbone(images, *args)

    def record_pairs(*args, **kwargs) -> list[torch.Tensor]:
        corr = hypercorrelation(*args, **kwargs)
        calls["pairs"].append(corr[0].shape[0])
        return corr

    monkeypatch.setattr(predictor_resnet50, "backbone_features", record_backbone)
    monkeypatch.setattr(predictor_resnet50, "hypercorrelation", record_pairs)
    return calls


def budgeted(model, pairs: int, photo, blob) -> Predictor:
    """A CPU predictor at SIDE whose passes hold ``pairs`` (query, support) pairs' correlation."""
    predictor = Predictor(model, device="cpu", image_size=SIDE)
    one = pair_bytes(predictor.encode_query(photo(SIDE, SIDE, 0)).features.levels,
                     predictor.set_supports(photo(SIDE, SIDE, 1), blob(SIDE, SIDE)).features.levels)
    predictor.context = dataclasses.replace(predictor.context, max_pass_bytes=pairs * one)
    predictor.clear_cache()
    return predictor


def test_k_supports_never_correlate_all_at_once(predictor_resnet50, recorded, photo, blob) -> None:
    supports, masks = [photo(80, 60, k) for k in range(5)], [blob(80, 60)] * 5
    predictor = budgeted(predictor_resnet50, 2, photo, blob)
    recorded["pairs"].clear()
    bounded = predictor.predict(photo(70, 50, 9), supports, masks)
    assert recorded["pairs"] == [2, 2, 1]  # never the 5 pairs at once
    handle = predictor.set_supports(supports, masks)
    recorded["pairs"].clear()
    results = list(predictor.predict_many([photo(70, 50, 9)] * 3, handle, batch_size=3))
    assert max(recorded["pairs"]) <= 2 and sum(recorded["pairs"]) == 15
    whole = Predictor(predictor_resnet50, device="cpu", image_size=SIDE).predict(photo(70, 50, 9), supports, masks)
    for result in (bounded, *results):
        np.testing.assert_allclose(result.shot_probabilities, whole.shot_probabilities, atol=1e-5)
        assert np.array_equal(result.mask, whole.mask)


def test_backbone_batches_are_bounded(predictor_resnet50, recorded, photo, blob) -> None:
    predictor = Predictor(predictor_resnet50, device="cpu", image_size=SIDE)
    two_images = 2 * image_bytes(predictor_resnet50, SIDE, SIDE)
    predictor.context = dataclasses.replace(predictor.context, max_pass_bytes=two_images)
    handle = predictor.set_supports([photo(80, 60, k) for k in range(5)], [blob(80, 60)] * 5)
    assert recorded["backbone"] == [2, 2, 1]
    recorded["backbone"].clear()
    list(predictor.predict_many([photo(40, 40, k) for k in range(3)], handle, batch_size=3))
    assert recorded["backbone"] == [2, 1]
    recorded["backbone"].clear()
    predictor.predict(photo(40, 40, 0), [photo(30, 30, 1), photo(30, 30, 2)], [blob(30, 30)] * 2)
    assert recorded["backbone"] == [1, 2]  # query and supports would be 3 images: not one batch


def test_a_large_query_is_worked_at_model_resolution(predictor_resnet50, monkeypatch, photo, blob) -> None:
    """Only one-channel maps (the final mask, then what is asked for) are made at the query's full size."""
    width, height, shots = 1500, 1000, 3
    predictor = Predictor(predictor_resnet50, device="cpu", image_size=SIDE)
    sizes: list[tuple[int, ...]] = []
    monkeypatch.setattr(F, "interpolate", functools.partial(_recording, sizes, F.interpolate))
    handle = predictor.set_supports([photo(90, 70, k) for k in range(shots)], [blob(90, 70)] * shots)
    result = predictor.predict(photo(width, height, 7), handle)
    full = [s for s in sizes if s[-2:] == (height, width)]
    assert full == [(1, 1, height, width)]  # the final mask, nothing per support
    assert max(max(s[-2:]) for s in sizes if s[-2:] != (height, width)) <= SIDE  # the rest at model resolution
    assert result.shot_probabilities.shape == (shots, SIDE, SIDE)
    sizes.clear()
    assert len(result.shot_masks) == shots and result.probability.shape == (height, width)
    assert sizes == [(1, 1, height, width)] * (shots + 1)  # asked for: one map at a time


def _recording(sizes: list, interpolate, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    out = interpolate(x, *args, **kwargs)
    sizes.append(tuple(out.shape))
    return out


PEAK_SCRIPT = """
import resource
import numpy as np
import torch
from PIL import Image
import hsnet

torch.manual_seed(0)
predictor = hsnet.Predictor(hsnet.build_model("resnet50"), device="cpu", image_size=64)
rng = np.random.default_rng(0)
supports = [Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) for _ in range(5)]
mask = np.zeros((300, 400), bool)
mask[50:250, 100:300] = True
query = Image.new("RGB", (8000, 5000), (120, 60, 30))  # 40 megapixels
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = predictor.predict(query, supports, [mask] * 5)
assert result.mask.shape == (5000, 8000)
print(before * 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


@pytest.mark.slow
def test_a_40_megapixel_query_with_5_supports_costs_little_memory() -> None:
    """Measured before: 4.8 GB. Now the query's own pixels plus one full-size map (~0.4 GB over the model)."""
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent, check=True)
    before, peak = map(int, done.stdout.split())
    assert peak - before < 700 * 2**20, (before, peak)
