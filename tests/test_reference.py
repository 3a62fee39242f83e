"""The model against outputs of the authors' implementation (../shared/tools/reference_check.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

CHECK = Path(__file__).resolve().parents[2] / "shared" / "tools" / "reference_check.py"


def load_check():
    spec = importlib.util.spec_from_file_location("reference_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not CHECK.is_file(), reason="../shared/tools/reference_check.py is not beside this checkout")
@pytest.mark.parametrize("case", ["resnet50-1shot", "resnet101-1shot", "vgg16-1shot", "resnet50-5shot"])
def test_matches_the_authors_outputs(case: str) -> None:
    check = load_check()
    want = np.load(check.REF / f"expected-{case}.npz")["out"]
    ok, detail = check.compare(case, check.run_project(case), want)
    assert ok, detail
