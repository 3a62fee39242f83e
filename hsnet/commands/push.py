"""``hsnet push``: upload a converted folder to the Hugging Face Hub."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Upload a folder made by `hsnet convert` to a Hugging Face Hub repository (token from HF_TOKEN)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet push``; there is deliberately no token argument (it would end up in shell history)."""
    parser.add_argument("folder", type=Path, help="a folder holding model.safetensors, config.json and README.md")
    parser.add_argument("--repo-id", required=True, help="the target repository, e.g. my-org/hsnet-pascal-resnet50-fold0")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--message", default=None, help="the commit message")


def run(args: argparse.Namespace) -> int:
    """Check the folder loads, upload it, print the repository URL (never the token)."""
    from ..weights import push_to_hub

    url = push_to_hub(args.folder, args.repo_id, private=args.private, commit_message=args.message)
    print(f"uploaded {args.folder} to {url}")
    return 0
