"""``hsnet train``: the authors' training recipe, resumable, on one or several GPUs/machines via torchrun."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..runtime import PRECISIONS
from ..model import BACKBONES
from .arguments import (check_device_and_precision, output_folder, positive_float, positive_int, prepare_folder, seed,
                        weights_source)
from .evaluate import add_data_arguments

HELP = "Train HSNet with the authors' recipe; keeps the best checkpoint by validation mIoU in the Hub format."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet train``."""
    add_data_arguments(parser)
    parser.add_argument("--backbone", default="resnet50", choices=tuple(BACKBONES))
    parser.add_argument("--backbone-weights", default="imagenet", choices=("imagenet", "none"),
                        help="start the frozen backbone from torchvision's ImageNet weights (downloads) or random")
    parser.add_argument("--init", default=None, type=weights_source, metavar="NAME|REPO|PATH",
                        help="start from these HSNet weights instead (registry name, Hub repo, file or folder)")
    parser.add_argument("--out", default=None, type=output_folder, help="run folder (default: runs/<benchmark>-<backbone>[-fold<F>])")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    parser.add_argument("--epochs", type=positive_int, default=2000, help="epochs to run in all (authors: 2000, pick by val mIoU)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="episodes per step over all processes (authors: 20 pascal/fss, 40 coco)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (authors: 1e-3)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="mixed precision on CUDA (auto: bf16 where supported, else fp16 with loss scaling)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the training episodes and the initial weights")
    parser.add_argument("--limit-train", type=positive_int, default=None, metavar="N", help="first N training episodes only")
    parser.add_argument("--limit-val", type=positive_int, default=None, metavar="N", help="first N validation episodes only")


def run(args: argparse.Namespace) -> int:
    """Build the config from the flags and train."""
    from ..distributed import rank, shutdown
    from ..runtime import retain_freed_memory
    from ..train import TrainConfig, train

    check_device_and_precision(args.device, args.precision)
    retain_freed_memory()  # every step frees and reallocates the same large blocks

    fold = f"-fold{args.fold}" if args.benchmark != "fss" else ""
    config = TrainConfig(
        benchmark=args.benchmark, datapath=args.datapath, out=str(args.out or f"runs/{args.benchmark}-{args.backbone}{fold}"),
        fold=args.fold if args.benchmark != "fss" else 0, backbone=args.backbone, backbone_weights=args.backbone_weights, init=args.init,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, image_size=args.image_size,
        workers=8 if args.workers is None else args.workers, precision=args.precision, seed=args.seed,
        device=str(args.device), resume=args.resume, limit_train=args.limit_train, limit_val=args.limit_val,
        progress=args.progress, splits_dir=args.splits)
    prepare_folder(Path(config.out), "--out")  # before the datasets and the model, not at the first save
    try:
        summary = train(config)
        is_main = rank() == 0
    finally:
        shutdown()
    if is_main:
        print(f"hsnet train: {summary.epochs_run} epoch(s) run; best validation mIoU {summary.best_miou:.2f} "
              f"(epoch {summary.best_epoch}) in {summary.best_dir}; resume state in {summary.last_dir}")
    return 0
