"""Episodic few-shot datasets in the authors' layouts (PASCAL-5i, COCO-20i, FSS-1000) and their split lists."""
from __future__ import annotations

import os

from ..errors import InputError
from ..model import DEFAULT_IMAGE_SIDE
from .coco import CocoDataset
from .episodes import Episode, EpisodeDataset
from .fss import FSSDataset
from .pascal import PascalDataset

DATASETS: dict[str, type[EpisodeDataset]] = {"pascal": PascalDataset, "coco": CocoDataset, "fss": FSSDataset}
BENCHMARKS = tuple(DATASETS)


def build_dataset(benchmark: str, datapath: str | os.PathLike, fold: int = 0, split: str = "test", shots: int = 1, *,
                  image_size: int = DEFAULT_IMAGE_SIDE, original_size: bool = False, seed: int = 0, limit: int | None = None,
                  splits_dir: str | os.PathLike | None = None) -> EpisodeDataset:
    """The episodes of one benchmark, fold and split (``trn``/``train``, ``val``, ``test``) from ``datapath``.

    ``datapath`` is the authors' ``Datasets_HSN`` folder. ``limit`` keeps only the first N episodes of
    the protocol's list (for smoke tests; the published numbers need the full list).
    """
    if benchmark not in DATASETS:
        raise InputError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    return DATASETS[benchmark](datapath, fold, split, shots, image_size=image_size, original_size=original_size,
                               seed=seed, limit=limit, splits_dir=splits_dir)


__all__ = ["BENCHMARKS", "DATASETS", "CocoDataset", "Episode", "EpisodeDataset", "FSSDataset", "PascalDataset",
           "build_dataset"]
