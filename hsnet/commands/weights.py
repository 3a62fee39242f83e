"""``hsnet weights``: list the authors' checkpoints by name, or fetch some into the cache."""
from __future__ import annotations

import argparse

HELP = "List the pretrained weights by name (with the authors' mIoU), or download some into the cache."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet weights``."""
    parser.add_argument("--download", nargs="+", metavar="NAME|REPO", default=None,
                        help="fetch these registry names or repo ids into the Hugging Face cache (for offline use)")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit to fetch (default: latest)")
    parser.add_argument("--hub-org", default=None, help="Hub organisation of the registry names (default: $HSNET_HUB_ORG)")


def run(args: argparse.Namespace) -> int:
    """Print the registry table, or download what was asked for and print where it is."""
    from ..hub import DEFAULT_WEIGHTS, download, registry

    if args.download:
        for name in args.download:
            print(f"{name}: {download(name, args.revision, hub_org=args.hub_org)}")
        return 0
    print(f"{'name':<26} {'backbone':<10} {'benchmark':<9} {'fold':<4} {'mIoU 1/5-shot':<14} repository")
    for name, e in registry().items():
        miou = "/".join(f"{v:.1f}" for v in e.miou.values())
        mark = " (default)" if name == DEFAULT_WEIGHTS else ""
        print(f"{name:<26} {e.backbone:<10} {e.benchmark:<9} {'-' if e.fold is None else e.fold:<4} {miou:<14} "
              f"{e.repo_id(args.hub_org)}{mark}")
    return 0
