"""The registry (catalog) of the authors' released checkpoints: names, backbones, folds, Drive folders, reported mIoU.

``hsnet/registry.json`` (linked from ``weights/registry.json``) is the data; this module reads it.
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import WeightsNotFoundError, one_line

HUB_ORG_ENV = "HSNET_HUB_ORG"
BENCHMARKS = ("pascal", "coco", "fss")
# PASCAL-5i fold 0 with ResNet-50 for the demo: it was trained on the 15 everyday PASCAL classes that
# people photograph most (person, cat, dog, car, ...), and ResNet-50 nearly halves the download and
# the CPU time of ResNet-101 for about two points of mIoU.
DEFAULT_WEIGHTS = "pascal-resnet50-fold0"


@dataclass(frozen=True)
class DriveFolder:
    """One of the authors' public Google Drive folders of checkpoints."""

    key: str
    title: str
    url: str

    @property
    def id(self) -> str:
        """The folder id, the last part of its URL."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint the authors released: what it is, where the original lives, where a Hub copy may live."""

    name: str
    backbone: str
    benchmark: str
    fold: int | None
    mask_support: bool  # False: the authors' variant without support feature masking (Table 1, dagger)
    drive: DriveFolder  # the authors' folder holding the original best_model.pt
    repo: str  # repository name under an organisation given by HSNET_HUB_ORG / --hub-org
    hub: dict[str, str] | None  # {"repo_id", "revision"} once someone publishes with the authors' permission
    miou: dict[str, float] | None  # the authors' reported mIoU (%) of this checkpoint, per shot setting
    miou_mean_over_folds: dict[str, float] | None  # the paper's mean over the 4 folds (pascal, coco)

    @property
    def source(self) -> str:
        """The URL of the authors' Drive folder holding this checkpoint."""
        return self.drive.url

    def hub_repo(self, org: str | None = None) -> tuple[str, str | None] | None:
        """(repo id, pinned revision) of a Hub copy: ``org`` or $HSNET_HUB_ORG, else the registry's pin, else None."""
        org = org or os.environ.get(HUB_ORG_ENV)
        if org:
            return f"{org}/{self.repo}", None
        if self.hub:
            return self.hub["repo_id"], self.hub["revision"]
        return None


@lru_cache(maxsize=1)
def registry_data() -> dict:
    """The parsed registry file shipped inside the package."""
    return json.loads(resources.files("hsnet").joinpath("registry.json").read_text(encoding="utf-8"))


def drive_folders() -> dict[str, DriveFolder]:
    """The authors' public Google Drive folders, by key (pascal, coco, fss, pascal-nomask)."""
    return {key: DriveFolder(key, f["title"], f["url"]) for key, f in registry_data()["drive_folders"].items()}


def registry() -> dict[str, WeightsEntry]:
    """Every checkpoint the authors released, by name (e.g. ``pascal-resnet101-fold0``, ``fss-resnet50``)."""
    folders = drive_folders()
    return {
        name: WeightsEntry(name=name, drive=folders[info["drive_folder"]],
                           **{k: v for k, v in info.items() if k != "drive_folder"})
        for name, info in registry_data()["weights"].items()
    }


def registry_entry_for(backbone: str, benchmark: str, fold: int | None,
                       mask_support: bool = True) -> WeightsEntry | None:
    """The registry entry of the authors' checkpoint for that backbone, benchmark, fold and variant, if released."""
    key = (backbone, benchmark, fold, mask_support)
    return next((e for e in registry().values() if (e.backbone, e.benchmark, e.fold, e.mask_support) == key), None)


def unknown_name(name: str) -> WeightsNotFoundError:
    """The error for a name that is no registry name, repo id or file, naming the registry names close to it."""
    close = difflib.get_close_matches(name, list(registry()), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return WeightsNotFoundError(f"unknown weights {one_line(repr(name), 80)}: not a registry name, a Hub repo id (owner/name) or an "
                               f"existing file or folder; {hint}the names are listed by `hsnet weights` and in "
                               "docs/weights.md")
