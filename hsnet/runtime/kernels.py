"""Which kernels compute the model's operations: the CPU kernels for CPU inference, the formulas elsewhere.

The formulas (``hsnet.model.FORMULAS``) serve GPUs (no data-dependent shapes, no host
syncs), autograd and compiled graphs; CPU inference takes ``hsnet.runtime.cpu``.
"""
from __future__ import annotations

import torch

from ..model import FORMULAS, HSNet, Ops
from .cpu.conv4d import conv4d
from .cpu.correlation import correlate
from .cpu.folding import folder_for


def pick_ops(model: HSNet, device: torch.device, training: bool = False) -> Ops:
    """The operations for ``model`` on ``device``; ``training`` (gradients wanted) keeps the formulas."""
    if device.type != "cpu" or training:
        return FORMULAS
    return Ops(conv_bn=folder_for(model), correlate=correlate, conv4d=conv4d)
