"""The center-pivot 4D convolution equals a dense 4D convolution with a center-pivot kernel."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from hsnet.model.conv4d import CenterPivotConv4d
from hsnet.runtime.cpu.conv4d import conv4d


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


def masked_correlation_like(shape: tuple[int, ...], keep: torch.Tensor) -> torch.Tensor:
    """A non-negative input that is zero at the support positions ``keep`` (B, Hs, Ws) leaves out."""
    x = torch.rand(*shape, dtype=torch.float64)
    return x * keep[:, None, None, None].to(x.dtype)


@pytest.mark.parametrize("kernel,stride,shape", [
    (3, 2, (2, 3, 5, 6, 9, 11)),
    (5, 4, (3, 4, 6, 5, 13, 10)),
    (3, 1, (1, 2, 4, 4, 6, 7)),
])
@pytest.mark.parametrize("kept", ["none", "one pivot", "off-pivot only", "blob per item", "everything"])
def test_sparse_support_equals_dense_4d_conv(kernel: int, stride: int, shape: tuple[int, ...], kept: str) -> None:
    """Skipping the zero pivots of a masked correlation changes nothing, however much the masks keep."""
    torch.manual_seed(stride)
    b, _, _, _, hs, ws = shape
    keep = torch.zeros(b, hs, ws, dtype=torch.bool)
    if kept == "one pivot":
        keep[0, stride, 0] = True
    elif kept == "off-pivot only" and stride > 1:
        keep[:, 1::stride, 1::stride] = True  # non-zero positions, but no pivot among them
    elif kept == "blob per item":
        for i in range(b):
            keep[i, i % hs: i % hs + 3, 1 + i: 4 + i] = True  # each item its own region
    elif kept == "everything":
        keep[:] = True
    layer = CenterPivotConv4d(shape[1], 4, kernel, stride, on_correlation=True).double()
    x = masked_correlation_like(shape, keep)
    expected = dense_conv4d(x, center_pivot_kernel(layer), layer.conv1.bias + layer.conv2.bias, stride)
    torch.testing.assert_close(conv4d(layer, x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kept_pivots,expected_batch", [(1, 1), (3, 3), (16, 16)])
def test_sparse_support_convolves_only_the_kept_pivots(monkeypatch: pytest.MonkeyPatch, kept_pivots: int,
                                                      expected_batch: int) -> None:
    """The saving is real: the query conv's batch is the kept pivots, all 16 once most are kept."""
    batches: list[int] = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda x, *a, **kw: batches.append(x.shape[0]) or conv2d(x, *a, **kw))
    layer = CenterPivotConv4d(2, 3, 3, 2, on_correlation=True).double()
    keep = torch.zeros(1, 8, 8, dtype=torch.bool)
    for pivot in range(kept_pivots):
        keep[0, 2 * (pivot // 4), 2 * (pivot % 4)] = True
    conv4d(layer, masked_correlation_like((1, 2, 5, 5, 8, 8), keep))
    assert batches == [expected_batch]


@pytest.mark.parametrize("kernel,stride,shape", [(3, 1, (2, 8, 4, 5, 2, 2)), (3, 2, (1, 6, 3, 4, 4, 4))])
def test_small_support_maps_in_float32_inference_match_the_dense_4d_conv(kernel: int, stride: int,
                                                                         shape: tuple[int, ...]) -> None:
    """Support maps within one kernel window take a float32 matrix product (oneDNN on the CPU); with and
    without gradients it matches the float64 dense 4D conv."""
    torch.manual_seed(stride)
    layer = CenterPivotConv4d(shape[1], 5, kernel, stride)
    x = torch.randn(*shape)
    expected = dense_conv4d(x.double(), center_pivot_kernel(layer.double()), layer.conv1.bias + layer.conv2.bias,
                            stride).float()
    layer.float()
    with torch.inference_mode():
        torch.testing.assert_close(conv4d(layer, x), expected, rtol=1e-5, atol=1e-5)  # oneDNN
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
    trained = layer(x.requires_grad_())
    trained.sum().backward()
    torch.testing.assert_close(trained.detach(), expected, rtol=1e-5, atol=1e-5)
    assert x.grad is not None and layer.conv2.weight.grad is not None
