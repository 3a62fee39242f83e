"""The authors' way of running a k-shot episode, rebuilt on hsnet's modules as a speed baseline.

What differs from hsnet's path (each from the authors' method description, not
their code):

- one full 1-shot forward per support: the query goes through the backbone K
  times and each shot is correlated and decoded on its own; the K argmax masks
  are then voted (the same rule hsnet keeps as its default);
- both halves of every center-pivot 4D convolution permute the 6D tensor into a
  batch of 2D maps and run a 2D convolution on it;
- the backbone runs on NCHW tensors with BatchNorm as its own module, the query
  and the support in separate calls, and the correlation is always the dense
  product over every support position.

Weights, numerics and outputs are the same as hsnet's (the masks are equal up to
fp32 rounding), so the measured difference is only how the work is organised.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from unittest import mock

import torch

from hsnet.model import FeaturePyramid, HSNet, combine_shots
from hsnet.model import correlation
from hsnet.model.conv4d import CenterPivotConv4d
from hsnet.model.backbone import unfolded


def permute_center_pivot(layer: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """Center-pivot 4D conv with both halves as permuted batches of 2D convolutions."""
    b, c, hq, wq, hs, ws = x.shape
    s = layer.support_stride
    pivots = x[..., ::s, ::s]
    hs2, ws2 = pivots.shape[-2:]
    query_half = layer.conv1(pivots.permute(0, 4, 5, 1, 2, 3).contiguous().view(-1, c, hq, wq))
    query_half = query_half.view(b, hs2, ws2, -1, hq, wq).permute(0, 3, 4, 5, 1, 2)
    support_half = layer.conv2(x.permute(0, 2, 3, 1, 4, 5).contiguous().view(-1, c, hs, ws))
    support_half = support_half.view(b, hq, wq, -1, hs2, ws2).permute(0, 3, 1, 2, 4, 5)
    return (query_half + support_half).contiguous()


def nchw_backbone_features(model: HSNet, images: torch.Tensor) -> list[torch.Tensor]:
    """The backbone on a plain NCHW tensor, BatchNorm after each convolution."""
    return model.spec.extract(model.backbone, images.contiguous(), unfolded)


def separate_episode_features(model: HSNet, query: torch.Tensor, supports: torch.Tensor,
                              masks: torch.Tensor) -> tuple[FeaturePyramid, FeaturePyramid]:
    """The query and the supports through the backbone in separate calls."""
    return model.query_features(query), model.support_features(supports, masks)


@contextmanager
def authors_evaluation() -> Iterator[None]:
    """Inside, every HSNet evaluates its modules the authors' way (see the module docstring)."""
    with mock.patch.object(CenterPivotConv4d, "forward", permute_center_pivot), \
            mock.patch.object(HSNet, "_backbone_features", nchw_backbone_features), \
            mock.patch.object(HSNet, "episode_features", separate_episode_features), \
            mock.patch.object(correlation, "SPARSE_SUPPORT_FRACTION", -1.0):
        yield


@torch.inference_mode()
def authors_episode(model: HSNet, query: torch.Tensor, supports: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W), (B,K,3,H,W), (B,K,H,W) -> (B,H,W) mask: K full 1-shot forwards, then the vote."""
    with authors_evaluation():
        logits = [model(query, supports[:, k], masks[:, k]) for k in range(supports.shape[1])]
    return combine_shots(torch.stack(logits, dim=1), "vote")
