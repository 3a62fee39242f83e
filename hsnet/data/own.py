"""A user's own images and masks as episodes: what the folder and COCO-file layouts share.

A layout module reads its files into ``Scan``: per class, the images whose mask is usable, and one
line for every file it had to leave out. This module splits the classes (or, with fewer than
``MIN_CLASS_SPLIT`` classes or ``split_by="images"``, each class's images 80/20) into a training
and a held-out part with a seeded shuffle, or takes the split a run folder recorded
(``split.json``), and draws episodes the way FSS-1000's are drawn: every image of the part is the
query of one episode, its K supports drawn from the other images of its class.
"""
from __future__ import annotations

import json
import os
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError, HSNetError, InputError, describe, one_line
from ..inputs import load_rgb
from .episodes import Episode, EpisodeDataset

SPLIT_FILE = "split.json"
SPLIT_FORMAT = "hsnet split 1"
SPLIT_BY = ("auto", "classes", "images")
MIN_CLASS_SPLIT = 4  # fewer classes than this are split by images
HELD_OUT = 0.2


@dataclass
class Scan:
    """What a layout found: ``classes`` maps a class name to {image name: (image file, mask source, (w, h))}."""

    layout: str
    classes: dict[str, dict[str, tuple[Path, Any, tuple[int, int]]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class OwnDataset(EpisodeDataset):
    """Episodes of a user's dataset: ``split`` "trn" (training part), "val"/"test" (held-out part) or "all"."""

    folds = 0
    splits: ClassVar[tuple[str, ...]] = ("trn", "val", "test", "all")

    def __init__(self, datapath: str | os.PathLike, fold: int = 0, split: str = "test", shots: int = 1, *,
                 images: str | os.PathLike | None = None, val_classes: list[str] | None = None,
                 split_by: str = "auto", split_file: str | os.PathLike | None = None, **options: Any):
        if split_by not in SPLIT_BY:
            raise InputError(f"unknown --split-by {split_by!r}; use one of {', '.join(SPLIT_BY)}")
        self.images_dir = Path(images).expanduser() if images else None
        self.val_classes = list(val_classes) if val_classes else None
        self.split_by = split_by
        self.split_file = Path(split_file) if split_file else None
        super().__init__(datapath, fold, split, shots, **options)

    # ------------------------------------------------------------------ what each layout defines

    @abstractmethod
    def scan(self) -> Scan:
        """Every usable (class, image) of the data, and one line per file left out."""

    @abstractmethod
    def mask_of(self, source: Any, size: tuple[int, int], what: str) -> np.ndarray:
        """The boolean mask of one (class, image) for an image of ``size`` = (width, height)."""

    # ------------------------------------------------------------------ EpisodeDataset

    def required_dirs(self) -> list[Path]:
        return []

    def check_layout(self) -> None:
        if not self.root.exists():
            raise DatasetError(f"--data {self.root} does not exist; {self.download_hint()}")

    def build_class_ids(self) -> list[int]:
        found = self.scan()
        self.layout = found.layout
        self.scan_notes = found.notes
        self.entries = {c: found.classes[c] for c in sorted(found.classes) if len(found.classes[c]) >= 2}
        lonely = sorted(set(found.classes) - set(self.entries))
        self.split_notes = [f"class {one_line(c, 60)} has only {len(found.classes[c])} usable image(s); an episode "
                            "needs 2 or more, so it is left out: add images" for c in lonely]
        if not self.entries:
            first = f"; the first of {len(found.notes)} problem(s): {found.notes[0]}" if found.notes else ""
            raise DatasetError(f"nothing usable in {self.root}: no class has 2 or more images with a usable mask"
                               f"{first}")
        self.categories = list(self.entries)
        self.nclass = len(self.categories)
        self.record = self.read_split() if self.split_file and self.split_file.is_file() else self.make_split()
        part = self.queries_and_pools()
        too_few = [c for c in self.categories if c in part and len(part[c][1]) < self.shots + 1]
        self.split_notes += [f"class {one_line(c, 60)} has {len(part[c][1])} image(s) for this part, fewer than "
                             f"{self.shots + 1} ({self.shots}-shot query and supports), so it is left out"
                             for c in too_few]
        self.parts = {c: part[c] for c in self.categories if c in part and c not in too_few and part[c][0]}
        if not self.parts:
            raise DatasetError(f"no class of {self.root} has enough images for {self.shots}-shot episodes in the "
                               f"{self.split} part; add images, lower --shots, or use --split-by images")
        return [self.categories.index(c) for c in self.parts]

    def load_index(self) -> None:
        self.metadata = [(name, self.categories.index(c)) for c, (queries, _) in self.parts.items() for name in queries]

    def num_episodes(self) -> int:
        return len(self.metadata)

    def sample_episode(self, rng: np.random.RandomState, index: int) -> Episode:
        query, class_id = self.metadata[index]
        pool = self.parts[self.categories[class_id]][1]
        return Episode(query, tuple(str(s) for s in self.pick_supports(rng, pool, query)), class_id)

    def image_path(self, name: str) -> Path:
        return self._entry(name)[0]

    def label_path(self, name: str) -> Path:
        path, source, _ = self._entry(name)
        return source if isinstance(source, Path) else path

    def _entry(self, name: str, class_id: int | None = None) -> tuple[Path, Any, tuple[int, int]]:
        if class_id is not None:
            return self.entries[self.categories[class_id]][name]
        return next(items[name] for items in self.entries.values() if name in items)

    def open_image(self, path: Path) -> Image.Image:
        try:
            return load_rgb(path, f"image {path}")
        except HSNetError as exc:
            raise DatasetError(f"{exc} (it changed since the dataset was read)") from exc

    def read_label(self, name: str, class_id: int) -> tuple[torch.Tensor, None]:
        path, source, size = self._entry(name, class_id)
        try:
            mask = self.mask_of(source, size, f"mask of {path}")
        except HSNetError as exc:
            raise DatasetError(f"{exc} (it changed since the dataset was read)") from exc
        return torch.from_numpy(mask).float(), None

    def class_name(self, class_id: int) -> str:
        return self.categories[class_id]

    def notes(self) -> list[str]:
        return self.scan_notes + self.split_notes

    def partition(self) -> dict[str, Any] | None:
        return self.record

    def summary(self) -> str:
        held = self.record["val"]
        how = (f"held-out classes {one_line(', '.join(sorted(held)), 80)}" if self.record["split_by"] == "classes"
               else f"{HELD_OUT:.0%} of each class's images held out")
        recorded = self.split_file and self.split_file.is_file()
        source = "" if self.split == "all" else (f"; split from {self.split_file}" if recorded else
                                                 f"; {how} (seed {self.record['seed']})")
        part = {"trn": "training part", "val": "held-out part", "test": "held-out part", "all": "all of it"}[self.split]
        return (f"{self.title} {self.root} ({self.layout}), {part}: {self.length} episodes, {self.shots}-shot, "
                f"{len(self.class_ids)} classes{source}")

    # ------------------------------------------------------------------ the split

    def download_hint(self) -> str:
        return "see docs/own-data.md for the layouts hsnet reads"

    def make_split(self) -> dict[str, Any]:
        """Training and held-out image names per class, by classes or by images, from a seeded shuffle."""
        rng = np.random.RandomState(self.seed)
        names = {c: sorted(items) for c, items in self.entries.items()}
        by = self.split_by
        if self.val_classes:
            unknown = [c for c in self.val_classes if c not in names]
            if unknown:
                raise InputError(f"--val-classes {', '.join(unknown)} not found in {self.root}; its usable classes "
                                 f"are {one_line(', '.join(names), 200)}")
            if len(self.val_classes) == len(names):
                raise InputError("--val-classes names every class; leave at least one for training")
            by = "classes"
        if by == "auto":
            by = "classes" if len(names) >= MIN_CLASS_SPLIT else "images"
        if by == "classes":
            if len(names) < 2:
                raise InputError(f"{self.root} has one usable class; split it by images (--split-by images)")
            classes = list(names)
            count = max(1, round(len(classes) * HELD_OUT))
            held = self.val_classes or [classes[i] for i in sorted(rng.permutation(len(classes))[:count])]
            train = {c: v for c, v in names.items() if c not in held}
            val = {c: names[c] for c in held}
        else:
            train, val = {}, {}
            for c, items in names.items():
                order = [items[i] for i in rng.permutation(len(items))]
                count = max(1, round(len(items) * HELD_OUT))
                val[c], train[c] = sorted(order[:count]), sorted(order[count:])
        return {"format": SPLIT_FORMAT, "data": str(self.root), "layout": self.layout, "split_by": by,
                "seed": self.seed, "train": train, "val": val}

    def read_split(self) -> dict[str, Any]:
        """The split a run recorded; images it names that are no longer usable are dropped."""
        path = self.split_file
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"split file {path} cannot be read ({describe(exc)}); delete it to split again") from exc
        if not isinstance(record, dict) or record.get("format") != SPLIT_FORMAT:
            raise DatasetError(f"{path} is not a split written by hsnet train; delete it to split again")
        for part in ("train", "val"):
            record[part] = {c: [n for n in names if n in self.entries.get(c, {})]
                            for c, names in record[part].items() if c in self.entries}
        return record

    def queries_and_pools(self) -> dict[str, tuple[list[str], list[str]]]:
        """Per class of this split: (query images, images supports are drawn from)."""
        train, val = self.record["train"], self.record["val"]
        if self.split == "all":
            return {c: (sorted(items), sorted(items)) for c, items in self.entries.items()}
        if self.split == "trn":
            return {c: (names, names) for c, names in train.items()}
        if self.record["split_by"] == "images":  # supports may be any other image of the class
            return {c: (names, sorted(self.entries[c])) for c, names in val.items()}
        return {c: (names, names) for c, names in val.items()}

    def check(self, image: Path, source: Any, notes: list[str]) -> tuple[int, int] | None:
        """The (width, height) of ``image`` when it opens and its mask fits it and marks something; else None,
        with the line saying why in ``notes``."""
        try:
            size = load_rgb(image, f"image {image}").size
            self.mask_of(source, size, f"mask of {image}")
        except HSNetError as exc:
            notes.append(f"left out: {exc}")
            return None
        return size
