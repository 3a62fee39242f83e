"""The authors' split lists, read from a local copy or fetched once from their repository at a pinned commit.

Lookup order for a split file such as ``pascal/val/fold0.txt`` (paths are relative to the
authors' ``data/splits/`` folder):

1. ``splits_dir`` (the ``--splits`` flag) or ``$HSNET_SPLITS_DIR``: a local copy of that folder;
   nothing is downloaded.
2. The cache, ``$HSNET_CACHE_DIR/splits/<source>/`` (default ``~/.cache/hsnet``, honouring
   ``$XDG_CACHE_HOME``).
3. A download from ``$HSNET_SPLITS_URL`` (default: raw.githubusercontent.com at the pinned commit of
   juhongm999/hsnet), announced on stderr, then written to the cache atomically.

Integrity: every split file's sha256 at the pinned commit is pinned in ``PINNED_SHA256``; a downloaded
or cached file that differs is refused. A local folder given on purpose (``--splits``) may hold one's
own lists: a file there that differs from the authors' is used with a warning that says so.

COCO-20i split lists are Python pickles. They are never given to plain ``pickle``: a restricted
unpickler refuses every global, so it can build only plain containers, strings and numbers, and the
result must be a dict of class index -> list of image names.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import DatasetError, describe, one_line
from ..weights.cache import cache_root

AUTHORS_REPO = "juhongm999/hsnet"
PINNED_COMMIT = "5ccb58d6ab0e01020db3f976f1df50e008ad71c5"
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{AUTHORS_REPO}/{PINNED_COMMIT}/data/splits/"
URL_ENV = "HSNET_SPLITS_URL"
DIR_ENV = "HSNET_SPLITS_DIR"
DOWNLOAD_TIMEOUT_S = 60

# sha256 of each split file at PINNED_COMMIT (authors-splits.sha256 of the reference copy), by path under data/splits/.
PINNED_SHA256: dict[str, str] = {
    "coco/trn/fold0.pkl": "5a94e113d8c150a7e20723360dd9779eaa1305ccddc28dff4501e29ed3df5c45",
    "coco/trn/fold1.pkl": "69629cdd84fd57b3bb4e281b5bf65440f7ecf9b62eb119f1d8d7fe78b0fb02a8",
    "coco/trn/fold2.pkl": "594adc4b8ebecf9b8b559284f334ff3dd3fa3c150317cbc6ce7917ce81a08c03",
    "coco/trn/fold3.pkl": "07b38ccc9e15ebfd1ab6288eeaad3a5f289bbba3419807212169fd44b89cc5c5",
    "coco/val/fold0.pkl": "96002389be83b4730d13b814398f54eb2baf5c3283598ec2288d60624d6ef9c3",
    "coco/val/fold1.pkl": "a34deecdf2858fc436f5ea4d5a2d46b6674ce09f7ebce41c34b694116381fa56",
    "coco/val/fold2.pkl": "0f275c5e9bf538f6ef8a95054f6daf2519b53785c4ab7fd07e633dda57dac1e5",
    "coco/val/fold3.pkl": "927597bd78036a460abdab243330667af6ceffdb483bc3331ae55d148f00c449",
    "fss/test.txt": "26f1b9e9dd0c4a58c01db306aeb5bccb5de361d544ec1b15f219efc4b74c0bf1",
    "fss/trn.txt": "815bce03f2502719ba3bd9c1f79111b74ec8ab63e6111830ff7312de49b1cf17",
    "fss/val.txt": "9cac02c58602f2789b4e6393200e450e3ba1edae6673d6a87ae2063d0c547aee",
    "pascal/trn/fold0.txt": "40fded8be6afbc4b70953277f2a178af8055cddd4e73fb4646b7bf19704b9da2",
    "pascal/trn/fold1.txt": "558167c3c6fea0cda1bb7c7a275e66d5de7bc13cbc97e00c5872ac84d5f0954e",
    "pascal/trn/fold2.txt": "d07e35f4a4ae95774c619bafb57d65d682dbd5b9f33c7f71a4f5cef8e3f99609",
    "pascal/trn/fold3.txt": "ffe09100c0c4d9c19d074a33b0f29fe5a89a730579ba39a9f9e908186298ac17",
    "pascal/val/fold0.txt": "748e2f4732ac502cb3aa1f3768936b394bd7ba4e611ac5bf959291a268e249df",
    "pascal/val/fold1.txt": "afce1929e4dacbc13c07f9a26d4ce7738d415e1b18443fe173e58303836f5c14",
    "pascal/val/fold2.txt": "50b1f5218e8f882ca65d85da5be230b978a70067e9b3e0e9fca1528f546bd7fb",
    "pascal/val/fold3.txt": "c3825d7c52d1608d4c62c5b85d6ef3f74cf5898032bc068a94c971df17bdf71a",
}


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
    """Refuse ``data`` unless it is the authors' file ``relpath``, byte for byte."""
    expected = PINNED_SHA256.get(relpath)
    if expected is None:
        raise DatasetError(f"{relpath} is not one of the authors' split lists hsnet knows; use one of "
                           f"{', '.join(sorted(PINNED_SHA256))}")
    if _digest(data) != expected:
        raise DatasetError(f"split list {relpath} from {one_line(where)} has sha256 {_digest(data)}, expected "
                           f"{expected}; it is not the authors' file: replace it with the one from their repository")


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
        if relpath in PINNED_SHA256 and _digest(data) != PINNED_SHA256[relpath]:
            # A folder given on purpose may hold one's own lists; say that they are not the paper's, then use them.
            print(f"hsnet: warning: split list {one_line(str(path))} is not the authors' {relpath} (sha256 differs); "
                  "results will not be comparable with the paper's", file=sys.stderr)
        return data

    url = base_url()
    cached = cache_root() / "splits" / _source_key(url) / relpath
    if cached.is_file():
        data = cached.read_bytes()
        _check_pinned(relpath, data, str(cached))
        return data

    data = _download(url + relpath, relpath)
    _check_pinned(relpath, data, url + relpath)
    print(f"hsnet: fetched split list {relpath} from {url + relpath} (sha256 matches the pinned digest); "
          f"cached at {cached}", file=sys.stderr)
    _atomic_write(cached, data)
    return data


def read_split_lines(relpath: str, splits_dir: str | os.PathLike | None = None) -> list[str]:
    """A text split list as the authors read it: opened in text mode (so CRLF and CR end lines as LF does, as in
    their ``fss/test.txt``), split on newlines, the piece after the last newline dropped."""
    data = read_split_bytes(relpath, splits_dir)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetError(f"split list {relpath} is not UTF-8 text (line {line}, byte {exc.start}); "
                           "use the authors' file") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds only what pickle's own opcodes build (dicts, lists, ints, strs...): every global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a split list")


def parse_classwise_pickle(data: bytes, relpath: str) -> dict[int, list[str]]:
    """A COCO-20i split pickle ({class index: [image names]}) read without running any pickled code."""
    try:
        obj = _PlainDataUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            UnicodeDecodeError, MemoryError, RecursionError) as exc:
        raise DatasetError(f"split list {relpath} was refused or is damaged ({describe(exc)}); "
                           "use the authors' file, which holds only class indices and image names") from exc
    plain = isinstance(obj, dict) and all(
        type(key) is int and type(names) is list and all(type(n) is str for n in names) for key, names in obj.items())
    if not plain:
        raise DatasetError(f"split list {relpath} is not a dict of class index -> list of image names; "
                           "use the authors' file")
    return obj


def read_split_classwise(relpath: str, splits_dir: str | os.PathLike | None = None) -> dict[int, list[str]]:
    """A COCO-20i class-wise split list, in the pickle's own order (episodes depend on it)."""
    return parse_classwise_pickle(read_split_bytes(relpath, splits_dir), relpath)
