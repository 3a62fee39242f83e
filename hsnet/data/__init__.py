"""Episodic few-shot datasets: the benchmarks in the authors' layouts (PASCAL-5i, COCO-20i, FSS-1000) and their
split lists, and a user's own data (a folder of class folders, or a COCO instances file)."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..model import DEFAULT_IMAGE_SIDE
from .coco import CocoDataset
from .coco_file import CocoFileDataset
from .episodes import Episode, EpisodeDataset
from .folder import FolderDataset
from .fss import FSSDataset
from .own import OwnDataset
from .pascal import PascalDataset

DATASETS: dict[str, type[EpisodeDataset]] = {"pascal": PascalDataset, "coco": CocoDataset, "fss": FSSDataset}
BENCHMARKS = tuple(DATASETS)
# A user's own data, by layout; "coco" names COCO-20i for a folder and a COCO instances file for a .json.
OWN_LAYOUTS: dict[str, type[OwnDataset]] = {"folder": FolderDataset, "coco": CocoFileDataset}


def own_layout(datapath: str | os.PathLike) -> str:
    """The layout of one's own data at ``datapath``: "coco" for a .json file, else "folder"."""
    return "coco" if Path(datapath).suffix.lower() == ".json" else "folder"


def is_own_data(benchmark: str, datapath: str | os.PathLike) -> bool:
    """Whether ``benchmark`` and ``datapath`` name one's own data rather than a benchmark."""
    return benchmark == "folder" or (benchmark == "coco" and own_layout(datapath) == "coco")


def check_benchmark_options(images: str | os.PathLike | None, val_classes: list[str] | None, split_by: str) -> None:
    """InputError when options of one's own data are given for a benchmark (whose split and photos are fixed)."""
    if images or val_classes or split_by != "auto":
        raise InputError("--images, --val-classes and --split-by are for one's own data (--data PATH), not a benchmark")


def build_dataset(benchmark: str, datapath: str | os.PathLike, fold: int = 0, split: str = "test", shots: int = 1, *,
                  image_size: int = DEFAULT_IMAGE_SIDE, original_size: bool = False, seed: int = 0, limit: int | None = None,
                  splits_dir: str | os.PathLike | None = None, images: str | os.PathLike | None = None,
                  val_classes: list[str] | None = None, split_by: str = "auto",
                  split_file: str | os.PathLike | None = None) -> EpisodeDataset:
    """The episodes of one benchmark, fold and split (``trn``/``train``, ``val``, ``test``) from ``datapath``, or
    of one's own data (``"folder"``, or ``"coco"`` with a .json file) and its part (``trn``, ``test``, ``all``).

    For a benchmark ``datapath`` is the authors' ``Datasets_HSN`` folder. ``limit`` keeps only the first N
    episodes of the protocol's list (for smoke tests; the published numbers need the full list). One's own
    data takes ``images`` (where a COCO file's photos are), ``val_classes`` / ``split_by`` (how the held-out
    part is chosen) and ``split_file`` (a run's ``split.json``, used when it exists; a benchmark's split is fixed).
    """
    common = dict(image_size=image_size, original_size=original_size, seed=seed, limit=limit)
    if is_own_data(benchmark, datapath):
        return OWN_LAYOUTS[benchmark](datapath, fold, split, shots, images=images, val_classes=val_classes,
                                      split_by=split_by, split_file=split_file, **common)
    if benchmark not in DATASETS:
        raise InputError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}, or folder")
    check_benchmark_options(images, val_classes, split_by)
    return DATASETS[benchmark](datapath, fold, split, shots, splits_dir=splits_dir, **common)


__all__ = ["BENCHMARKS", "DATASETS", "OWN_LAYOUTS", "CocoDataset", "CocoFileDataset", "Episode", "EpisodeDataset",
           "FSSDataset", "FolderDataset", "OwnDataset", "PascalDataset", "build_dataset", "check_benchmark_options",
           "is_own_data", "own_layout"]
