"""A COCO instances file of one's own: every category a class, every image's instances of a class one mask.

Reads what ``hsnet label`` writes (``annotations/instances_default.json`` beside ``images/``, as
CVAT exports "COCO 1.0", and the older ``annotations.json``), what CVAT and Label Studio export
and what pycocotools writes: polygons, compressed and uncompressed RLE, ``iscrowd`` 0 and 1. The
photos are looked up under ``--images`` or else beside the file, in ``images/`` beside it, in
``images/`` beside its folder and, for ``annotations/instances_<subset>.json``, in
``images/<subset>/`` (CVAT's and datumaro's export); a ``file_name`` that is not found there is
tried by its base name (Label Studio's older ``/data/upload/...`` names).
The masks are decoded by pycocotools, so a file it reads is read the same here.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from ..errors import DatasetError, InputError, describe, one_line
from ..inputs import load_mask
from .own import OwnDataset, Scan


class CocoFileDataset(OwnDataset):
    """``--data annotations.json``: images found relative to the file (or ``--images DIR``)."""

    benchmark = "coco-file"  # not "coco": results and model cards must not read as COCO-20i's
    title = "COCO file"

    def check_layout(self) -> None:
        if not self.root.is_file():
            raise DatasetError(f"COCO file {self.root} does not exist; give the instances .json your annotation tool "
                               "exported, or a folder of class folders")

    def scan(self) -> Scan:
        document = self.read_document()
        categories = {c["id"]: str(c.get("name", c["id"])) for c in document["categories"]}
        names = _unique_names(categories)
        images = {i["id"]: i for i in document["images"]}
        found = Scan(f"COCO instances, photos under {', '.join(str(b) for b in self.image_roots())}")
        by_image: dict[Any, dict[Any, list[Any]]] = defaultdict(lambda: defaultdict(list))
        unknown_images, unknown_categories, no_shape = [], [], []
        for ann in document["annotations"]:
            if ann.get("image_id") not in images:
                unknown_images.append(ann.get("id"))
            elif ann.get("category_id") not in categories:
                unknown_categories.append(ann.get("id"))
            elif not ann.get("segmentation"):
                no_shape.append(ann.get("id"))
            else:
                by_image[ann["image_id"]][ann["category_id"]].append(ann["segmentation"])
        for ids, what in ((unknown_images, "an image id that is not in its images list"),
                          (unknown_categories, "a category id that is not in its categories list"),
                          (no_shape, "no segmentation (a box only)")):
            if ids:
                found.notes.append(f"left out: {len(ids)} annotation(s) of {self.root} have {what} "
                                   f"(ids {one_line(', '.join(map(str, ids[:5])), 60)}); fix or export the file again")
        used = {category for per in by_image.values() for category in per}
        for category in categories:
            if category not in used:
                found.notes.append(f"left out: category {one_line(names[category], 60)} (id {category}) of {self.root} "
                                   "has no annotations; annotate it or delete it")
        for image_id, entry in images.items():
            if image_id not in by_image:
                found.notes.append(f"left out: image {one_line(str(entry.get('file_name')), 80)} (id {image_id}) of "
                                   f"{self.root} has no annotations (no object marked); annotate it if it shows one")
        for image_id in sorted(by_image, key=str):
            entry = images[image_id]
            path = self.find_image(str(entry.get("file_name", "")))
            if path is None:
                found.notes.append(f"left out: image {one_line(str(entry.get('file_name')), 80)} (id {image_id}) is not "
                                   f"under {', '.join(str(b) for b in self.image_roots())}; pass --images DIR")
                continue
            for category, shapes in by_image[image_id].items():
                source = (shapes, int(entry.get("height") or 0), int(entry.get("width") or 0))
                size = self.check(path, source, found.notes)
                if size is not None:
                    found.classes.setdefault(names[category], {})[str(entry["file_name"])] = (path, source, size)
        if not any(found.classes.values()):
            first = f"; the first of {len(found.notes)} problem(s): {found.notes[0]}" if found.notes else ""
            raise DatasetError(f"nothing usable in {self.root}: no annotated image was found and read (pass --images DIR "
                               f"if the photos are elsewhere){first}")
        return found

    def read_document(self) -> dict[str, Any]:
        """The parsed file, checked to hold COCO's three lists with ids."""
        try:
            document = json.loads(self.root.read_bytes())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"COCO file {self.root} cannot be read ({describe(exc)}); export it again") from exc
        lists = ("images", "annotations", "categories")
        if not isinstance(document, dict) or not all(isinstance(document.get(k), list) for k in lists):
            raise DatasetError(f"{self.root} is not a COCO instances file (it needs the lists images, annotations and "
                               "categories); export 'COCO' or 'COCO 1.0' from your annotation tool")
        for key in ("images", "categories"):
            if not all(isinstance(item, dict) and "id" in item for item in document[key]):
                raise DatasetError(f"{self.root}: an entry of {key} has no id; export the file again")
        if not all(isinstance(item, dict) for item in document["annotations"]):
            raise DatasetError(f"{self.root}: an annotation is not an object; export the file again")
        return document

    def image_roots(self) -> list[Path]:
        """Folders a ``file_name`` may be relative to, in the order they are tried."""
        if self.images_dir:
            return [self.images_dir]
        here = self.root.parent
        roots = [here, here / "images", here.parent / "images"]
        subset = self.root.stem.partition("instances_")[2]  # CVAT / datumaro: images/<subset>/ beside annotations/
        return roots + [here.parent / "images" / subset] if subset else roots

    def find_image(self, file_name: str) -> Path | None:
        """The photo a ``file_name`` names, or None."""
        if not file_name:
            return None
        name = Path(file_name.replace("\\", "/"))
        for candidate in [root / name for root in self.image_roots()] + [root / name.name for root in self.image_roots()]:
            if candidate.is_file():
                return candidate
        return None

    def mask_of(self, source: Any, size: tuple[int, int], what: str) -> np.ndarray:
        shapes, height, width = source
        height, width = (height, width) if height and width else (size[1], size[0])
        try:
            rles = []
            for shape in shapes:
                if isinstance(shape, list):  # polygons: [x1, y1, x2, y2, ...] each
                    rles.extend(mask_utils.frPyObjects([p for p in shape if len(p) >= 6], height, width))
                elif isinstance(shape.get("counts"), list):  # uncompressed RLE (CVAT, iscrowd 1)
                    rles.append(mask_utils.frPyObjects(shape, *shape["size"]))
                else:  # compressed RLE, as pycocotools encodes it
                    rles.append({"size": shape["size"], "counts": shape["counts"]})
            mask = mask_utils.decode(mask_utils.merge(rles)).astype(bool) if rles else np.zeros((height, width), bool)
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, OSError) as exc:
            raise InputError(f"{what} is not a COCO polygon or RLE ({describe(exc)}); export the file again") from exc
        return load_mask(mask, size, what)  # refuses an empty mask; resizes one drawn at another scale


def _unique_names(categories: dict[Any, str]) -> dict[Any, str]:
    """Category names, with the id added to a name two categories share."""
    count = defaultdict(int)
    for name in categories.values():
        count[name] += 1
    return {cid: name if count[name] == 1 else f"{name} (id {cid})" for cid, name in categories.items()}
