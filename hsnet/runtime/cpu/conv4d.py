"""The center-pivot conv on the CPU: on a masked correlation, the query half at the kept pivots only.

At a pivot whose input is zero at every query position (a support position the mask
removed) the query half is its bias alone, so while the kept pivots are at most
``SPARSE_PIVOT_FRACTION`` of all, conv1 runs on those and its bias is added with conv2's.
The dense support product goes through oneDNN. Same values as the layer's forward.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...model.conv4d import CenterPivotConv4d
from .linear import linear

SPARSE_PIVOT_FRACTION = 0.5


def conv4d(layer: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for a CPU tensor."""
    if layer.on_correlation:  # the input is >= 0: a pivot whose values sum to 0 is 0 at every query position
        kept = layer.pivots(x).sum(dim=(1, 2, 3)).ne_(0)
        if kept.sum() <= SPARSE_PIVOT_FRACTION * kept.numel():
            return _kept_pivots(layer, x, kept)
    return layer(x, linear)


def _kept_pivots(layer: CenterPivotConv4d, x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    b, c, hq, wq, hs, ws = x.shape
    s, pad = layer.support_stride, layer.conv1.padding
    hs2, ws2 = kept.shape[-2:]
    items, rows, cols = kept.nonzero(as_tuple=True)
    query_half = F.conv2d(x.permute(0, 4, 5, 1, 2, 3)[items, rows * s, cols * s], layer.conv1.weight, padding=pad)
    out = F.conv3d(x.reshape(b, c, hq * wq, hs, ws), layer.conv2.weight.unsqueeze(2),
                   layer.conv2.bias + layer.conv1.bias, stride=(1, s, s), padding=(0, *layer.conv2.padding))
    flat = out.view(b, -1, hq * wq, hs2 * ws2)
    positions = rows * ws2 + cols
    for i in range(b):
        mine = items == i
        flat[i].index_add_(2, positions[mine], query_half[mine].flatten(2).permute(1, 2, 0).to(out.dtype))
    return out.view(b, -1, hq, wq, hs2, ws2)
