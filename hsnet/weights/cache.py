"""hsnet's own cache: the authors' checkpoints converted once to the Hub format, with their sha256 recorded.

``<cache>/weights/<registry name>/`` holds ``model.safetensors``, ``config.json``, ``README.md`` and
``provenance.json`` (where the original came from and the sha256 of both files). A folder is written
under a temporary name and renamed when complete, so a crash never leaves a half folder behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import CheckpointError, InputError

CACHE_ENV = "HSNET_CACHE_DIR"
PROVENANCE_NAME = "provenance.json"


def cache_root() -> Path:
    """hsnet's cache folder: $HSNET_CACHE_DIR, else $XDG_CACHE_HOME/hsnet, else ~/.cache/hsnet."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "hsnet"


def weights_folder(name: str) -> Path:
    """Where the converted copy of registry name ``name`` lives (whether or not it is there yet)."""
    return cache_root() / "weights" / name


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached(name: str) -> Path | None:
    """The complete cached folder of ``name``, or None when it has not been converted yet."""
    folder = weights_folder(name)
    return folder if (folder / PROVENANCE_NAME).is_file() else None


def recorded_originals() -> list[dict]:
    """The provenance records of every complete cached folder: what hsnet downloaded, from where, with its sha256."""
    records = []
    for record_file in sorted((cache_root() / "weights").glob(f"*/{PROVENANCE_NAME}")):
        try:
            record = json.loads(record_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            continue  # a damaged record vouches for nothing
        if isinstance(record, dict):
            records.append(record)
    return records


def verified(name: str, weights_file: str) -> Path:
    """The cached folder of ``name`` after checking its weights against the sha256 recorded when it was written."""
    folder = weights_folder(name)
    try:
        record = json.loads((folder / PROVENANCE_NAME).read_text(encoding="utf-8"))
        expected = record["sha256"][weights_file]
        actual = file_sha256(folder / weights_file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"hsnet's cached copy {folder} is incomplete or damaged ({type(exc).__name__}); "
                              f"delete that folder and load {name} again to convert it afresh") from exc
    if actual != expected:
        raise CheckpointError(f"hsnet's cached copy {folder / weights_file} changed since it was written (sha256 "
                              f"{actual}, recorded {expected}); delete {folder} and load {name} again")
    return folder


def store(name: str, write: Callable[[Path], dict]) -> Path:
    """Fill the cache folder of ``name``: ``write(tmp)`` writes the files and returns the provenance record.

    The sha256 of every file written is added to the record; the folder appears complete or not at all.
    """
    final = weights_folder(name)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    except OSError as exc:
        raise InputError(f"cannot write hsnet's cache at {final.parent} ({exc.strerror or exc}); set {CACHE_ENV} "
                         "to a writable folder") from exc
    try:
        record = write(tmp)
        record["sha256"] = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / PROVENANCE_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        try:
            os.replace(tmp, final)
        except OSError:
            if cached(name) is None:  # not another process that completed the same folder a moment ago
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
