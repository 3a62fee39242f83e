"""Writing one labelled photo into the output folder (layout.py), resumably, and the COCO file for all of them.

Each photo gets a name under images/ that is unique in the folder, also in its stem (``a.jpg``
and ``a.png`` would share ``masks/a.png``, so the second becomes ``a-2.png``): the name the
photo already has there when an earlier run labelled it, else its own name, else the first
free ``<stem>-<n>``. A photo counts as done once its image entry, overlay and mask exist (the
mask is written last); every file is written whole (files.py), inside the folder only.
"""
from __future__ import annotations

import filecmp
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from ..errors import InputError
from ..visualize import mask_image, overlay_mask
from .coco import Record, coco_document, coco_record, read_coco
from ..whole_files import copy_file, folder_below, link_file, write_file
from .layout import ANNOTATIONS, IMAGES, MARKER, MASKS, OVERLAYS, RESERVED_TOP_FOLDER
from .queries import Query, real_path

IMAGE_MODES = ("link", "copy")


def _same_photo(entry: Path, photo: Path) -> bool:
    """Whether the images/ entry ``entry`` is ``photo``: a link to it, the same file, or the same bytes."""
    try:
        if entry.is_symlink():
            return real_path(entry) == real_path(photo)
        return os.path.samefile(entry, photo) or filecmp.cmp(entry, photo, shallow=False)
    except OSError:
        return False


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the output folder ``out`` for one run: a second run on it at the same time is refused in one line.

    The lock (an advisory ``flock`` on the marker file) ends with the process, so a killed run leaves none behind.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; the marker still identifies the folder
        fcntl = None
    descriptor = os.open(out / MARKER, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InputError(f"{out} is being written by another hsnet label run; wait for it to finish "
                                 "or choose another --out") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"hsnet label output folder, written by process {os.getpid()}\n".encode())
        yield
    finally:
        os.close(descriptor)


def _with_number(name: PurePosixPath, number: int) -> PurePosixPath:
    return name if number == 1 else name.with_name(f"{name.stem}-{number}{name.suffix}")


class LabelFolder:
    """The output folder of one category: names for photos, their files, and the COCO file."""

    def __init__(self, out: Path, category: str, *, images: str = "link", polygons: bool = False,
                 overlays: bool = True, overwrite: bool = False):
        if images not in IMAGE_MODES:
            raise InputError(f"images {images!r} is neither 'link' nor 'copy'")
        self.out, self.category, self.images, self.polygons = out, category, images, polygons
        self.overlays, self.overwrite = overlays, overwrite
        self.annotations = out.joinpath(*ANNOTATIONS.parts)
        previous_category, self.records = read_coco(self.annotations)
        if previous_category not in (None, category):
            raise InputError(f"{out} holds labels of {previous_category!r}, not {category!r}; "
                             f"pass --name {previous_category!r} to continue it, or choose another --out")
        self._stems: set[str] = set()  # stems named in this run
        self._on_disk: dict[Path, dict[str, set[str]]] = {}  # images/ folder -> stem -> names found there

    def name(self, query: Query) -> PurePosixPath:
        """The name of ``query``'s photo under images/ (masks/ and overlays/ use its stem), unique in the folder."""
        wanted = query.name
        if len(wanted.parts) > 1 and wanted.parts[0] == RESERVED_TOP_FOLDER:
            wanted = PurePosixPath(f"{RESERVED_TOP_FOLDER}-photos", *wanted.parts[1:])
        number = 1
        while True:
            name = _with_number(wanted, number)
            stem = name.with_suffix("").as_posix().casefold()
            entry = self.image_path(name)
            taken = stem in self._stems
            other_photo = (entry.exists() or entry.is_symlink()) and not _same_photo(entry, query.path)
            other_stem = not (entry.exists() or entry.is_symlink()) and self._stem_used_on_disk(name)
            if not (taken or other_photo or other_stem):
                self._stems.add(stem)
                return name
            number += 1

    def _stem_used_on_disk(self, name: PurePosixPath) -> bool:
        """Whether another photo of an earlier run has this stem (``a.jpg`` labelled, ``a.png`` asked now)."""
        folder = self.out.joinpath(IMAGES, *name.parent.parts)
        if folder not in self._on_disk:
            self._on_disk[folder] = {}
            for entry in folder.iterdir() if folder.is_dir() else ():
                self._on_disk[folder].setdefault(Path(entry.name).stem.casefold(), set()).add(entry.name)
        return bool(self._on_disk[folder].get(name.stem.casefold(), set()) - {name.name})

    def image_path(self, name: PurePosixPath) -> Path:
        """The images/ entry of the photo ``name``."""
        return self.out.joinpath(IMAGES, *name.parts)

    def mask_path(self, name: PurePosixPath) -> Path:
        """The mask of the photo ``name``."""
        return self.out.joinpath(MASKS, *name.with_suffix(".png").parts)

    def overlay_path(self, name: PurePosixPath) -> Path:
        """The overlay of the photo ``name``."""
        return self.out.joinpath(OVERLAYS, *name.with_suffix(".png").parts)

    def is_done(self, query: Query, name: PurePosixPath) -> bool:
        """Whether an earlier run labelled ``query`` as ``name`` (and ``overwrite`` is off)."""
        paths = [self.mask_path(name)] + ([self.overlay_path(name)] if self.overlays else [])
        return (not self.overwrite and all(p.exists() for p in paths)
                and _same_photo(self.image_path(name), query.path))

    def _target(self, top: str, name: PurePosixPath) -> Path:
        return folder_below(self.out, PurePosixPath(top, *name.parent.parts)) / name.name

    def save(self, query: Query, name: PurePosixPath, image: Image.Image, mask: np.ndarray) -> Record:
        """Write the photo's image entry, overlay and mask (the mask last: it marks the photo done)."""
        entry = self._target(IMAGES, name)
        if not ((entry.exists() or entry.is_symlink()) and _same_photo(entry, query.path)):
            (link_file if self.images == "link" else copy_file)(query.path, entry)
        if self.overlays:
            _write_png(overlay_mask(image, mask), self._target(OVERLAYS, name.with_suffix(".png")))
        _write_png(mask_image(mask), self._target(MASKS, name.with_suffix(".png")))
        record = coco_record(name.as_posix(), mask, self.polygons)
        self.records[name.as_posix()] = record
        return record

    def record_of_done(self, name: PurePosixPath) -> Record:
        """The COCO record of a photo done earlier (rebuilt from its mask when the earlier run was cut short)."""
        key = name.as_posix()
        record = self.records.get(key)
        if record is None or (self.polygons != isinstance(record.segmentation, list) and record.segmentation):
            with Image.open(self.mask_path(name)) as mask:
                record = coco_record(key, np.asarray(mask.convert("L")) > 127, self.polygons)
            self.records[key] = record
        return record

    def write_annotations(self) -> Path:
        """Write the COCO file: every photo whose image entry and mask are on disk, sorted by name."""
        kept = [r for key, r in sorted(self.records.items())
                if self.mask_path(PurePosixPath(key)).exists() and self.image_path(PurePosixPath(key)).exists()]
        text = json.dumps(coco_document(kept, self.category)) + "\n"
        folder_below(self.out, ANNOTATIONS.parent)
        return write_file(self.annotations, lambda file: file.write(text.encode("utf-8")))


def _write_png(picture: Image.Image, path: Path) -> None:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    write_file(path, lambda file: file.write(buffer.getbuffer()))
