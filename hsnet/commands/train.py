"""``hsnet train``: the authors' training recipe, resumable, on one or several GPUs/machines via torchrun."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ..runtime import PRECISIONS
from ..model import BACKBONES
from .arguments import (check_device_and_precision, output_folder, positive_float, positive_int, prepare_folder, seed,
                        weights_source)
from .evaluate import add_data_arguments, dataset_source

HELP = ("Train HSNet with the authors' recipe on a benchmark, or fine-tune it on one's own data (--data); keeps the "
        "best checkpoint by validation mIoU in the Hub format.")
# What one's own data starts from unless --init says otherwise: the app's default weights.
OWN_DATA_INIT = "pascal-resnet50-fold0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet train``."""
    add_data_arguments(parser)
    parser.add_argument("--backbone", default="resnet50", choices=tuple(BACKBONES))
    parser.add_argument("--backbone-weights", default="imagenet", choices=("imagenet", "none"),
                        help="start the frozen backbone from torchvision's ImageNet weights (downloads) or random")
    parser.add_argument("--init", default=None, type=weights_source, metavar="NAME|REPO|PATH",
                        help="start from these HSNet weights (registry name, Hub repo, file or folder); 'none': from "
                             f"--backbone-weights (default: {OWN_DATA_INIT} with --data, else none)")
    parser.add_argument("--out", default=None, type=output_folder,
                        help="run folder (default: runs/<benchmark>-<backbone>[-fold<F>], or runs/<data name>-<backbone>)")
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

    benchmark, datapath = dataset_source(args)
    if args.data is not None:
        name, init = f"runs/{Path(args.data).stem or 'data'}-{args.backbone}", args.init or OWN_DATA_INIT
    else:
        fold = f"-fold{args.fold}" if args.benchmark != "fss" else ""
        name, init = f"runs/{args.benchmark}-{args.backbone}{fold}", args.init
    config = TrainConfig(
        benchmark=benchmark, datapath=datapath, out=str(args.out or name),
        fold=args.fold if args.benchmark != "fss" else 0, backbone=args.backbone, backbone_weights=args.backbone_weights,
        init=None if init is None or init.lower() == "none" else init,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, image_size=args.image_size,
        workers=8 if args.workers is None else args.workers, precision=args.precision, seed=args.seed,
        device=str(args.device), resume=args.resume, limit_train=args.limit_train, limit_val=args.limit_val,
        progress=args.progress, splits_dir=args.splits, images=args.images, val_classes=args.val_classes,
        split_by=args.split_by)
    out = Path(config.out)
    found = set(os.listdir(out)) if out.is_dir() else None
    saved = _saved_epoch(out)
    prepare_folder(out, "--out")  # before the datasets and the model, not at the first save
    try:
        summary = train(config)
        is_main = rank() == 0
    except BaseException as exc:
        if rank() == 0:
            if _saved_epoch(out) == saved:  # this run saved nothing worth keeping: leave no trace of it
                _remove_created(out, found)
            elif isinstance(exc, KeyboardInterrupt):
                print(f"hsnet train: interrupted; the epochs done are kept in {out / 'last'}: run the same command "
                      "with --resume to continue", file=sys.stderr)
        raise
    finally:
        shutdown()
    if is_main:
        print(f"hsnet train: {summary.epochs_run} epoch(s) run; best validation mIoU {summary.best_miou:.2f} "
              f"(epoch {summary.best_epoch}) in {summary.best_dir}; resume state in {summary.last_dir}")
    return 0


def _saved_epoch(out: Path) -> tuple[int, int] | None:
    """A stamp of the run's last saved epoch (changes when an epoch is saved), None when there is none."""
    try:
        stat = (out / "last" / "trainer.json").stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _remove_created(out: Path, found: set[str] | None) -> None:
    """Remove what this run made in ``out``: the folder itself if it was new, else the entries it added."""
    if found is None:
        shutil.rmtree(out, ignore_errors=True)
        return
    for name in set(os.listdir(out)) - found:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
