"""The authors' HSNet loaded from a clone of their repository: the baseline the benchmark times hsnet against.

Their code is never copied into hsnet: ``--authors-code DIR`` points at a clone
(github.com/juhongm999/hsnet). Their top-level packages ``model`` and ``common``
are loaded from DIR by importlib, so their absolute imports resolve without
touching ``sys.path``. Their backbones ask torchvision for ImageNet weights;
those are served from a temporary TORCH_HOME holding random weights, and the
caller then loads one full state dict into both models.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from torchvision import models

PACKAGES = ("model", "common")
IMAGENET_WEIGHTS = {"resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
                    "resnet101": (models.resnet101, models.ResNet101_Weights.IMAGENET1K_V1),
                    "vgg16": (models.vgg16, models.VGG16_Weights.IMAGENET1K_V1)}


def load_package(root: Path, name: str) -> None:
    """Import ``root/name`` as the top-level package ``name`` (regular or namespace), registered in sys.modules."""
    folder = root / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist; --authors-code takes a clone of the authors' repository")
    init = folder / "__init__.py"
    if init.exists():
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    else:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)


@contextmanager
def random_imagenet_weights(backbone: str) -> Iterator[None]:
    """Inside, torchvision finds random weights in its cache where it looks for ``backbone``'s ImageNet ones."""
    builder, weights = IMAGENET_WEIGHTS[backbone]
    before = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory(prefix="hsnet-bench-torch-home-") as home:
        checkpoints = Path(home) / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        torch.save(builder().state_dict(), checkpoints / weights.url.rsplit("/", 1)[-1])
        os.environ["TORCH_HOME"] = home
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = before


def build_authors_model(code_dir: Path, backbone: str) -> nn.Module:
    """The authors' ``HypercorrSqueezeNetwork`` (random weights, eval mode) from their clone in ``code_dir``."""
    for name in PACKAGES:
        if name not in sys.modules:
            load_package(Path(code_dir), name)
    network = importlib.import_module("model.hsnet").HypercorrSqueezeNetwork
    with random_imagenet_weights(backbone), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation notice for pretrained=True
        return network(backbone, use_original_imgsize=False).eval()
