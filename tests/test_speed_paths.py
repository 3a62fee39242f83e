"""The fast paths of the model compute the same values as the plain formulas they replace."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hsnet.model.conv4d import CenterPivotConv4d, dense_support_weight


def plain_center_pivot(layer: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """The spec's formula: conv1 over (Hq, Wq) at the strided support pivots + conv2 over (Hs, Ws), via permutes."""
    b, c, hq, wq, hs, ws = x.shape
    s = layer.support_stride
    pivots = x[..., ::s, ::s]
    hs2, ws2 = pivots.shape[-2:]
    q = layer.conv1(pivots.permute(0, 4, 5, 1, 2, 3).reshape(-1, c, hq, wq))
    q = q.view(b, hs2, ws2, -1, hq, wq).permute(0, 3, 4, 5, 1, 2)
    sup = layer.conv2(x.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, hs, ws))
    sup = sup.view(b, hq, wq, -1, hs2, ws2).permute(0, 3, 1, 2, 4, 5)
    return q + sup


@pytest.mark.parametrize("kernel,stride,support", [
    (3, 1, (2, 2)),  # the mixing blocks: dense matrix product
    (3, 2, (3, 2)),  # dense, strided, non-square
    (5, 4, (4, 5)),  # dense with a 5x5 kernel
    (3, 1, (1, 3)),  # dense on a one-row map
    (3, 2, (4, 4)),  # 3D-conv path (16 > 9 positions)
    (5, 4, (7, 6)),  # 3D-conv path, strided
])
def test_center_pivot_fast_paths_equal_plain_formula(kernel: int, stride: int, support: tuple[int, int]) -> None:
    torch.manual_seed(kernel + stride + support[0])
    layer = CenterPivotConv4d(3, 5, kernel, stride).double()
    x = torch.randn(2, 3, 4, 5, *support, dtype=torch.float64)
    torch.testing.assert_close(layer(x), plain_center_pivot(layer, x), rtol=1e-10, atol=1e-10)


def test_dense_support_weight_is_the_conv_matrix() -> None:
    torch.manual_seed(0)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    maps = torch.randn(6, 3, 3, 2, dtype=torch.float64)
    expected = F.conv2d(maps, weight, stride=2, padding=1)
    got = maps.flatten(1) @ dense_support_weight(weight, (3, 2), 2).t()
    torch.testing.assert_close(got.view(expected.shape), expected)


def test_center_pivot_fast_paths_train() -> None:
    """Gradients through both support-conv paths equal those of the plain formula."""
    torch.manual_seed(1)
    for support in ((2, 2), (5, 4)):
        layer = CenterPivotConv4d(2, 3, 3, 1).double()
        x = torch.randn(1, 2, 3, 3, *support, dtype=torch.float64, requires_grad=True)
        grads = torch.autograd.grad(layer(x).square().sum(), [x, *layer.parameters()])
        expected = torch.autograd.grad(plain_center_pivot(layer, x).square().sum(), [x, *layer.parameters()])
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want)
