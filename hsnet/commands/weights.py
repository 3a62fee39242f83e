"""``hsnet weights``: list the authors' checkpoints by name with their source and cache state, or fetch some."""
from __future__ import annotations

import argparse

HELP = "List the pretrained weights (source, whether cached, the authors' mIoU), or download some into the cache."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet weights``."""
    parser.add_argument("--download", nargs="+", metavar="NAME|REPO", default=None,
                        help="fetch these registry names (from the authors' Google Drive, converted once into "
                             "hsnet's cache) or Hub repo ids, so that later runs work offline")
    parser.add_argument("--revision", default=None, help="Hub branch, tag or commit to fetch (Hub repositories only)")
    parser.add_argument("--hub-org", default=None,
                        help="a Hub organisation holding converted copies of the registry names (default: "
                             "$HSNET_HUB_ORG; none: the authors' Google Drive)")


def run(args: argparse.Namespace) -> int:
    """Print the registry table, or download what was asked for and print where it is."""
    from ..weights import DEFAULT_WEIGHTS, download, registry, status
    from ..weights.cache import cache_root

    if args.download:
        for name in args.download:
            print(f"{name}: {download(name, args.revision, hub_org=args.hub_org)}")
        return 0
    print(f"{'name':<30} {'backbone':<10} {'benchmark':<9} {'fold':<4} {'mask':<5} {'mIoU 1/5-shot':<14} "
          f"{'cached':<6} source")
    for name, e in registry().items():
        miou = "/".join(f"{v:.1f}" for v in e.miou.values()) if e.miou else "-"
        state = status(name, args.hub_org)
        mark = " (default)" if name == DEFAULT_WEIGHTS else ""
        print(f"{name:<30} {e.backbone:<10} {e.benchmark:<9} {'-' if e.fold is None else e.fold:<4} "
              f"{'yes' if e.mask_support else 'no':<5} {miou:<14} {'yes' if state.cached else 'no':<6} "
              f"{state.source}{mark}")
    print(f"hsnet's cache: {cache_root() / 'weights'} (set HSNET_CACHE_DIR to move it)")
    return 0
