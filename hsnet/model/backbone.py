"""Frozen torchvision backbones and the intermediate features HSNet correlates.

The backbone module keeps torchvision's parameter names (so the authors'
checkpoints and torchvision's ImageNet weights both load); the ImageNet
classifier head is removed because HSNet never uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models

ConvBN = Callable[[nn.Conv2d, nn.BatchNorm2d, torch.Tensor], torch.Tensor]  # bn(conv(x)), see folding.py
Extractor = Callable[[nn.Module, torch.Tensor, ConvBN], list[torch.Tensor]]


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


BACKBONES: dict[str, BackboneSpec] = {
    "resnet50": BackboneSpec(
        "resnet50", models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, _resnet_features,
        _resnet_layer_names((4, 6, 3)), (3, 6, 4), (2048, 1024, 512),
    ),
    "resnet101": BackboneSpec(
        "resnet101", models.resnet101, models.ResNet101_Weights.IMAGENET1K_V1, _resnet_features,
        _resnet_layer_names((4, 23, 3)), (3, 23, 4), (2048, 1024, 512),
    ),
    "vgg16": BackboneSpec(
        "vgg16", models.vgg16, models.VGG16_Weights.IMAGENET1K_V1, _vgg_features,
        ("conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3", "pool5"), (1, 3, 3), (512, 512, 512),
    ),
}
