"""FSS-1000: 1000 classes of 10 images each, split 520 / 240 / 240 (trn / val / test) by class."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from .episodes import Episode, EpisodeDataset
from .splits import read_split_lines

CLASS_OFFSET = {"trn": 0, "val": 520, "test": 760}
IMAGES_PER_CLASS = 10


class FSSDataset(EpisodeDataset):
    """``<datapath>/FSS-1000/<class>/<n>.jpg`` with binary masks ``<n>.png`` (n = 1..10, foreground >= 128).

    Split lists ``fss/{trn,val,test}.txt`` name the classes (sorted before use). Every image of the
    split's classes is the query of one episode, in (class, file name) order; supports are drawn
    from the images 1..10 of the same class, redrawing the query's own number.
    """

    benchmark = "fss"
    title = "FSS-1000"
    nclass = 1000
    folds = 0

    def required_dirs(self) -> list[Path]:
        return [self.root / "FSS-1000"]

    def download_hint(self) -> str:
        return ("download FSS-1000 (linked in github.com/juhongm999/hsnet's README) and place its class folders as "
                f"{self.root}/FSS-1000/<class>/<n>.jpg and <n>.png")

    def build_class_ids(self) -> list[int]:
        self.categories = sorted(read_split_lines(f"fss/{self.split}.txt", self.splits_dir))
        return [CLASS_OFFSET[self.split] + i for i in range(len(self.categories))]

    def load_index(self) -> None:
        self.metadata: list[tuple[str, int]] = []
        for category, class_id in zip(self.categories, self.class_ids):
            folder = self.root / "FSS-1000" / category
            if not folder.is_dir():
                raise DatasetError(f"FSS-1000 class folder {folder} is missing; {self.download_hint()}")
            names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and n.split(".")[1:2] == ["jpg"])
            if not names:
                raise DatasetError(f"FSS-1000 class folder {folder} holds no .jpg images; the authors' protocol "
                                   f"scores all {IMAGES_PER_CLASS} images of each class: download that class again")
            self.metadata.extend((f"{category}/{name}", class_id) for name in names)

    def num_episodes(self) -> int:
        return len(self.metadata)

    def sample_episode(self, rng: np.random.RandomState, index: int) -> Episode:
        query, class_id = self.metadata[index]
        category = query.rsplit("/", 1)[0]
        names = [f"{category}/{n}.jpg" for n in range(1, IMAGES_PER_CLASS + 1)]
        numbers = self.pick_supports(rng, np.arange(1, IMAGES_PER_CLASS + 1), _number(query))
        return Episode(query, tuple(names[int(n) - 1] for n in numbers), class_id)

    def image_path(self, name: str) -> Path:
        return self.root / "FSS-1000" / name

    def label_path(self, name: str) -> Path:
        path = self.image_path(name)
        return path.with_name(path.name.split(".")[0] + ".png")

    def read_label(self, name: str, class_id: int) -> tuple[torch.Tensor, None]:
        mask = self.open_image(self.label_path(name)).convert("L")
        return (torch.from_numpy(np.array(mask)) >= 128).float(), None

    def class_name(self, class_id: int) -> str:
        return self.categories[class_id - CLASS_OFFSET[self.split]]


def _number(name: str) -> int:
    """The image number of ``<class>/<n>.jpg`` (0 when the file is not numbered, so it is never a support)."""
    stem = name.rsplit("/", 1)[-1].split(".")[0]
    return int(stem) if stem.isdigit() else 0
