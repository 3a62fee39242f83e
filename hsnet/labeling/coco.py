"""COCO instances for labelled masks: one category, one image entry per photo, one annotation per non-empty mask.

A mask is written as compressed RLE (exact) or, for tools that want them, as polygons:
the outer boundary of each region traced along pixel edges (contourpy, at level 0.5), which
pycocotools rasterises back to the same pixels except the holes, which COCO polygons
cannot hold (``Record.polygon_error`` counts the pixels that differ). ``iscrowd`` is 0: each
mask is one object, and pycocotools' evaluation and datumaro's import read it as such.
A photo whose mask is empty keeps its image entry and gets no annotation, so that it
counts as a photo without the object rather than as an object of area 0.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import contourpy
import numpy as np
from pycocotools import mask as mask_utils

from ..errors import InputError, describe

CATEGORY_ID = 1


@dataclass(frozen=True)
class Record:
    """One labelled photo as COCO holds it: its name and size, and its mask's segmentation (None when empty)."""

    file_name: str
    width: int
    height: int
    segmentation: dict[str, Any] | list[list[float]] | None
    area: float = 0.0
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    polygon_error: int = 0  # pixels where the polygons differ from the mask


def mask_polygons(mask: np.ndarray) -> list[list[float]]:
    """The outer boundaries of ``mask``'s regions as COCO polygons ``[x1, y1, x2, y2, ...]`` on pixel edges."""
    generator = contourpy.contour_generator(z=np.pad(mask, 1).astype(np.float64),
                                            fill_type=contourpy.FillType.OuterOffset)
    polygons = []
    for points, offsets in zip(*generator.filled(0.5, 1.5)):
        ring = points[offsets[0]: offsets[1] - 1] - 0.5  # centres of the padded grid -> pixel edges of the mask
        before, after = ring - np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0) - ring
        turns = before[:, 0] * after[:, 1] != before[:, 1] * after[:, 0]
        ring = ring[turns]  # corners only: points on a straight edge add nothing
        if len(ring) >= 3:
            polygons.append([round(float(v), 2) for v in ring.ravel()])
    return polygons


def coco_record(file_name: str, mask: np.ndarray, polygons: bool = False) -> Record:
    """``mask`` (H, W bool) of the photo ``file_name`` as a COCO record: RLE, or polygons with their pixel error."""
    height, width = mask.shape
    if not mask.any():
        return Record(file_name, int(width), int(height), None)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    segmentation: dict[str, Any] | list[list[float]] = {"size": [int(height), int(width)],
                                                         "counts": rle["counts"].decode("ascii")}
    error = 0
    if polygons:
        segmentation = mask_polygons(mask)
        drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width)))
        error = int(np.count_nonzero(drawn.astype(bool) != mask))
    return Record(file_name, int(width), int(height), segmentation, float(mask_utils.area(rle)),
                  tuple(float(v) for v in mask_utils.toBbox(rle)), error)


def coco_document(records: Iterable[Record], category: str) -> dict[str, Any]:
    """A COCO instances document: every record an image (ids from 1), each non-empty mask an annotation."""
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        images.append({"id": image_id, "file_name": record.file_name, "width": record.width, "height": record.height})
        if record.segmentation is not None:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": CATEGORY_ID,
                                "segmentation": record.segmentation, "area": record.area,
                                "bbox": list(record.bbox), "iscrowd": 0})
    return {"info": {"description": f"{category} masks labelled by hsnet from a few examples",
                     "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": CATEGORY_ID, "name": category, "supercategory": ""}]}


def read_coco(path: Path) -> tuple[str | None, dict[str, Record]]:
    """The category and the records (by file name) of a document ``coco_document`` wrote; none when absent."""
    if not path.exists():
        return None, {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        category = document["categories"][0]["name"]
        by_image = {annotation["image_id"]: annotation for annotation in document["annotations"]}
        records = {}
        for image in document["images"]:
            annotation = by_image.get(image["id"])
            extra = ({} if annotation is None else
                     {"area": annotation["area"], "bbox": tuple(annotation["bbox"])})
            records[image["file_name"]] = Record(image["file_name"], image["width"], image["height"],
                                                 None if annotation is None else annotation["segmentation"], **extra)
        return category, records
    except (OSError, ValueError, LookupError, TypeError) as exc:
        raise InputError(f"{path} is not an annotations file hsnet label wrote ({describe(exc)}); "
                         "move it away or choose another --out") from None
