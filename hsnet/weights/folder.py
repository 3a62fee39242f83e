"""The Hub format of HSNet weights: ``model.safetensors``, ``config.json`` and a model card ``README.md``.

``config.json`` carries what the weights alone cannot tell: backbone, benchmark, fold, the image
size it was trained at and whether supports are masked (``mask_support``); loading sets the last
two on the model. Only safetensors are read from such a folder, so nothing in it is executable.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
from collections.abc import Mapping
from numbers import Real
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from ..checkpoint import infer_backbone, load_weights, normalize_state_dict, present, read_state_dict
from ..errors import CheckpointError, InputError, one_line
from ..limits import DEFAULT_IMAGE_SIDE, MIN_IMAGE_SIDE
from ..model import BACKBONES, HSNet, build_model
from ..model_card import render_model_card
from . import provenance
from .cache import file_sha256
from .catalog import BENCHMARKS, WeightsEntry

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
AUTHORS_CHECKPOINT_NAME = "best_model.pt"
WRITTEN = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)  # every file hsnet writes into a Hub folder
MAX_CONFIG_BYTES = 1 << 20  # hsnet's config.json is < 1 kB; a larger one is not hsnet's
MAX_TRAINED_SIDE = 4096  # ten times the authors' 400: far beyond what any GPU holds for the 4D correlation
LICENSE_ID = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")  # the form of the Hub's license identifiers (mit, cc-by-4.0)
UNKNOWN_LICENSE = "unknown"
NAME_MAX = 255  # bytes in one file or folder name on the usual file systems
JSON_KINDS = {list: "array", str: "string", type(None): "null", int: "number", float: "number", bool: "boolean"}


def save_pretrained(model: HSNet, directory: str | os.PathLike, *, benchmark: str | None = None,
                    fold: int | None = None, image_size: int | None = None, mask_support: bool | None = None,
                    source: str = "saved with hsnet", metrics: Mapping[str, Mapping[str, float]] | None = None,
                    license: str = UNKNOWN_LICENSE, repo_id: str | None = None, overwrite: bool = False) -> Path:
    """Write ``model`` as a Hub folder (model.safetensors, config.json, README.md); returns the folder.

    ``image_size`` and ``mask_support`` default to the model's own. ``source`` says where the weights came
    from and ``metrics`` maps a label (e.g. ``"fold 0 validation"``) to mIoU (%) per shot setting: the card
    states both as given. ``repo_id`` is what the card's usage example loads (default: ``directory``).
    A folder holding anything but an earlier hsnet export is refused unless ``overwrite`` (and then only
    the three files are replaced).
    """
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {one_line(repr(benchmark), 40)}; use one of {', '.join(BENCHMARKS)}")
    if fold is not None and benchmark in (None, "fss"):
        raise InputError("a fold only applies to the pascal and coco benchmarks; leave it out for fss")
    origin = {"source": one_line(str(source), 400), "provenance": {"kind": provenance.SAVED},
              "metrics": _checked_metrics(metrics)}
    return _write_folder(model, directory, benchmark, fold, image_size, mask_support, origin, license, repo_id,
                         overwrite)


def _checked_metrics(metrics: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, float]]:
    """``metrics`` as plain dicts of floats, or InputError when it is not {label: {setting: finite number}}."""
    example = "e.g. {'fold 0 validation': {'1-shot': 64.3}}"
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InputError(f"metrics is a {type(metrics).__name__}; give a dict of label to {{setting: mIoU}}, {example}")
    checked = {}
    for label, values in metrics.items():
        if not isinstance(values, Mapping):
            raise InputError(f"metrics[{one_line(repr(label), 40)}] is a {type(values).__name__}, not a dict of "
                             f"setting to mIoU; {example}")
        for setting, value in values.items():
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise InputError(f"metrics[{one_line(repr(label), 40)}][{one_line(repr(setting), 40)}] is "
                                 f"{one_line(repr(value), 40)}, not a finite number; give mIoU in percent")
        checked[one_line(str(label), 80)] = {one_line(str(k), 40): float(v) for k, v in values.items()}
    return checked


def _write_folder(model: HSNet, directory: str | os.PathLike, benchmark: str | None, fold: int | None,
                  image_size: int | None, mask_support: bool | None, origin: dict, license: str,
                  repo_id: str | None, overwrite: bool) -> Path:
    """Check everything, then write the three files of a Hub folder, each complete or not at all."""
    check_license(license)
    folder = check_output_folder(directory, overwrite)
    config = {
        "model_type": "hsnet",
        "backbone": model.backbone_name,
        "benchmark": benchmark,
        "fold": fold,
        "image_size": image_size if image_size is not None else model.image_size,
        "mask_support": mask_support if mask_support is not None else model.mask_support,
        "license": license,
        **origin,
    }
    check_config(config, "the model to save")
    state = {k: v.detach().to("cpu").contiguous() for k, v in normalize_state_dict(model.state_dict()).items()}
    write_files(folder, {
        WEIGHTS_NAME: save(state, metadata={"format": "pt", "backbone": model.backbone_name}),
        CONFIG_NAME: (json.dumps(config, indent=2) + "\n").encode(),
        CARD_NAME: render_model_card(config, repo_id or str(folder)).encode(),
    })
    return folder


def check_license(license: object) -> None:
    """Refuse a licence that is not of the form of the Hub's identifiers (``mit``, ``cc-by-4.0``, ``unknown``)."""
    if not isinstance(license, str) or not LICENSE_ID.match(license):
        raise InputError(f"license {one_line(repr(license), 40)} is not a Hub license identifier; give one such as "
                         f"mit, apache-2.0 or cc-by-4.0 (https://huggingface.co/docs/hub/repositories-licenses), "
                         f"or {UNKNOWN_LICENSE}")


def write_files(folder: Path, contents: Mapping[str, bytes]) -> None:
    """Write each file under a temporary name, then rename them all into ``folder`` (created if needed).

    Files get the mode of any new file (0666 less the umask); a symbolic link at a target name is replaced,
    never written through. On failure nothing new is left: no temporary file, no folder this call created.
    """
    created = [p for p in (folder, *folder.absolute().parents) if not os.path.lexists(p)]
    temporary: dict[str, Path] = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        reason = one_line(exc.strerror or str(exc), 60)
        raise InputError(f"cannot create the folder {one_line(str(folder))} ({reason}); give a writable path for "
                         "--out") from exc
    try:
        for name, data in contents.items():
            temporary[name] = folder / f".{name}.{secrets.token_hex(4)}.partial"
            descriptor = os.open(temporary[name], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(descriptor, "wb") as f:
                f.write(data)
        for name, path in temporary.items():
            os.replace(path, folder / name)
    except BaseException as exc:  # an interrupt as well: never leave a .partial file or an empty new folder
        for path in temporary.values():
            path.unlink(missing_ok=True)
        _remove_empty(created)
        if not isinstance(exc, OSError):
            raise
        advice = "free some space and try again" if exc.errno == errno.ENOSPC else "give a writable folder"
        raise InputError(f"cannot write {one_line(str(folder))} ({one_line(exc.strerror or str(exc), 60)}); "
                         f"no partial file was left; {advice}") from exc


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders a failed write created, deepest first, as long as they are empty."""
    for path in created:
        try:
            path.rmdir()
        except OSError:
            return


def is_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier hsnet export: a config.json of ``model_type`` hsnet."""
    config = folder / CONFIG_NAME
    try:
        if not config.is_file() or config.stat().st_size > MAX_CONFIG_BYTES:
            return False
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("model_type") == "hsnet"


def check_output_folder(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """``out`` as a folder hsnet may write its three files into, creating nothing; a one-line InputError when it
    is empty, a file, or a folder holding anything but an earlier hsnet export (unless ``overwrite``)."""
    text = os.fspath(out) if isinstance(out, os.PathLike) else out
    if not isinstance(text, str) or not text.strip():
        raise InputError("the output folder is empty; give a folder name, e.g. --out converted/pascal-resnet50-fold0")
    folder = Path(text)
    where = one_line(text)
    try:
        if os.path.lexists(folder) and not folder.is_dir():
            raise InputError(f"{where} is an existing file, not a folder; give a new folder name")
        kept = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        existing = next(p for p in (folder.absolute(), *folder.absolute().parents) if os.path.lexists(p))
        if not existing.is_dir():
            raise OSError(errno.ENOTDIR, f"{one_line(str(existing), 80)} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise OSError(errno.EACCES, f"no permission to write in {one_line(str(existing), 80)}")
        if len(os.fsencode(folder.absolute().name)) > NAME_MAX:
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
    except OSError as exc:
        raise InputError(f"cannot create the folder {where} ({one_line(exc.strerror or str(exc), 100)}); "
                         "give a writable path for --out") from exc
    if kept and not overwrite and not is_export(folder):
        replaced = [name for name in WRITTEN if name in kept]
        what = f"it would replace {', '.join(replaced)}" if replaced else "its files would be mixed with the weights"
        shown = ", ".join(one_line(name, 40) for name in kept[:3]) + (" ..." if len(kept) > 3 else "")
        raise InputError(f"the folder {where} already holds {len(kept)} file(s) ({shown}) and is not an earlier "
                         f"hsnet export: {what}; give a new "
                         f"or empty folder, or pass --force (overwrite=True in Python) to write {', '.join(WRITTEN)} "
                         "into it anyway")
    return folder


def _value(config: dict, key: str) -> str:
    return one_line(repr(config[key]), 40)


def check_config(config: Any, where: str) -> dict:
    """``config`` with its defaults filled in, when every setting hsnet reads from it has a sane type and value."""
    if not isinstance(config, dict):
        kind = JSON_KINDS.get(type(config), type(config).__name__)
        raise CheckpointError(f"{where} holds a JSON {kind}, not an object of settings; convert the "
                              "checkpoint again with `hsnet convert`")
    config = {"image_size": DEFAULT_IMAGE_SIDE, "mask_support": True, "benchmark": None, "fold": None, **config}
    if config.get("model_type", "hsnet") != "hsnet":
        raise CheckpointError(f"{where} is the config of a {_value(config, 'model_type')} model, not an HSNet; give "
                              "a folder written by hsnet")
    backbone = config.get("backbone")
    if not isinstance(backbone, str) or backbone not in BACKBONES:
        shown = "none" if "backbone" not in config else _value(config, "backbone")
        raise CheckpointError(f"{where} names no known backbone ({shown}; one of {', '.join(BACKBONES)}); "
                              "convert the checkpoint again with `hsnet convert`")
    size = config["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_IMAGE_SIDE <= size <= MAX_TRAINED_SIDE:
        # Training and evaluation take large sides; the Predictor caps what it runs at (hsnet.limits).
        raise CheckpointError(f"{where} gives image_size {_value(config, 'image_size')}; it must be a whole number "
                              f"of pixels from {MIN_IMAGE_SIDE} to {MAX_TRAINED_SIDE} (the authors' is "
                              f"{DEFAULT_IMAGE_SIDE})")
    if not isinstance(config["mask_support"], bool):
        raise CheckpointError(f"{where} gives mask_support {_value(config, 'mask_support')}; it must be true or false")
    benchmark, fold = config["benchmark"], config["fold"]
    if benchmark is not None and (not isinstance(benchmark, str) or benchmark not in BENCHMARKS):
        raise CheckpointError(f"{where} gives benchmark {_value(config, 'benchmark')}; it must be one of "
                              f"{', '.join(BENCHMARKS)} or null")
    if fold is not None and (isinstance(fold, bool) or fold not in (0, 1, 2, 3) or benchmark not in ("pascal", "coco")):
        raise CheckpointError(f"{where} gives fold {_value(config, 'fold')}; it must be 0, 1, 2 or 3 with the pascal "
                              "or coco benchmark, else null")
    return config


def read_config(path: Path) -> dict:
    """A folder's config.json, checked; CheckpointError if it is not a small JSON file of the right shape."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise CheckpointError(f"{path} is {path.stat().st_size} bytes, far more than hsnet's config.json (under "
                                  f"1 kB); convert the checkpoint again")
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else one_line(str(exc), 80)
        raise CheckpointError(f"{path} is not a readable JSON file ({reason}); convert the checkpoint again") from exc
    return check_config(config, str(path))


def load_state(state: Mapping[str, torch.Tensor], config: dict | None, where: str) -> HSNet:
    """An HSNet built as ``config`` says (or as the weights imply) with ``state`` loaded strictly, in eval mode."""
    found = infer_backbone(state)
    backbone = config["backbone"] if config else None
    if backbone is not None and found is not None and found != backbone:
        raise CheckpointError(f"{where}: config.json says backbone {backbone} but the weights are a {found} model; "
                              "fix config.json or convert the checkpoint again with the right --backbone")
    backbone = backbone or found
    if backbone is None:
        raise CheckpointError(f"{where} is not an HSNet checkpoint (no backbone./hpn_learner. parameters of a known "
                              "backbone)")
    options = {"mask_support": config["mask_support"], "image_size": config["image_size"]} if config else {}
    return load_weights(build_model(backbone, **options), state).eval()


def load_folder(folder: Path, where: str) -> HSNet:
    """Load a Hub-format folder (model.safetensors and, if present, config.json)."""
    config = folder / CONFIG_NAME
    settings = read_config(config) if present(config, f"{where}: {CONFIG_NAME}") else None
    return load_state(read_state_dict(folder / WEIGHTS_NAME), settings, where)


def _strict_model(checkpoint: str | os.PathLike, backbone: str, benchmark: str, fold: int | None,
                  mask_support: bool) -> HSNet:
    """The HSNet of ``checkpoint`` once the declared backbone, benchmark and fold are valid and it loads strictly."""
    if backbone not in BACKBONES:
        raise InputError(f"unknown backbone {one_line(repr(backbone), 40)}; use one of {', '.join(BACKBONES)}")
    if benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {one_line(repr(benchmark), 40)}; use one of {', '.join(BENCHMARKS)}")
    if benchmark in ("pascal", "coco") and fold not in (0, 1, 2, 3):
        raise InputError(f"the {benchmark} checkpoints are per fold; give --fold 0, 1, 2 or 3")
    if benchmark == "fss" and fold is not None:
        raise InputError("a fold only applies to the pascal and coco benchmarks; leave --fold out for fss")
    state = read_state_dict(checkpoint)
    found = infer_backbone(state)
    if found is not None and found != backbone:
        raise CheckpointError(f"checkpoint {one_line(str(checkpoint))} holds a {found} model, not {backbone}; "
                              f"pass --backbone {found}")
    return load_weights(build_model(backbone, mask_support=mask_support), state)


def convert_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *, backbone: str, benchmark: str,
                       fold: int | None = None, mask_support: bool = True, license: str = UNKNOWN_LICENSE,
                       repo_id: str | None = None, overwrite: bool = False) -> Path:
    """Turn a ``best_model.pt`` into a Hub folder at ``out``, checking it loads strictly as ``backbone``.

    The card names the authors and their mIoU only when the file's sha256 is one hsnet recorded downloading
    from their Google Drive folder (see ``provenance``); any other file is "converted from a local file".
    ``out`` is refused when it is a file, or a folder holding anything but an earlier hsnet export
    (unless ``overwrite``); nothing is created before the checkpoint has loaded.
    """
    check_license(license)
    check_output_folder(out, overwrite)
    model = _strict_model(checkpoint, backbone, benchmark, fold, mask_support)
    path = Path(checkpoint)
    origin = provenance.of_file(path, file_sha256(path), backbone, benchmark, fold, mask_support)
    return _write_folder(model, out, benchmark, fold, None, mask_support, origin, license, repo_id, overwrite)


def convert_download(original: Path, out: Path, entry: WeightsEntry, drive_path: str, sha256: str) -> Path:
    """Convert ``entry``'s checkpoint that hsnet has just downloaded from the authors' folder into ``out`` (a
    fresh folder hsnet made, holding the original): the one place a card is written as the authors'."""
    model = _strict_model(original, entry.backbone, entry.benchmark, entry.fold, entry.mask_support)
    origin = provenance.authors(entry, drive_path, sha256)
    return _write_folder(model, out, entry.benchmark, entry.fold, None, entry.mask_support, origin, UNKNOWN_LICENSE,
                         entry.name, overwrite=True)
