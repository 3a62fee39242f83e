"""Hypercorrelation: cosine similarity of every query position with every support position."""
from __future__ import annotations

import torch

EPS = 1e-5


def stack_level(features: list[torch.Tensor]) -> torch.Tensor:
    """Stack same-shaped features (B, C, H, W) of one level and L2-normalize channels: (B, L, C, H, W)."""
    x = torch.stack(features, dim=1)
    return x / (x.norm(dim=2, keepdim=True) + EPS)


def correlate(query: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Clamped cosine similarity of normalized features.

    query (B, L, C, Hq, Wq) and support (B, K, L, C, Hs, Ws), where query b meets
    its own K supports, or (1, K, L, C, Hs, Ws), K supports every query meets,
    give (B*K, L, Hq, Wq, Hs, Ws) with values in [0, 1]. A support position whose
    features are all zero (outside the support mask) correlates to exactly 0.
    """
    b, n_layers, c, hq, wq = query.shape
    groups, k, hs, ws = support.shape[0], support.shape[1], support.shape[-2], support.shape[-1]
    q = query.reshape(b, 1, n_layers, c, hq * wq).transpose(-1, -2)
    s = support.reshape(groups, k, n_layers, c, hs * ws)
    return torch.matmul(q, s).clamp_(min=0).view(b * k, n_layers, hq, wq, hs, ws)
