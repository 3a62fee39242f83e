"""The authors' split lists, read from a local copy or fetched once from their repository at a pinned commit.

Lookup order for a split file such as ``pascal/val/fold0.txt`` (paths are relative to the
authors' ``data/splits/`` folder):

1. ``splits_dir`` (the ``--splits`` flag) or ``$HSNET_SPLITS_DIR``: a local copy of that folder;
   nothing is downloaded.
2. The cache, ``$HSNET_CACHE_DIR/splits/<source>/`` (default ``~/.cache/hsnet``, honouring
   ``$XDG_CACHE_HOME``).
3. A download from ``$HSNET_SPLITS_URL`` (default: raw.githubusercontent.com at the pinned commit of
   juhongm999/hsnet), announced on stderr, then written to the cache atomically.

Integrity: a file whose sha256 is pinned in ``PINNED_SHA256`` must match it. A file without a pinned
digest is trusted on first use: its digest is printed and recorded beside the cached copy, and every
later use checks the cached copy against that record.

COCO-20i split lists are Python pickles. They are never given to plain ``pickle``: a restricted
unpickler builds only builtin containers, strings and numbers (plus numpy scalars and arrays, which
carry data, not code) and refuses every other global.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import pickle
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import DatasetError, describe

AUTHORS_REPO = "juhongm999/hsnet"
PINNED_COMMIT = "5ccb58d6ab0e01020db3f976f1df50e008ad71c5"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{AUTHORS_REPO}/{PINNED_COMMIT}/data/splits/"
URL_ENV = "HSNET_SPLITS_URL"
DIR_ENV = "HSNET_SPLITS_DIR"
CACHE_ENV = "HSNET_CACHE_DIR"
DOWNLOAD_TIMEOUT_S = 60

# sha256 of each split file at PINNED_COMMIT, keyed by its path under data/splits/. Empty: no digest
# could be taken from a byte-exact copy when this was written (see docs/reproduce.md), so every file
# is trust-on-first-use until its digest is added here.
PINNED_SHA256: dict[str, str] = {}


def cache_root() -> Path:
    """hsnet's cache folder: $HSNET_CACHE_DIR, else $XDG_CACHE_HOME/hsnet, else ~/.cache/hsnet."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "hsnet"


def base_url() -> str:
    """Where split files are downloaded from, ending with a slash."""
    url = os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def _source_key(url: str) -> str:
    """Cache sub-folder of one download source, so an overridden URL never mixes with the pinned one."""
    if url == DEFAULT_BASE_URL:
        return f"{AUTHORS_REPO.replace('/', '-')}-{PINNED_COMMIT[:12]}"
    return "url-" + hashlib.sha256(url.encode()).hexdigest()[:16]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_pinned(relpath: str, data: bytes, where: str) -> None:
    """Refuse ``data`` if a digest is pinned for ``relpath`` and it differs."""
    expected = PINNED_SHA256.get(relpath)
    if expected is not None and _digest(data) != expected:
        raise DatasetError(f"split list {relpath} from {where} has sha256 {_digest(data)}, expected {expected}; "
                           "it is not the authors' file: replace it with the one from their repository")


def _download(url: str, relpath: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DatasetError(
            f"could not download split list {relpath} from {url} ({describe(exc)}); check the connection, or copy the "
            f"authors' data/splits folder (github.com/{AUTHORS_REPO}) somewhere and pass --splits or set {DIR_ENV}"
        ) from exc


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that concurrent readers (other ranks) never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".part", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def read_split_bytes(relpath: str, splits_dir: str | os.PathLike | None = None) -> bytes:
    """The bytes of one authors' split file, from a local copy, the cache, or (once) the network."""
    local = splits_dir or os.environ.get(DIR_ENV)
    if local:
        path = Path(local).expanduser() / relpath
        if not path.is_file():
            raise DatasetError(f"split list {path} not found; the splits folder must mirror the authors' data/splits "
                               f"(github.com/{AUTHORS_REPO}), or leave out --splits/{DIR_ENV} to download it")
        data = path.read_bytes()
        _check_pinned(relpath, data, str(path))
        return data

    url = base_url()
    cached = cache_root() / "splits" / _source_key(url) / relpath
    record = cached.with_name(cached.name + ".sha256")
    if cached.is_file():
        data = cached.read_bytes()
        _check_pinned(relpath, data, str(cached))
        if relpath not in PINNED_SHA256 and record.is_file() and record.read_text().strip() != _digest(data):
            raise DatasetError(f"cached split list {cached} changed since it was fetched (sha256 differs from "
                               f"{record.name}); delete both files to fetch it again")
        return data

    data = _download(url + relpath, relpath)
    _check_pinned(relpath, data, url + relpath)
    status = "matches the pinned digest" if relpath in PINNED_SHA256 else "not pinned in hsnet; recorded for later checks"
    print(f"hsnet: fetched split list {relpath} from {url + relpath} (sha256 {_digest(data)}, {status}); "
          f"cached at {cached}", file=sys.stderr)
    _atomic_write(cached, data)
    _atomic_write(record, (_digest(data) + "\n").encode())
    return data


def read_split_lines(relpath: str, splits_dir: str | os.PathLike | None = None) -> list[str]:
    """A text split list as the authors read it: split on newlines, the piece after the last newline dropped."""
    text = read_split_bytes(relpath, splits_dir).decode("utf-8")
    return text.split("\n")[:-1]


def _numpy_global(module: str, name: str) -> Any:
    """numpy's data constructors under either of their module names (numpy 1 ``core``, numpy 2 ``_core``)."""
    for candidate in ("numpy._core.multiarray", "numpy.core.multiarray") if "multiarray" in module else (module,):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"{module}.{name} is not available")


class _DataOnlyUnpickler(pickle.Unpickler):
    """Builds builtin containers, strings, numbers and numpy data; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return _numpy_global(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a split list")


def parse_classwise_pickle(data: bytes, relpath: str) -> dict[int, list[str]]:
    """A COCO-20i split pickle ({class index: [image names]}) read without running any pickled code."""
    try:
        obj = _DataOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DatasetError(f"split list {relpath} was refused or is damaged ({describe(exc)}); "
                           "use the authors' file, which holds only class indices and image names") from exc
    if not isinstance(obj, dict):
        raise DatasetError(f"split list {relpath} holds a {type(obj).__name__}, not a dict of class -> image names; "
                           "use the authors' file")
    try:
        return {int(key): [str(name) for name in names] for key, names in obj.items()}
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"split list {relpath} is not a dict of class index -> image names ({describe(exc)}); "
                           "use the authors' file") from exc


def read_split_classwise(relpath: str, splits_dir: str | os.PathLike | None = None) -> dict[int, list[str]]:
    """A COCO-20i class-wise split list, in the pickle's own order (episodes depend on it)."""
    return parse_classwise_pickle(read_split_bytes(relpath, splits_dir), relpath)
