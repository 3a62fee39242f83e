"""The authors' evaluation protocol: a fixed seed-0 episode list, split across ranks, IoU sums reduced.

Each rank takes every ``world_size``-th episode of the list (no padding, no duplicates) and the
integer intersection/union sums are added over ranks, so N processes give exactly the numbers of one.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from .data import EpisodeDataset
from .distributed import barrier, rank, shard, world_size
from .errors import InputError
from .metrics import EPISODES, IoUMeter
from .model import K_SHOT_RULES, HSNet, combine_shots
from .runtime import PRECISIONS, InferenceContext, episode_logits

__all__ = ["PRECISIONS", "ClassResult", "EvalResult", "evaluate", "run_episodes"]  # PRECISIONS: for the CLI


@dataclass
class ClassResult:
    """One class's foreground IoU (%) and how many episodes it had."""

    class_id: int
    name: str
    iou: float
    episodes: int


@dataclass
class EvalResult:
    """What ``hsnet evaluate`` prints and writes as JSON; IoUs are percentages."""

    benchmark: str
    fold: int | None
    split: str
    shots: int
    episodes: int
    miou: float
    fb_iou: float
    classes: list[ClassResult]
    seconds: float
    episodes_per_second: float
    world_size: int
    device: str
    settings: dict[str, Any] = field(default_factory=dict)
    unscored: list[str] = field(default_factory=list)  # classes without an episode (e.g. under --limit), not in mIoU

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """A human-readable table: per-class IoU, then mIoU and FB-IoU."""
        fold = f" fold {self.fold}" if self.fold is not None else ""
        lines = [f"{self.benchmark}{fold} {self.split}, {self.shots}-shot, {self.episodes} episodes",
                 f"  {'class':<28}{'IoU':>7}{'episodes':>10}"]
        lines += [f"  {c.name[:27]:<28}{c.iou:7.2f}{c.episodes:10d}" for c in self.classes]
        if self.unscored:
            lines.append(f"  {len(self.unscored)} class(es) had no episode and are left out of the mIoU: "
                         f"{', '.join(self.unscored)[:200]}")
        lines.append(f"mIoU {self.miou:.2f}   FB-IoU {self.fb_iou:.2f}   "
                     f"({self.episodes_per_second:.2f} episodes/s on {self.world_size} x {self.device})")
        return "\n".join(lines)


def run_episodes(model: HSNet, dataset: EpisodeDataset, *, context: InferenceContext, batch_size: int = 1,
                 num_workers: int = 0, rule: str = "vote", progress: bool = False,
                 desc: str = "evaluate") -> IoUMeter:
    """This rank's share of ``dataset``'s episodes through ``hsnet.runtime.episode_logits`` (the Predictor's
    bounded path); returns the meter over all ranks."""
    if rule not in K_SHOT_RULES:
        raise InputError(f"unknown k-shot rule {rule!r}; use one of {', '.join(K_SHOT_RULES)}")
    if dataset.original_size and batch_size != 1:
        raise InputError("original-size evaluation compares each query at its own size, one episode per batch; "
                         "use --batch-size 1")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, not {batch_size}")
    part = Subset(dataset, shard(len(dataset), rank(), world_size()))
    device = context.device
    loader = DataLoader(part, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    meter = IoUMeter(dataset.nclass, dataset.class_ids)
    was_training = model.training
    model.eval()
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress or rank() != 0, dynamic_ncols=True)
    for step, batch in enumerate(bar):
        query = batch["query_img"].to(device, non_blocking=True)
        supports = batch["support_imgs"].to(device, non_blocking=True)
        masks = batch["support_masks"].to(device, non_blocking=True)
        size = tuple(batch["query_size"][0].tolist()) if dataset.original_size else None
        pred = combine_shots(episode_logits(model, context, query, supports, masks, output_size=size), rule)
        meter.update(pred, batch["query_mask"].to(device), batch["class_id"], batch["query_ignore"].to(device))
        if step % 10 == 0:
            bar.set_postfix(mIoU=f"{meter.miou():.1f}")
    model.train(was_training)
    return meter.reduced()


def evaluate(model: HSNet, dataset: EpisodeDataset, *, device: torch.device | str = "cpu", batch_size: int = 1,
             num_workers: int = 0, rule: str = "vote", precision: str = "fp32", progress: bool = False,
             settings: dict[str, Any] | None = None) -> EvalResult:
    """mIoU, FB-IoU and per-class IoU of ``model`` on ``dataset`` (every rank returns the same result)."""
    context = InferenceContext.create(device, precision)
    context.prepare(model)
    barrier()
    start = time.perf_counter()
    meter = run_episodes(model, dataset, context=context, batch_size=batch_size, num_workers=num_workers,
                         rule=rule, progress=progress, desc=f"{dataset.benchmark} {dataset.shots}-shot")
    seconds = time.perf_counter() - start
    class_iou = meter.class_iou()
    classes = [ClassResult(c, dataset.class_name(c), class_iou[c], int(meter.sums[EPISODES, c])) for c in dataset.class_ids]
    return EvalResult(
        benchmark=dataset.benchmark, fold=dataset.fold if dataset.folds else None, split=dataset.split,
        shots=dataset.shots, episodes=meter.episodes, miou=meter.miou(), fb_iou=meter.fb_iou(), classes=classes,
        seconds=seconds, episodes_per_second=meter.episodes / seconds if seconds > 0 else 0.0,
        world_size=world_size(), device=context.device.type,
        settings={"image_size": dataset.image_size, "original_size": dataset.original_size, "seed": dataset.seed,
                  "rule": rule, "precision": precision, "batch_size": batch_size, **(settings or {})},
        unscored=[dataset.class_name(c) for c in meter.unscored()],
    )
