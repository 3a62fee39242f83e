"""Where converted weights came from, as far as hsnet can tell: this alone decides what their model card may claim.

Only a checkpoint hsnet itself downloaded from the authors' Google Drive folder, or a file whose sha256
equals one hsnet recorded when it did, is the authors': its card names them and their reported mIoU.
Any other file is "converted from a local file", named with its sha256 and no results, whatever backbone,
benchmark and fold it is declared to be (a file of random weights would otherwise carry the paper's numbers).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError, one_line
from . import cache
from .catalog import WeightsEntry, registry

AUTHORS = "authors"  # downloaded by hsnet from the authors' Google Drive folder
LOCAL_FILE = "local file"  # converted from a file hsnet did not download
SAVED = "saved"  # written by save_pretrained from a model in memory (trained with hsnet, or the caller's)


def authors(entry: WeightsEntry, drive_path: str, sha256: str) -> dict:
    """The config.json fields (source, provenance, metrics) of ``entry``'s checkpoint downloaded from the authors."""
    label = f"authors, fold {entry.fold}" if entry.fold is not None else "authors, FSS-1000 test"
    metrics = {label: dict(entry.miou)} if entry.miou else {}
    if entry.miou_mean_over_folds:
        metrics["authors, mean over the 4 folds"] = dict(entry.miou_mean_over_folds)
    return {
        "source": f"the authors' {drive_path} from their Google Drive folder {entry.source} (sha256 {sha256}), "
                  "downloaded and converted by hsnet",
        "provenance": {"kind": AUTHORS, "name": entry.name, "drive_folder": entry.source, "drive_path": drive_path,
                       "sha256": sha256},
        "metrics": metrics,
    }


def local_file(path: Path, sha256: str) -> dict:
    """The config.json fields of a file of unknown origin: its name and sha256, and no results."""
    name = one_line(path.name, 80)
    return {
        "source": f"converted by hsnet from a local file {name} (sha256 {sha256})",
        "provenance": {"kind": LOCAL_FILE, "file": name, "sha256": sha256},
        "metrics": {},
    }


def _recorded_entries(sha256: str) -> list[tuple[WeightsEntry, str]]:
    """(registry entry, path in the Drive folder) of every download hsnet recorded with this sha256."""
    entries = registry()
    return [(entries[r["name"]], str(r.get("drive_path", "best_model.pt"))) for r in cache.recorded_originals()
            if r.get("original_sha256") == sha256 and r.get("name") in entries]


def of_file(path: Path, sha256: str, backbone: str, benchmark: str, fold: int | None, mask_support: bool) -> dict:
    """``authors(...)`` for a file whose sha256 hsnet recorded downloading it from the authors' folder as this
    backbone, benchmark, fold and variant; ``local_file(...)`` for any other file."""
    found = _recorded_entries(sha256)
    for entry, drive_path in found:
        if (entry.backbone, entry.benchmark, entry.fold, entry.mask_support) == (backbone, benchmark, fold,
                                                                                  mask_support):
            return authors(entry, drive_path, sha256)
    if found:
        entry = found[0][0]
        fold_flag = "" if entry.fold is None else f" --fold {entry.fold}"
        variant = "" if entry.mask_support else " --no-mask-support"
        raise InputError(f"{one_line(path.name, 80)} is the authors' {entry.name} (hsnet downloaded a file with this "
                         f"sha256 from {entry.source}), not what was declared; pass --backbone {entry.backbone} "
                         f"--benchmark {entry.benchmark}{fold_flag}{variant}")
    return local_file(path, sha256)
