"""IoU bookkeeping of few-shot segmentation, as the authors keep it, in integer sums that merge across ranks.

Per episode the background (0) and foreground (1) intersection and union pixel counts are taken,
leaving out ignored pixels (PASCAL boundaries). They are summed per class over all episodes.
Class IoU = summed intersection / summed union (union floored at 1, as the authors do); mIoU = mean
foreground IoU over the split's classes that had an episode (the authors' meter counts a class with
none as 0, which only a shortened list such as ``--limit`` leaves, and which says nothing of the model);
FB-IoU = mean over background and foreground of intersection / union summed over those classes.
Reported values are percentages.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .distributed import all_reduce_sum

INTER_BG, INTER_FG, UNION_BG, UNION_FG, EPISODES = range(5)


def episode_areas(pred: torch.Tensor, gt: torch.Tensor,
                  ignore: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2) intersection and (B, 2) union pixel counts [background, foreground] of (B, H, W) masks in {0, 1}."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ in shape")
    valid = torch.ones_like(gt, dtype=torch.bool) if ignore is None else ~ignore.bool()
    pred_fg, gt_fg = (pred == 1) & valid, (gt == 1) & valid
    pred_bg, gt_bg = (pred == 0) & valid, (gt == 0) & valid
    inter = torch.stack([(pred_bg & gt_bg).flatten(1).sum(1), (pred_fg & gt_fg).flatten(1).sum(1)], dim=1)
    union = torch.stack([(pred_bg | gt_bg).flatten(1).sum(1), (pred_fg | gt_fg).flatten(1).sum(1)], dim=1)
    return inter.long(), union.long()


class IoUMeter:
    """Per-class sums of intersections, unions and episodes (and the loss), for one benchmark split."""

    def __init__(self, nclass: int, class_ids: Sequence[int]):
        self.nclass = nclass
        self.class_ids = list(class_ids)
        self.sums = torch.zeros(5, nclass, dtype=torch.int64)  # rows: INTER_BG .. EPISODES
        self.loss = torch.zeros(2, dtype=torch.float64)  # sum of per-batch mean losses, number of batches

    def update(self, pred: torch.Tensor, gt: torch.Tensor, class_ids: torch.Tensor | Sequence[int],
               ignore: torch.Tensor | None = None) -> None:
        """Add a batch of (B, H, W) predictions and ground truths of the given classes."""
        inter, union = episode_areas(pred, gt, ignore)
        self.add(inter.cpu(), union.cpu(), torch.as_tensor(class_ids).cpu().long())

    def add(self, inter: torch.Tensor, union: torch.Tensor, class_ids: torch.Tensor) -> None:
        """Add per-episode (B, 2) intersections and unions of the given (B,) classes."""
        rows = torch.stack([inter[:, 0], inter[:, 1], union[:, 0], union[:, 1], torch.ones_like(class_ids)])
        self.sums.index_add_(1, class_ids, rows.long())

    def add_loss(self, loss: float) -> None:
        """Record one batch's mean loss."""
        self.loss += torch.tensor([loss, 1.0], dtype=torch.float64)

    def merge(self, other: "IoUMeter") -> "IoUMeter":
        """Add another meter's sums into this one (what an all_reduce does across ranks)."""
        self.sums += other.sums
        self.loss += other.loss
        return self

    def reduced(self) -> "IoUMeter":
        """A meter holding the sums of this meter over all ranks (this meter itself with one process)."""
        out = IoUMeter(self.nclass, self.class_ids)
        out.sums = all_reduce_sum(self.sums)
        out.loss = all_reduce_sum(self.loss)
        return out

    @property
    def episodes(self) -> int:
        """Number of episodes recorded."""
        return int(self.sums[EPISODES].sum())

    @property
    def mean_loss(self) -> float:
        """Mean of the recorded batch losses (0 when none)."""
        return float(self.loss[0] / self.loss[1]) if self.loss[1] else 0.0

    def class_iou(self) -> dict[int, float]:
        """Foreground IoU (%) of every class of the split, keyed by class index."""
        sums = self.sums[:, self.class_ids].double()
        iou = sums[INTER_FG] / sums[UNION_FG].clamp(min=1)
        return {c: float(v) * 100 for c, v in zip(self.class_ids, iou)}

    def unscored(self) -> list[int]:
        """The split's classes without any episode, left out of the mIoU."""
        return [c for c in self.class_ids if not self.sums[EPISODES, c]]

    def miou(self) -> float:
        """Mean foreground IoU (%) over the split's classes that had an episode."""
        left_out = set(self.unscored())
        values = [v for c, v in self.class_iou().items() if c not in left_out]
        return sum(values) / len(values) if values else 0.0

    def fb_iou(self) -> float:
        """Mean of background and foreground IoU (%), each summed over the split's classes."""
        sums = self.sums[:, self.class_ids].double().sum(dim=1)
        bg = sums[INTER_BG] / sums[UNION_BG].clamp(min=1)
        fg = sums[INTER_FG] / sums[UNION_FG].clamp(min=1)
        return float(bg + fg) / 2 * 100
