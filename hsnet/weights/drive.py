"""The authors' Google Drive folders through gdown: list a folder, pick one checkpoint, fetch it with progress.

Only two gdown calls touch the network: ``gdown.download_folder(id=..., skip_download=True)`` lists a
folder (with every sub-folder) and ``gdown.download(id=..., output=...)`` fetches one file. Which file
is a registry entry's is decided from the listing alone, by backbone and fold tokens in its path
(e.g. ``res101_pas/res101_pas_fold0/best_model.pt``), since the folders' layouts are not documented.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gdown
import requests

from ..errors import HubError, WeightsNotFoundError, describe, one_line
from .catalog import DriveFolder, WeightsEntry

TIMEOUT_S = (15, 60)  # (connect, between bytes): a dead connection fails in a minute, not never
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".pth.tar", ".tar")
BACKBONE_PATTERNS = {
    "vgg16": r"vgg(?:[-_]?16)?",
    "resnet50": r"(?:res(?:net)?|r)[-_]?50",
    "resnet101": r"(?:res(?:net)?|r)[-_]?101",
}
LISTED_FILES = 8  # how many of a folder's files an error message names
Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)


@dataclass(frozen=True)
class DriveFile:
    """A file of a Drive folder: its Drive id and its path inside the folder."""

    id: str
    path: str


def _by_hand(folder: DriveFolder) -> str:
    """The way around any Drive problem: fetch the file in a browser and give its path."""
    return f"or else download best_model.pt by hand from {folder.url} and pass --weights PATH/TO/best_model.pt"


def _refusal(exc: BaseException, what: str, folder: DriveFolder) -> HubError:
    """One line saying what Google Drive (or the way to it) did, and what to do."""
    text = str(exc).lower()
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return HubError(f"could not reach Google Drive to {what} ({describe(exc)}); check the connection and try "
                        f"again, {_by_hand(folder)}")
    if "many accesses" in text:  # gdown's words for a folder page refused with 403: quota or sharing
        return HubError(f"Google Drive refused to {what} (too many users fetched it recently, or it is no longer "
                        f"shared); wait a few hours and try again, {_by_hand(folder)}")
    if "too many users" in text or "quota" in text:
        return HubError(f"Google Drive refuses to {what} for now (too many users fetched it recently); wait a few "
                        f"hours and try again, {_by_hand(folder)}")
    if "permission" in text or "status code" in text or "public link" in text:
        return HubError(f"Google Drive refused access when asked to {what} (it may have moved or no longer be "
                        f"shared); {_by_hand(folder)}")
    if "page structure" in text or "parse" in text:
        return HubError(f"Google Drive's page changed and gdown could not read it to {what}; update gdown "
                        f"(pip install -U gdown), {_by_hand(folder)}")
    return HubError(f"Google Drive failed to {what} ({describe(exc)}); try again later, {_by_hand(folder)}")


DRIVE_ERRORS = (gdown.exceptions.DownloadError, requests.RequestException, OSError, ValueError)


def list_folder(folder: DriveFolder) -> list[DriveFile]:
    """Every file of one of the authors' Drive folders, with its path inside it (sub-folders included)."""
    try:
        listing = gdown.download_folder(id=folder.id, skip_download=True, quiet=True, timeout=TIMEOUT_S)
    except DRIVE_ERRORS as exc:
        raise _refusal(exc, f"list the {folder.title} folder", folder) from exc
    return [DriveFile(str(f.id), str(f.path)) for f in listing]


def pick_checkpoint(files: list[DriveFile], entry: WeightsEntry) -> DriveFile:
    """The one file of ``files`` whose path names ``entry``'s backbone (and fold); WeightsNotFoundError otherwise."""
    backbone = re.compile(rf"(?<![a-z0-9]){BACKBONE_PATTERNS[entry.backbone]}(?![0-9])")
    fold = re.compile(rf"fold[-_]?{entry.fold}(?![0-9])") if entry.fold is not None else None
    found = [f for f in files if f.path.lower().endswith(CHECKPOINT_SUFFIXES) and backbone.search(f.path.lower())
             and (fold is None or fold.search(f.path.lower()))]
    best = [f for f in found if Path(f.path).name == "best_model.pt"]
    found = best if len(found) > 1 and best else found
    if len(found) == 1:
        return found[0]
    names = ", ".join(f.path for f in files[:LISTED_FILES]) + (f" and {len(files) - LISTED_FILES} more"
                                                              if len(files) > LISTED_FILES else "")
    what = "no file" if not found else f"{len(found)} files ({', '.join(f.path for f in found[:3])})"
    raise WeightsNotFoundError(one_line(
        f"{what} in the authors' {entry.drive.title} folder {entry.source} matches {entry.name} (backbone "
        f"{entry.backbone}{'' if entry.fold is None else f', fold {entry.fold}'}); the folder holds "
        f"{names or 'nothing'}; download the right best_model.pt by hand and pass --weights PATH/TO/best_model.pt",
        1000))


def fetch(file: DriveFile, output: Path, folder: DriveFolder, progress: Progress | None = None) -> Path:
    """Download one Drive file to ``output``, showing gdown's progress bar (and calling ``progress`` if given)."""
    try:
        written = gdown.download(id=file.id, output=str(output), quiet=False, progress=progress, timeout=TIMEOUT_S)
    except DRIVE_ERRORS as exc:
        raise _refusal(exc, f"download {file.path}", folder) from exc
    if not written or not output.is_file():
        raise HubError(f"Google Drive sent nothing for {file.path}; try again later, {_by_hand(folder)}")
    return output
