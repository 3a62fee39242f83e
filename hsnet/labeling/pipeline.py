"""The one labelling loop behind ``hsnet label`` and the app's Label many: photos in, a labelled folder out.

``label_each`` names every query in the folder, passes over those an earlier run did, and
segments the rest ``batch_size`` at a time, yielding an ``Outcome`` per photo as it is written.
A photo that cannot be decoded or segmented is skipped with its one-line reason and the rest
go on. The COCO file is rewritten every ANNOTATIONS_EVERY_S and whenever the loop ends,
finished, interrupted or closed, so the folder is a readable dataset at every moment.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import HSNetError, InputError, OutputError, one_line
from ..inputs import load_rgb
from .coco import Record
from .folder import LabelFolder
from .queries import Query

if TYPE_CHECKING:
    from ..predictor import Predictor, SupportSet

ANNOTATIONS_EVERY_S = 30.0

Segment = Callable[[list[Image.Image]], list[np.ndarray]]


def predictor_segmenter(predictor: Predictor, supports: SupportSet, rule: str = "vote") -> Segment:
    """``segment`` from a Predictor and its encoded supports: a batch of photos in one ``predict_many``."""
    def segment(images: list[Image.Image]) -> list[np.ndarray]:
        return [p.mask for p in predictor.predict_many(images, supports, batch_size=len(images), rule=rule)]
    return segment


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


def _read(query: Query, what: str) -> Image.Image:
    """The query's photo in RGB; a link that leads nowhere (or in a loop) is named as such."""
    if query.path.is_symlink() and not query.path.exists():
        raise InputError(f"{what} {one_line(str(query.path), 80)} is a symbolic link to nothing (or a loop of links); "
                         "fix or remove the link")
    return load_rgb(query.path, what)


@dataclass
class Outcome:
    """What became of one query: labelled now (its record, image and mask), done before, or skipped (why)."""

    query: Query
    name: PurePosixPath
    record: Record | None = None
    image: Image.Image | None = None
    mask: np.ndarray | None = None
    done_before: bool = False
    skipped: str | None = None


@dataclass
class LabelSummary:
    """What a labelling run did: the names it labelled, found done and skipped (with the reason)."""

    labelled: list[str] = field(default_factory=list)
    done_before: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # query path -> one-line reason
    empty: list[str] = field(default_factory=list)  # labelled with an empty mask: an image entry, no annotation
    polygon_error: int = 0  # pixels where polygons differ from the masks (holes), over...
    pixels: int = 0  # ...the pixels of the photos labelled now
    worst_polygon: tuple[float, str] = (0.0, "")  # largest share of one photo's pixels, and its name
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        """Count one outcome of ``label_each``."""
        name = outcome.name.as_posix()
        if outcome.skipped is not None:
            self.skipped[str(outcome.query.path)] = outcome.skipped
        elif outcome.done_before:
            self.done_before.append(name)
        elif outcome.record is not None:
            record = outcome.record
            self.labelled.append(name)
            if record.segmentation is None:
                self.empty.append(name)
            share = record.polygon_error / (record.width * record.height)
            self.polygon_error += record.polygon_error
            self.pixels += record.width * record.height
            self.worst_polygon = max(self.worst_polygon, (share, name))

    @property
    def queries_per_second(self) -> float:
        """Throughput of the queries labelled in this run."""
        return len(self.labelled) / self.seconds if self.seconds > 0 else 0.0


def label_each(segment: Segment, queries: Sequence[Query], folder: LabelFolder, *, batch_size: int = 1,
               what: Callable[[Query], str] = lambda query: "query") -> Iterator[Outcome]:
    """Label every query not done yet into ``folder``; one Outcome per query (done ones first).

    ``segment`` maps decoded images to their (H, W) bool masks; ``what(query)`` names a query
    in its error messages. Close the iterator (or let it finish) to have the COCO file written.
    """
    named = [(query, folder.name(query)) for query in queries]
    todo = []
    for query, name in named:
        if folder.is_done(query, name):
            folder.record_of_done(name)
            yield Outcome(query, name, done_before=True)
        else:
            todo.append((query, name))
    written = time.monotonic()
    try:
        for start in range(0, len(todo), batch_size):
            batch = []
            for query, name in todo[start: start + batch_size]:
                try:
                    batch.append((query, name, _read(query, what(query))))
                except HSNetError as exc:
                    yield Outcome(query, name, skipped=str(exc))
            for (query, name, image), mask in zip(batch, segment_each(segment, [image for *_, image in batch])):
                if isinstance(mask, HSNetError):
                    yield Outcome(query, name, skipped=str(mask))
                else:
                    yield Outcome(query, name, folder.save(query, name, image, mask), image, mask)
            if time.monotonic() - written > ANNOTATIONS_EVERY_S:
                folder.write_annotations()
                written = time.monotonic()
    except BaseException:
        try:
            folder.write_annotations()
        except OutputError:
            pass  # the failure being raised already says what to do
        raise
    folder.write_annotations()
