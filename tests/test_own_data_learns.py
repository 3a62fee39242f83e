"""Fine-tuning on one's own data learns: a few CPU minutes raise the held-out mIoU well above where it started.

The domain: three classes of striped, coloured shapes on grey noise (tests/synthetic_datasets.py),
ten photos each, so the images of each class are split 80/20. The checkpoint to start from is a
random-weight VGG-16 HSNet (no pretrained weights offline), saved as a user's checkpoint would be.
Both numbers come from `hsnet evaluate` on the same held-out photos.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import hsnet
from hsnet.cli import main
from synthetic_datasets import make_shapes

SIDE = "48"
MARGIN = 10.0  # mIoU points; measured on a loaded 2-core machine: from 26 to 43 after 40 steps


def _evaluate(data: Path, weights: Path, output: Path) -> dict:
    assert main(["evaluate", "--data", str(data), "--weights", str(weights), "--image-size", SIDE, "--device", "cpu",
                 "--batch-size", "6", "--no-progress", "--output", str(output)]) == 0
    return json.loads(output.read_text())


@pytest.mark.slow
def test_fine_tuning_raises_the_held_out_miou(tmp_path: Path, seeded) -> None:
    make_shapes(tmp_path / "data", classes=3, per_class=10, side=int(SIDE))
    init = hsnet.save_pretrained(seeded("vgg16"), tmp_path / "init")
    before = _evaluate(tmp_path / "data", init, tmp_path / "before.json")
    code = main(["train", "--data", str(tmp_path / "data"), "--init", str(init), "--backbone", "vgg16",
                 "--out", str(tmp_path / "run"), "--epochs", "16", "--batch-size", "8", "--lr", "5e-3",
                 "--image-size", SIDE, "--workers", "0", "--device", "cpu", "--no-progress"])
    assert code == 0
    after = _evaluate(tmp_path / "data", tmp_path / "run" / "best", tmp_path / "after.json")
    assert before["episodes"] == after["episodes"] == 6  # the same held-out photos: 2 of each class's 10
    assert after["miou"] >= before["miou"] + MARGIN, (before["miou"], after["miou"])
