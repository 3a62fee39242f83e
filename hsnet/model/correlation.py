"""Hypercorrelation: cosine similarity of every query position with every support position."""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-5


def stack_level(features: list[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Same-shaped features (B, C, H, W) of one level, each times ``mask`` (B, 1, h, w) resized to (H, W) when given,
    then L2-normalized over channels, stacked: (B, L, C, H, W). Each is written straight into the result (no stacked
    copy); channels-last features give a result laid out (B, H, W, L, C) in memory."""
    n, c, h, w = features[0].shape
    if mask is not None:
        mask = F.interpolate(mask.to(features[0].dtype), (h, w), mode="bilinear", align_corners=True)
    out = None
    for i, feature in enumerate(features):
        if mask is not None:
            feature = feature * mask
        norm = feature.norm(dim=1, keepdim=True) + EPS
        if out is None:  # the quotient's dtype (autocast may compute the norm in float32)
            dtype = torch.promote_types(feature.dtype, norm.dtype)
            if feature.is_contiguous(memory_format=torch.channels_last):
                out = feature.new_empty(n, h, w, len(features), c, dtype=dtype).permute(0, 3, 4, 1, 2)
            else:
                out = feature.new_empty(n, len(features), c, h, w, dtype=dtype)
        torch.div(feature, norm, out=out[:, i])
    return out


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
