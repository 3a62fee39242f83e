"""The hypercorrelation on the CPU: each support correlated with the positions its mask keeps.

A support whose mask leaves at most ``SPARSE_SUPPORT_FRACTION`` of its positions is
multiplied with those positions only and the rest is filled with zeros: the same values
as ``hsnet.model.correlate``, a fraction of the matrix product (the largest cost at
level 2). Products go through oneDNN (``linear``), one layer at a time.
"""
from __future__ import annotations

import torch

from .linear import linear

# Supports whose nonzero positions are at most this fraction of all positions take the sparse product.
SPARSE_SUPPORT_FRACTION = 0.5


def correlate(query: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``hsnet.model.correlate`` for CPU tensors (same shapes and values)."""
    b, n_layers, c, hq, wq = query.shape
    groups, k, hs, ws = support.shape[0], support.shape[1], support.shape[-2], support.shape[-1]
    q = query.reshape(b, n_layers, c, hq * wq).transpose(-1, -2).contiguous()  # (B, L, Hq*Wq, C)
    s = support.reshape(groups, k, n_layers, c, hs * ws).transpose(-1, -2)  # (G, K, L, Hs*Ws, C)
    active = s.abs().amax(dim=(2, 4)) > 0  # (G, K, Hs*Ws): positions the mask kept
    sparse = active.sum(dim=-1) <= SPARSE_SUPPORT_FRACTION * hs * ws
    corr = None
    for i in range(b):
        g = i if groups > 1 else 0
        for j in range(k):
            columns = active[g, j].nonzero().squeeze(1) if sparse[g, j] else None
            kept = s[g, j].contiguous() if columns is None else s[g, j].index_select(1, columns)  # (L, n, C)
            for layer in range(n_layers):  # one product per layer: oneDNN takes 2D operands
                part = linear(q[i, layer], kept[layer])
                if corr is None:  # the product's dtype (autocast may lower it)
                    corr = part.new_zeros(b, k, n_layers, hq * wq, hs * ws)
                if columns is None:
                    corr[i, j, layer].copy_(part)
                else:
                    corr[i, j, layer].index_copy_(-1, columns, part)
    return corr.clamp_(min=0).view(b * k, n_layers, hq, wq, hs, ws)
