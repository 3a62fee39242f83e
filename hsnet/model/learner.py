"""The squeezing encoder, the coarse-to-fine mixing and the 2D decoder (``hpn_learner``)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .conv4d import CenterPivotConv4d

Conv4d = Callable[[CenterPivotConv4d, torch.Tensor], torch.Tensor]  # how a center-pivot conv is applied


def apply_conv4d(layer: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """The layer's own forward (the formula)."""
    return layer(x)


class Block(nn.Sequential):
    """(center-pivot conv, GroupNorm, ReLU) triples applied in order; ``conv4d`` applies each center-pivot conv."""

    def forward(self, x: torch.Tensor, conv4d: Conv4d = apply_conv4d) -> torch.Tensor:
        for layer in self:
            x = conv4d(layer, x) if isinstance(layer, CenterPivotConv4d) else layer(x)
        return x


def building_block(in_channels: int, out_channels: tuple[int, ...], kernels: tuple[int, ...],
                   strides: tuple[int, ...], on_correlation: bool = False) -> Block:
    """(center-pivot conv, GroupNorm(4), ReLU) triples, as indexed in the authors' checkpoints.

    ``on_correlation``: the block's input is a masked correlation (>= 0, zero at the support
    positions the mask removed), as its first convolution is told.
    """
    layers: list[nn.Module] = []
    for i, (out_ch, kernel, stride) in enumerate(zip(out_channels, kernels, strides)):
        conv = CenterPivotConv4d(in_channels, out_ch, kernel, stride, on_correlation=on_correlation and i == 0)
        layers += [conv, nn.GroupNorm(4, out_ch), nn.ReLU(inplace=True)]
        in_channels = out_ch
    return Block(*layers)


def resize_4d(x: torch.Tensor, query_size: tuple[int, int], support_size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize (align_corners=True) the query dims, then the support dims if they differ."""
    b, c, hq, wq, hs, ws = x.shape
    if (hq, wq) != tuple(query_size):
        x = x.permute(0, 4, 5, 1, 2, 3).reshape(b * hs * ws, c, hq, wq)
        x = F.interpolate(x, query_size, mode="bilinear", align_corners=True)
        hq, wq = query_size
        x = x.view(b, hs, ws, c, hq, wq).permute(0, 3, 4, 5, 1, 2)
    if (hs, ws) != tuple(support_size):
        x = x.permute(0, 2, 3, 1, 4, 5).reshape(b * hq * wq, c, hs, ws)
        x = F.interpolate(x, support_size, mode="bilinear", align_corners=True)
        hs, ws = support_size
        x = x.view(b, hq, wq, c, hs, ws).permute(0, 3, 1, 2, 4, 5)
    return x.contiguous()


class HPNLearner(nn.Module):
    """Squeezes the three hypercorrelation levels into 2-channel logits at twice level 2's query size."""

    def __init__(self, level_sizes: tuple[int, int, int]):
        super().__init__()
        n4, n3, n2 = level_sizes
        self.encoder_layer4 = building_block(n4, (16, 64, 128), (3, 3, 3), (2, 2, 2), on_correlation=True)
        self.encoder_layer3 = building_block(n3, (16, 64, 128), (5, 3, 3), (4, 2, 2), on_correlation=True)
        self.encoder_layer2 = building_block(n2, (16, 64, 128), (5, 5, 3), (4, 4, 2), on_correlation=True)
        self.encoder_layer4to3 = building_block(128, (128, 128, 128), (3, 3, 3), (1, 1, 1))
        self.encoder_layer3to2 = building_block(128, (128, 128, 128), (3, 3, 3), (1, 1, 1))
        self.decoder1 = nn.Sequential(
            nn.Conv2d(128, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 64, 3, padding=1), nn.ReLU()
        )
        self.decoder2 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 2, 3, padding=1))

    def forward(self, corr4: torch.Tensor, corr3: torch.Tensor, corr2: torch.Tensor,
                conv4d: Conv4d = apply_conv4d) -> torch.Tensor:
        """Logits (B*K, 2, h, w) of the three correlation levels; ``conv4d`` applies each center-pivot conv."""
        sqz4 = self.encoder_layer4(corr4, conv4d)
        sqz3 = self.encoder_layer3(corr3, conv4d)
        sqz2 = self.encoder_layer2(corr2, conv4d)
        mix43 = self.encoder_layer4to3(resize_4d(sqz4, sqz3.shape[2:4], sqz3.shape[4:6]) + sqz3, conv4d)
        mix432 = self.encoder_layer3to2(resize_4d(mix43, sqz2.shape[2:4], sqz2.shape[4:6]) + sqz2, conv4d)
        encoded = mix432.mean(dim=(-2, -1))
        decoded = self.decoder1(encoded)
        decoded = F.interpolate(decoded, (2 * decoded.shape[-2], 2 * decoded.shape[-1]), mode="bilinear", align_corners=True)
        return self.decoder2(decoded)
