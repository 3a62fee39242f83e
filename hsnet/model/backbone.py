"""Frozen torchvision backbones and the intermediate features HSNet correlates.

The backbone module keeps torchvision's parameter names (so the authors'
checkpoints and torchvision's ImageNet weights both load); the ImageNet
classifier head is removed because HSNet never uses it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

ConvBN = Callable[[nn.Conv2d, nn.BatchNorm2d, torch.Tensor], torch.Tensor]  # bn(conv(x)); hsnet.runtime folds it
Extractor = Callable[[nn.Module, torch.Tensor, ConvBN], list[torch.Tensor]]


def unfolded(conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` as the two modules: the model's own path (autograd, GPUs, compiled graphs)."""
    return bn(conv(x))


def _resnet_features(net: nn.Module, x: torch.Tensor, conv_bn: ConvBN) -> list[torch.Tensor]:
    """Every bottleneck of layer2..layer4, after the residual sum and before its ReLU."""
    x = net.maxpool(F.relu(conv_bn(net.conv1, net.bn1, x), inplace=True))
    feats = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            identity = x if block.downsample is None else conv_bn(block.downsample[0], block.downsample[1], x)
            out = F.relu(conv_bn(block.conv1, block.bn1, x), inplace=True)
            out = F.relu(conv_bn(block.conv2, block.bn2, out), inplace=True)
            out = conv_bn(block.conv3, block.bn3, out) + identity
            if layer is not net.layer1:
                feats.append(out)
            x = F.relu(out)
    return feats


VGG_TAPS = (17, 19, 21, 24, 26, 28, 30)


def _vgg_features(net: nn.Module, x: torch.Tensor, conv_bn: ConvBN) -> list[torch.Tensor]:
    """conv4_1..conv5_3 before their ReLU, and the last max-pool (VGG-16 has no BatchNorm: ``conv_bn`` is unused)."""
    feats = []
    for index, module in enumerate(net.features[: VGG_TAPS[-1] + 1]):
        x = F.relu(x) if isinstance(module, nn.ReLU) else module(x)
        if index in VGG_TAPS:
            feats.append(x)
    return feats


@dataclass(frozen=True)
class BackboneSpec:
    """What HSNet needs to know about one backbone."""

    name: str
    builder: Callable[..., nn.Module]
    imagenet_weights: object
    extract: Extractor
    layer_names: tuple[str, ...]
    level_sizes: tuple[int, int, int]  # layers in level 4, 3, 2 (deepest first)
    level_channels: tuple[int, int, int]  # feature channels of level 4, 3, 2
    # Parameters (backbone-relative names and shapes) a state dict of this backbone has, and names it must not
    # have: together they tell it from its deeper or batch-normalised siblings (ResNet-152, VGG-19, VGG-16-BN).
    present: tuple[tuple[str, tuple[int, ...]], ...]
    absent: tuple[str, ...]

    def matches(self, shapes: Mapping[str, Sequence[int]]) -> bool:
        """Whether backbone-relative parameter ``shapes`` (name -> shape) are this backbone's."""
        return (all(tuple(shapes.get(name, ())) == shape for name, shape in self.present)
                and not any(name in shapes for name in self.absent))

    def build(self, pretrained: bool = False) -> nn.Module:
        """The torchvision network without its classifier, frozen and in eval mode."""
        net = self.builder(weights=self.imagenet_weights if pretrained else None)
        if hasattr(net, "fc"):
            net.fc = nn.Identity()
        else:
            net.avgpool, net.classifier = nn.Identity(), nn.Identity()
        for p in net.parameters():
            p.requires_grad_(False)
        return net.eval()


def _resnet_layer_names(blocks: tuple[int, int, int]) -> tuple[str, ...]:
    return tuple(f"layer{layer}.{i}" for layer, n in zip((2, 3, 4), blocks) for i in range(n))


def _resnet_identity(blocks: tuple[int, int, int, int]) -> dict:
    """A bottleneck ResNet with ``blocks`` per stage: each stage's last block present, one more absent."""
    present = [("conv1.weight", (64, 3, 7, 7))]
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
        present.append((f"layer{stage}.{n - 1}.conv3.weight", (4 * width, width, 1, 1)))
    absent = tuple(f"layer{stage}.{n}.conv1.weight" for stage, n in enumerate(blocks, start=1))
    return {"present": tuple(present), "absent": absent}


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(
        "resnet50", models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, _resnet_features,
        _resnet_layer_names((4, 6, 3)), (3, 6, 4), (2048, 1024, 512), **_resnet_identity((3, 4, 6, 3)),
    ),
    "resnet101": BackboneSpec(
        "resnet101", models.resnet101, models.ResNet101_Weights.IMAGENET1K_V1, _resnet_features,
        _resnet_layer_names((4, 23, 3)), (3, 23, 4), (2048, 1024, 512), **_resnet_identity((3, 4, 23, 3)),
    ),
    "vgg16": BackboneSpec(
        "vgg16", models.vgg16, models.VGG16_Weights.IMAGENET1K_V1, _vgg_features,
        ("conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3", "pool5"), (1, 3, 3), (512, 512, 512),
        present=(("features.0.weight", (64, 3, 3, 3)), ("features.28.weight", (512, 512, 3, 3))),
        absent=("features.1.weight", "features.16.weight", "features.30.weight"),  # VGG-16-BN, VGG-19
    ),
}


def detect_backbone(state_dict_shapes: Mapping[str, Sequence[int]]) -> str | None:
    """The backbone of an HSNet state dict from its parameter names and shapes (``module.`` prefix or not); None
    when no entry of ``BACKBONES`` matches exactly one way."""
    prefix = "backbone."
    shapes = {key.removeprefix("module.").removeprefix(prefix): shape for key, shape in state_dict_shapes.items()
              if key.removeprefix("module.").startswith(prefix)}
    found = [name for name, spec in BACKBONES.items() if spec.matches(shapes)]
    return found[0] if len(found) == 1 else None
