"""``hsnet evaluate``: the authors' test protocol on PASCAL-5i, COCO-20i or FSS-1000; runs under torchrun too."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ..data import BENCHMARKS
from ..model import DEFAULT_IMAGE_SIDE, K_SHOT_RULES
from ..runtime import PRECISIONS
from .arguments import (check_device_and_precision, device, image_side, local_path, non_negative_int, output_file,
                        positive_int, prepare_folder, probe_file, seed, shots, weights_source)

HELP = "Evaluate weights on a few-shot benchmark with the authors' protocol: mIoU, FB-IoU, per-class IoU (JSON)."
DATAPATH_ENV = "HSNET_DATAPATH"
DEFAULT_DATAPATH = "../Datasets_HSN"


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The dataset flags ``evaluate`` and ``train`` share."""
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS)
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
            probe_file(args.output, "--output")  # before the datasets and the episodes, not after them
        dataset = main_first(lambda: build_dataset(
            args.benchmark, args.datapath, args.fold, "test", args.shots, image_size=args.image_size,
            original_size=args.original_size, seed=args.seed, limit=args.limit, splits_dir=args.splits))
        fold = f"-fold{dataset.fold}" if dataset.folds else ""
        output = args.output or Path(f"hsnet-eval-{dataset.benchmark}{fold}-{dataset.shots}shot.json")
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
