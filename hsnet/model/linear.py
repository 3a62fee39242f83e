"""``rows @ weight.T (+ bias)``, the matrix product behind the correlation and the center-pivot convolutions."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def linear(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``rows @ weight.T + bias``; in fp32 CPU inference through oneDNN, faster than the BLAS product
    on the machines measured (docs/performance.md). Under autocast it stays ``F.linear``, which autocast lowers."""
    if (rows.device.type == "cpu" and rows.dtype == weight.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and not torch.is_autocast_enabled("cpu")
            and not (torch.is_grad_enabled() and (rows.requires_grad or weight.requires_grad))):
        return torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")
    return F.linear(rows, weight, bias)
