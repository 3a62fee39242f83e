"""The authors' training recipe, resumable and distributed.

Frozen eval-mode backbone, only ``hpn_learner`` trains; Adam (lr 1e-3, no schedule); cross-entropy
over the two classes on the full-size logits; 1-shot episodes; after every epoch a validation on
the fixed seed-0 episode list, keeping the checkpoint with the best validation mIoU.

The run folder holds ``best/`` (the Hub format of ``hsnet.hub.save_pretrained``: load it with
``from_pretrained``, upload it with ``hsnet push``), ``last/`` (what ``--resume`` continues from:
``model.safetensors``, ``optimizer.pt`` holding only tensors and numbers, loaded with
``weights_only=True``, and ``trainer.json``) and ``tensorboard/``.
"""
from __future__ import annotations

import json
import math
import pickle
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from .data import BENCHMARKS, OWN_LAYOUTS, EpisodeDataset, build_dataset, is_own_data
from .data.own import SPLIT_FILE
from .distributed import DistContext, barrier, init_distributed, main_first
from .errors import CheckpointError, InputError, WeightsNotFoundError, describe
from .evaluate import run_episodes
from .hub import from_pretrained, save_pretrained
from .metrics import IoUMeter
from .model import BACKBONES, DEFAULT_IMAGE_SIDE, HSNet
from .runtime import InferenceContext, autocast, autocast_dtype, build_model
from .whole_files import write_file

DEFAULT_BATCH = {"pascal": 20, "coco": 40, "fss": 20}
OWN_DATA_BATCH = 8
# Settings a resumed run must share with the run it continues.
RESUME_KEYS = ("benchmark", "fold", "backbone", "image_size")


@dataclass
class TrainConfig:
    """Everything ``hsnet train`` takes; ``batch_size`` is the global batch (split over the processes).

    ``benchmark`` is a benchmark name, or the layout of one's own data at ``datapath`` ("folder", or "coco"
    with a .json); ``images``, ``val_classes`` and ``split_by`` apply to one's own data only.
    """

    benchmark: str
    datapath: str
    out: str
    fold: int = 0
    backbone: str = "resnet50"
    backbone_weights: str = "imagenet"  # or "none" (random; for tests)
    init: str | None = None  # start from these weights (any from_pretrained name or path)
    epochs: int = 2000
    batch_size: int | None = None
    lr: float = 1e-3
    image_size: int = DEFAULT_IMAGE_SIDE
    workers: int = 8
    precision: str = "auto"  # fp32, auto, bf16 or fp16 (hsnet.runtime.PRECISIONS; fp16 needs a GPU)
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    limit_train: int | None = None
    limit_val: int | None = None
    progress: bool = True
    splits_dir: str | None = None
    images: str | None = None
    val_classes: list[str] | None = None
    split_by: str = "auto"


@dataclass
class TrainSummary:
    """What a training run did."""

    epochs_run: int
    best_miou: float
    best_epoch: int
    best_dir: str
    last_dir: str
    history: list[dict[str, float]] = field(default_factory=list)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The authors' objective: mean 2-class cross-entropy over every pixel of every episode (in float32)."""
    return F.cross_entropy(logits.float(), target.long())


def train_step(model: torch.nn.Module, batch: dict[str, Any], optimizer: torch.optim.Optimizer, *,
               device: torch.device, amp: torch.dtype | None = None,
               scaler: torch.amp.GradScaler | None = None) -> tuple[float, torch.Tensor]:
    """One optimizer step on a batch of 1-shot episodes; returns (loss, predicted masks)."""
    query = batch["query_img"].to(device, non_blocking=True)
    support = batch["support_imgs"][:, 0].to(device, non_blocking=True)
    mask = batch["support_masks"][:, 0].to(device, non_blocking=True)
    target = batch["query_mask"].to(device, non_blocking=True)
    with autocast(device, amp):
        logits = model(query, support, mask)
    loss = cross_entropy(logits, target)
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None and scaler.is_enabled():
        scaler.scale(loss).backward()
        check_finite(loss, [], optimizer)  # infinite gradients are the scaler's to skip
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        check_finite(loss, [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None],
                     optimizer)
        optimizer.step()
    return loss.item(), logits.detach().argmax(dim=1)


class DivergedError(InputError):
    """The loss or the weights stopped being finite numbers: training stops rather than keep or save them."""


def check_finite(loss: torch.Tensor, grads: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """Stop before a step that would make the weights NaN or infinite. Checked after the backward pass, whose
    gradient all-reduce gives every process the same answer, so that all of them stop together."""
    largest = torch.stack([loss.detach().float().reshape(())] + [g.detach().abs().amax().float() for g in grads])
    if not bool(torch.isfinite(largest).all()):  # one device sync
        lr = optimizer.param_groups[0]["lr"]
        raise DivergedError(f"training stopped at a loss of {loss.item()} (not a finite number): the learning rate "
                            f"{lr:g} is too high for this run; lower --lr (authors: 1e-3) and start again, or --resume "
                            "from the last epoch saved")


def check_finite_weights(model: torch.nn.Module) -> None:
    """Refuse to save weights that are not all finite numbers."""
    if not all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()):
        raise DivergedError("training stopped: the weights are no longer finite numbers, so they were not saved; "
                            "lower --lr (authors: 1e-3) and start again, or --resume from the last epoch saved")


def train_epoch(model: torch.nn.Module, loader: DataLoader, dataset: EpisodeDataset, optimizer: torch.optim.Optimizer,
                *, device: torch.device, amp: torch.dtype | None, scaler: torch.amp.GradScaler, progress: bool,
                desc: str) -> IoUMeter:
    """One pass over the training episodes; returns the meter (loss, IoU) summed over all ranks."""
    meter = IoUMeter(dataset.nclass, dataset.class_ids)
    model.train()
    bar = tqdm(loader, desc=desc, unit="batch", disable=not progress, dynamic_ncols=True)
    for batch in bar:
        loss, pred = train_step(model, batch, optimizer, device=device, amp=amp, scaler=scaler)
        meter.add_loss(loss)
        meter.update(pred, batch["query_mask"].to(device), batch["class_id"], batch["query_ignore"].to(device))
        bar.set_postfix(loss=f"{loss:.4f}", mIoU=f"{meter.miou():.1f}")
    return meter.reduced()


def _summary_writer(folder: Path) -> Any:
    """A TensorBoard SummaryWriter, or a clear error when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise InputError("training logs to TensorBoard, which is not installed; pip install 'hsnet[train]'") from exc
    return SummaryWriter(str(folder))


def save_state(folder: Path, model: HSNet, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               trainer: dict[str, Any]) -> None:
    """Write the resume state to ``folder``, replacing it only once the new copy is complete."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}, tmp / "optimizer.pt")
    (tmp / "trainer.json").write_text(json.dumps(trainer, indent=2) + "\n", encoding="utf-8")
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_state(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """(model state, optimizer+scaler state, trainer record) of a run's ``last/`` folder, read safely."""
    try:
        trainer = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
        model_state = load_file(str(folder / "model.safetensors"))
        opt_state = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InputError(f"nothing to resume in {folder} ({exc.filename} is missing); "
                         "leave out --resume to start a new run") from exc
    except (json.JSONDecodeError, SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"the resume state in {folder} is damaged or holds more than tensors ({describe(exc)}); "
                              "delete it and resume from best/ with --init, or start again") from exc
    if not isinstance(opt_state, dict) or "optimizer" not in opt_state or "config" not in trainer:
        raise CheckpointError(f"the resume state in {folder} was not written by hsnet train; "
                              "delete it, or choose another --out")
    return model_state, opt_state, trainer


def _build_model(config: TrainConfig) -> HSNet:
    """The model to train: ``--init`` weights, else the backbone's ImageNet weights (or random ones)."""
    if config.init:
        model = from_pretrained(config.init)
        if model.backbone_name != config.backbone:
            raise InputError(f"--init {config.init} is a {model.backbone_name} model but --backbone is "
                             f"{config.backbone}; pass --backbone {model.backbone_name}")
        return model
    if config.backbone_weights not in ("imagenet", "none"):
        raise InputError(f"unknown backbone weights {config.backbone_weights!r}; use imagenet or none")
    try:
        return build_model(config.backbone, pretrained_backbone=config.backbone_weights == "imagenet")
    except OSError as exc:  # torchvision's download: offline, proxy, DNS (URLError is an OSError)
        raise WeightsNotFoundError(
            f"torchvision's ImageNet weights of {config.backbone} could not be downloaded ({describe(exc)}); "
            f"connect once (they are kept in {torch.hub.get_dir()}/checkpoints), or start from --init weights") from None


def _check_config(config: TrainConfig) -> int:
    """Validate the settings; returns the global batch size."""
    own = is_own_data(config.benchmark, config.datapath)
    if config.benchmark not in BENCHMARKS and not own:
        raise InputError(f"unknown benchmark {config.benchmark!r}; use one of {', '.join(BENCHMARKS)}, or one's own "
                         f"data ({', '.join(OWN_LAYOUTS)})")
    if config.backbone not in BACKBONES:
        raise InputError(f"unknown backbone {config.backbone!r}; use one of {', '.join(BACKBONES)}")
    if config.epochs < 1 or not (math.isfinite(config.lr) and config.lr > 0) or config.workers < 0 or (
            config.batch_size is not None and config.batch_size < 1):
        raise InputError("--epochs and --batch-size must be at least 1, --workers at least 0 and --lr a finite "
                         "number above 0")
    return config.batch_size or (OWN_DATA_BATCH if own else DEFAULT_BATCH[config.benchmark])


def train(config: TrainConfig, ctx: DistContext | None = None) -> TrainSummary:
    """Run (or resume) the authors' training recipe; rank 0 saves ``best/``, ``last/`` and TensorBoard logs."""
    batch_size = _check_config(config)
    ctx = ctx or init_distributed(config.device)
    if batch_size % ctx.world_size:
        raise InputError(f"a batch of {batch_size} does not split over {ctx.world_size} processes; "
                         f"pass a --batch-size divisible by {ctx.world_size}")
    out = Path(config.out)
    last, best = out / "last", out / "best"
    if config.resume:
        model_state, opt_state, record = load_state(last)
        changed = [k for k in RESUME_KEYS if record["config"].get(k) != getattr(config, k)]
        if changed:
            raise InputError(f"{last} was trained with a different {', '.join(changed)}; resume with the same "
                             "settings or choose another --out")
    elif (last / "trainer.json").exists():
        raise InputError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    else:
        model_state, opt_state, record = None, None, {"epoch": 0, "best_miou": float("-inf"), "best_epoch": -1}

    torch.manual_seed(config.seed)
    common = dict(image_size=config.image_size, seed=config.seed, splits_dir=config.splits_dir, images=config.images,
                  val_classes=config.val_classes, split_by=config.split_by, split_file=out / SPLIT_FILE)
    trn, val = main_first(lambda: (
        build_dataset(config.benchmark, config.datapath, config.fold, "trn", 1, limit=config.limit_train, **common),
        build_dataset(config.benchmark, config.datapath, config.fold, "val", 1, limit=config.limit_val, **common)))
    fold = trn.fold if trn.folds else None
    partition = trn.partition()
    model = main_first(lambda: _build_model(config))
    if model_state is not None:
        model.load_state_dict(model_state, strict=True)
    model.to(ctx.device).train()
    net: torch.nn.Module = model
    if ctx.world_size > 1:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)

    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    dtype = autocast_dtype(ctx.device, config.precision)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    if opt_state is not None:
        optimizer.load_state_dict(opt_state["optimizer"])
        if opt_state.get("scaler"):
            scaler.load_state_dict(opt_state["scaler"])

    sampler = DistributedSampler(trn, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=config.seed)
    per_rank = batch_size // ctx.world_size
    loader = DataLoader(trn, batch_size=per_rank, sampler=sampler, num_workers=config.workers,
                        pin_memory=ctx.device.type == "cuda", drop_last=False)
    writer = _summary_writer(out / "tensorboard") if ctx.is_main else None
    progress = config.progress and ctx.is_main
    saved_config = {k: v for k, v in asdict(config).items() if k not in ("resume", "progress")}
    history: list[dict[str, float]] = []
    if ctx.is_main:
        for note in dict.fromkeys(trn.notes() + val.notes()):
            print(f"hsnet train: {note}", file=sys.stderr, flush=True)
        start_from = config.init or ("the ImageNet backbone" if config.backbone_weights == "imagenet"
                                     else "a random backbone")
        print(f"hsnet train: {trn.summary()}; validation: {val.summary()}; from {start_from}; "
              f"batch {batch_size} over {ctx.world_size} process(es) on {ctx.device.type}", flush=True)
        if partition is not None:
            _write_json(out / SPLIT_FILE, partition)

    for epoch in range(record["epoch"], config.epochs):
        sampler.set_epoch(epoch)
        trn.set_epoch(epoch)
        start = time.perf_counter()
        trn_meter = train_epoch(net, loader, trn, optimizer, device=ctx.device, amp=dtype, scaler=scaler,
                                progress=progress, desc=f"epoch {epoch}")
        trn_seconds = time.perf_counter() - start
        val_meter = run_episodes(model, val, context=InferenceContext.create(ctx.device, config.precision),
                                 batch_size=per_rank, num_workers=config.workers, progress=progress,
                                 desc=f"val {epoch}")
        stats = {"epoch": epoch, "train_loss": trn_meter.mean_loss, "train_miou": trn_meter.miou(),
                 "train_fb_iou": trn_meter.fb_iou(), "val_miou": val_meter.miou(), "val_fb_iou": val_meter.fb_iou(),
                 "train_episodes_per_second": trn_meter.episodes / trn_seconds}
        history.append(stats)
        improved = stats["val_miou"] > record["best_miou"]
        if improved:
            record.update(best_miou=stats["val_miou"], best_epoch=epoch)
        record["epoch"] = epoch + 1
        if ctx.is_main:
            check_finite_weights(model)
            if improved:
                label = "validation" if fold is None else f"fold {fold} validation"
                save_pretrained(model, best, benchmark=val.benchmark if val.benchmark in BENCHMARKS else None,
                                fold=fold, image_size=config.image_size,
                                source=f"trained with hsnet train (epoch {epoch}, {val.summary()})",
                                metrics={label: {"1-shot": round(stats["val_miou"], 2)}})
                if partition is not None:
                    _write_json(best / SPLIT_FILE, partition)  # so that `evaluate --weights best` finds it
            save_state(last, model, optimizer, scaler, {**record, "config": saved_config})
            _log_epoch(writer, stats)
            print(f"epoch {epoch}: train loss {stats['train_loss']:.4f} mIoU {stats['train_miou']:.2f} | "
                  f"val mIoU {stats['val_miou']:.2f} FB-IoU {stats['val_fb_iou']:.2f} | "
                  f"{stats['train_episodes_per_second']:.1f} episodes/s | best {record['best_miou']:.2f} "
                  f"(epoch {record['best_epoch']}){' saved to ' + str(best) if improved else ''}", flush=True)
        barrier()
    if writer is not None:
        writer.close()
    return TrainSummary(len(history), record["best_miou"], record["best_epoch"], str(best), str(last), history)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON, replacing ``path`` only once the new copy is complete."""
    write_file(path, lambda file: file.write((json.dumps(data, indent=2) + "\n").encode("utf-8")))


def _log_epoch(writer: Any, stats: dict[str, float]) -> None:
    """One epoch's numbers to TensorBoard."""
    epoch = int(stats["epoch"])
    writer.add_scalar("loss/train", stats["train_loss"], epoch)
    for name in ("miou", "fb_iou"):
        writer.add_scalar(f"{name}/train", stats[f"train_{name}"], epoch)
        writer.add_scalar(f"{name}/val", stats[f"val_{name}"], epoch)
    writer.add_scalar("throughput/train_episodes_per_second", stats["train_episodes_per_second"], epoch)
    writer.flush()
