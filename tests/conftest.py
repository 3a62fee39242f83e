"""Shared fixtures: small real HSNet models with seeded random weights, and seeded photos and masks."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

import hsnet

Photo = Callable[[int, int, int], Image.Image]
Blob = Callable[[int, int], np.ndarray]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` run wherever a CUDA GPU is visible and are skipped, saying why, elsewhere."""
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none visible here); benchmarks/gpu.sh runs these on one")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(no_gpu)


def seeded_model(backbone: str = "resnet50", seed: int = 0, **options: object) -> hsnet.HSNet:
    """An HSNet whose every parameter and BatchNorm statistic is seeded noise (deterministic)."""
    torch.manual_seed(seed)
    model = hsnet.build_model(backbone, **options)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                tensor.normal_(0, 0.1)
    return model.eval()


@pytest.fixture(scope="session")
def resnet50() -> hsnet.HSNet:
    """One random-weight ResNet-50 HSNet for the whole run (treat as read-only)."""
    return seeded_model("resnet50")


@pytest.fixture(scope="session")
def predictor_resnet50() -> hsnet.HSNet:
    """A random-weight ResNet-50 HSNet of its own for Predictors, which fold its BatchNorm on the CPU: the shared
    ``resnet50`` stays the plain model that other tests compare bit for bit."""
    return seeded_model("resnet50")


@pytest.fixture(scope="session")
def vgg16() -> hsnet.HSNet:
    """One random-weight VGG-16 HSNet for the whole run (treat as read-only)."""
    return seeded_model("vgg16")


@pytest.fixture(scope="session")
def seeded() -> Callable[..., hsnet.HSNet]:
    """``seeded(backbone, seed, **options)``: a fresh random-weight HSNet of its own (for tests that change it)."""
    return seeded_model


@pytest.fixture(scope="session")
def photo() -> Photo:
    """``photo(width, height, seed)``: an RGB noise image."""
    def make(width: int, height: int, seed: int) -> Image.Image:
        rng = np.random.default_rng(seed)
        return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return make


@pytest.fixture(scope="session")
def blob() -> Blob:
    """``blob(width, height)``: a boolean mask marking the middle half of each side."""
    def make(width: int, height: int) -> np.ndarray:
        mask = np.zeros((height, width), bool)
        mask[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = True
        return mask
    return make


@pytest.fixture
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private hsnet cache, no local splits folder from the environment, and no reachable download source."""
    cache = tmp_path_factory.mktemp("hsnet-cache")
    monkeypatch.setenv("HSNET_CACHE_DIR", str(cache))
    monkeypatch.delenv("HSNET_SPLITS_DIR", raising=False)
    monkeypatch.setenv("HSNET_SPLITS_URL", "http://127.0.0.1:9/")
    return cache


@pytest.fixture
def onednn_operands(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, for each call of the oneDNN product, whether every operand it got was contiguous (issue 23)."""
    from hsnet.runtime.cpu import linear as linear_module

    handed: list[bool] = []
    original = linear_module.onednn_linear

    def watching(rows, weight, bias, *args):
        handed.append(all(t is None or t.is_contiguous() for t in (rows, weight, bias)))
        return original(rows, weight, bias, *args)

    monkeypatch.setattr(linear_module, "onednn_linear", watching)
    return handed
