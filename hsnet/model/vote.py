"""Rules that merge the K per-support predictions into one mask."""
from __future__ import annotations

from typing import Literal

import torch

KShotRule = Literal["vote", "mean-prob"]
K_SHOT_RULES: tuple[str, ...] = ("vote", "mean-prob")


def authors_vote(votes: torch.Tensor) -> torch.Tensor:
    """The authors' rule on summed argmax votes (B, h, w): votes / max(1, per-image max) >= 0.5."""
    peak = votes.flatten(1).amax(dim=1).clamp(min=1).view(-1, 1, 1)
    return (votes.float() / peak >= 0.5).float()


def combine_shots(logits: torch.Tensor, rule: KShotRule = "vote") -> torch.Tensor:
    """(B, K, 2, h, w) logits -> (B, h, w) mask in {0, 1}.

    "vote": the authors' rule (with K=1 simply the argmax). "mean-prob": the
    foreground probability averaged over the shots, thresholded at 0.5.
    """
    if rule == "vote":
        votes = logits.argmax(dim=2).sum(dim=1)
        return votes.float() if logits.shape[1] == 1 else authors_vote(votes)
    if rule == "mean-prob":
        return (logits.softmax(dim=2)[:, :, 1].mean(dim=1) >= 0.5).float()
    raise ValueError(f"unknown k-shot rule {rule!r}; choose one of {', '.join(K_SHOT_RULES)}")
