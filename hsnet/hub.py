"""Pretrained HSNet weights: the registry of the authors' checkpoints and the Hugging Face Hub format.

A Hub folder holds ``model.safetensors`` (the state dict, no classifier head),
``config.json`` (backbone, benchmark, fold, image size, source) and a model card
``README.md``. Downloads go through ``huggingface_hub`` and its cache; only
safetensors are read from the Hub, so no pickled code is ever loaded from it.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
from huggingface_hub import HfApi, constants, get_token, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import save_file

from .checkpoint import infer_backbone, load_weights, normalize_state_dict, read_state_dict
from .errors import CheckpointError, HubError, InputError, WeightsNotFoundError
from .model import BACKBONES, HSNet, build_model
from .model_card import render_model_card

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
AUTHORS_CHECKPOINT_NAME = "best_model.pt"
HUB_ORG_ENV = "HSNET_HUB_ORG"
BENCHMARKS = ("pascal", "coco", "fss")
# PASCAL-5i fold 0 with ResNet-50 for the demo: it was trained on the 15 everyday PASCAL classes that
# people photograph most (person, cat, dog, car, ...), and ResNet-50 nearly halves the download and
# the CPU time of ResNet-101 for about two points of mIoU.
DEFAULT_WEIGHTS = "pascal-resnet50-fold0"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class WeightsEntry:
    """One checkpoint the authors released, and where its converted copy lives on the Hub."""

    name: str
    backbone: str
    benchmark: str
    fold: int | None
    repo: str  # repository name; the organisation comes from resolve_hub_org()
    filename: str
    source: str  # the authors' public Google Drive folder holding the original best_model.pt
    miou: dict[str, float]  # the authors' reported mIoU (%) of this checkpoint, per shot setting
    miou_mean_over_folds: dict[str, float] | None  # the paper's mean over the 4 folds (pascal, coco)

    def repo_id(self, org: str | None = None) -> str:
        """``org/repo`` on the Hub; ``org`` defaults to :func:`resolve_hub_org`."""
        return f"{resolve_hub_org(org)}/{self.repo}"


@lru_cache(maxsize=1)
def _registry_data() -> dict:
    """The parsed registry file shipped inside the package (``weights/registry.json`` links to it)."""
    return json.loads(resources.files("hsnet").joinpath("registry.json").read_text(encoding="utf-8"))


def registry() -> dict[str, WeightsEntry]:
    """Every checkpoint the authors released, by name (e.g. ``pascal-resnet101-fold0``, ``fss-resnet50``)."""
    data = _registry_data()
    return {
        name: WeightsEntry(name=name, source=data["benchmarks"][info["benchmark"]]["source"], **info)
        for name, info in data["weights"].items()
    }


def authors_folders() -> dict[str, str]:
    """The authors' public Google Drive folder of each benchmark's checkpoints, by benchmark title."""
    return {b["title"]: b["source"] for b in _registry_data()["benchmarks"].values()}


def resolve_hub_org(override: str | None = None) -> str:
    """The Hub organisation holding the converted weights: ``override``, else $HSNET_HUB_ORG, else the default."""
    return override or os.environ.get(HUB_ORG_ENV) or _registry_data()["default_org"]


def _offline() -> bool:
    """Whether HF_HUB_OFFLINE is on, read now as well as when huggingface_hub was imported."""
    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _endpoint() -> str:
    """The Hub URL: $HF_ENDPOINT read now (huggingface_hub reads it only once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


# ---------------------------------------------------------------------------------------------- writing


def save_pretrained(model: HSNet, directory: str | os.PathLike, *, benchmark: str | None = None,
                    fold: int | None = None, image_size: int = 400,
                    source: str = "trained with hsnet", metrics: Mapping[str, Mapping[str, float]] | None = None,
                    repo_id: str | None = None) -> Path:
    """Write ``model`` as a Hub folder (model.safetensors, config.json, README.md); returns the folder.

    ``metrics`` maps a label (e.g. ``"fold 0"``) to mIoU (%) per shot setting (``{"1-shot": 64.3}``);
    ``repo_id`` only fills the usage example of the model card.
    """
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    if fold is not None and benchmark in (None, "fss"):
        raise InputError("a fold only applies to the pascal and coco benchmarks; leave it out for fss")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in normalize_state_dict(model.state_dict()).items()}
    config = {
        "model_type": "hsnet",
        "backbone": model.backbone_name,
        "benchmark": benchmark,
        "fold": fold,
        "image_size": image_size,
        "source": source,
        "metrics": {k: dict(v) for k, v in (metrics or {}).items()},
    }
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "backbone": model.backbone_name})
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / CARD_NAME).write_text(render_model_card(config, repo_id), encoding="utf-8")
    return folder


def registry_entry_for(backbone: str, benchmark: str, fold: int | None) -> WeightsEntry | None:
    """The registry entry of the authors' checkpoint for that backbone, benchmark and fold, if they released one."""
    return next((e for e in registry().values() if (e.backbone, e.benchmark, e.fold) == (backbone, benchmark, fold)),
                None)


def convert_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *, backbone: str, benchmark: str,
                       fold: int | None = None, repo_id: str | None = None) -> Path:
    """Turn an authors' ``best_model.pt`` into a Hub folder, checking it loads strictly as ``backbone``."""
    if backbone not in BACKBONES:
        raise InputError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")
    if benchmark in ("pascal", "coco") and fold not in (0, 1, 2, 3):
        raise InputError(f"the {benchmark} checkpoints are per fold; give --fold 0, 1, 2 or 3")
    state = read_state_dict(checkpoint)
    found = infer_backbone(state)
    if found is not None and found != backbone:
        raise CheckpointError(f"checkpoint {checkpoint} holds a {found} model, not {backbone}; pass --backbone {found}")
    model = load_weights(build_model(backbone), state)
    entry = registry_entry_for(backbone, benchmark, fold)
    metrics = None
    source = f"converted from {Path(checkpoint).name} with hsnet"
    if entry is not None:
        source = f"the authors' {Path(checkpoint).name} from {entry.source}, converted with hsnet"
        label = f"authors, fold {fold}" if fold is not None else "authors, FSS-1000 test"
        metrics = {label: entry.miou}
        if entry.miou_mean_over_folds:
            metrics["authors, mean over the 4 folds"] = entry.miou_mean_over_folds
    return save_pretrained(model, out, benchmark=benchmark, fold=fold, source=source, metrics=metrics,
                           repo_id=repo_id or (entry.repo_id() if entry else None))


def push_to_hub(directory: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str | None = None) -> str:
    """Upload a Hub folder made by :func:`save_pretrained` to ``repo_id`` (created if needed); returns its URL.

    The token comes from ``token``, else $HF_TOKEN or ``hf auth login``; it is never printed.
    """
    folder = Path(directory)
    if not _REPO_ID.match(repo_id):
        raise HubError(f"repo id {repo_id!r} is not of the form owner/name; pass e.g. --repo-id my-org/hsnet-{folder.name}")
    _load_folder(folder, f"folder {folder}")  # refuse to publish anything that would not load
    token = token or get_token()
    if token is None:
        raise HubError("no Hugging Face token found; set HF_TOKEN to a token with write access "
                       "(https://huggingface.co/settings/tokens) or run `hf auth login`")
    api = HfApi(endpoint=_endpoint(), token=token)
    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=folder, allow_patterns=[WEIGHTS_NAME, CONFIG_NAME, CARD_NAME],
                          commit_message=commit_message or f"Upload HSNet weights ({folder.name})")
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(f"the Hub refused to write to {repo_id} (HTTP {status}); use a token with write access "
                           f"to {repo_id.split('/')[0]} in HF_TOKEN") from exc
        raise HubError(f"uploading to {repo_id} failed ({_first_line(exc)}); check the connection and try again") from exc
    return str(url)


# ---------------------------------------------------------------------------------------------- reading


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, for one-line errors."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _read_config(path: Path) -> dict:
    """A folder's config.json as a dict; CheckpointError if it is not valid JSON of the right shape."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable JSON file ({exc}); convert the checkpoint again") from exc
    if not isinstance(config, dict) or config.get("backbone") not in BACKBONES:
        raise CheckpointError(f"{path} names no known backbone (one of {', '.join(BACKBONES)}); "
                              "convert the checkpoint again with `hsnet convert`")
    return config


def _load_state(state: Mapping[str, torch.Tensor], backbone: str | None, where: str) -> HSNet:
    """An HSNet built for ``backbone`` (or the one the weights imply) with ``state`` loaded strictly."""
    found = infer_backbone(state)
    if backbone is not None and found is not None and found != backbone:
        raise CheckpointError(f"{where}: config.json says backbone {backbone} but the weights are a {found} model; "
                              "fix config.json or convert the checkpoint again with the right --backbone")
    backbone = backbone or found
    if backbone is None:
        raise CheckpointError(f"{where} is not an HSNet checkpoint (no backbone./hpn_learner. parameters of a known backbone)")
    return load_weights(build_model(backbone), state).eval()


def _load_files(weights: Path, config: Path | None, where: str) -> HSNet:
    """Load a safetensors file, honouring the backbone of its config.json when there is one."""
    backbone = _read_config(config)["backbone"] if config is not None else None
    return _load_state(read_state_dict(weights), backbone, where)


def _load_folder(folder: Path, where: str) -> HSNet:
    """Load a Hub-format folder (model.safetensors and, if present, config.json)."""
    config = folder / CONFIG_NAME
    return _load_files(folder / WEIGHTS_NAME, config if config.is_file() else None, where)


def _load_local(path: Path) -> HSNet:
    """A local best_model.pt / .safetensors file, or a folder holding model.safetensors or best_model.pt."""
    if path.is_dir():
        if (path / WEIGHTS_NAME).is_file():
            return _load_folder(path, f"folder {path}")
        if (path / AUTHORS_CHECKPOINT_NAME).is_file():
            path = path / AUTHORS_CHECKPOINT_NAME
        else:
            raise WeightsNotFoundError(f"folder {path} holds neither {WEIGHTS_NAME} nor {AUTHORS_CHECKPOINT_NAME}; "
                                       "give the folder of a converted checkpoint or an authors' best_model.pt")
    if path.name == WEIGHTS_NAME and (path.parent / CONFIG_NAME).is_file():
        return _load_folder(path.parent, f"checkpoint {path}")
    return _load_state(read_state_dict(path), None, f"checkpoint {path}")


def _file_digest(path: Path, git_blob: bool) -> str:
    """sha256 of a file, or its git blob sha1 (the Hub's ETag of files not stored with LFS)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size) if git_blob else hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _evict(pointer: str) -> None:
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
        _evict(pointer)
        raise CheckpointError(f"{Path(pointer).name} downloaded from {repo_id} fails its checksum (expected {expected}, "
                              f"got {actual}) and was removed from the cache; download it again, and if it keeps "
                              "failing tell the repository's owner")


def _not_found_advice(repo_id: str, entry: WeightsEntry | None) -> str:
    """How to get weights that are not on the Hub: the authors' folders and the convert/push commands."""
    if entry is None:
        folders = ", ".join(f"{title}: {url}" for title, url in authors_folders().items())
        convert = "hsnet convert best_model.pt --backbone BACKBONE --benchmark BENCHMARK [--fold F] --out DIR"
    else:
        folders = entry.source
        fold = "" if entry.fold is None else f" --fold {entry.fold}"
        convert = f"hsnet convert best_model.pt --backbone {entry.backbone} --benchmark {entry.benchmark}{fold} --out {entry.name}"
    out = entry.name if entry else "DIR"
    return (f"set {HUB_ORG_ENV} (or --hub-org) to the organisation that hosts the converted weights, or publish them "
            f"once: download best_model.pt from the authors' Google Drive ({folders}), then run `{convert}` and "
            f"`hsnet push {out} --repo-id {repo_id}`")


def _hub_file(repo_id: str, filename: str, revision: str | None, force_download: bool,
              entry: WeightsEntry | None) -> str:
    """Path of ``filename`` of ``repo_id`` in the huggingface_hub cache, downloaded only if not cached yet."""
    args = dict(repo_id=repo_id, filename=filename, revision=revision, endpoint=_endpoint(),
                library_name="hsnet", library_version=_version())
    at = f"{repo_id}" + (f" at revision {revision}" if revision else "")
    offline = _offline()
    if not force_download or offline:
        try:
            return hf_hub_download(**args, local_files_only=True)
        except LocalEntryNotFoundError as exc:
            if offline:
                raise WeightsNotFoundError(
                    f"HF_HUB_OFFLINE is set and {filename} of {at} is not in the cache ({constants.HF_HUB_CACHE}); "
                    "unset HF_HUB_OFFLINE and load it once with a connection, or give a local file") from exc
    try:
        return hf_hub_download(**args, force_download=force_download)
    except GatedRepoError as exc:
        raise WeightsNotFoundError(f"{repo_id} is gated on the Hub; accept its terms on {_endpoint()}/{repo_id} "
                                   "and set HF_TOKEN to a token of that account") from exc
    except RepositoryNotFoundError as exc:
        raise WeightsNotFoundError(f"Hub repository {repo_id} was not found on {_endpoint()} (if it is private, set "
                                   f"HF_TOKEN); {_not_found_advice(repo_id, entry)}") from exc
    except RevisionNotFoundError as exc:
        raise WeightsNotFoundError(f"revision {revision!r} does not exist in {repo_id}; give a branch, tag or commit "
                                   "of that repository, or leave the revision out for the latest upload") from exc
    except RemoteEntryNotFoundError as exc:
        raise WeightsNotFoundError(f"{at} has no {filename}, so it is not an hsnet weights repository; "
                                   f"{_not_found_advice(repo_id, entry)}") from exc
    except LocalEntryNotFoundError as exc:
        raise WeightsNotFoundError(f"could not reach {_endpoint()} to download {filename} of {at} and it is not in "
                                   "the cache; check the connection (or HF_ENDPOINT), or give a local file") from exc
    except HfHubHTTPError as exc:
        raise HubError(f"downloading {filename} of {at} failed ({_first_line(exc)}); try again later") from exc


def _version() -> str:
    """hsnet's version, sent in the user agent (imported late: the package imports this module)."""
    from . import __version__

    return __version__


def _download(repo_id: str, entry: WeightsEntry | None, revision: str | None,
              force_download: bool) -> tuple[Path, Path]:
    """(config.json, weights) of one commit of ``repo_id`` in the cache, both verified against their checksums."""
    config = _hub_file(repo_id, CONFIG_NAME, revision, force_download, entry)
    _verify_download(config, repo_id)
    commit = Path(config).parent.name  # snapshots/<commit>/config.json: fetch the weights of that very commit
    weights = _hub_file(repo_id, entry.filename if entry else WEIGHTS_NAME, commit, force_download, entry)
    _verify_download(weights, repo_id)
    return Path(config), Path(weights)


def download(name_or_repo_id: str, revision: str | None = None, *, hub_org: str | None = None,
             force_download: bool = False) -> Path:
    """Fetch a registry name or Hub repo id into the huggingface_hub cache; returns the verified snapshot folder.

    A file already in the cache is used without any request unless ``force_download`` is set.
    """
    entry, repo_id = _resolve_hub_name(name_or_repo_id, hub_org)
    return _download(repo_id, entry, revision, force_download)[1].parent


def _resolve_hub_name(name: str, org: str | None) -> tuple[WeightsEntry | None, str]:
    """(registry entry or None, repo id) of a registry name or a repo id; WeightsNotFoundError otherwise."""
    entries = registry()
    if name in entries:
        return entries[name], entries[name].repo_id(org)
    if _REPO_ID.match(name) and not name.endswith((".pt", ".pth", ".safetensors")):
        repo = name.split("/", 1)[1]
        return next((e for e in entries.values() if e.repo == repo), None), name
    close = difflib.get_close_matches(name, list(entries), n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise WeightsNotFoundError(f"unknown weights {name!r}: not a registry name, a Hub repo id (owner/name) or an "
                               f"existing file or folder; {hint}the names are listed by `hsnet.hub.registry()` and "
                               "in docs/weights.md")


def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None, *,
                    device: torch.device | str | None = None, hub_org: str | None = None,
                    force_download: bool = False) -> HSNet:
    """An HSNet in eval mode from a registry name, a Hub repo id, a local checkpoint file or a local folder.

    Hub files are cached by huggingface_hub and checked against their checksums; once cached, loading
    makes no request (pass ``force_download=True`` or a ``revision`` commit to pick up a newer upload).
    ``revision`` pins a branch, tag or commit; HF_HUB_OFFLINE, HF_TOKEN and HF_ENDPOINT are honoured.
    """
    path = Path(name_or_path)
    if path.exists():
        model = _load_local(path)
    else:
        entry, repo_id = _resolve_hub_name(str(name_or_path), hub_org)
        config, weights = _download(repo_id, entry, revision, force_download)
        try:
            model = _load_files(weights, config, f"{repo_id} ({weights.parent})")
        except CheckpointError as exc:
            for pointer in (config, weights):
                _evict(str(pointer))
            raise CheckpointError(f"{exc}; the downloaded files were removed from the cache") from exc
    return model.to(device) if device is not None else model
