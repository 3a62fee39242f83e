"""Tensor-level episodes under an inference context: what evaluation, the benchmark and the Predictor run.

Inputs are normalized float tensors (``HSNet.preprocess`` or the datasets'
transforms); correlation and learner go in bounded passes.
"""
from __future__ import annotations

import torch

from ..model import FeaturePyramid, HSNet
from .context import InferenceContext
from .passes import bounded_logits


def cached_logits(model: HSNet, context: InferenceContext, query: torch.Tensor, support: FeaturePyramid, shots: int,
                  output_size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, 3, H, W) queries against encoded supports (K shared, or K per query) -> (B, K, 2, h, w) float32 logits;
    ``output_size`` defaults to the query's (H, W)."""
    with context.inference():
        features = model.query_features(query.to(context.device))
        return bounded_logits(model, features, support.to(context.device), shots,
                              output_size or tuple(query.shape[-2:]), context.pass_bytes).float()


def episode_logits(model: HSNet, context: InferenceContext, query: torch.Tensor, supports: torch.Tensor,
                   masks: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, 3, H, W), (B, K, 3, H, W), (B, K, H, W) -> (B, K, 2, h, w) float32 logits: query and supports in one
    backbone batch, then bounded passes; ``output_size`` defaults to the query's (H, W)."""
    device = context.device
    with context.inference():
        q, s = model.episode_features(query.to(device), supports.flatten(0, 1).to(device), masks.flatten(0, 1).to(device))
        return bounded_logits(model, q, s, supports.shape[1], output_size or tuple(query.shape[-2:]),
                              context.pass_bytes).float()
