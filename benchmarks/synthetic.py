"""Synthetic episode inputs: speed does not depend on the pixels, only on shapes and on how much the masks keep."""
from __future__ import annotations

import math

import torch


def support_masks(n: int, side: int, cover: float) -> torch.Tensor:
    """(n, side, side) masks: a centred ellipse covering ``cover`` of the image (1.0: everything)."""
    if cover >= 1:
        return torch.ones(n, side, side)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    # Semi-axes 0.8r and r/0.8: area pi*r^2 of the square's 4 (exact while r/0.8 <= 1, i.e. cover <= 0.5).
    radius = math.sqrt(4 * cover / math.pi)
    mask = ((yy / (radius * 0.8)) ** 2 + (xx / (radius / 0.8)) ** 2 <= 1).float()
    return mask.expand(n, side, side).contiguous()


def episode_tensors(batch: int, shots: int, side: int, cover: float,
                    device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalized-looking query (B, 3, S, S), supports (B, K, 3, S, S) and masks (B, K, S, S), seeded."""
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(batch, 3, side, side, generator=generator)
    supports = torch.randn(batch, shots, 3, side, side, generator=generator)
    masks = support_masks(batch * shots, side, cover).view(batch, shots, side, side)
    return query.to(device), supports.to(device), masks.to(device)
