"""``hsnet convert``: turn a best_model.pt into a Hugging Face Hub folder."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Convert a best_model.pt into a Hub folder (model.safetensors, config.json, README.md model card)."


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
    # A plain string: argparse's Path would turn '' into '.', the current folder.
    parser.add_argument("--out", required=True, help="the folder to write: new, empty, or an earlier hsnet export")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that holds other files (only model.safetensors, config.json and "
                             "README.md are replaced)")
    parser.add_argument("--license", default="unknown",
                        help="the weights' licence as a Hub identifier (mit, apache-2.0, cc-by-4.0 ...), when you "
                             "know it; default unknown")
    parser.add_argument("--repo-id", default=None, help="the repo id the model card's usage example loads "
                                                        "(default: the --out folder)")


def run(args: argparse.Namespace) -> int:
    """Convert, check that the result loads, and say where it went and whose weights the card says they are."""
    import json

    from ..weights import convert_checkpoint

    folder = convert_checkpoint(args.checkpoint, args.out, backbone=args.backbone, benchmark=args.benchmark,
                                fold=args.fold, mask_support=args.mask_support, license=args.license,
                                repo_id=args.repo_id, overwrite=args.force)
    source = json.loads((folder / "config.json").read_text(encoding="utf-8"))["source"]
    print(f"wrote {folder} (model.safetensors, config.json, README.md); its card says: {source}")
    print(f"load it with --weights {folder}, or publish it (with the rights holder's permission) with: "
          f"hsnet push {folder} --repo-id {args.repo_id or 'OWNER/NAME'}")
    return 0
