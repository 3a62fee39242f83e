"""``hsnet evaluate``: the authors' test protocol on PASCAL-5i, COCO-20i or FSS-1000; runs under torchrun too."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..data import BENCHMARKS
from ..data.own import SPLIT_BY, SPLIT_FILE
from ..model import DEFAULT_IMAGE_SIDE, K_SHOT_RULES
from ..runtime import PRECISIONS
from ..errors import InputError, one_line
from .arguments import (argument_type, check_device_and_precision, device, image_side, local_path, non_negative_int,
                        output_file, positive_int, prepare_folder, probe_file, seed, shots, weights_source)

HELP = ("Evaluate weights on a few-shot benchmark with the authors' protocol, or on one's own data: mIoU, FB-IoU, "
        "per-class IoU (JSON).")
DATAPATH_ENV = "HSNET_DATAPATH"
DEFAULT_DATAPATH = "../Datasets_HSN"


# Keys of every results file hsnet evaluate writes: a file holding them all is its own, and may be replaced.
RESULT_KEYS = {"benchmark", "split", "shots", "episodes", "miou", "fb_iou", "classes", "settings"}


@argument_type
def class_list(text: str) -> list[str]:
    """Comma-separated class names, none empty."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise InputError(f"{one_line(text, 60)} has an empty class name; give names separated by commas: a,b,c")
    return names


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset flags ``evaluate`` and ``train`` share: a benchmark, or one's own data (``--data``)."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--benchmark", choices=BENCHMARKS)
    which.add_argument("--data", type=local_path, default=None, metavar="PATH",
                       help="one's own data: a folder of class folders, or a COCO instances .json (docs/own-data.md)")
    parser.add_argument("--images", type=local_path, default=None, metavar="DIR",
                        help="with --data FILE.json: the folder its file_names are relative to (default: beside it)")
    parser.add_argument("--val-classes", type=class_list, default=None, metavar="A,B,C",
                        help="with --data: hold out these classes (default: a seeded 20%% of them, or 20%% of each "
                             "class's images with fewer than 4 classes)")
    parser.add_argument("--split-by", default="auto", choices=SPLIT_BY,
                        help="with --data: hold out classes or images (auto: classes from 4 classes on)")
    parser.add_argument("--fold", type=int, default=0, choices=(0, 1, 2, 3), help="fold of pascal/coco (ignored for fss)")
    parser.add_argument("--datapath", type=local_path, default=os.environ.get(DATAPATH_ENV, DEFAULT_DATAPATH),
                        help=f"the authors' Datasets_HSN folder (default: ${DATAPATH_ENV} or {DEFAULT_DATAPATH})")
    parser.add_argument("--splits", type=local_path, default=None, metavar="DIR",
                        help="local copy of the authors' data/splits folder (default: $HSNET_SPLITS_DIR, else fetched "
                             "once from their repository and cached)")
    parser.add_argument("--image-size", type=image_side, default=DEFAULT_IMAGE_SIDE,
                        help=f"square input size (authors: {DEFAULT_IMAGE_SIDE})")
    parser.add_argument("--workers", type=non_negative_int, default=None,
                        help="data loading processes per rank (default: 0 for evaluate, as the authors; 8 for train)")
    parser.add_argument("--device", default="auto", type=device, help="auto, cpu or cuda (under torchrun: each rank's own GPU)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet evaluate``."""
    add_data_arguments(parser)
    parser.add_argument("--shots", "--nshot", type=shots, default=1, help="support images per episode (K)")
    parser.add_argument("--weights", required=True, type=weights_source, metavar="NAME|REPO|PATH",
                        help="registry name (e.g. pascal-resnet50-fold0), Hub repo id, best_model.pt, .safetensors "
                             "or folder")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit of --weights")
    parser.add_argument("--hub-org", default=None, help="Hub organisation of the registry names")
    parser.add_argument("--original-size", action="store_true",
                        help="score each query at its original size (the authors' --use_original_imgsize)")
    parser.add_argument("--rule", default="vote", choices=K_SHOT_RULES, help="k-shot rule (vote: the authors')")
    parser.add_argument("--batch-size", type=positive_int, default=1, help="episodes per forward pass on each rank")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="autocast on CUDA (published: fp32)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the episode list (authors: 0)")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="only the first N episodes of the list (smoke tests; not the protocol)")
    parser.add_argument("--all", action="store_true",
                        help="with --data: evaluate on all of it, not only the part the weights' run held out")
    parser.add_argument("--output", type=output_file, default=None,
                        help="JSON results file (default: hsnet-eval-<benchmark>[-fold<F>]-<K>shot.json)")


def run(args: argparse.Namespace) -> int:
    """Evaluate on this rank's share of the episode list; rank 0 prints and writes the JSON."""
    from ..data import build_dataset
    from ..distributed import init_distributed, main_first, shutdown
    from ..evaluate import evaluate
    from ..hub import from_pretrained
    from ..runtime import retain_freed_memory

    check_device_and_precision(args.device, args.precision)
    retain_freed_memory()  # thousands of episodes: reuse their freed memory instead of faulting it in again
    ctx = init_distributed(args.device)
    try:
        if ctx.is_main and args.output is not None:
            check_replaceable(args.output)
            probe_file(args.output, "--output")  # before the datasets and the episodes, not after them
        benchmark, datapath = dataset_source(args)
        dataset = main_first(lambda: build_dataset(
            benchmark, datapath, args.fold, "all" if args.all else "test", args.shots, image_size=args.image_size,
            original_size=args.original_size, seed=args.seed, limit=args.limit, splits_dir=args.splits,
            images=args.images, val_classes=args.val_classes, split_by=args.split_by,
            split_file=run_split_file(args.weights) if args.data else None))
        if ctx.is_main:
            for note in dataset.notes():
                print(f"hsnet evaluate: {note}", file=sys.stderr, flush=True)
        fold = f"-fold{dataset.fold}" if dataset.folds else ""
        output = args.output or Path(f"hsnet-eval-{dataset.benchmark}{fold}-{dataset.shots}shot.json")
        if ctx.is_main:
            check_replaceable(output)
        if ctx.is_main and args.output is None:
            probe_file(output, "--output")
        model = main_first(lambda: from_pretrained(args.weights, args.revision, hub_org=args.hub_org))
        if ctx.is_main:
            print(f"hsnet evaluate: {dataset.summary()} with {args.weights} ({model.backbone_name}) on "
                  f"{ctx.world_size} x {ctx.device.type}", flush=True)
        result = evaluate(model, dataset, device=ctx.device, batch_size=args.batch_size,
                          num_workers=args.workers or 0, rule=args.rule, precision=args.precision,
                          progress=args.progress, settings={"weights": str(args.weights),
                                                            "backbone": model.backbone_name, "limit": args.limit})
        if ctx.is_main:
            prepare_folder(output.parent, "--output")
            output.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
            print(result.summary())
            print(f"wrote {output}")
    finally:
        shutdown()
    return 0


def dataset_source(args: argparse.Namespace) -> tuple[str, str]:
    """(registry name, path) of the dataset the flags name: a benchmark, or one's own data's layout."""
    from ..data import check_benchmark_options, own_layout

    if args.data is None:
        if getattr(args, "all", False):
            raise InputError("--all is for one's own data (--data PATH), not a benchmark")
        check_benchmark_options(args.images, args.val_classes, args.split_by)
        return args.benchmark, args.datapath
    return own_layout(args.data), args.data


def run_split_file(weights: str) -> Path | None:
    """The ``split.json`` hsnet train wrote beside weights it saved (in ``best/`` or the run folder), if any."""
    path = Path(weights)
    if not path.exists():
        return None
    folder = path if path.is_dir() else path.parent
    return next((f / SPLIT_FILE for f in (folder, folder.parent) if (f / SPLIT_FILE).is_file()), None)


def check_replaceable(path: Path) -> None:
    """Refuse to overwrite a file unless it is a results file hsnet evaluate wrote (a rerun replaces its own)."""
    if not path.is_file():
        return
    try:
        ours = RESULT_KEYS <= set(json.loads(path.read_bytes()))
    except (OSError, ValueError, TypeError):
        ours = False
    if not ours:
        raise InputError(f"--output {path} exists and is not a results file of hsnet evaluate; choose another "
                         "--output or delete it")
