"""Hypercorrelation: cosine similarity of every query position with every support position."""
from __future__ import annotations

import torch

from .linear import linear

EPS = 1e-5
# On the CPU, a support whose nonzero positions are at most this fraction of all
# positions is correlated with those positions only (docs/performance.md, "Design notes").
SPARSE_SUPPORT_FRACTION = 0.5


def stack_level(features: list[torch.Tensor]) -> torch.Tensor:
    """Stack same-shaped features (B, C, H, W) of one level and L2-normalize channels: (B, L, C, H, W)."""
    x = torch.stack(features, dim=1)
    return x / (x.norm(dim=2, keepdim=True) + EPS)


def correlate(query: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Clamped cosine similarity of normalized features.

    query (B, L, C, Hq, Wq) and support (B, K, L, C, Hs, Ws), where query b meets
    its own K supports, or (1, K, L, C, Hs, Ws), K supports every query meets,
    give (B*K, L, Hq, Wq, Hs, Ws) with values in [0, 1].

    A support position whose features are all zero (outside the support mask)
    correlates to exactly 0 with everything. On the CPU, supports whose mask
    leaves at most ``SPARSE_SUPPORT_FRACTION`` of the positions are multiplied
    with those positions only and the rest is filled with zeros: same values,
    a fraction of the matrix product (the largest cost at level 2); the products
    go through ``linear`` (oneDNN in fp32), one layer at a time.
    """
    b, n_layers, c, hq, wq = query.shape
    groups, k, hs, ws = support.shape[0], support.shape[1], support.shape[-2], support.shape[-1]
    q = query.reshape(b, 1, n_layers, c, hq * wq).transpose(-1, -2)
    s = support.reshape(groups, k, n_layers, c, hs * ws)
    if support.device.type != "cpu":  # GPU work stays free of data-dependent shapes and host syncs
        return torch.matmul(q, s).clamp_(min=0).view(b * k, n_layers, hq, wq, hs, ws)
    active = s.abs().amax(dim=(2, 3)) > 0  # (G, K, Hs*Ws): positions the mask kept
    sparse = active.sum(dim=-1) <= SPARSE_SUPPORT_FRACTION * hs * ws
    corr = None
    for i in range(b):
        g = i if groups > 1 else 0
        for j in range(k):
            columns = active[g, j].nonzero().squeeze(1) if sparse[g, j] else None
            kept = s[g, j] if columns is None else s[g, j].index_select(-1, columns)
            for layer in range(n_layers):  # one product per layer: oneDNN takes 2D operands
                part = linear(q[i, 0, layer], kept[layer].transpose(0, 1))
                if corr is None:  # the product's dtype (autocast may lower it)
                    corr = part.new_zeros(b, k, n_layers, hq * wq, hs * ws)
                if columns is None:
                    corr[i, j, layer].copy_(part)
                else:
                    corr[i, j, layer].index_copy_(-1, columns, part)
    return corr.clamp_(min=0).view(b * k, n_layers, hq, wq, hs, ws)
