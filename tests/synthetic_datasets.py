"""Tiny synthetic datasets in the authors' layouts (PASCAL-5i, COCO-20i, FSS-1000), with their split lists.

Every image is noise with one bright square (the object); its mask marks the square. PASCAL masks
also carry a 1-pixel 255 boundary ring, as the SBD-augmented masks do. Sizes are not square, so
original-size evaluation is exercised. The split lists written here are the tests' own, not the
authors' (hsnet uses them with a warning, as it would a user's own lists); tests/test_splits.py
builds layouts from the authors' real lists instead.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 36, 44


def _object(rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, bool mask) of one bright square on dark noise."""
    image = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    side = int(rng.integers(min(height, width) // 3, min(height, width) // 2))
    top, left = int(rng.integers(2, height - side - 2)), int(rng.integers(2, width - side - 2))
    mask = np.zeros((height, width), dtype=bool)
    mask[top:top + side, left:left + side] = True
    image[mask] = rng.integers(200, 255, size=(int(mask.sum()), 3), dtype=np.uint8)
    return image, mask


def _save(image: np.ndarray, labels: np.ndarray, image_path: Path, mask_path: Path) -> None:
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(image_path, quality=95)
    Image.fromarray(labels.astype(np.uint8)).save(mask_path)


def make_pascal(root: Path, splits: Path, per_class: int = 3, seed: int = 0) -> dict[str, list[str]]:
    """VOC2012/{JPEGImages,SegmentationClassAug} plus pascal/{trn,val}/fold{i}.txt; returns the split lines."""
    rng = np.random.default_rng(seed)
    lines: dict[str, list[str]] = {}
    count = 0
    for split in ("trn", "val"):
        for fold in range(4):
            entries = []
            for cls in range(fold * 5 + 1, fold * 5 + 6):
                for _ in range(per_class):
                    name = f"2008_{count:06d}"
                    count += 1
                    image, mask = _object(rng)
                    labels = np.where(mask, cls, 0)
                    ring = np.zeros_like(mask)
                    ring[1:-1, 1:-1] = mask[:-2, 1:-1] | mask[2:, 1:-1] | mask[1:-1, :-2] | mask[1:-1, 2:]
                    labels[ring & ~mask] = 255
                    _save(image, labels, root / "VOC2012" / "JPEGImages" / f"{name}.jpg",
                          root / "VOC2012" / "SegmentationClassAug" / f"{name}.png")
                    entries.append(f"{name}__{cls:02d}")
            rel = f"pascal/{split}/fold{fold}.txt"
            (splits / rel).parent.mkdir(parents=True, exist_ok=True)
            (splits / rel).write_text("".join(e + "\n" for e in entries))
            lines[rel] = entries
    return lines


def make_coco(root: Path, splits: Path, per_class: int = 2, seed: int = 0) -> dict[str, dict[int, list[str]]]:
    """COCO2014/{val2014,annotations/val2014} plus coco/val/fold{i}.pkl; returns the class-wise lists."""
    rng = np.random.default_rng(seed)
    lists: dict[str, dict[int, list[str]]] = {}
    count = 0
    for fold in range(4):
        classwise: dict[int, list[str]] = {}
        for cls in range(fold, 80, 4):
            for _ in range(per_class):
                name = f"val2014/COCO_val2014_{count:012d}.jpg"
                count += 1
                image, mask = _object(rng)
                _save(image, np.where(mask, cls + 1, 0), root / "COCO2014" / name,
                      root / "COCO2014" / "annotations" / name.replace(".jpg", ".png"))
                classwise.setdefault(cls, []).append(name)
        rel = f"coco/val/fold{fold}.pkl"
        (splits / rel).parent.mkdir(parents=True, exist_ok=True)
        (splits / rel).write_bytes(pickle.dumps(classwise, protocol=2))
        lists[rel] = classwise
    return lists


def make_fss(root: Path, splits: Path, classes: int = 2, seed: int = 0, size: int = 32) -> dict[str, list[str]]:
    """FSS-1000/<class>/{1..10}.jpg|png plus fss/{trn,val,test}.txt; returns the class lists."""
    rng = np.random.default_rng(seed)
    lists = {}
    for split in ("trn", "val", "test"):
        names = [f"{split}_class_{c}" for c in range(classes)][::-1]  # unsorted on purpose
        for name in names:
            for n in range(1, 11):
                image, mask = _object(rng, size, size)
                _save(image, mask * 255, root / "FSS-1000" / name / f"{n}.jpg", root / "FSS-1000" / name / f"{n}.png")
        (splits / "fss").mkdir(parents=True, exist_ok=True)
        (splits / "fss" / f"{split}.txt").write_text("".join(n + "\n" for n in names))
        lists[split] = names
    return lists
