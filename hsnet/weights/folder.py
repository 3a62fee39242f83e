"""The Hub format of HSNet weights: ``model.safetensors``, ``config.json`` and a model card ``README.md``.

``config.json`` carries what the weights alone cannot tell: backbone, benchmark, fold, the image
size it was trained at and whether supports are masked (``mask_support``); loading sets the last
two on the model. Only safetensors are read from such a folder, so nothing in it is executable.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..checkpoint import infer_backbone, load_weights, normalize_state_dict, read_state_dict
from ..errors import CheckpointError, InputError, one_line
from ..limits import DEFAULT_IMAGE_SIDE, MIN_IMAGE_SIDE
from ..model import BACKBONES, HSNet
from ..runtime import build_model
from ..model_card import render_model_card
from .catalog import BENCHMARKS, registry_entry_for

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
AUTHORS_CHECKPOINT_NAME = "best_model.pt"


def save_pretrained(model: HSNet, directory: str | os.PathLike, *, benchmark: str | None = None,
                    fold: int | None = None, image_size: int | None = None, mask_support: bool | None = None,
                    source: str = "trained with hsnet", metrics: Mapping[str, Mapping[str, float]] | None = None,
                    repo_id: str | None = None) -> Path:
    """Write ``model`` as a Hub folder (model.safetensors, config.json, README.md); returns the folder.

    ``image_size`` and ``mask_support`` default to the model's own. ``metrics`` maps a label (e.g.
    ``"fold 0"``) to mIoU (%) per shot setting; ``repo_id`` only fills the model card's usage example.
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
        "image_size": image_size if image_size is not None else model.image_size,
        "mask_support": mask_support if mask_support is not None else model.mask_support,
        "source": source,
        "metrics": {k: dict(v) for k, v in (metrics or {}).items()},
    }
    check_config(config, "the model to save")
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "backbone": model.backbone_name})
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (folder / CARD_NAME).write_text(render_model_card(config, repo_id), encoding="utf-8")
    return folder


def check_config(config: Any, where: str) -> dict:
    """``config`` with its defaults filled in, if it has a known backbone and sane image_size and mask_support."""
    if not isinstance(config, dict) or config.get("backbone") not in BACKBONES:
        raise CheckpointError(f"{where} names no known backbone (one of {', '.join(BACKBONES)}); "
                              "convert the checkpoint again with `hsnet convert`")
    config = {"image_size": DEFAULT_IMAGE_SIDE, "mask_support": True, **config}
    size = config["image_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_IMAGE_SIDE:
        # No upper bound here: training and evaluation take any side; the Predictor caps what it runs at.
        raise CheckpointError(f"{where} gives image_size {one_line(repr(size), 40)}; it must be a whole number of "
                              f"pixels, at least {MIN_IMAGE_SIDE} (the authors' is {DEFAULT_IMAGE_SIDE})")
    if not isinstance(config["mask_support"], bool):
        raise CheckpointError(f"{where} gives mask_support {one_line(repr(config['mask_support']), 40)}; "
                              "it must be true or false")
    return config


def read_config(path: Path) -> dict:
    """A folder's config.json, checked; CheckpointError if it is not valid JSON of the right shape."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not a readable JSON file ({one_line(str(exc), 80)}); "
                              "convert the checkpoint again") from exc
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
    return load_state(read_state_dict(folder / WEIGHTS_NAME), read_config(config) if config.is_file() else None, where)


def convert_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *, backbone: str, benchmark: str,
                       fold: int | None = None, mask_support: bool = True, repo_id: str | None = None,
                       source: str | None = None) -> Path:
    """Turn an authors' ``best_model.pt`` into a Hub folder at ``out``, checking it loads strictly as ``backbone``.

    ``out`` is created if needed; an existing file there is refused.
    """
    if backbone not in BACKBONES:
        raise InputError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")
    if benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {benchmark!r}; use one of {', '.join(BENCHMARKS)}")
    if benchmark in ("pascal", "coco") and fold not in (0, 1, 2, 3):
        raise InputError(f"the {benchmark} checkpoints are per fold; give --fold 0, 1, 2 or 3")
    out = check_output_folder(Path(out))
    state = read_state_dict(checkpoint)
    found = infer_backbone(state)
    if found is not None and found != backbone:
        raise CheckpointError(f"checkpoint {one_line(str(checkpoint))} holds a {found} model, not {backbone}; "
                              f"pass --backbone {found}")
    model = load_weights(build_model(backbone, mask_support=mask_support), state)
    entry = registry_entry_for(backbone, benchmark, fold, mask_support)
    metrics = None
    if entry is not None:
        source = source or f"the authors' {Path(checkpoint).name} from {entry.source}, converted with hsnet"
        label = f"authors, fold {fold}" if fold is not None else "authors, FSS-1000 test"
        metrics = {label: entry.miou} if entry.miou else {}
        if entry.miou_mean_over_folds:
            metrics["authors, mean over the 4 folds"] = entry.miou_mean_over_folds
    return save_pretrained(model, out, benchmark=benchmark, fold=fold, mask_support=mask_support,
                           source=source or f"converted from {Path(checkpoint).name} with hsnet", metrics=metrics,
                           repo_id=repo_id)


def check_output_folder(out: Path) -> Path:
    """``out`` once it exists as a folder, or a one-line InputError when it cannot (a file, no permission...)."""
    where = one_line(str(out))
    if str(out).strip() == "":
        raise InputError("the output folder is empty; give a folder name, e.g. --out converted/pascal-resnet50-fold0")
    try:
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {where} is an existing file; give a new folder name")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder {where} ({one_line(exc.strerror or str(exc), 60)}); "
                         "give a writable path for --out") from exc
    return out
