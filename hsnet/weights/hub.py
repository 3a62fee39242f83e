"""Hub copies of HSNet weights through huggingface_hub: download (checksummed), upload, and failing fast.

Used only where a Hub repository is configured (HSNET_HUB_ORG / --hub-org, a repo id, or a
registry pin). An unreachable Hub is found with one short request and remembered for a while,
so a caller is told at once instead of waiting through huggingface_hub's retries on every call.
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, constants, get_token, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.errors import HTTPError as TransportError  # the base error of the HTTP client it uses

from ..checkpoint import present
from ..errors import CheckpointError, HubError, WeightsNotFoundError, describe, one_line
from ..version import __version__
from ..model_card import render_model_card, retarget
from .folder import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, load_folder, read_config

REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
PROBE_TIMEOUT_S = 5
UNREACHABLE_MEMORY_S = 120  # how long a failed probe answers for the Hub before it is tried again
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_unreachable: dict[str, tuple[float, str]] = {}  # endpoint -> (monotonic time of the failure, reason)
_unreachable_lock = threading.Lock()
OFFLINE_ADVICE = "check the connection (or HF_ENDPOINT), or set HF_HUB_OFFLINE=1 to use cached weights"


def offline() -> bool:
    """Whether HF_HUB_OFFLINE is on, read now as well as when huggingface_hub was imported."""
    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def endpoint() -> str:
    """The Hub URL: $HF_ENDPOINT read now (huggingface_hub reads it only once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def check_reachable(advice: str = OFFLINE_ADVICE) -> None:
    """Raise HubError at once if the Hub did not answer one short request (now, or within the last minutes);
    ``advice`` ends the message."""
    url = endpoint()
    with _unreachable_lock:
        failed = _unreachable.get(url)
    if failed is not None and time.monotonic() - failed[0] < UNREACHABLE_MEMORY_S:
        ago = time.monotonic() - failed[0]
        raise HubError(f"the Hugging Face Hub at {url} did not answer {ago:.0f} s ago ({failed[1]}); hsnet tries "
                       f"again after {UNREACHABLE_MEMORY_S} s: {advice}")
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        pass  # the Hub answered, if only with an error status: it is reachable
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, a malformed HF_ENDPOINT
        reason = one_line(str(getattr(exc, "reason", "") or exc) or type(exc).__name__, 80)
        with _unreachable_lock:
            _unreachable[url] = (time.monotonic(), reason)
        raise HubError(f"could not reach the Hugging Face Hub at {url} ({reason}); {advice}") from exc
    with _unreachable_lock:
        _unreachable.pop(url, None)


def _file_digest(path: Path, git_blob: bool) -> str:
    """sha256 of a file, or its git blob sha1 (the Hub's ETag of files not stored with LFS)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size) if git_blob else hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def evict(pointer: str | os.PathLike) -> None:
    """Remove a downloaded file from the huggingface_hub cache: its snapshot link and its blob."""
    blob = Path(os.path.realpath(pointer))
    Path(pointer).unlink(missing_ok=True)
    if blob.parent.name == "blobs":
        blob.unlink(missing_ok=True)


def _verify_download(pointer: str, repo_id: str) -> None:
    """Check a cached Hub file against its ETag (sha256 for LFS files, git sha1 otherwise); evict it if it differs.

    The cache names each blob after the ETag the Hub announced, so the check needs no request.
    Where the cache cannot use symlinks the blob name is lost and the check is skipped.
    """
    blob = Path(os.path.realpath(pointer))
    expected = blob.name
    if not (_SHA256.match(expected) or _GIT_SHA1.match(expected)):
        return
    actual = _file_digest(blob, git_blob=len(expected) == 40)
    if actual != expected:
        evict(pointer)
        raise CheckpointError(f"{Path(pointer).name} downloaded from {repo_id} fails its checksum (expected {expected}, "
                              f"got {actual}) and was removed from the cache; download it again, and if it keeps "
                              "failing tell the repository's owner")


def _hub_file(repo_id: str, filename: str, revision: str | None, force_download: bool, advice: str) -> str:
    """Path of ``filename`` of ``repo_id`` in the huggingface_hub cache, downloaded only if not cached yet."""
    args = dict(repo_id=repo_id, filename=filename, revision=revision, endpoint=endpoint(),
                library_name="hsnet", library_version=__version__)
    at = f"{repo_id}" + (f" at revision {revision}" if revision else "")
    if not force_download or offline():
        try:
            return hf_hub_download(**args, local_files_only=True)
        except LocalEntryNotFoundError as exc:
            if offline():
                raise WeightsNotFoundError(
                    f"HF_HUB_OFFLINE is set and {filename} of {at} is not in the cache ({constants.HF_HUB_CACHE}); "
                    "unset HF_HUB_OFFLINE and load it once with a connection, or give a local file") from exc
    check_reachable()
    try:
        return hf_hub_download(**args, force_download=force_download)
    except GatedRepoError as exc:
        raise WeightsNotFoundError(f"{repo_id} is gated on the Hub; accept its terms on {endpoint()}/{repo_id} "
                                   "and set HF_TOKEN to a token of that account") from exc
    except RepositoryNotFoundError as exc:
        raise WeightsNotFoundError(f"Hub repository {repo_id} was not found on {endpoint()} (if it is private, set "
                                   f"HF_TOKEN); {advice}") from exc
    except RevisionNotFoundError as exc:
        raise WeightsNotFoundError(f"revision {revision!r} does not exist in {repo_id}; give a branch, tag or commit "
                                   "of that repository, or leave the revision out for the latest upload") from exc
    except RemoteEntryNotFoundError as exc:
        raise WeightsNotFoundError(f"{at} has no {filename}, so it is not an hsnet weights repository; {advice}") from exc
    except LocalEntryNotFoundError as exc:
        raise WeightsNotFoundError(f"could not reach {endpoint()} to download {filename} of {at} and it is not in "
                                   "the cache; check the connection (or HF_ENDPOINT), or give a local file") from exc
    except HfHubHTTPError as exc:
        raise HubError(f"downloading {filename} of {at} failed ({one_line(str(exc), 100)}); try again later") from exc


def download(repo_id: str, revision: str | None = None, *, force_download: bool = False,
             advice: str = "check the repo id") -> Path:
    """The snapshot folder of one commit of ``repo_id`` in the huggingface_hub cache, both files checksummed.

    A file already in the cache is used without any request unless ``force_download`` is set.
    ``advice`` ends the message when the repository or its files are missing.
    """
    config = _hub_file(repo_id, CONFIG_NAME, revision, force_download, advice)
    _verify_download(config, repo_id)
    commit = Path(config).parent.name  # snapshots/<commit>/config.json: fetch the weights of that very commit
    weights = _hub_file(repo_id, WEIGHTS_NAME, commit, force_download, advice)
    _verify_download(weights, repo_id)
    return Path(weights).parent


def _card(folder: Path, repo_id: str) -> bytes:
    """The README.md to upload: hsnet's own card re-rendered so that its usage example loads ``repo_id``; a card
    somebody edited, as it is; a fresh card when the folder has none."""
    config = read_config(folder / CONFIG_NAME)
    card_file = folder / CARD_NAME
    if not present(card_file, f"folder {folder}: {CARD_NAME}"):
        return render_model_card(config, repo_id).encode()
    try:
        card = card_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HubError(f"{card_file} cannot be read as text ({one_line(str(exc), 80)}); fix or delete it (hsnet then "
                       "uploads a card of its own)") from exc
    return (retarget(card, config, repo_id) or card).encode()


def push_to_hub(directory: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str | None = None) -> str:
    """Upload a Hub folder made by ``save_pretrained`` to ``repo_id`` (created if needed); returns its URL.

    The token comes from ``token``, else $HF_TOKEN or ``hf auth login``; it is never printed. The Hub is
    probed first, so an unreachable one is one line, not a traceback after retries.
    """
    folder = Path(directory)
    if not REPO_ID.match(repo_id):
        raise HubError(f"repo id {one_line(repr(repo_id), 80)} is not of the form owner/name; pass e.g. "
                       f"--repo-id my-org/hsnet-{folder.name}")
    load_folder(folder, f"folder {folder}")  # refuse to publish anything that would not load
    card = _card(folder, repo_id)
    if offline():
        raise HubError("HF_HUB_OFFLINE is set, which forbids uploads; unset it to push to the Hub")
    token = token or get_token()
    if token is None:
        raise HubError("no Hugging Face token found; set HF_TOKEN to a token with write access "
                       "(https://huggingface.co/settings/tokens) or run `hf auth login`")
    check_reachable(f"check the connection (or HF_ENDPOINT) and run the push again; {folder} is unchanged")
    api = HfApi(endpoint=endpoint(), token=token)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
                  for name in (WEIGHTS_NAME, CONFIG_NAME)]
    operations.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card))
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.create_commit(repo_id, operations, commit_message=commit_message or f"Upload HSNet weights ({folder.name})")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(f"the Hub refused to write to {repo_id} (HTTP {status}); use a token with write access "
                           f"to {repo_id.split('/')[0]} in HF_TOKEN") from exc
        raise HubError(f"uploading to {repo_id} failed ({one_line(str(exc), 100)}); check the connection and "
                       "try again") from exc
    except (TransportError, OSError) as exc:  # the connection dropped after the probe answered
        raise HubError(f"uploading to {repo_id} on {endpoint()} failed: the connection broke ({describe(exc)}); "
                       "check it and run the push again") from exc
    return str(url)
