"""Shared fixtures: small real HSNet models with seeded random weights."""
from __future__ import annotations

import pytest
import torch

import hsnet


def seeded_model(backbone: str = "resnet50", seed: int = 0) -> hsnet.HSNet:
    """An HSNet whose every parameter and BatchNorm statistic is seeded noise (deterministic)."""
    torch.manual_seed(seed)
    model = hsnet.build_model(backbone)
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
def vgg16() -> hsnet.HSNet:
    """One random-weight VGG-16 HSNet for the whole run (treat as read-only)."""
    return seeded_model("vgg16")
