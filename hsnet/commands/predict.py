"""``hsnet predict``: segment a query image from annotated support images."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..limits import DEFAULT_IMAGE_SIDE, MAX_IMAGE_SIDE, check_image_size

HELP = "Segment a query image given one or more support images with masks; writes the mask and an overlay."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--query", required=True, help="the image to segment")
    parser.add_argument("--support", action="append", required=True,
                        help="a support image showing the object (repeat for K-shot)")
    parser.add_argument("--support-mask", action="append", required=True,
                        help="the mask of the preceding --support (0/255, 0/1, palette or alpha)")
    parser.add_argument("--weights", required=True,
                        help="a registry name (see `hsnet weights`), a Hub repo id, or a local .pt/.safetensors file or folder")
    parser.add_argument("--revision", default=None, help="a Hub branch, tag or commit to pin the weights to")
    parser.add_argument("--hub-org", default=None,
                        help="the Hub organisation that registry names resolve to (default: $HSNET_HUB_ORG or the registry's)")
    parser.add_argument("--out", required=True, type=Path, help="output folder for mask.png and overlay.png")
    parser.add_argument("--rule", default="vote", choices=("vote", "mean-prob"),
                        help="how K > 1 supports are merged: the authors' vote (default) or mean probability")
    parser.add_argument("--device", default=None, help="cuda, cpu, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIDE,
                        help=f"the square side images are resized to (the authors': {DEFAULT_IMAGE_SIDE}; "
                             f"at most {MAX_IMAGE_SIDE}: cost grows with its fourth power)")


def run(args: argparse.Namespace) -> int:
    from ..hub import from_pretrained
    from ..inputs import load_rgb
    from ..predictor import Predictor
    from ..visualize import mask_image, overlay_mask

    if len(args.support) != len(args.support_mask):
        raise InputError(f"{len(args.support)} --support but {len(args.support_mask)} --support-mask; give one mask per support")
    check_image_size(args.image_size)  # before the weights are fetched
    query = load_rgb(args.query, "query image")
    predictor = Predictor(from_pretrained(args.weights, args.revision, hub_org=args.hub_org), device=args.device,
                          precision=args.precision, image_size=args.image_size)
    result = predictor.predict(query, args.support, args.support_mask, rule=args.rule)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        mask_image(result.mask).save(args.out / "mask.png")
        overlay_mask(query, result.mask).save(args.out / "overlay.png")
    except OSError as exc:
        raise InputError(f"cannot write to {args.out} ({exc.strerror}); choose a writable --out folder") from exc
    share = result.mask.mean() * 100
    print(f"wrote {args.out / 'mask.png'} and {args.out / 'overlay.png'} "
          f"({result.mask.shape[1]}x{result.mask.shape[0]}, {share:.1f}% foreground, {result.timings['total']:.2f} s on {result.device})")
    return 0
