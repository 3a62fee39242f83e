"""Center-pivot 4D convolution (HSNet's efficient 4D kernel).

A 4D kernel over (query h, query w, support h, support w) that is non-zero only
where one of the two 2D offsets is the centre equals the sum of two 2D
convolutions: one over the query dimensions, one over the support dimensions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CenterPivotConv4d(nn.Module):
    """Maps (B, C, Hq, Wq, Hs, Ws) to (B, O, Hq, Wq, Hs', Ws'); strides act on the support dims only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, support_stride: int = 1):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad)  # over query dims
        self.conv2 = nn.Conv2d(in_channels, out_channels, kernel_size, stride=support_stride, padding=pad)  # over support dims
        self.support_stride = support_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hq, wq, hs, ws = x.shape
        s = self.support_stride
        k = self.conv1.kernel_size[0]
        p = k // 2
        # Query-dimension conv at the support positions 0, s, 2s, ...: a (k, k, 1) 3D conv
        # over (Hq, Wq, Hs'*Ws') needs no permutation of the 6D tensor.
        pivots = x[..., ::s, ::s] if s > 1 else x
        hs2, ws2 = pivots.shape[-2:]
        out1 = F.conv3d(
            pivots.reshape(b, c, hq, wq, hs2 * ws2),
            self.conv1.weight.unsqueeze(-1), self.conv1.bias, padding=(p, p, 0),
        )
        # Support-dimension conv at every query position: a (1, k, k) 3D conv over (Hq*Wq, Hs, Ws).
        out2 = F.conv3d(
            x.reshape(b, c, hq * wq, hs, ws),
            self.conv2.weight.unsqueeze(2), self.conv2.bias, stride=(1, s, s), padding=(0, p, p),
        )
        return out1.view(b, -1, hq, wq, hs2, ws2) + out2.view(b, -1, hq, wq, hs2, ws2)
