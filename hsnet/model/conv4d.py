"""Center-pivot 4D convolution (HSNet's efficient 4D kernel).

A 4D kernel over (query h, query w, support h, support w) that is non-zero only
where one of the two 2D offsets is the centre equals the sum of two 2D
convolutions: one over the query dimensions, one over the support dimensions.

Each half is evaluated without permute copies of the 6D tensor: the query half moves
the support pivots into the batch of one 2D conv, the support half is a (1, k, k) 3D
conv reading the tensor in place, or one dense matrix product on support maps that fit
in one kernel window. Why, with measurements: docs/performance.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .linear import linear

# On the CPU, a convolution on a masked correlation (``sparse_support``) runs its query half on
# the kept pivots only while they are at most this fraction of all pivots (else all, as usual).
SPARSE_PIVOT_FRACTION = 0.5


def _taps(size: int, kernel: int, stride: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel tap that output i' applies to input i of a 1D zero-padded conv, and whether it exists: (n', n)."""
    n_out = (size - 1) // stride + 1  # odd kernel, padding kernel // 2
    tap = torch.arange(size, device=device).view(1, -1) - stride * torch.arange(n_out, device=device).view(-1, 1)
    tap = tap + kernel // 2
    return tap.clamp(0, kernel - 1), (tap >= 0) & (tap < kernel)


def dense_support_weight(weight: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """The (O*Hs'*Ws', C*Hs*Ws) matrix of a zero-padded 2D conv of ``weight`` on one Hs x Ws map.

    Row (o, i', j'), column (c, i, j) holds ``weight[o, c, i - s*i' + k//2, j - s*j' + k//2]``,
    or 0 where that tap falls outside the kernel.
    """
    o, c, k, _ = weight.shape
    tap_h, valid_h = _taps(size[0], k, stride, weight.device)
    tap_w, valid_w = _taps(size[1], k, stride, weight.device)
    flat_tap = (tap_h[:, None, :, None] * k + tap_w[None, :, None, :]).flatten()  # (Hs', Ws', Hs, Ws)
    valid = (valid_h[:, None, :, None] & valid_w[None, :, None, :]).flatten().to(weight.dtype)
    taps = weight.flatten(2).index_select(2, flat_tap) * valid  # (O, C, Hs'*Ws'*Hs*Ws)
    n_out = tap_h.shape[0] * tap_w.shape[0]
    return taps.view(o, c, n_out, -1).transpose(1, 2).reshape(o * n_out, -1)


class CenterPivotConv4d(nn.Module):
    """Maps (B, C, Hq, Wq, Hs, Ws) to (B, O, Hq, Wq, Hs', Ws'); strides act on the support dims only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, support_stride: int = 1,
                 sparse_support: bool = False):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)  # over query dims
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=support_stride, padding=pad)  # over support dims
        self.support_stride = support_stride
        self.sparse_support = sparse_support  # the input is >= 0 and zero at many support positions (a correlation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hq, wq, hs, ws = x.shape
        s = self.support_stride
        # Query-dimension conv at the support positions 0, s, 2s, ...: the pivots (1/s^2 of
        # the input) are moved into the batch, so it is one plain 2D conv over (Hq, Wq).
        pivots = x[..., ::s, ::s] if s > 1 else x
        hs2, ws2 = pivots.shape[-2:]
        if self.sparse_support and x.device.type == "cpu":  # GPU work stays free of data-dependent shapes
            # The input is >= 0: a pivot whose values sum to 0 is 0 at every query position.
            kept = pivots.sum(dim=(1, 2, 3)).ne_(0)
            if kept.sum() <= SPARSE_PIVOT_FRACTION * kept.numel():
                return self._kept_pivots_forward(x, kept)
        out1 = self.conv1(pivots.permute(0, 4, 5, 1, 2, 3).reshape(b * hs2 * ws2, c, hq, wq))
        out1 = out1.view(b, hs2, ws2, -1, hq, wq).permute(0, 3, 4, 5, 1, 2)
        return self._support_conv(x).view(b, -1, hq, wq, hs2, ws2).contiguous().add_(out1)

    def _kept_pivots_forward(self, x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """The same output when only the pivots in ``kept`` (B, Hs', Ws') are non-zero: at the
        others the query half is its bias alone, so the query conv runs on the kept pivots only."""
        b, c, hq, wq, hs, ws = x.shape
        s, pad = self.support_stride, self.conv1.padding
        hs2, ws2 = kept.shape[-2:]
        items, rows, cols = kept.nonzero(as_tuple=True)
        query_half = F.conv2d(x.permute(0, 4, 5, 1, 2, 3)[items, rows * s, cols * s], self.conv1.weight, padding=pad)
        out = F.conv3d(x.reshape(b, c, hq * wq, hs, ws), self.conv2.weight.unsqueeze(2),
                       self.conv2.bias + self.conv1.bias, stride=(1, s, s), padding=(0, *self.conv2.padding))
        flat = out.view(b, -1, hq * wq, hs2 * ws2)
        positions = rows * ws2 + cols
        for i in range(b):
            mine = items == i
            flat[i].index_add_(2, positions[mine], query_half[mine].flatten(2).permute(1, 2, 0).to(out.dtype))
        return out.view(b, -1, hq, wq, hs2, ws2)

    def _support_conv(self, x: torch.Tensor) -> torch.Tensor:
        """conv2 over (Hs, Ws) at every query position: (B, O, Hq*Wq, Hs', Ws'), possibly a strided view."""
        b, c, hq, wq, hs, ws = x.shape
        s, k = self.support_stride, self.conv2.kernel_size[0]
        if hs * ws > k * k:
            # A (1, k, k) 3D conv over (Hq*Wq, Hs, Ws) reads the 6D tensor in place.
            return F.conv3d(x.reshape(b, c, hq * wq, hs, ws), self.conv2.weight.unsqueeze(2), self.conv2.bias,
                            stride=(1, s, s), padding=(0, k // 2, k // 2))
        # The whole support map fits in one kernel window: one dense matrix product for all query positions.
        hs2, ws2 = (hs - 1) // s + 1, (ws - 1) // s + 1
        weight = dense_support_weight(self.conv2.weight, (hs, ws), s)  # (O*Hs'*Ws', C*Hs*Ws)
        rows = x.reshape(b, c, hq * wq, hs * ws).transpose(1, 2).reshape(b * hq * wq, c * hs * ws)
        out = linear(rows, weight, self.conv2.bias.repeat_interleave(hs2 * ws2))
        return out.view(b, hq * wq, -1, hs2, ws2).transpose(1, 2)
