"""COCO-20i: COCO2014 images with the authors' class-index masks, 4 interleaved folds of 20 classes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from .episodes import Episode, EpisodeDataset
from .splits import read_split_classwise

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
TEST_EPISODES = 1000


class CocoDataset(EpisodeDataset):
    """``<datapath>/COCO2014/<name>`` images (names like ``val2014/COCO_val2014_….jpg``) and masks
    ``COCO2014/annotations/<name with .png>`` whose pixels hold class index + 1.

    Split lists ``coco/{trn,val}/fold{i}.pkl`` map class index -> image names. Every episode draws a
    class uniformly from the fold's classes, then a query and K supports of that class (the index is
    ignored, as in the authors' loader); val/test have 1000 episodes, trn one per distinct image.
    """

    benchmark = "coco"
    title = "COCO-20i"
    nclass = 80

    def required_dirs(self) -> list[Path]:
        base = self.root / "COCO2014"
        images = "train2014" if self.split == "trn" else "val2014"
        return [base / images, base / "annotations" / images]

    def download_hint(self) -> str:
        return ("download train2014.zip and val2014.zip (images.cocodataset.org/zips/) and the authors' COCO-20i "
                "masks train2014.zip/val2014.zip (linked in github.com/juhongm999/hsnet's README) and place them as "
                f"{self.root}/COCO2014/{{train2014,val2014}} and {self.root}/COCO2014/annotations/{{train2014,val2014}}")

    def build_class_ids(self) -> list[int]:
        return self.fold_class_ids(self.nclass // self.folds, interleaved=True)

    def load_index(self) -> None:
        split = "trn" if self.split == "trn" else "val"
        self.classwise = read_split_classwise(f"coco/{split}/fold{self.fold}.pkl", self.splits_dir)
        missing = [c for c in self.class_ids if not self.classwise.get(c)]
        if missing:
            raise DatasetError(f"COCO-20i split list coco/{split}/fold{self.fold}.pkl has no images for classes "
                               f"{missing[:5]}; use the authors' split lists")
        self.images = sorted({name for names in self.classwise.values() for name in names})

    def num_episodes(self) -> int:
        return len(self.images) if self.split == "trn" else TEST_EPISODES

    def sample_episode(self, rng: np.random.RandomState, index: int) -> Episode:
        class_id = int(rng.choice(self.class_ids, 1, replace=False)[0])
        candidates = self.classwise[class_id]
        query = str(rng.choice(candidates, 1, replace=False)[0])
        return Episode(query, tuple(str(s) for s in self.pick_supports(rng, candidates, query)), class_id)

    def image_path(self, name: str) -> Path:
        return self.root / "COCO2014" / name

    def label_path(self, name: str) -> Path:
        stem = name[: name.index(".jpg")] if ".jpg" in name else name
        return self.root / "COCO2014" / "annotations" / f"{stem}.png"

    def read_label(self, name: str, class_id: int) -> tuple[torch.Tensor, None]:
        labels = self.label_array(self.label_path(name))
        return (labels == class_id + 1).float(), None

    def class_name(self, class_id: int) -> str:
        return COCO_CLASSES[class_id]
