"""``hsnet label``: label a whole collection from a few annotated examples (masks, overlays, COCO file)."""
from __future__ import annotations

import argparse
import sys

from .arguments import non_empty, output_folder, positive_int, prepare_folder
from .predict import add_support_arguments, build_predictor, load_supports

LISTED_SKIPS = 20  # skipped files named in the summary line (each was named when it was skipped)
HELP = ("Label every image in files, folders (recursive) or globs from a few annotated supports: "
        "masks, overlays and a COCO annotations.json; resumable.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet label``."""
    parser.add_argument("queries", nargs="+", metavar="QUERY", help="image files, folders (searched recursively) or globs")
    add_support_arguments(parser)
    parser.add_argument("--out", required=True, type=output_folder,
                        help="output folder: masks/, overlays/ and annotations.json go there")
    parser.add_argument("--name", default="object", type=non_empty, help="the COCO category name (default: object)")
    parser.add_argument("--overwrite", action="store_true", help="label again the queries an earlier run already did")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="queries per forward pass (default: 1 on the CPU, where batching measured no faster "
                             "(docs/performance.md); 4 on a GPU)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Exit status 0 when every query was labelled (now or before), 1 when some were skipped."""
    from tqdm import tqdm

    from ..labeling import FolderLabeler, find_queries, label_queries

    queries = find_queries(args.queries, out=args.out)
    images, masks = load_supports(args)
    labeler = FolderLabeler(prepare_folder(args.out, "--out"), args.name, overwrite=args.overwrite)
    predictor = build_predictor(args)
    supports = predictor.set_supports(images, masks)  # encoded once for every query

    def segment(batch: list) -> list:
        return [result.mask for result in predictor.predict_many(batch, supports, batch_size=len(batch), rule=args.rule)]

    def report_skip(query, reason: str) -> None:
        tqdm.write(f"hsnet label: skipped {query.path}: {reason}", file=sys.stderr)

    batch_size = args.batch_size or (1 if predictor.device.type == "cpu" else 4)
    summary = label_queries(segment, queries, labeler, batch_size=batch_size, progress=args.progress,
                            on_skip=report_skip)
    print(f"hsnet label: {len(summary.labelled)} labelled ({summary.queries_per_second:.2f} queries/s on "
          f"{predictor.device}), {len(summary.done_before)} done before, {len(summary.skipped)} skipped; "
          f"wrote {args.out / 'masks'}, {args.out / 'overlays'} and {summary.annotations}")
    if summary.skipped:
        names = list(summary.skipped)
        more = f" and {len(names) - LISTED_SKIPS} more" if len(names) > LISTED_SKIPS else ""
        print(f"skipped: {', '.join(names[:LISTED_SKIPS])}{more}")
        return 1
    return 0
