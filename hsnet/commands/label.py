"""``hsnet label``: label a whole collection from a few annotated examples into a COCO dataset folder."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

from ..errors import InputError
from .arguments import _at_least, argument_type, output_folder, prepare_folder
from .predict import add_support_arguments, build_predictor, load_supports

LISTED_SKIPS = 20  # skipped files named in the summary line (each was named when it was skipped)
MAX_NAME = 100  # characters in a category name
MAX_BATCH = 256  # queries per forward pass; more only holds more memory
HELP = ("Label every image in files, folders (recursive) or globs from a few annotated supports into a COCO "
        "dataset folder (images/, annotations/instances_default.json, masks/, overlays/); resumable.")


@argument_type
def category_name(text: str) -> str:
    """A COCO category name: one line of printable text, at most MAX_NAME characters."""
    name = text.strip()
    if not name:
        raise InputError("is empty; give a name")
    if not name.isprintable():
        raise InputError("holds a line break or control character; give the name on one line")
    if len(name) > MAX_NAME:
        raise InputError(f"is {len(name)} characters long; give a name of at most {MAX_NAME}")
    return name


@argument_type
def batch_size(text: str) -> int:
    """Queries per forward pass: 1 to MAX_BATCH."""
    return _at_least(text, 1, MAX_BATCH)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hsnet label``."""
    parser.add_argument("queries", nargs="+", metavar="QUERY", help="image files, folders (searched recursively) or globs")
    add_support_arguments(parser)
    parser.add_argument("--out", required=True, type=output_folder,
                        help="output folder: images/, annotations/instances_default.json, masks/ and overlays/")
    parser.add_argument("--name", default="object", type=category_name,
                        help=f"the COCO category name (default: object; one line, at most {MAX_NAME} characters)")
    parser.add_argument("--images", choices=("link", "copy"), default="link",
                        help="how the photos go into OUT/images/: symbolic links to them (default) or copies "
                             "(a folder that stands alone, to zip or move to another machine)")
    parser.add_argument("--polygons", action="store_true",
                        help="write polygons instead of RLE masks (holes are lost; the summary says how many pixels)")
    parser.add_argument("--overwrite", action="store_true", help="label again the queries an earlier run already did")
    parser.add_argument("--batch-size", type=batch_size, default=None,
                        help=f"queries per forward pass, 1 to {MAX_BATCH} (default: 1 on the CPU, where batching "
                             "measured no faster (docs/performance.md); 4 on a GPU)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``), handled as Ctrl-C is: the loop stops and the COCO file is written."""


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` while the run lasts (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Exit status 0 when every query was labelled (now or before), 1 when some were skipped, 130/143 when stopped."""
    with terminate_as_interrupt():
        try:
            return _label(args)
        except KeyboardInterrupt as stop:
            print(f"hsnet label: {'terminated' if isinstance(stop, Terminated) else 'interrupted'} before labelling "
                  "started; nothing was labelled", file=sys.stderr)
            return 143 if isinstance(stop, Terminated) else 130


def _label(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..labeling import LabelFolder, LabelSummary, find_queries, label_each, locked, predictor_segmenter
    from ..labeling.queries import real_path

    found = find_queries(args.queries, out=args.out)
    for folder in found.left_out:
        if real_path(folder) != real_path(args.out):
            print(f"hsnet label: left out {folder}: it holds the output of an hsnet label run", file=sys.stderr)
    images, masks = load_supports(args)
    out = prepare_folder(args.out, "--out")
    with locked(out):
        folder = LabelFolder(out, args.name, images=args.images, polygons=args.polygons, overwrite=args.overwrite)
        predictor = build_predictor(args)
        segment = predictor_segmenter(predictor, predictor.set_supports(images, masks), args.rule)  # supports encoded once
        summary, stopped = LabelSummary(), None
        start = time.perf_counter()
        outcomes = label_each(segment, found.queries, folder,
                              batch_size=args.batch_size or (1 if predictor.device.type == "cpu" else 4))
        try:
            with closing(outcomes), tqdm(total=len(found.queries), unit="query", disable=not args.progress,
                                         dynamic_ncols=True) as bar:
                for outcome in outcomes:
                    summary.add(outcome)
                    if outcome.skipped is not None:
                        tqdm.write(f"hsnet label: skipped {outcome.query.path}: {outcome.skipped}", file=sys.stderr)
                    bar.update(1)
        except KeyboardInterrupt as exc:
            stopped = exc
        summary.seconds = time.perf_counter() - start
    print(f"hsnet label: {len(summary.labelled)} labelled ({summary.queries_per_second:.2f} queries/s on "
          f"{predictor.device}), {len(summary.done_before)} done before, {len(summary.skipped)} skipped"
          f"{f', {len(summary.empty)} with no object found' if summary.empty else ''}; wrote {out}: images/, "
          f"{folder.annotations.relative_to(out)}, masks/ and overlays/")
    if args.polygons and summary.pixels:
        share, name = summary.worst_polygon
        print(f"polygons differ from the masks in {100 * summary.polygon_error / summary.pixels:.3f}% of the "
              f"pixels labelled now (holes, which COCO polygons cannot hold; most in {name}: {100 * share:.2f}%); "
              "masks/ and the default RLE are exact")
    if stopped is not None:
        print(f"hsnet label: {'terminated' if isinstance(stopped, Terminated) else 'interrupted'}; what is labelled is "
              "kept and listed in the annotations; run the same command again to go on", file=sys.stderr)
        return 143 if isinstance(stopped, Terminated) else 130
    if summary.skipped:
        names = list(summary.skipped)
        more = f" and {len(names) - LISTED_SKIPS} more" if len(names) > LISTED_SKIPS else ""
        print(f"skipped: {', '.join(names[:LISTED_SKIPS])}{more}")
        return 1
    return 0
