"""The episodic dataset every benchmark shares: episode sampling, loading, resizing and the batch format.

Evaluation splits ("val", "test") use one fixed list of episodes, drawn in order from a single
``numpy.random.RandomState(seed)`` with the same calls the authors make after their
``fix_randseed(0)``, so that episode ``i`` is theirs whatever the number of ranks or workers.
Training episodes are drawn from ``RandomState([seed, epoch, index])`` instead: independent of
worker and rank layout, different each epoch, and reproducible when a run is resumed.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import DatasetError, InputError, describe
from ..model import DEFAULT_IMAGE_SIDE
from .transforms import image_to_tensor, resize_mask

SPLITS = ("trn", "val", "test")
SPLIT_ALIASES = {"train": "trn", "trn": "trn", "val": "val", "test": "test", "all": "all"}


@dataclass(frozen=True)
class Episode:
    """One few-shot task: a query image, K support images (names as the split lists give them) and a class."""

    query: str
    supports: tuple[str, ...]
    class_id: int


class EpisodeDataset(Dataset, ABC):
    """Episodes of one benchmark, fold and split; items are dicts of tensors ready for HSNet.

    Item keys: ``query_img`` (3,S,S), ``query_mask`` (h,w) in {0,1}, ``query_ignore`` (h,w) bool
    (PASCAL boundaries, else all False), ``support_imgs`` (K,3,S,S), ``support_masks`` (K,S,S),
    ``class_id``, ``index`` and ``query_size`` (original h, w). (h, w) is (S, S), or the query's
    original size when ``original_size`` is set.
    """

    benchmark: ClassVar[str]
    title: ClassVar[str]
    nclass: ClassVar[int]  # size of the per-class IoU table (the authors' AverageMeter)
    folds: ClassVar[int] = 4
    splits: ClassVar[tuple[str, ...]] = SPLITS

    def __init__(self, datapath: str | os.PathLike, fold: int = 0, split: str = "test", shots: int = 1, *,
                 image_size: int = DEFAULT_IMAGE_SIDE, original_size: bool = False, seed: int = 0, limit: int | None = None,
                 splits_dir: str | os.PathLike | None = None):
        if SPLIT_ALIASES.get(split, split) not in self.splits:
            raise InputError(f"unknown split {split!r} for {self.title}; use one of "
                             f"{', '.join(a for a, s in SPLIT_ALIASES.items() if s in self.splits)}")
        if self.folds and not 0 <= fold < self.folds:
            raise InputError(f"{self.title} has folds 0..{self.folds - 1}, not {fold}; pass --fold 0..{self.folds - 1}")
        if shots < 1:
            raise InputError(f"shots must be at least 1, not {shots}")
        if image_size < 32:
            raise InputError(f"image size {image_size} is too small for the backbone; "
                             f"use 32 or more (authors: {DEFAULT_IMAGE_SIDE})")
        if limit is not None and limit < 1:
            raise InputError(f"limit must be a positive number of episodes, not {limit}")
        self.root = Path(datapath).expanduser()
        self.fold = fold if self.folds else 0
        self.split = SPLIT_ALIASES.get(split, split)
        self.shots = shots
        self.image_size = image_size
        self.original_size = original_size
        self.seed = seed
        self.splits_dir = splits_dir
        self.epoch = 0
        self.check_layout()
        self.class_ids: list[int] = self.build_class_ids()
        self.load_index()
        if self.num_episodes() == 0:
            raise DatasetError(f"{self.title} {self.split} split at {self.root} has no images; check the dataset "
                               "and the split lists")
        self.length = min(self.num_episodes(), limit) if limit else self.num_episodes()
        self.episodes: list[Episode] | None = None
        if self.split != "trn":
            rng = np.random.RandomState(seed)
            self.episodes = [self.sample_episode(rng, i) for i in range(self.length)]

    # ------------------------------------------------------------------ what each benchmark defines

    @abstractmethod
    def required_dirs(self) -> list[Path]:
        """Folders that must exist under the data path for this split."""

    @abstractmethod
    def download_hint(self) -> str:
        """Where to get the dataset and where to put it (one clause)."""

    @abstractmethod
    def build_class_ids(self) -> list[int]:
        """The class indices of this fold and split, in the authors' order."""

    @abstractmethod
    def load_index(self) -> None:
        """Read the split lists into whatever ``sample_episode`` needs."""

    @abstractmethod
    def num_episodes(self) -> int:
        """Episodes per pass over this split under the authors' protocol."""

    @abstractmethod
    def sample_episode(self, rng: np.random.RandomState, index: int) -> Episode:
        """Episode ``index``, drawing from ``rng`` exactly as the authors' loader draws from numpy."""

    @abstractmethod
    def image_path(self, name: str) -> Path:
        """File of an image named as in the split lists."""

    @abstractmethod
    def label_path(self, name: str) -> Path:
        """File of the annotation of an image named as in the split lists."""

    @abstractmethod
    def read_label(self, name: str, class_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(foreground mask in {0, 1}, ignore mask or None) of an image for ``class_id``, at full size."""

    @abstractmethod
    def class_name(self, class_id: int) -> str:
        """Human-readable name of a class index."""

    # ------------------------------------------------------------------ shared machinery

    def check_layout(self) -> None:
        """Fail with where to get the dataset when a folder of the documented layout is missing."""
        for folder in self.required_dirs():
            if not folder.is_dir():
                raise DatasetError(f"{self.title} not found at {folder}; {self.download_hint()}")

    def set_epoch(self, epoch: int) -> None:
        """Pick the training episodes of ``epoch`` (no effect on the fixed evaluation list)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def episode(self, index: int) -> Episode:
        """Episode ``index`` of this split (of the current epoch when training)."""
        if self.episodes is not None:
            return self.episodes[index]
        return self.sample_episode(np.random.RandomState([self.seed, self.epoch, index]), index)

    def pick_supports(self, rng: np.random.RandomState, candidates: Sequence[Any], query: Any) -> list[Any]:
        """K supports drawn one at a time from ``candidates``, redrawing when the query comes up (repeats allowed)."""
        if all(c == query for c in candidates):
            raise DatasetError(f"{self.title}: class of {query} has no other image to use as support; "
                               "the split lists do not match the dataset")
        supports: list[Any] = []
        while len(supports) < self.shots:
            pick = rng.choice(candidates, 1, replace=False)[0]
            if pick != query:
                supports.append(pick)
        return supports

    def open_image(self, path: Path) -> Image.Image:
        """A dataset file opened with PIL, or a DatasetError naming it."""
        try:
            image = Image.open(path)
            image.load()
            return image
        except FileNotFoundError as exc:
            raise DatasetError(f"{path} is missing: the {self.title} copy at {self.root} is incomplete; "
                               f"{self.download_hint()}") from exc
        except (UnidentifiedImageError, OSError) as exc:
            raise DatasetError(f"{path} cannot be read ({describe(exc)}); download that file again") from exc

    def label_array(self, path: Path) -> torch.Tensor:
        """An annotation image's pixel values as an (H, W) integer tensor."""
        return torch.from_numpy(np.array(self.open_image(path), dtype=np.int64))

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        ep = self.episode(index)
        size = (self.image_size, self.image_size)
        query = self.open_image(self.image_path(ep.query))
        query_size = (query.height, query.width)
        mask, ignore = self.read_label(ep.query, ep.class_id)
        self.check_label_size(ep.query, query_size, mask)
        target = query_size if self.original_size else size
        query_mask = resize_mask(mask, target)
        query_ignore = resize_mask(ignore, target).bool() if ignore is not None else torch.zeros(target, dtype=torch.bool)
        support_imgs, support_masks = [], []
        for name in ep.supports:
            image = self.open_image(self.image_path(name))
            support_mask = self.read_label(name, ep.class_id)[0]
            self.check_label_size(name, (image.height, image.width), support_mask)
            support_imgs.append(image_to_tensor(image, self.image_size))
            support_masks.append(resize_mask(support_mask, size))
        return {
            "query_img": image_to_tensor(query, self.image_size),
            "query_mask": query_mask,
            "query_ignore": query_ignore,
            "support_imgs": torch.stack(support_imgs),
            "support_masks": torch.stack(support_masks),
            "class_id": ep.class_id,
            "index": index,
            "query_size": torch.tensor(query_size),
        }

    def check_label_size(self, name: str, image_size: tuple[int, int], label: torch.Tensor) -> None:
        """Refuse an annotation whose size differs from its photo's: it belongs to another image, or is damaged."""
        if tuple(label.shape) != image_size:
            raise DatasetError(f"label {self.label_path(name)} is {label.shape[1]}x{label.shape[0]} but its photo "
                               f"{self.image_path(name)} is {image_size[1]}x{image_size[0]}; the {self.title} copy "
                               f"at {self.root} is damaged: download those files again")

    def fold_class_ids(self, per_fold: int, interleaved: bool) -> list[int]:
        """The authors' fold split of ``nclass`` classes: the fold's test classes for val/test, the rest for trn.

        ``interleaved``: fold i tests i, i+4, i+8, ... (COCO-20i); else a block of ``per_fold`` (PASCAL-5i).
        """
        if interleaved:
            test = [self.fold + self.folds * v for v in range(per_fold)]
        else:
            test = [self.fold * per_fold + i for i in range(per_fold)]
        return test if self.split != "trn" else [c for c in range(self.nclass) if c not in test]

    def notes(self) -> list[str]:
        """One line for each file or class this dataset left out (a user's data; the benchmarks leave out none)."""
        return []

    def partition(self) -> dict[str, Any] | None:
        """The training / held-out split to record in a run folder, when it is not fixed by the benchmark."""
        return None

    def summary(self) -> str:
        """One line naming what this dataset serves."""
        fold = f" fold {self.fold}" if self.folds else ""
        return (f"{self.title}{fold} {self.split}: {self.length} episodes, {self.shots}-shot, "
                f"{len(self.class_ids)} classes")
