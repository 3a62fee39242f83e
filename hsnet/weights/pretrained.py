"""``from_pretrained``: an HSNet from a registry name, a Hub repo id, or a local file or folder.

A registry name resolves, in order, to hsnet's own cache (``cache.py``); a Hub repository where
one is configured (HSNET_HUB_ORG / ``hub_org``, or a repo id and revision pinned in the registry);
else the authors' Google Drive (``drive.py``): the original ``best_model.pt`` is downloaded once,
loaded with ``weights_only=True``, converted to the Hub format in the cache, and deleted, so every
later start works offline. HF_HUB_OFFLINE forbids every download, Drive included.
"""
from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import try_to_load_from_cache

from ..checkpoint import check_weights_file, present, read_state_dict
from ..errors import CheckpointError, InputError, WeightsNotFoundError, one_line
from ..model import HSNet
from ..runtime import resolve_device
from . import cache, drive, hub
from .catalog import HUB_ORG_ENV, WeightsEntry, registry, unknown_name
from .folder import AUTHORS_CHECKPOINT_NAME, CONFIG_NAME, WEIGHTS_NAME, convert_download, load_folder, load_state


@dataclass(frozen=True)
class WeightsStatus:
    """Where a registry name's weights come from, and whether they are already on this machine."""

    source: str  # "hub <repo id>" or "drive <folder url>"
    cached: bool


def _publish_advice(entry: WeightsEntry, repo_id: str) -> str:
    """How a Hub copy of ``entry`` can be made, by someone allowed to publish the authors' weights."""
    fold = "" if entry.fold is None else f" --fold {entry.fold}"
    nomask = "" if entry.mask_support else " --no-mask-support"
    return (f"unset {HUB_ORG_ENV} (and --hub-org) to download the authors' original from Google Drive, or, with the "
            f"authors' permission, publish it: download best_model.pt from {entry.source}, run `hsnet convert "
            f"best_model.pt --backbone {entry.backbone} --benchmark {entry.benchmark}{fold}{nomask} --out {entry.name}` "
            f"and `hsnet push {entry.name} --repo-id {repo_id}`")


def _from_drive(entry: WeightsEntry, progress: drive.Progress | None) -> Path:
    """Download ``entry``'s original from the authors' Drive, convert it into hsnet's cache, return that folder."""
    found = drive.pick_checkpoint(drive.list_folder(entry.drive), entry)
    target = cache.weights_folder(entry.name)
    print(f"hsnet: downloading {entry.name} ({found.path}) once from the authors' Google Drive folder "
          f"{entry.source}; it is converted and kept in {target}", file=sys.stderr)

    def write(folder: Path) -> dict:
        original = folder / AUTHORS_CHECKPOINT_NAME
        drive.fetch(found, original, entry.drive, progress)
        size, digest = original.stat().st_size, cache.file_sha256(original)
        convert_download(original, folder, entry, found.path, digest)
        original.unlink()
        return {"name": entry.name, "drive_folder": entry.source, "drive_file_id": found.id,
                "drive_path": found.path, "original_bytes": size, "original_sha256": digest}

    return cache.store(entry.name, write)


def _load_snapshot(snapshot: Path, repo_id: str) -> HSNet:
    """Load a Hub snapshot; one that does not load is removed from the huggingface_hub cache."""
    try:
        return load_folder(snapshot, f"{repo_id} ({snapshot})")
    except CheckpointError as exc:
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            hub.evict(snapshot / name)
        raise CheckpointError(f"{exc}; the downloaded files were removed from the cache") from exc


def _registry_folder(entry: WeightsEntry, force_download: bool, progress: drive.Progress | None) -> Path:
    """The hsnet cache folder of ``entry``, filled from Drive when needed."""
    if cache.cached(entry.name) is not None and not force_download:
        return cache.verified(entry.name, WEIGHTS_NAME)
    if hub.offline():
        raise WeightsNotFoundError(f"HF_HUB_OFFLINE is set and {entry.name} is not in hsnet's cache "
                                   f"({cache.weights_folder(entry.name)}); unset HF_HUB_OFFLINE and load it once "
                                   "with a connection (it then stays cached), or give a local file with --weights")
    return _from_drive(entry, progress)


def _check_revision(entry: WeightsEntry, revision: str | None) -> None:
    """Refuse a revision for a name that no Hub repository serves: it would be silently ignored otherwise."""
    if revision is not None:
        raise InputError(f"--revision applies to Hub repositories, and no Hub copy of {entry.name} is configured; "
                         f"leave the revision out, or set {HUB_ORG_ENV} / --hub-org")


def _fetch(name: str, revision: str | None, hub_org: str | None, force_download: bool,
           progress: drive.Progress | None) -> tuple[Path, str | None]:
    """(checked folder, Hub repo id or None for hsnet's cache) of a registry name or a repo id, fetched if needed."""
    entries = registry()
    if name in entries:
        entry = entries[name]
        pinned = entry.hub_repo(hub_org)
        if pinned is not None and (cache.cached(name) is None or force_download or revision is not None):
            return hub.download(pinned[0], revision or pinned[1], force_download=force_download,
                                advice=_publish_advice(entry, pinned[0])), pinned[0]
        _check_revision(entry, revision)
        return _registry_folder(entry, force_download, progress), None
    if hub.REPO_ID.match(name) and not name.endswith((".pt", ".pth", ".safetensors")):
        return hub.download(name, revision, force_download=force_download), name
    raise unknown_name(name)


def download(name_or_repo_id: str, revision: str | None = None, *, hub_org: str | None = None,
             force_download: bool = False, progress: drive.Progress | None = None) -> Path:
    """Fetch a registry name or Hub repo id into the cache (hsnet's, or the Hub's); returns the checked folder."""
    return _fetch(name_or_repo_id, revision, hub_org, force_download, progress)[0]


def status(name: str, hub_org: str | None = None) -> WeightsStatus:
    """Where registry name ``name`` would be loaded from, and whether that needs no download."""
    entry = registry()[name]
    pinned = entry.hub_repo(hub_org)
    in_hub_cache = pinned is not None and isinstance(
        try_to_load_from_cache(pinned[0], CONFIG_NAME, revision=pinned[1]), str)
    source = f"hub {pinned[0]}" if pinned else f"drive {entry.source}"
    return WeightsStatus(source, cache.cached(name) is not None or in_hub_cache)


def _local_path(text: str) -> Path | None:
    """``text`` as a path that exists (file, folder, device...), None when nothing is there to load."""
    path = Path(text)
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.islink(path):
            return None
        if exc.errno == errno.ENAMETOOLONG:
            if text in registry() or hub.REPO_ID.match(text):
                return None
            raise WeightsNotFoundError(f"weights {one_line(repr(text), 60)} ({len(text)} characters) is no registry "
                                       "name and too long a file name for this system; give a registry name (see "
                                       "`hsnet weights`), a Hub repo id or the path of a checkpoint file") from exc
        check_weights_file(path, f"weights {one_line(text, 80)}")  # raises the true reason (loop, too long, ...)
    return path


def _load_local(path: Path) -> HSNet:
    """A local best_model.pt / .safetensors file, or a folder holding model.safetensors or best_model.pt."""
    if path.is_dir():
        where = f"folder {one_line(str(path))}"
        if present(path / WEIGHTS_NAME, f"{where}: {WEIGHTS_NAME}"):
            return load_folder(path, where)
        if not present(path / AUTHORS_CHECKPOINT_NAME, f"{where}: {AUTHORS_CHECKPOINT_NAME}"):
            raise WeightsNotFoundError(f"{where} holds neither {WEIGHTS_NAME} nor {AUTHORS_CHECKPOINT_NAME}; give the "
                                       "folder of a converted checkpoint or an authors' best_model.pt")
        path = path / AUTHORS_CHECKPOINT_NAME
    if path.name == WEIGHTS_NAME and present(path.parent / CONFIG_NAME, f"checkpoint {path}: {CONFIG_NAME} beside it"):
        return load_folder(path.parent, f"checkpoint {path}")
    return load_state(read_state_dict(path), None, f"checkpoint {one_line(str(path))}")


def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None, *,
                    device: torch.device | str | None = None, hub_org: str | None = None,
                    force_download: bool = False, progress: drive.Progress | None = None) -> HSNet:
    """An HSNet in eval mode from a registry name, a Hub repo id, a local checkpoint file or a local folder.

    ``model.image_size`` and ``model.mask_support`` come from the weights' config.json; ``device`` is checked
    (``hsnet.runtime.resolve_device``) before anything is fetched. ``progress``
    is called with (bytes so far, total or None) during a Drive download; ``revision`` pins a Hub
    branch, tag or commit; HF_HUB_OFFLINE, HF_TOKEN and HF_ENDPOINT are honoured.
    """
    target = resolve_device(device) if device is not None else None  # refused before anything is downloaded
    text = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    if not isinstance(text, str) or not text.strip():
        raise WeightsNotFoundError(f"no weights given ({one_line(repr(text), 40)}); give a registry name such as "
                                   "pascal-resnet50-fold0 (see `hsnet weights`), a Hub repo id or a checkpoint file")
    local = _local_path(text)
    if local is not None:
        model = _load_local(local)
    else:
        folder, repo_id = _fetch(text, revision, hub_org, force_download, progress)
        model = _load_snapshot(folder, repo_id) if repo_id else load_folder(folder, f"{text} (hsnet's cache)")
    return model.to(target) if target is not None else model
