"""PASCAL-5i: VOC2012 images with the SBD-augmented masks, 4 folds of 5 classes, 255 boundaries ignored."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError, one_line
from .episodes import Episode, EpisodeDataset
from .splits import read_split_lines

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
IGNORE_LABEL = 255
TEST_EPISODES = 1000


class PascalDataset(EpisodeDataset):
    """``<datapath>/VOC2012/{JPEGImages/<name>.jpg, SegmentationClassAug/<name>.png}``; split lists
    ``pascal/{trn,val}/fold{i}.txt`` with lines ``<name>__<class 1..20>``.

    Training uses the trn lists of the three other folds; val/test use the fold's val list, cycled
    to 1000 episodes. The query of episode i is entry i (mod the list length).
    """

    benchmark = "pascal"
    title = "PASCAL-5i"
    nclass = 20

    def required_dirs(self) -> list[Path]:
        voc = self.root / "VOC2012"
        return [voc / "JPEGImages", voc / "SegmentationClassAug"]

    def download_hint(self) -> str:
        return ("download VOC2012 (host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar) and the "
                "SBD-augmented masks SegmentationClassAug (linked in github.com/juhongm999/hsnet's README) and place "
                f"them as {self.root}/VOC2012/JPEGImages and {self.root}/VOC2012/SegmentationClassAug")

    def build_class_ids(self) -> list[int]:
        return self.fold_class_ids(self.nclass // self.folds, interleaved=False)

    def load_index(self) -> None:
        split = "trn" if self.split == "trn" else "val"
        folds = [f for f in range(self.folds) if f != self.fold] if split == "trn" else [self.fold]
        self.metadata: list[tuple[str, int]] = []
        for fold in folds:
            relpath = f"pascal/{split}/fold{fold}.txt"
            for number, line in enumerate(read_split_lines(relpath, self.splits_dir), 1):
                self.metadata.append(_parse_line(line, relpath, number))
        if not self.metadata:
            raise DatasetError(f"the PASCAL-5i {split} split lists of fold {self.fold} are empty; use the authors' lists")
        self.classwise: dict[int, list[str]] = {c: [] for c in range(self.nclass)}
        for name, class_id in self.metadata:
            self.classwise[class_id].append(name)

    def num_episodes(self) -> int:
        return len(self.metadata) if self.split == "trn" else TEST_EPISODES

    def sample_episode(self, rng: np.random.RandomState, index: int) -> Episode:
        query, class_id = self.metadata[index % len(self.metadata)]
        return Episode(query, tuple(str(s) for s in self.pick_supports(rng, self.classwise[class_id], query)), class_id)

    def image_path(self, name: str) -> Path:
        return self.root / "VOC2012" / "JPEGImages" / f"{name}.jpg"

    def label_path(self, name: str) -> Path:
        return self.root / "VOC2012" / "SegmentationClassAug" / f"{name}.png"

    def read_label(self, name: str, class_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = self.label_array(self.label_path(name))
        return (labels == class_id + 1).float(), labels == IGNORE_LABEL

    def class_name(self, class_id: int) -> str:
        return VOC_CLASSES[class_id]


def _parse_line(line: str, relpath: str, number: int) -> tuple[str, int]:
    """(image name, 0-based class) of a ``<name>__<class 1..20>`` line, or a DatasetError naming the line."""
    name, sep, label = line.partition("__")
    if not sep or not name or not label.isdigit() or not 1 <= int(label) <= PascalDataset.nclass:
        raise DatasetError(f"split list {relpath} line {number} ({one_line(repr(line), 60)}) is not "
                           "<image name>__<class 1..20>; use the authors' file")
    return name, int(label) - 1
