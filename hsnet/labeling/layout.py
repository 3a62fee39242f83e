"""The output folder of ``hsnet label``: a COCO dataset in the layout CVAT exports as "COCO 1.0".

    OUT/images/<name>                       the photo (a hard link to it, or a copy)
    OUT/annotations/instances_default.json  COCO instances; each file_name resolves against images/
    OUT/masks/<stem>.png                    0/255 at the photo's size
    OUT/overlays/<stem>.png                 the mask drawn over the photo
    OUT/.hsnet-label                        marks the folder as hsnet's and locks it while a run writes

datumaro detects it as ``coco_instances`` and supervision reads it with
``DetectionDataset.from_coco(OUT/images, OUT/annotations/instances_default.json)``.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

IMAGES = "images"
ANNOTATIONS = PurePosixPath("annotations/instances_default.json")
MASKS = "masks"
OVERLAYS = "overlays"
MARKER = ".hsnet-label"
# datumaro reads images/<subset>/ instead of images/ when that folder exists; the subset here is "default".
RESERVED_TOP_FOLDER = "default"


def is_label_output(folder: Path) -> bool:
    """Whether ``folder`` is an output folder of ``hsnet label`` (this layout, or the earlier annotations.json one)."""
    try:
        if (folder / MARKER).is_file():
            return True
        if not (folder / MASKS).is_dir():
            return False
        return (folder / ANNOTATIONS).is_file() or ((folder / "annotations.json").is_file() and (folder / OVERLAYS).is_dir())
    except OSError:
        return False
