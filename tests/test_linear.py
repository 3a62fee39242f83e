"""``hsnet.runtime.cpu.linear``: the oneDNN product equals F.linear, gets contiguous operands, and autocast still
lowers it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hsnet.runtime.cpu.linear import linear


def test_equals_f_linear_with_and_without_bias_and_with_a_transposed_weight() -> None:
    torch.manual_seed(0)
    rows, weight, bias = torch.randn(50, 32), torch.randn(40, 32), torch.randn(40)
    with torch.inference_mode():
        torch.testing.assert_close(linear(rows, weight, bias), F.linear(rows, weight, bias), rtol=1e-5, atol=1e-5)
        support = torch.randn(32, 40)
        torch.testing.assert_close(linear(rows, support.transpose(0, 1)), rows @ support, rtol=1e-5, atol=1e-5)
        wide = torch.randn(80, 64)  # a row-strided view: every other column of a larger matrix
        torch.testing.assert_close(linear(rows, wide[:, ::2]), F.linear(rows, wide[:, ::2]), rtol=1e-5, atol=1e-5)


def test_onednn_only_ever_gets_contiguous_operands(onednn_operands: list[bool]) -> None:
    """Issue 23: a strided weight made the product 50-300x slower; every operand handed to oneDNN is contiguous."""
    big = torch.randn(64, 100)
    with torch.inference_mode():
        linear(big[:, :32], big[::2, 32:64], big[0, ::3][:32])
        linear(big[:, 1::3][:, :32], big[:40, :64:2])
    assert onednn_operands == [True, True]


def test_cpu_autocast_lowers_it_like_f_linear() -> None:
    rows, weight = torch.randn(8, 16), torch.randn(4, 16)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        assert linear(rows, weight).dtype == torch.bfloat16


def test_gradients_flow_when_training() -> None:
    rows, weight = torch.randn(8, 16, requires_grad=True), torch.randn(4, 16, requires_grad=True)
    linear(rows, weight).sum().backward()
    assert rows.grad is not None and weight.grad is not None
