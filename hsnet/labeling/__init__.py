"""Label a collection from a few examples, for ``hsnet label`` and the app's Label many alike.

- ``queries``: the photos named by files, folders and globs (``find_queries``).
- ``layout``: the output folder, a COCO dataset as CVAT exports it ("COCO 1.0").
- ``folder``: one photo's image entry, mask and overlay written there, and the COCO file.
- ``coco``: the COCO records (RLE or polygons) and document.
- ``pipeline``: the one loop from photos to a labelled folder (``label_each``).

Every file is written whole under a temporary name, never outside the output folder (``hsnet.whole_files``).
"""
from .coco import Record, coco_document, coco_record, mask_polygons, read_coco
from .folder import IMAGE_MODES, LabelFolder, locked
from .layout import ANNOTATIONS, IMAGES, MASKS, OVERLAYS, is_label_output
from .pipeline import LabelSummary, Outcome, Segment, label_each, predictor_segmenter, segment_each
from .queries import IMAGE_SUFFIXES, Found, Query, find_queries, safe_name

__all__ = [
    "ANNOTATIONS", "Found", "IMAGES", "IMAGE_MODES", "IMAGE_SUFFIXES", "LabelFolder", "LabelSummary", "MASKS",
    "OVERLAYS", "Outcome", "Query", "Record", "Segment", "coco_document", "coco_record", "find_queries",
    "is_label_output", "label_each", "locked", "mask_polygons", "predictor_segmenter", "read_coco", "safe_name", "segment_each",
]
