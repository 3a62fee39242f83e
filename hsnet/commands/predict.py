"""``hsnet predict``: segment a query image from annotated support images."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..limits import DEFAULT_IMAGE_SIDE, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE
from ..model import K_SHOT_RULES
from ..runtime import PRECISIONS
from .arguments import check_device_and_precision, device, output_folder, predictor_side, prepare_folder, weights_source

HELP = "Segment a query image given one or more support images with masks; writes the mask and an overlay."


def add_support_arguments(parser: argparse.ArgumentParser) -> None:
    """The supports, weights and Predictor settings that ``predict`` and ``label`` share."""
    parser.add_argument("--support", action="append", required=True,
                        help="a support image showing the object (repeat for K-shot)")
    parser.add_argument("--support-mask", action="append", required=True,
                        help="the mask of the preceding --support (0/255, 0/1, palette or alpha)")
    parser.add_argument("--weights", required=True, type=weights_source,
                        help="a registry name (see `hsnet weights`), a Hub repo id, or a local .pt/.safetensors file or folder")
    parser.add_argument("--revision", default=None, help="a Hub branch, tag or commit to pin the weights to")
    parser.add_argument("--hub-org", default=None,
                        help="the Hub organisation that registry names resolve to (default: $HSNET_HUB_ORG or the registry's)")
    parser.add_argument("--rule", default="vote", choices=K_SHOT_RULES,
                        help="how K > 1 supports are merged: the authors' vote (default) or mean probability")
    parser.add_argument("--device", default="auto", type=device, help="auto (cuda when available), cpu, cuda, cuda:1 ...")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="default: fp32 (published; on CUDA the measured default); tf32 (CUDA), or autocast: bf16, "
                             "fp16 (GPU; a pass that overflows is computed again in bf16), auto (fastest autocast)")
    parser.add_argument("--image-size", type=predictor_side, default=None,
                        help=f"the square side images are resized to (default: the weights' own, {DEFAULT_IMAGE_SIDE} for "
                             f"the authors'; {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE}: cost grows with its fourth power)")


def load_supports(args: argparse.Namespace) -> tuple[list, list]:
    """The decoded support images and masks, checked (with the device and precision) before any weights are fetched."""
    from ..inputs import load_mask, load_rgb

    args.precision = check_device_and_precision(args.device, args.precision)
    if len(args.support) != len(args.support_mask):
        raise InputError(f"{len(args.support)} --support but {len(args.support_mask)} --support-mask; give one mask per support")
    images = [load_rgb(path, f"support image {i}") for i, path in enumerate(args.support, start=1)]
    masks = [load_mask(path, image.size, f"support mask {i}")
             for i, (path, image) in enumerate(zip(args.support_mask, images), start=1)]
    return images, masks


def build_predictor(args: argparse.Namespace):
    """The Predictor the flags describe (this fetches the weights)."""
    from ..hub import from_pretrained
    from ..predictor import Predictor

    model = from_pretrained(args.weights, args.revision, hub_org=args.hub_org)
    return Predictor(model, device=args.device, precision=args.precision, image_size=args.image_size)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet predict``."""
    parser.add_argument("--query", required=True, help="the image to segment")
    add_support_arguments(parser)
    parser.add_argument("--out", required=True, type=output_folder, help="output folder for mask.png and overlay.png")


def run(args: argparse.Namespace) -> int:
    """Decode every input, then load the weights, predict and write the mask and the overlay."""
    from ..inputs import load_rgb
    from ..visualize import mask_image, overlay_mask

    query = load_rgb(args.query, "query image")
    images, masks = load_supports(args)
    out: Path = prepare_folder(args.out, "--out")
    result = build_predictor(args).predict(query, images, masks, rule=args.rule)
    mask_image(result.mask).save(out / "mask.png")
    overlay_mask(query, result.mask).save(out / "overlay.png")
    share = result.mask.mean() * 100
    print(f"wrote {out / 'mask.png'} and {out / 'overlay.png'} "
          f"({result.mask.shape[1]}x{result.mask.shape[0]}, {share:.1f}% foreground, {result.timings['total']:.2f} s on {result.device})")
    return 0
