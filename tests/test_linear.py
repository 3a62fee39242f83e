"""``hsnet.model.linear``: the oneDNN product equals F.linear, and autocast still lowers it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hsnet.model.linear import linear


def test_equals_f_linear_with_and_without_bias_and_with_a_transposed_weight() -> None:
    torch.manual_seed(0)
    rows, weight, bias = torch.randn(50, 32), torch.randn(40, 32), torch.randn(40)
    with torch.inference_mode():
        torch.testing.assert_close(linear(rows, weight, bias), F.linear(rows, weight, bias), rtol=1e-5, atol=1e-5)
        support = torch.randn(32, 40)  # the correlation passes a transposed (non-contiguous) support
        torch.testing.assert_close(linear(rows, support.transpose(0, 1)), rows @ support, rtol=1e-5, atol=1e-5)


def test_cpu_autocast_lowers_it_like_f_linear() -> None:
    rows, weight = torch.randn(8, 16), torch.randn(4, 16)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        assert linear(rows, weight).dtype == torch.bfloat16


def test_gradients_flow_when_training() -> None:
    rows, weight = torch.randn(8, 16, requires_grad=True), torch.randn(4, 16, requires_grad=True)
    linear(rows, weight).sum().backward()
    assert rows.grad is not None and weight.grad is not None
