"""``hsnet convert``: turn an authors' best_model.pt into a Hugging Face Hub folder."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Convert an authors' best_model.pt into a Hub folder (model.safetensors, config.json, README.md)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet convert``."""
    from ..hub import BENCHMARKS
    from ..model import BACKBONES

    parser.add_argument("checkpoint", type=Path, help="the authors' best_model.pt (or any HSNet state dict file)")
    parser.add_argument("--backbone", required=True, choices=tuple(BACKBONES), help="the backbone it was trained with")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS, help="the benchmark it was trained on")
    parser.add_argument("--fold", type=int, choices=(0, 1, 2, 3), default=None, help="the fold (pascal and coco only)")
    parser.add_argument("--out", required=True, type=Path, help="the folder to write")
    parser.add_argument("--repo-id", default=None,
                        help="the repo id the model card's usage example names (default: the registry's, if any)")


def run(args: argparse.Namespace) -> int:
    """Convert, check that the result loads, and say where it went."""
    from ..hub import convert_checkpoint, registry_entry_for

    folder = convert_checkpoint(args.checkpoint, args.out, backbone=args.backbone, benchmark=args.benchmark,
                                fold=args.fold, repo_id=args.repo_id)
    entry = registry_entry_for(args.backbone, args.benchmark, args.fold)
    target = args.repo_id or (entry.repo_id() if entry else "OWNER/NAME")
    print(f"wrote {folder} (model.safetensors, config.json, README.md); publish it with: hsnet push {folder} --repo-id {target}")
    return 0
