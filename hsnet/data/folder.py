"""A folder of class folders (FSS-1000 style): each class's photos with their masks as PNG files.

Two layouts, one per data folder, detected from the class folders:

* masks beside the photos: ``DATA/<class>/<name>.jpg`` and ``DATA/<class>/<name>.png`` (the
  photos may be any image format but PNG, which is the masks' own);
* separate folders: ``DATA/<class>/images/<name>.<ext>`` and ``DATA/<class>/masks/<name>.png``
  (sub-folders kept, as ``hsnet label`` writes them). A ``DATA/images`` + ``DATA/masks`` pair
  without class folders is one class named after ``DATA``.

Masks may be 0/255, 0/1 or palette images; the object is every marked pixel (``hsnet.inputs.load_mask``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, one_line
from ..inputs import load_mask
from .own import OwnDataset, Scan

MASK_SUFFIX = ".png"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
BESIDE = "masks beside the photos: <class>/<name>.png"
SEPARATE = "separate folders: <class>/images and <class>/masks"


class FolderDataset(OwnDataset):
    """``DATA/<class>/...`` with one mask PNG per photo; every class folder is a class."""

    benchmark = "folder"
    title = "folder"

    def scan(self) -> Scan:
        if not self.root.is_dir():
            raise DatasetError(f"--data {self.root} is not a folder; give a folder of class folders or a COCO .json")
        if self.images_dir:
            raise DatasetError("--images is for a COCO file's photos; a folder of class folders holds its own")
        if _has_pair(self.root):
            classes = {self.root.resolve().name: self.root}
        else:
            classes = {p.name: p for p in sorted(self.root.iterdir()) if p.is_dir() and not p.name.startswith(".")}
        if not classes:
            raise DatasetError(f"{self.root} holds no class folders; put each class's photos and masks in "
                               f"{self.root}/<class>/ ({BESIDE}, or {SEPARATE})")
        separate = {name for name, folder in classes.items() if _has_pair(folder)}
        if separate and len(separate) < len(classes):
            other = next(n for n in classes if n not in separate)
            raise DatasetError(f"{self.root} mixes layouts: {one_line(next(iter(sorted(separate))), 40)} has images/ "
                               f"and masks/ but {one_line(other, 40)} does not; use one layout for every class")
        found = Scan(SEPARATE if separate else BESIDE)
        for name, folder in classes.items():
            pairs = _separate_pairs(folder, found.notes) if separate else _beside_pairs(folder, found.notes)
            items = {}
            for key, (image, mask) in pairs.items():
                size = self.check(image, mask, found.notes)
                if size is not None:
                    items[f"{name}/{key}"] = (image, mask, size)
            found.classes[name] = items
        return found

    def mask_of(self, source: Any, size: tuple[int, int], what: str) -> np.ndarray:
        return load_mask(source, size, what)


def _has_pair(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def _visible_files(folder: Path, recursive: bool = False) -> list[Path]:
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in files if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _beside_pairs(folder: Path, notes: list[str]) -> dict[str, tuple[Path, Path]]:
    """{name: (photo, mask)} of a class folder holding ``<name>.<ext>`` photos and ``<name>.png`` masks."""
    files = _visible_files(folder)
    masks = {p.stem: p for p in files if p.suffix.lower() == MASK_SUFFIX}
    photos = {p.stem: p for p in files if p.suffix.lower() in IMAGE_SUFFIXES - {MASK_SUFFIX}}
    for stem, photo in photos.items():
        if stem not in masks:
            notes.append(f"left out: photo {photo} has no mask {photo.with_suffix(MASK_SUFFIX).name} beside it")
    for stem, mask in masks.items():
        if stem not in photos:
            notes.append(f"left out: {mask} has no photo of the same name beside it (photos beside masks must not "
                         "be PNG: give them as JPEG, or use the images/ + masks/ layout)")
    return {stem: (photos[stem], masks[stem]) for stem in sorted(photos) if stem in masks}


def _separate_pairs(folder: Path, notes: list[str]) -> dict[str, tuple[Path, Path]]:
    """{name: (photo, mask)} of ``images/<name>.<ext>`` and ``masks/<name>.png``, sub-folders kept."""
    pairs = {}
    for photo in _visible_files(folder / "images", recursive=True):
        if photo.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        key = photo.relative_to(folder / "images").with_suffix("").as_posix()
        mask = folder / "masks" / f"{key}{MASK_SUFFIX}"
        if key in pairs:
            notes.append(f"left out: {photo} shares its mask {mask} with {pairs[key][0]}; rename one of them")
        elif not mask.is_file():
            notes.append(f"left out: photo {photo} has no mask {mask}")
        else:
            pairs[key] = (photo, mask)
    return pairs
