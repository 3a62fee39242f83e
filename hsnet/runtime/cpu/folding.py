"""A frozen backbone's convolution + BatchNorm pairs run as one convolution on the CPU.

In eval mode BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals a
convolution with weight ``w * g / sqrt(v + eps)`` and bias ``b - m * g / sqrt(v + eps)``
(the same values up to float rounding). The backbone module keeps its own
parameters; the folded copies live here and are refolded when a source changes.
"""
from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

from ...model.backbone import unfolded
from ...model.hsnet import HSNet

_Sources = tuple[tuple[torch.Tensor, int], ...]


def _sources(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, ...]:
    return conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var


def _unchanged(held: _Sources, current: tuple[torch.Tensor, ...]) -> bool:
    """True when every current tensor is the held storage (kept alive, so its address is not reused) unmodified."""
    return all(t.data_ptr() == h.data_ptr() and t._version == version for (h, version), t in zip(held, current))


class ConvBNFolder:
    """Calls ``bn(conv(x))`` (a convolution without bias, as in ResNets) as one folded convolution on the CPU.

    Elsewhere (GPUs, compiled graphs) the two modules run as they are.

    Each pair's folded weight is kept until one of its sources changes.
    A source changes when weights are loaded (an in-place copy bumps the tensor's
    version) or the model moves to another device or dtype (new storage). Parameters
    created in inference mode keep no version, so their pairs run unfolded.
    """

    def __init__(self) -> None:
        self._folded: dict[int, tuple[_Sources, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        current = _sources(conv, bn)
        if x.device.type != "cpu" or torch.compiler.is_compiling() or any(t.is_inference() for t in current):
            return unfolded(conv, bn, x)
        entry = self._folded.get(id(conv))
        if entry is None or not _unchanged(entry[0], current):
            entry = (tuple((t.detach(), t._version) for t in current), *self._fold(conv, bn))
            self._folded[id(conv)] = entry
        return F.conv2d(x, entry[1], entry[2], conv.stride, conv.padding, conv.dilation, conv.groups)

    @staticmethod
    def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable in and out of inference mode
            scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
            weight = (conv.weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
            bias = bn.bias - bn.running_mean * scale
        return weight, bias


_FOLDERS: weakref.WeakKeyDictionary[HSNet, ConvBNFolder] = weakref.WeakKeyDictionary()


def folder_for(model: HSNet) -> ConvBNFolder:
    """The folded conv + BatchNorm pairs of ``model``'s backbone, kept while the model lives."""
    folder = _FOLDERS.get(model)
    if folder is None:
        folder = _FOLDERS[model] = ConvBNFolder()
    return folder
