"""Load the authors' checkpoints, plain state dicts and safetensors into an HSNet, safely.

Only tensors are ever deserialized: ``.pt`` files go through
``torch.load(weights_only=True)`` and ``.safetensors`` through safetensors.
"""
from __future__ import annotations

import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from .errors import CheckpointError, describe, one_line
from .model import HSNet

# The ImageNet classifier head is in the authors' files but never used by HSNet.
UNUSED_PREFIXES = ("backbone.fc.", "backbone.classifier.")
StateDict = Mapping[str, torch.Tensor]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pt``/``.pth`` file; never runs pickled code."""
    path = Path(path)
    where = f"checkpoint {one_line(str(path))}"
    if path.is_dir():
        raise CheckpointError(f"{where} is a folder; give the path of a best_model.pt or .safetensors file")
    if not path.is_file():
        raise CheckpointError(f"{where} does not exist; give the path of a best_model.pt or .safetensors file")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        with warnings.catch_warnings():  # torch notes odd pickle protocols; refusing or loading says what matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{where} holds Python objects other than tensors and was refused without running them; "
            "use the authors' best_model.pt or a .safetensors file"
        ) from exc
    except MemoryError as exc:
        raise CheckpointError(f"{where} does not fit in memory; is it really an HSNet checkpoint?") from exc
    except Exception as exc:  # noqa: BLE001 - torch.load and safetensors raise many types on damaged bytes
        raise CheckpointError(f"{where} is damaged or not a PyTorch/safetensors file ({describe(exc)}); "
                              "download or save it again") from exc
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where} holds a {type(state).__name__}, not a state dict of tensors; "
                              "save model.state_dict() instead")
    return dict(state)


def infer_backbone(state: StateDict) -> str | None:
    """The backbone a state dict was trained with, from its key names; None if it is not HSNet's."""
    keys = [k.removeprefix("module.") for k in state]
    if not any(k.startswith("hpn_learner.") for k in keys):
        return None
    if any(k.startswith("backbone.features.") for k in keys):
        return "vgg16"
    if any(k.startswith("backbone.layer3.22.") for k in keys):
        return "resnet101"
    if any(k.startswith("backbone.layer3.5.") for k in keys):
        return "resnet50"
    return None


def normalize_state_dict(state: StateDict) -> dict[str, torch.Tensor]:
    """Strip DataParallel's ``module.`` prefix and drop the unused classifier head."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if not key.startswith(UNUSED_PREFIXES):
            out[key] = value
    return out


def load_weights(model: HSNet, state_dict_or_path: StateDict | str | os.PathLike) -> HSNet:
    """Load an HSNet checkpoint strictly (``module.`` prefix or not); returns the model."""
    source = state_dict_or_path
    state = read_state_dict(source) if isinstance(source, (str, os.PathLike)) else source
    where = f"checkpoint {one_line(str(source))}" if isinstance(source, (str, os.PathLike)) else "state dict"
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where} is a {type(state).__name__}, not a state dict; give model.state_dict() or a file")
    odd = [one_line(repr(k), 40) for k, v in state.items() if not (isinstance(k, str) and isinstance(v, torch.Tensor))]
    if odd:
        raise CheckpointError(f"{where} holds entries that are not named tensors ({', '.join(odd[:3])}"
                              f"{' ...' if len(odd) > 3 else ''}); save the model's state_dict() alone")
    if not state:
        raise CheckpointError(f"{where} is empty; give an HSNet checkpoint (the authors' best_model.pt or one hsnet saved)")
    found = infer_backbone(state)
    if found is None:
        raise CheckpointError(f"{where} is not an HSNet checkpoint (no backbone./hpn_learner. parameters of a known "
                              "backbone); give the authors' best_model.pt or a checkpoint hsnet saved")
    if found != model.backbone_name:
        raise CheckpointError(
            f"{where} is for backbone {found}, but the model is {model.backbone_name}; "
            f"build the model with backbone={found!r} or pick a {model.backbone_name} checkpoint"
        )
    state = normalize_state_dict(state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{name}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise CheckpointError(f"{where} does not fit HSNet-{model.backbone_name} ({'; '.join(parts)})")
    model.load_state_dict(state, strict=True)
    return model
