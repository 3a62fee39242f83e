"""``rows @ weight.T (+ bias)`` through oneDNN, the matrix product behind the CPU correlation and center-pivot conv."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# oneDNN's fused linear (a private op); a module name so that tests can watch what it is handed.
onednn_linear = torch.ops.mkldnn._linear_pointwise


def linear(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``rows @ weight.T + bias``; in fp32 CPU inference through oneDNN, faster than the BLAS product on the
    machines measured (docs/performance.md). Operands go in contiguous: oneDNN handed a strided view (a row
    slice of a larger matrix) takes hundreds of times longer. Under autocast it stays ``F.linear``."""
    if (rows.device.type == "cpu" and rows.dtype == weight.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and not torch.is_autocast_enabled("cpu")
            and not (torch.is_grad_enabled() and (rows.requires_grad or weight.requires_grad))):
        return onednn_linear(rows.contiguous(), weight.contiguous(), None if bias is None else bias.contiguous(),
                             "none", [], "")
    return F.linear(rows, weight, bias)
