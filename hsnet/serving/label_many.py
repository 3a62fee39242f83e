"""The app's "Label many" backend: many query photos (or one zip) against the supports, bounded per request.

The photos go through the same loop as ``hsnet label`` (``hsnet.labeling.label_each``), into a
dataset folder of the same layout (images/ copied, annotations/instances_default.json, masks/;
no overlays/, the gallery shows them). ``label_many`` yields a ``LabelUpdate`` per finished
photo, with a thumbnail of its overlay, and a last one with the folder zipped. Every file it
hands out (thumbnail, zip) is complete before its path is given: written under a temporary
name, then renamed. A request may hold at most MAX_LABEL_QUERIES images and MAX_LABEL_BYTES in
all (a zip by its members' declared sizes, checked before anything is extracted); a file that
cannot be read is skipped with one line and the rest go on. ``segment`` maps decoded images to
masks, e.g. ``predictor_segmenter(predictor, supports)`` (hsnet.labeling) or the app's GPU step.
"""
from __future__ import annotations

import io
import os
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..errors import InputError, one_line
from ..labeling import IMAGE_SUFFIXES, LabelFolder, Query, Segment, label_each, safe_name
from ..whole_files import write_file
from ..visualize import fit, mask_image, overlay_mask
from .uploads import MAX_UPLOAD_BYTES

MAX_LABEL_QUERIES = 50
MAX_LABEL_BYTES = MAX_LABEL_QUERIES * 8 * 2**20  # 50 phone photos (3 to 8 MB each as JPEG), not more
LABEL_BATCH = 4
OVERLAY_SIDE = 384
ARCHIVE = "labels.zip"
DATASET = "labels"  # the folder zipped into ARCHIVE (its name inside the zip is not kept)


@dataclass
class LabelUpdate:
    """Progress of a labelling request: one finished photo (name, thumbnail file), or at the end the archive."""

    done: int
    total: int
    name: str | None = None
    overlay: Path | None = None  # a complete PNG of the overlay, at most OVERLAY_SIDE on a side
    skipped: dict[str, str] = field(default_factory=dict)  # name -> one-line reason
    archive: Path | None = None


def _limit_total(total: int) -> None:
    if total > MAX_LABEL_BYTES:
        raise InputError(f"the photos to label hold {total / 2**20:.0f} MB together, over the "
                         f"{MAX_LABEL_BYTES // 2**20} MB limit per request; label them in smaller groups")


def _limit_count(count: int) -> None:
    if count > MAX_LABEL_QUERIES:
        raise InputError(f"{count} photos to label; at most {MAX_LABEL_QUERIES} per request, label them in smaller groups")


def _upload_name(name: str, number: int) -> PurePosixPath:
    """A photo's name as uploaded (a zip member's path kept, ``..`` and leading ``/`` dropped)."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    return safe_name(parts) or PurePosixPath(f"photo-{number}")


def gather_queries(files: Sequence[str | os.PathLike], workdir: Path) -> tuple[list[Query], dict[str, str]]:
    """The queries in ``files`` (a zip's images extracted under ``workdir``) and the skipped ones (name -> why).

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
        queries, skipped = [], {}
        for number, (raw, source) in enumerate(entries):
            name = _upload_name(raw, number)
            if isinstance(source, Path):
                queries.append(Query(source, name))
                continue
            archive, member = source
            if member.file_size > MAX_UPLOAD_BYTES:
                skipped[name.as_posix()] = (f"photo {one_line(name.as_posix(), 60)} is {member.file_size / 2**20:.0f} MB, "
                                            f"over the {MAX_UPLOAD_BYTES // 2**20} MB limit per photo; downscale it")
                continue
            target = workdir / "unzipped" / f"{number}{name.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as data:  # reads at most the declared size
                    target.write_bytes(data.read(MAX_UPLOAD_BYTES + 1))
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                skipped[name.as_posix()] = (f"photo {one_line(name.as_posix(), 60)} cannot be taken from the zip "
                                            f"({type(exc).__name__}); zip it again")
                continue
            queries.append(Query(target, name))
        return queries, skipped
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"a file to label cannot be read ({type(exc).__name__}); upload it again") from exc
    finally:
        for archive in archives:
            archive.close()


def _thumbnail(image: Image.Image, mask: np.ndarray, path: Path) -> Path:
    small = fit(image, OVERLAY_SIDE)
    small_mask = np.asarray(mask_image(mask).resize(small.size, Image.NEAREST)) > 0
    buffer = io.BytesIO()
    overlay_mask(small, small_mask).save(buffer, format="PNG")
    return write_file(path, lambda file: file.write(buffer.getbuffer()))


def _zip_folder(folder: Path, path: Path) -> Path:
    """``folder``'s files (hidden ones left out) zipped into ``path``, which appears only when complete."""
    def write(file) -> None:
        with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(folder.rglob("*")):
                relative = member.relative_to(folder)
                if member.is_file() and not any(part.startswith(".") for part in relative.parts):
                    archive.write(member, relative.as_posix())
    return write_file(path, write)


def _what(query) -> str:
    """How a photo is named in a skip message; load_rgb adds the file's own name, so an upload is named once."""
    return "photo" if query.path.name == query.name.name else f"photo {one_line(query.name.as_posix(), 60)} as"


def label_many(segment: Segment, files: Sequence[str | os.PathLike], workdir: Path, category: str = "object",
               batch_size: int = LABEL_BATCH) -> Iterator[LabelUpdate]:
    """Label every photo in ``files``, ``batch_size`` at a time; the last update carries ``workdir/labels.zip``.

    The zip is the dataset hsnet label writes (images/, annotations/instances_default.json, masks/).
    """
    queries, skipped = gather_queries(files, workdir)
    total, done = len(queries) + len(skipped), 0
    dataset, thumbnails = workdir / DATASET, workdir / "thumbnails"
    dataset.mkdir(exist_ok=True)
    thumbnails.mkdir(exist_ok=True)
    folder = LabelFolder(dataset, category, images="copy", overlays=False)
    complete = False
    try:
        with closing(label_each(segment, queries, folder, batch_size=batch_size,
                                what=_what)) as outcomes:
            for outcome in outcomes:
                if outcome.skipped is not None:
                    skipped[outcome.query.name.as_posix()] = outcome.skipped
                    continue
                done += 1
                thumbnail = _thumbnail(outcome.image, outcome.mask, thumbnails / f"{done}.png")
                yield LabelUpdate(done, total, outcome.name.as_posix(), thumbnail, dict(skipped))
        archive = _zip_folder(dataset, workdir / ARCHIVE)
        complete = True
    finally:
        shutil.rmtree(workdir / "unzipped", ignore_errors=True)
        shutil.rmtree(dataset, ignore_errors=True)
        if not complete:  # stopped early (the visitor left): nothing stays behind
            shutil.rmtree(thumbnails, ignore_errors=True)
    yield LabelUpdate(done, total, skipped=dict(skipped), archive=archive)
