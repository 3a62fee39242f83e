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


SHAPES = ("square", "disc", "triangle", "cross", "ring", "bar")


def shape_mask(kind: str, side: int, rng: np.random.Generator) -> np.ndarray:
    """A bool (side, side) mask of one shape of ``kind``, at a random place and size."""
    size = int(rng.integers(side // 2, side * 2 // 3))  # a third to a half of the picture: not a speck to ignore
    top, left = (int(v) for v in rng.integers(2, side - size - 2, size=2))
    y, x = np.mgrid[:side, :side]
    cy, cx, r = top + size / 2, left + size / 2, size / 2
    inside = {
        "square": (abs(y - cy) <= r) & (abs(x - cx) <= r),
        "disc": (y - cy) ** 2 + (x - cx) ** 2 <= r * r,
        "triangle": (y >= top) & (y <= top + size) & (abs(x - cx) <= (y - top) / 2),
        "cross": ((abs(y - cy) <= r / 3) & (abs(x - cx) <= r)) | ((abs(x - cx) <= r / 3) & (abs(y - cy) <= r)),
        "ring": ((y - cy) ** 2 + (x - cx) ** 2 <= r * r) & ((y - cy) ** 2 + (x - cx) ** 2 >= (r / 2) ** 2),
        "bar": (abs(y - cy) <= r / 4) & (abs(x - cx) <= r),
    }[kind]
    return inside


def textured_shape(kind: str, index: int, side: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, bool mask): one shape of ``kind``, striped in its class's colour, on grey noise."""
    mask = shape_mask(kind, side, rng)
    image = rng.integers(40, 160, size=(side, side, 3), dtype=np.uint8)
    colour = np.array([(index * 97) % 200 + 55, (index * 53) % 200 + 55, (index * 151) % 200 + 55], np.uint8)
    y, x = np.mgrid[:side, :side]
    stripes = ((x + y * (index % 3)) // 3 % 2).astype(bool)
    texture = np.where(stripes[..., None], colour, 255 - colour)
    image[mask] = texture[mask]
    return image, mask


def make_shapes(root: Path, classes: int = 4, per_class: int = 8, side: int = 64, layout: str = "beside",
                seed: int = 0, mask_values: int = 255) -> dict[str, list[str]]:
    """A folder of class folders of textured shapes: ``<class>/<n>.jpg`` + ``<n>.png`` ("beside") or
    ``<class>/images/<n>.jpg`` + ``<class>/masks/<n>.png`` ("separate"); returns the image stems per class."""
    rng = np.random.default_rng(seed)
    found = {}
    for index, kind in enumerate(SHAPES[:classes]):
        folder = root / kind
        stems = []
        for n in range(per_class):
            image, mask = textured_shape(kind, index, side, rng)
            stem = f"{kind}_{n:03d}"
            photo, label = ((folder / f"{stem}.jpg", folder / f"{stem}.png") if layout == "beside" else
                            (folder / "images" / f"{stem}.jpg", folder / "masks" / f"{stem}.png"))
            _save(image, mask.astype(np.uint8) * mask_values, photo, label)
            stems.append(stem)
        found[kind] = stems
    return found
