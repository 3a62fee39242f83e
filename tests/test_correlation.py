"""Hypercorrelation: shape, range and query/support symmetry, for the formula and the CPU kernel alike."""
from __future__ import annotations

import pytest
import torch

from hsnet.model.correlation import correlate as formula
from hsnet.model.correlation import stack_level
from hsnet.runtime.cpu.correlation import correlate as cpu_kernel

pytestmark = pytest.mark.parametrize("correlate", [formula, cpu_kernel], ids=["formula", "cpu"])


def test_shape_and_range(correlate) -> None:
    torch.manual_seed(0)
    query = stack_level([torch.randn(2, 8, 5, 6) for _ in range(3)])
    support = stack_level([torch.randn(6, 8, 4, 7) for _ in range(3)])
    corr = correlate(query, support.view(2, 3, 3, 8, 4, 7))
    assert corr.shape == (6, 3, 5, 6, 4, 7)
    assert corr.min() >= 0 and corr.max() <= 1 + 1e-6
    assert (corr == 0).any(), "negative cosine similarities must be clamped to 0"


def test_matches_cosine_similarity_and_transposes(correlate) -> None:
    torch.manual_seed(1)
    a, b = torch.randn(1, 16, 3, 4), torch.randn(1, 16, 5, 2)
    ab = correlate(stack_level([a]), stack_level([b]).unsqueeze(1))[0, 0]
    ba = correlate(stack_level([b]), stack_level([a]).unsqueeze(1))[0, 0]
    torch.testing.assert_close(ab, ba.permute(2, 3, 0, 1))
    cos = torch.nn.functional.cosine_similarity(a[0, :, 1, 2], b[0, :, 4, 0], dim=0).clamp(min=0)
    torch.testing.assert_close(ab[1, 2, 4, 0], cos, rtol=1e-4, atol=1e-5)


def test_zero_features_correlate_to_zero(correlate) -> None:
    """A support position the mask removed (all-zero features) matches nothing."""
    q = stack_level([torch.randn(1, 4, 2, 2)])
    s = stack_level([torch.zeros(1, 4, 3, 3)])
    assert correlate(q, s.unsqueeze(1)).abs().max() == 0


def test_supports_shared_by_every_query_equal_repeated_ones(correlate) -> None:
    """A (1, K, ...) support group met by B queries gives what B copies of it give, dense and sparse alike."""
    torch.manual_seed(2)
    query = stack_level([torch.randn(3, 8, 4, 5) for _ in range(2)])
    support = stack_level([torch.randn(2, 8, 6, 3) for _ in range(2)]).unsqueeze(0)  # K = 2
    support[0, 1, ..., 1:, :] = 0  # the second support keeps one row: the sparse path on the CPU
    torch.testing.assert_close(correlate(query, support), correlate(query, support.expand(3, -1, -1, -1, -1, -1)))
