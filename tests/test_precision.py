"""The precision policy (issue 21): fp32 means float32, fp16 never returns a result made of non-finite values, and a
Prediction says which precision produced it. CPU-testable parts: fp16 runs here under CPU autocast."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import hsnet
from hsnet.runtime import CUDA_DEFAULT_PRECISION, InferenceContext, encode, resolve_precision, run_episode
from hsnet.runtime.context import float32_matmul

CPU = torch.device("cpu")


def test_precision_names_resolve_per_device() -> None:
    assert resolve_precision(CPU) == "fp32" and resolve_precision(CPU, "auto") == "fp32"
    assert resolve_precision(CPU, "tf32") == "tf32" and resolve_precision(CPU, "bf16") == "bf16"
    assert resolve_precision(torch.device("cuda"), None) == CUDA_DEFAULT_PRECISION == "fp32"
    for bad in ("fp8", "FP32", ""):
        with pytest.raises(hsnet.InputError, match="unknown precision"):
            resolve_precision(CPU, bad)
    with pytest.raises(hsnet.InputError, match="fp16 needs a GPU"):
        resolve_precision(CPU, "fp16")


@pytest.mark.parametrize("precision,inside", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_tf32_is_on_only_when_asked_and_only_within_the_context(precision: str, inside: bool) -> None:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        for before in (True, False):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = before
            with float32_matmul(torch.device("cuda"), precision == "tf32"):
                assert torch.backends.cuda.matmul.allow_tf32 is inside and torch.backends.cudnn.allow_tf32 is inside
            assert torch.backends.cuda.matmul.allow_tf32 is before and torch.backends.cudnn.allow_tf32 is before
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def overflowing(seeded) -> hsnet.HSNet:
    """Weights whose deepest features exceed fp16's range (65504), as the shared ResNet-101 reference weights do."""
    model = seeded("resnet50", seed=7)
    with torch.no_grad():
        model.backbone.layer4[-1].bn3.weight.mul_(1e6)
    return model


def episode_inputs(side: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(8)
    masks = torch.zeros(2, side, side)
    masks[:, side // 4: 3 * side // 4, side // 4: 3 * side // 4] = 1
    return torch.randn(1, 3, side, side), torch.randn(2, 3, side, side), masks


def test_fp16_overflow_is_computed_again_in_bf16_and_said_once(overflowing) -> None:
    query, supports, masks = episode_inputs()
    fp32 = InferenceContext.create("cpu", "fp32")
    fp16 = InferenceContext(CPU, "fp16")  # CPU autocast runs fp16 here; create() refuses it for users (slow)
    q32, _ = encode(overflowing, fp32, query)
    s32, _ = encode(overflowing, fp32, supports, masks)
    assert all(torch.isfinite(x).all() for x in q32.levels)
    with pytest.warns(RuntimeWarning, match="fp16 overflowed in the backbone features.*computed again in bf16"):
        q16, query_precision = encode(overflowing, fp16, query)
    s16, support_precision = encode(overflowing, fp16, supports, masks)  # said once: no second warning needed
    assert query_precision == support_precision == "fp16->bf16"
    episode = run_episode(overflowing, fp16, q16, s16, 2, (64, 64))
    expected = run_episode(overflowing, fp32, q32, s32, 2, (64, 64))
    assert torch.isfinite(episode.logits).all()
    agreement = (episode.logits.argmax(dim=2) == expected.logits.argmax(dim=2)).float().mean()
    assert agreement >= 0.95
    assert len([m for m in fp16.announced if "backbone" in m]) == 1


def test_a_pass_whose_logits_overflow_is_computed_again(resnet50, monkeypatch: pytest.MonkeyPatch) -> None:
    """The learner's half of the guard: a pass whose fp16 logits are not finite runs again in bf16."""
    query, supports, masks = episode_inputs()
    context = InferenceContext(CPU, "fp16")
    q, _ = encode(resnet50, InferenceContext.create("cpu"), query)
    s, _ = encode(resnet50, InferenceContext.create("cpu"), supports, masks)
    decode = type(resnet50).decode

    def overflowing_in_fp16(self, corr, *args):
        logits = decode(self, corr, *args)
        return logits * torch.inf if torch.get_autocast_dtype("cpu") == torch.float16 else logits

    monkeypatch.setattr(type(resnet50), "decode", overflowing_in_fp16)
    with pytest.warns(RuntimeWarning, match="correlation and learner"):
        episode = run_episode(resnet50, context, q, s, 2, (64, 64))
    assert episode.precision == "fp16->bf16" and torch.isfinite(episode.logits).all()


def test_a_prediction_says_which_precision_made_it(overflowing, photo, blob) -> None:
    predictor = hsnet.Predictor(overflowing, device="cpu", image_size=64)
    assert predictor.predict(photo(50, 40, 1), photo(60, 60, 2), blob(60, 60)).precision == "fp32"
    predictor.context = InferenceContext(CPU, "fp16")
    with pytest.warns(RuntimeWarning):
        result = predictor.predict(photo(50, 40, 1), photo(60, 60, 2), blob(60, 60))
    assert result.precision == "fp16->bf16"
    assert np.isfinite(result.shot_probabilities).all()
