"""The center-pivot 4D convolution equals a dense 4D convolution with a center-pivot kernel."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from hsnet.model.conv4d import CenterPivotConv4d


def dense_conv4d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, support_stride: int) -> torch.Tensor:
    """Direct 4D convolution: the sum over every kernel offset; stride on the support dims only."""
    k = weight.shape[-1]
    p = k // 2
    xp = F.pad(x, (p, p) * 4)
    b, c, hq, wq, hs, ws = x.shape
    ohs, ows = (hs + 2 * p - k) // support_stride + 1, (ws + 2 * p - k) // support_stride + 1
    out = torch.zeros(b, weight.shape[0], hq, wq, ohs, ows, dtype=x.dtype)
    for a, bb, cc, d in itertools.product(range(k), repeat=4):
        window = xp[:, :, a:a + hq, bb:bb + wq,
                    cc:cc + (ohs - 1) * support_stride + 1:support_stride,
                    d:d + (ows - 1) * support_stride + 1:support_stride]
        out += torch.einsum("oc,bcijmn->boijmn", weight[:, :, a, bb, cc, d], window)
    return out + bias.view(1, -1, 1, 1, 1, 1)


def center_pivot_kernel(layer: CenterPivotConv4d) -> torch.Tensor:
    """The dense 4D kernel that is zero off the two centre planes."""
    w1, w2 = layer.conv1.weight, layer.conv2.weight
    o, c, k, _ = w1.shape
    centre = k // 2
    kernel = torch.zeros(o, c, k, k, k, k, dtype=w1.dtype)
    kernel[:, :, :, :, centre, centre] += w1  # query-plane taps at the support centre
    kernel[:, :, centre, centre, :, :] += w2  # support-plane taps at the query centre
    return kernel


@pytest.mark.parametrize("kernel,stride,shape", [
    (3, 1, (2, 3, 5, 6, 7, 5)),
    (3, 2, (1, 2, 4, 5, 7, 8)),
    (5, 4, (1, 2, 6, 5, 9, 10)),
])
def test_center_pivot_equals_dense_4d_conv(kernel: int, stride: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(kernel * 10 + stride)
    layer = CenterPivotConv4d(shape[1], 4, kernel, stride).double()
    x = torch.randn(*shape, dtype=torch.float64)
    expected = dense_conv4d(x, center_pivot_kernel(layer), layer.conv1.bias + layer.conv2.bias, stride)
    got = layer(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
