"""``hsnet convert``: turn an authors' best_model.pt into a Hugging Face Hub folder."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Convert an authors' best_model.pt into a Hub folder (model.safetensors, config.json, README.md)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet convert``."""
    from ..model import BACKBONES
    from ..weights import BENCHMARKS

    parser.add_argument("checkpoint", type=Path, help="the authors' best_model.pt (or any HSNet state dict file)")
    parser.add_argument("--backbone", required=True, choices=tuple(BACKBONES), help="the backbone it was trained with")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS, help="the benchmark it was trained on")
    parser.add_argument("--fold", type=int, choices=(0, 1, 2, 3), default=None, help="the fold (pascal and coco only)")
    parser.add_argument("--no-mask-support", dest="mask_support", action="store_false",
                        help="the authors' variant without support feature masking (Table 1, dagger)")
    parser.add_argument("--out", required=True, type=Path, help="the folder to write (created if needed)")
    parser.add_argument("--repo-id", default=None, help="the repo id the model card's usage example names")


def run(args: argparse.Namespace) -> int:
    """Convert, check that the result loads, and say where it went."""
    from ..weights import convert_checkpoint

    folder = convert_checkpoint(args.checkpoint, args.out, backbone=args.backbone, benchmark=args.benchmark,
                                fold=args.fold, mask_support=args.mask_support, repo_id=args.repo_id)
    print(f"wrote {folder} (model.safetensors, config.json, README.md); load it with --weights {folder}, or publish "
          f"it (with the authors' permission) with: hsnet push {folder} --repo-id {args.repo_id or 'OWNER/NAME'}")
    return 0
