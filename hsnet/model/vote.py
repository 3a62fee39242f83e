"""Rules that merge the K per-support predictions into one mask."""
from __future__ import annotations

from typing import Literal

import torch

KShotRule = Literal["vote", "mean-prob"]
K_SHOT_RULES: tuple[str, ...] = ("vote", "mean-prob")


def authors_vote(votes: torch.Tensor) -> torch.Tensor:
    """The authors' rule on summed argmax votes (B, h, w): votes / max(1, per-image max) >= 0.5."""
    return (vote_fraction(votes) >= 0.5).float()


def vote_fraction(votes: torch.Tensor) -> torch.Tensor:
    """Summed votes (B, h, w) over each image's largest count (at least 1): the authors' vote before its 0.5 cut."""
    peak = votes.flatten(1).amax(dim=1).clamp(min=1).view(-1, 1, 1)
    return votes.float() / peak


def foreground_score(logits: torch.Tensor, rule: KShotRule = "vote") -> torch.Tensor:
    """(B, K, 2, h, w) logits -> (B, h, w) score in [0, 1] whose pixels >= 0.5 are the rule's mask.

    "vote": the authors' vote fraction (with K=1 the argmax). "mean-prob": the
    foreground probability averaged over the shots. A score resizes smoothly, so a
    mask made at model resolution can be cut at another size.
    """
    if rule == "vote":
        return vote_fraction(logits.argmax(dim=2).sum(dim=1))
    if rule == "mean-prob":
        return logits.float().softmax(dim=2)[:, :, 1].mean(dim=1)
    raise ValueError(f"unknown k-shot rule {rule!r}; choose one of {', '.join(K_SHOT_RULES)}")


def combine_shots(logits: torch.Tensor, rule: KShotRule = "vote") -> torch.Tensor:
    """(B, K, 2, h, w) logits -> (B, h, w) mask in {0, 1} by ``rule`` (see ``foreground_score``)."""
    return (foreground_score(logits, rule) >= 0.5).float()
