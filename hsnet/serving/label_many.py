"""The app's "Label many" backend: many query photos (or one zip) against the supports, bounded per request.

``label_many`` yields a ``LabelUpdate`` per finished query (its overlay for the gallery)
and a last one with the archive: ``masks/<name>.png`` (0/255, the query's size) and
``annotations.json`` (COCO, through ``hsnet.labeling``). A request may hold at most
MAX_LABEL_QUERIES images and MAX_LABEL_BYTES in all (a zip by its members' declared
sizes, checked before anything is extracted); a file that cannot be read is skipped
with one line and the rest go on. ``segment`` maps decoded images to masks, e.g.
``predictor_segmenter(predictor, supports)`` or the app's GPU step.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..errors import HSNetError, InputError, one_line
from ..inputs import load_rgb
from ..labeling import ANNOTATIONS, IMAGE_SUFFIXES, Segment, coco_document, coco_record, segment_each
from ..predictor import Predictor, SupportSet
from ..visualize import fit, mask_image, overlay_mask
from .uploads import MAX_UPLOAD_BYTES

MAX_LABEL_QUERIES = 50
MAX_LABEL_BYTES = MAX_LABEL_QUERIES * 8 * 2**20  # 50 phone photos (3 to 8 MB each as JPEG), not more
LABEL_BATCH = 4
OVERLAY_SIDE = 384
ARCHIVE = "labels.zip"



@dataclass
class LabelUpdate:
    """Progress of a labelling request: one finished query (name, overlay), or at the end the archive."""

    done: int
    total: int
    name: str | None = None
    overlay: Image.Image | None = None
    skipped: dict[str, str] = field(default_factory=dict)  # name -> one-line reason
    archive: Path | None = None


def predictor_segmenter(predictor: Predictor, supports: SupportSet, rule: str = "vote") -> Segment:
    """``segment`` for ``label_many`` from a Predictor and its encoded supports (hsnet's SupportSet)."""
    def segment(images: list[Image.Image]) -> list[np.ndarray]:
        return [p.mask for p in predictor.predict_many(images, supports, batch_size=len(images), rule=rule)]
    return segment


def _limit_total(total: int) -> None:
    if total > MAX_LABEL_BYTES:
        raise InputError(f"the photos to label hold {total / 2**20:.0f} MB together, over the "
                         f"{MAX_LABEL_BYTES // 2**20} MB limit per request; label them in smaller groups")


def _limit_count(count: int) -> None:
    if count > MAX_LABEL_QUERIES:
        raise InputError(f"{count} photos to label; at most {MAX_LABEL_QUERIES} per request, label them in smaller groups")


def _unique(name: str, taken: set[str]) -> str:
    stem, suffix, number = PurePosixPath(name).with_suffix(""), PurePosixPath(name).suffix, 1
    while name in taken:
        number += 1
        name = f"{stem}-{number}{suffix}"
    taken.add(name)
    return name


def gather_queries(files: Sequence[str | os.PathLike], workdir: Path) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(name, file) of every photo in ``files`` (a zip's images extracted under ``workdir``) and the skipped ones.

    Sizes are checked from the file system and the zip's directory before anything is extracted
    or decoded: InputError over a request's limits, a one-line skip for one member too large or damaged.
    """
    entries: list[tuple[str, Path | tuple[zipfile.ZipFile, zipfile.ZipInfo]]] = []
    total = 0
    archives = []
    try:
        for file in files:
            path = Path(file)
            if zipfile.is_zipfile(path):
                archive = zipfile.ZipFile(path)
                archives.append(archive)
                members = [m for m in archive.infolist() if not m.is_dir()
                           and PurePosixPath(m.filename).suffix.lower() in IMAGE_SUFFIXES]
                _limit_count(len(entries) + len(members))
                for member in members:
                    total += member.file_size
                    entries.append((member.filename, (archive, member)))
            else:
                total += path.stat().st_size
                entries.append((path.name, path))
            _limit_count(len(entries))
            _limit_total(total)
        if not entries:
            raise InputError("no photos to label; upload image files or a zip of them")
        gathered, skipped, taken = [], {}, set()
        for number, (name, source) in enumerate(entries):
            parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
            name = _unique("/".join(parts) or f"photo-{number}", taken)
            if isinstance(source, Path):
                gathered.append((name, source))
                continue
            archive, member = source
            if member.file_size > MAX_UPLOAD_BYTES:
                skipped[name] = (f"photo {one_line(name, 60)} is {member.file_size / 2**20:.0f} MB, over the "
                                 f"{MAX_UPLOAD_BYTES // 2**20} MB limit per photo; downscale it")
                continue
            target = workdir / "unzipped" / f"{number}{PurePosixPath(name).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as data:  # reads at most the declared size
                    target.write_bytes(data.read(MAX_UPLOAD_BYTES + 1))
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                skipped[name] = f"photo {one_line(name, 60)} cannot be taken from the zip ({type(exc).__name__}); zip it again"
                continue
            gathered.append((name, target))
        return gathered, skipped
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"a file to label cannot be read ({type(exc).__name__}); upload it again") from exc
    finally:
        for archive in archives:
            archive.close()


def label_many(segment: Segment, files: Sequence[str | os.PathLike], workdir: Path, category: str = "object",
               batch_size: int = LABEL_BATCH) -> Iterator[LabelUpdate]:
    """Label every photo in ``files``, ``batch_size`` at a time; the last update carries ``workdir/labels.zip``."""
    queries, skipped = gather_queries(files, workdir)
    total, done, records = len(queries) + len(skipped), 0, []
    archive_path = workdir / ARCHIVE
    complete = False
    archive = zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED)
    try:
        for start in range(0, total, batch_size):
            batch = []
            for name, path in queries[start: start + batch_size]:
                try:
                    batch.append((name, load_rgb(path, f"photo {one_line(name, 60)}")))
                except HSNetError as exc:
                    skipped[name] = str(exc)
            for (name, image), mask in zip(batch, segment_each(segment, [image for _, image in batch])):
                if isinstance(mask, HSNetError):  # one bad photo skips only itself
                    skipped[name] = str(mask)
                    continue
                png = io.BytesIO()
                mask_image(mask).save(png, format="PNG")
                archive.writestr(f"masks/{PurePosixPath(name).with_suffix('.png')}", png.getvalue())
                records.append(coco_record(name, mask))
                done += 1
                small = fit(image, OVERLAY_SIDE)
                small_mask = np.asarray(mask_image(mask).resize(small.size, Image.NEAREST)) > 0
                yield LabelUpdate(done, total, name, overlay_mask(small, small_mask), dict(skipped))
        archive.writestr(ANNOTATIONS, json.dumps(coco_document(records, category)) + "\n")
        complete = True
    finally:
        archive.close()
        shutil.rmtree(workdir / "unzipped", ignore_errors=True)
        if not complete:  # stopped early (the visitor left): no half archive stays behind
            archive_path.unlink(missing_ok=True)
    yield LabelUpdate(done, total, skipped=dict(skipped), archive=archive_path)
