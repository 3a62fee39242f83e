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

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

Linear = Callable[..., torch.Tensor]  # rows @ weight.T + bias, as F.linear


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
    """Maps (B, C, Hq, Wq, Hs, Ws) to (B, O, Hq, Wq, Hs', Ws'); strides act on the support dims only.

    ``on_correlation``: the input is a masked correlation (>= 0, zero at the support positions the
    mask removed); ``hsnet.runtime`` uses that to skip those positions on the CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, support_stride: int = 1,
                 on_correlation: bool = False):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)  # over query dims
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=support_stride, padding=pad)  # over support dims
        self.support_stride = support_stride
        self.on_correlation = on_correlation

    def forward(self, x: torch.Tensor, linear: Linear = F.linear) -> torch.Tensor:
        """The sum of both halves; ``linear`` computes the dense support product (a faster kernel may be given)."""
        b, c, hq, wq, hs, ws = x.shape
        out1 = self.query_half(self.pivots(x))
        hs2, ws2 = out1.shape[-2:]
        return self.support_half(x, linear).view(b, -1, hq, wq, hs2, ws2).contiguous().add_(out1)

    def pivots(self, x: torch.Tensor) -> torch.Tensor:
        """The support positions 0, s, 2s, ... the query half is evaluated at."""
        s = self.support_stride
        return x[..., ::s, ::s] if s > 1 else x

    def query_half(self, pivots: torch.Tensor) -> torch.Tensor:
        """conv1 over (Hq, Wq) at every pivot, the pivots moved into the batch of one 2D conv: (B, O, Hq, Wq, Hs', Ws')."""
        b, c, hq, wq, hs2, ws2 = pivots.shape
        out = self.conv1(pivots.permute(0, 4, 5, 1, 2, 3).reshape(b * hs2 * ws2, c, hq, wq))
        return out.view(b, hs2, ws2, -1, hq, wq).permute(0, 3, 4, 5, 1, 2)

    def support_half(self, x: torch.Tensor, linear: Linear = F.linear) -> torch.Tensor:
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
