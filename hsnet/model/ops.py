"""The three operations HSNet is built from, as one replaceable set: the formulas here; ``hsnet.runtime`` picks
faster kernels computing the same values for its device (folded BatchNorm, sparse correlation, kept pivots)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .backbone import ConvBN, unfolded
from .correlation import correlate
from .learner import Conv4d, apply_conv4d


@dataclass(frozen=True)
class Ops:
    """How a backbone conv + BatchNorm pair, the correlation of one level and a center-pivot conv are computed."""

    conv_bn: ConvBN = unfolded
    correlate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = correlate
    conv4d: Conv4d = apply_conv4d


FORMULAS = Ops()  # the mathematics as written: any device, autograd, compiled graphs
