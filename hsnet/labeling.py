"""Label a collection from a few examples: find the queries, write each mask and overlay, and one COCO file.

The layout under the output folder is ``masks/<relative path>.png`` (0/255 at the query's
size), ``overlays/<relative path>.png`` and ``annotations.json`` (COCO: one category, one
image and one RLE annotation per query). A query counts as done once its mask and overlay
are on disk (each written to a temporary name, then renamed), so an interrupted run resumes
where it stopped; ``annotations.json`` is rewritten from the done queries at the end.
The COCO helpers (``coco_record``, ``coco_document``) serve any front end that labels many.
"""
from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm import tqdm

from .errors import HSNetError, InputError, describe, one_line
from .inputs import load_rgb
from .visualize import mask_image, overlay_mask

# Files a folder or glob contributes: those whose suffix Pillow can open (files named one by one are always taken).
IMAGE_SUFFIXES = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)
ANNOTATIONS = "annotations.json"
CATEGORY_ID = 1


@dataclass(frozen=True)
class Query:
    """One file to label and its name relative to the folder or glob it was found in (COCO's ``file_name``)."""

    path: Path
    name: PurePosixPath

    @property
    def output_name(self) -> PurePosixPath:
        """Where its mask and overlay go under ``masks/`` and ``overlays/``."""
        return self.name.with_suffix(".png")


def _is_image_name(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def _folder_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted), without hidden files and folders."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in sorted(files) if _is_image_name(Path(f))]
    return found


def _glob_base(pattern: str) -> Path:
    """The folder part of a glob pattern before its first wildcard."""
    parts = Path(pattern).parts
    fixed = parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]
    return Path(*fixed) if fixed else Path(".")


def _expand(source: str) -> list[Query]:
    try:
        return _expand_unchecked(source)
    except OSError as exc:  # a name too long, a folder that may not be listed, ...
        raise InputError(f"query {one_line(source, 60)} cannot be read ({describe(exc)}); check the path") from None


def _expand_unchecked(source: str) -> list[Query]:
    if glob.has_magic(source) and not Path(source).exists():
        base = _glob_base(source)
        matches = [Path(m) for m in sorted(glob.glob(source, recursive=True))]
        files = [f for m in matches for f in (_folder_images(m) if m.is_dir() else [m] if _is_image_name(m) else [])]
        if not files:
            raise InputError(f"query pattern {one_line(source)} matches no image file")
        return [Query(f, PurePosixPath(f.relative_to(base).as_posix())) for f in files]
    path = Path(source)
    if path.is_dir():
        files = _folder_images(path)
        if not files:
            raise InputError(f"query folder {one_line(source)} holds no image files")
        return [Query(f, PurePosixPath(f.relative_to(path).as_posix())) for f in files]
    if path.exists() or path.is_symlink():
        return [Query(path, PurePosixPath(path.name))]
    raise InputError(f"query {one_line(source)} does not exist; give image files, folders or glob patterns")


def find_queries(sources: Sequence[str], out: Path | None = None) -> list[Query]:
    """The files named by ``sources`` (files, folders searched recursively, glob patterns), each once.

    Files inside the output folder ``out`` are left out (masks are no queries). Two files whose
    outputs would share a name are refused.
    """
    skip = out.resolve() if out is not None else None
    queries: dict[Path, Query] = {}
    for source in sources:
        for query in _expand(source):
            resolved = query.path.resolve()
            if skip is None or not resolved.is_relative_to(skip):
                queries.setdefault(resolved, query)
    if not queries:
        raise InputError(f"no query images in {one_line(' '.join(sources), 80)} outside the output folder")
    by_output: dict[PurePosixPath, Query] = {}
    for query in queries.values():
        other = by_output.setdefault(query.output_name, query)
        if other is not query:
            raise InputError(f"{one_line(str(other.path), 60)} and {one_line(str(query.path), 60)} would both be written "
                             f"to masks/{query.output_name}; label them in separate runs (another --out)")
    return list(queries.values())


def coco_record(file_name: str, mask: np.ndarray) -> dict[str, Any]:
    """One labelled image as COCO needs it: its name and size, and the mask as RLE with area and bbox."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    height, width = mask.shape
    return {"file_name": file_name, "width": int(width), "height": int(height),
            "segmentation": {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")},
            "area": float(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)]}


def coco_document(records: Iterable[dict[str, Any]], category: str) -> dict[str, Any]:
    """A COCO annotations document: one category, one image and one annotation per record (ids from 1)."""
    images, annotations = [], []
    for i, record in enumerate(records, start=1):
        images.append({"id": i, "file_name": record["file_name"], "width": record["width"], "height": record["height"]})
        annotations.append({"id": i, "image_id": i, "category_id": CATEGORY_ID, "segmentation": record["segmentation"],
                            "area": record["area"], "bbox": record["bbox"], "iscrowd": 0})
    return {"info": {"description": f"{category} masks labelled by hsnet from a few examples",
                     "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": CATEGORY_ID, "name": category, "supercategory": ""}]}


def read_coco(path: Path) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The category and the records (by file name) of an annotations file ``coco_document`` wrote; none if absent."""
    if not path.exists():
        return None, {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        category = document["categories"][0]["name"]
        images = {image["id"]: image for image in document["images"]}
        records = {}
        for annotation in document["annotations"]:
            image = images[annotation["image_id"]]
            records[image["file_name"]] = {"file_name": image["file_name"], "width": image["width"],
                                           "height": image["height"], "segmentation": annotation["segmentation"],
                                           "area": annotation["area"], "bbox": annotation["bbox"]}
        return category, records
    except (OSError, ValueError, LookupError, TypeError) as exc:
        raise InputError(f"{path} is not an annotations file hsnet label wrote ({describe(exc)}); "
                         "move it away or choose another --out") from None


def save_png(image: Image.Image, path: Path) -> None:
    """Write ``image`` as PNG to ``path`` through a temporary name, so that ``path`` exists only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    image.save(partial, format="PNG")
    os.replace(partial, path)


@dataclass
class LabelSummary:
    """What a labelling run did: the names it labelled, found already done and skipped (with the reason)."""

    labelled: list[str] = field(default_factory=list)
    done_before: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    annotations: Path | None = None

    @property
    def queries_per_second(self) -> float:
        """Throughput of the queries labelled in this run."""
        return len(self.labelled) / self.seconds if self.seconds > 0 else 0.0


class FolderLabeler:
    """Writes masks, overlays and the COCO file of ``queries`` under ``out`` for one category."""

    def __init__(self, out: Path, category: str, *, overwrite: bool = False):
        self.out, self.category, self.overwrite = out, category, overwrite
        self.annotations = out / ANNOTATIONS
        previous_category, self.records = read_coco(self.annotations)
        if previous_category not in (None, category):
            raise InputError(f"{out} holds labels of {previous_category!r}, not {category!r}; "
                             f"pass --name {previous_category!r} to continue it, or choose another --out")

    def paths(self, query: Query) -> tuple[Path, Path]:
        """The mask and overlay files of ``query``."""
        return self.mask_path(query.name), self.out / "overlays" / query.output_name

    def mask_path(self, name: PurePosixPath) -> Path:
        """The mask file of the query named ``name``."""
        return self.out / "masks" / name.with_suffix(".png")

    def is_done(self, query: Query) -> bool:
        """Whether an earlier run wrote this query's mask and overlay (and ``overwrite`` is off)."""
        return not self.overwrite and all(p.exists() for p in self.paths(query))

    def save(self, query: Query, image: Image.Image, mask: np.ndarray) -> None:
        """Write one query's overlay, then its mask (the mask marks it done), and remember its COCO record."""
        mask_path, overlay_path = self.paths(query)
        save_png(overlay_mask(image, mask), overlay_path)
        save_png(mask_image(mask), mask_path)
        self.records[query.name.as_posix()] = coco_record(query.name.as_posix(), mask)

    def record_of_done(self, query: Query) -> None:
        """Make sure a query done earlier has its COCO record (rebuilt from its mask if an earlier run was cut short)."""
        name = query.name.as_posix()
        if name not in self.records:
            with Image.open(self.paths(query)[0]) as mask:
                self.records[name] = coco_record(name, np.array(mask.convert("L")) > 127)

    def write_annotations(self) -> Path:
        """Write ``annotations.json`` for every labelled image whose mask is still on disk, sorted by file name."""
        kept = [r for name, r in sorted(self.records.items()) if self.mask_path(PurePosixPath(name)).exists()]
        partial = self.annotations.with_name(f".{ANNOTATIONS}.partial")
        partial.write_text(json.dumps(coco_document(kept, self.category)) + "\n", encoding="utf-8")
        os.replace(partial, self.annotations)
        return self.annotations


Segment = Callable[[list[Image.Image]], list[np.ndarray]]


def segment_each(segment: Segment, images: list[Image.Image]) -> list[np.ndarray | HSNetError]:
    """Each image's mask, or the error that stopped it: a failed batch is retried one image at a time,
    so that one bad image fails only itself."""
    if not images:
        return []
    try:
        return list(segment(images))
    except HSNetError as exc:
        if len(images) == 1:
            return [exc]
        return [result for image in images for result in segment_each(segment, [image])]


def label_queries(segment: Segment, queries: Sequence[Query], labeler: FolderLabeler, *, batch_size: int = 1,
                  progress: bool = True, on_skip: Callable[[Query, str], None] | None = None) -> LabelSummary:
    """Label every query not done yet, ``batch_size`` at a time, then write the COCO file.

    ``segment`` maps decoded images to their (H, W) bool masks. A query that cannot be decoded or
    segmented is skipped (``on_skip`` hears why) and the run goes on; the COCO file is written even
    when the run is interrupted.
    """
    summary = LabelSummary()
    todo = []
    for query in queries:
        if labeler.is_done(query):
            labeler.record_of_done(query)
            summary.done_before.append(query.name.as_posix())
        else:
            todo.append(query)

    def skip(query: Query, exc: HSNetError) -> None:
        summary.skipped[str(query.path)] = str(exc)
        if on_skip is not None:
            on_skip(query, str(exc))

    def label(batch: list[tuple[Query, Image.Image]]) -> None:
        for (query, image), mask in zip(batch, segment_each(segment, [image for _, image in batch])):
            if isinstance(mask, HSNetError):
                skip(query, mask)
            else:
                labeler.save(query, image, mask)
                summary.labelled.append(query.name.as_posix())

    start = time.perf_counter()
    try:
        with tqdm(total=len(todo), unit="query", disable=not progress, dynamic_ncols=True) as bar:
            batch: list[tuple[Query, Image.Image]] = []
            read = 0  # queries taken from ``todo`` since the bar last moved
            for i, query in enumerate(todo, start=1):
                read += 1
                try:
                    batch.append((query, load_rgb(query.path, "query")))
                except HSNetError as exc:
                    skip(query, exc)
                if len(batch) == batch_size or i == len(todo):
                    if batch:
                        label(batch)
                    bar.update(read)
                    batch, read = [], 0
    finally:
        summary.seconds = time.perf_counter() - start
        summary.annotations = labeler.write_annotations()
    return summary
