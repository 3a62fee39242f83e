"""Every front end against the authors' outputs (tests/reference/*.npz), not only against each other (issue 20).

The tensor API (``model(...)``, ``predict_mask``) is checked in test_reference.py. Here: evaluation's episode
path (``hsnet.runtime.episode_logits`` + the k-shot rule, as ``hsnet evaluate`` runs it), the Predictor with
images in, and ``hsnet predict`` on image files. The reference inputs are normalised floats; as images they are
rounded to 8 bits (and about 4% of values clipped to the displayable range), so the image front ends are held to
99% mask agreement with the authors' masks, the tensor paths to the authors' own tolerance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hsnet
from hsnet.cli import main as cli
from hsnet.model import combine_shots
from hsnet.runtime import InferenceContext, episode_logits
from test_reference import CASES, REFERENCE, reference_inputs, reference_weights

MEAN = np.array([0.485, 0.456, 0.406])[:, None, None]
STD = np.array([0.229, 0.224, 0.225])[:, None, None]
QUICK = "resnet50-1shot"  # the one case outside the slow tests
CASE_PARAMS = [pytest.param(case, marks=() if case == QUICK else pytest.mark.slow) for case in CASES]


def as_image(normalised: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) tensor as the (H, W, 3) uint8 RGB image it stands for."""
    return np.clip(np.rint((normalised.numpy() * STD + MEAN) * 255), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def authors_masks(case: str) -> np.ndarray:
    """(B, H, W) bool: the authors' foreground (argmax of their 1-shot logits, or their 5-shot vote)."""
    want = np.load(REFERENCE / f"expected-{case}.npz")["out"]
    return want[:, 1] > want[:, 0] if CASES[case][2] == 1 else want > 0.5


def reference_model(case: str) -> hsnet.HSNet:
    backbone, _, _, side, seed = CASES[case]
    return hsnet.load_weights(hsnet.build_model(backbone, image_size=side), reference_weights(backbone, seed)).eval()


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_evaluation_episodes_match_the_authors(case: str) -> None:
    backbone, batch, shots, side, seed = CASES[case]
    want = np.load(REFERENCE / f"expected-{case}.npz")["out"]
    query, supports, masks = reference_inputs(batch, shots, side, seed)
    logits = episode_logits(reference_model(case), InferenceContext.create("cpu"), query, supports, masks)
    if shots == 1:
        got = logits[:, 0].numpy()
        assert float(np.abs(got - want).max()) <= 1e-3 * max(1.0, float(np.abs(want).max()))
    assert float((combine_shots(logits, "vote").numpy().astype(bool) == authors_masks(case)).mean()) >= 0.999


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_the_predictor_with_images_in_matches_the_authors(case: str) -> None:
    backbone, batch, shots, side, seed = CASES[case]
    query, supports, masks = reference_inputs(batch, shots, side, seed)
    predictor = hsnet.Predictor(reference_model(case), device="cpu")
    want = authors_masks(case)
    for b in range(batch):
        result = predictor.predict(as_image(query[b]), [as_image(s) for s in supports[b]],
                                   [m.numpy() > 0.5 for m in masks[b]])
        assert result.precision == "fp32"
        assert float((result.mask == want[b]).mean()) >= 0.99


@pytest.mark.parametrize("case", [QUICK, pytest.param("resnet50-5shot", marks=pytest.mark.slow)])
def test_hsnet_predict_on_image_files_matches_the_authors(case: str, tmp_path: Path) -> None:
    backbone, batch, shots, side, seed = CASES[case]
    query, supports, masks = reference_inputs(batch, shots, side, seed)
    weights = hsnet.save_pretrained(reference_model(case), tmp_path / "weights")
    Image.fromarray(as_image(query[0])).save(tmp_path / "query.png")
    arguments = ["predict", "--query", str(tmp_path / "query.png"), "--weights", str(weights), "--device", "cpu",
                 "--image-size", str(side), "--out", str(tmp_path / "out")]
    for k in range(shots):
        Image.fromarray(as_image(supports[0, k])).save(tmp_path / f"support{k}.png")
        Image.fromarray((masks[0, k].numpy() > 0.5).astype(np.uint8) * 255).save(tmp_path / f"mask{k}.png")
        arguments += ["--support", str(tmp_path / f"support{k}.png"), "--support-mask", str(tmp_path / f"mask{k}.png")]
    assert cli(arguments) == 0
    got = np.asarray(Image.open(tmp_path / "out" / "mask.png")) > 127
    assert float((got == authors_masks(case)[0]).mean()) >= 0.99
