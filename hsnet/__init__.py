"""hsnet: few-shot segmentation with Hypercorrelation Squeeze Networks (Min, Kang & Cho, ICCV 2021).

The names below are imported on first use (PEP 562), so that ``hsnet`` commands start, parse
their arguments and answer Ctrl-C in one line before torch is loaded.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .version import __version__

_HOMES = {
    "load_weights": "checkpoint",
    "CheckpointError": "errors", "HSNetError": "errors", "HubError": "errors", "InputError": "errors",
    "WeightsNotFoundError": "errors",
    "from_pretrained": "hub", "save_pretrained": "hub",
    "BACKBONES": "model", "HSNet": "model", "HSNetModel": "runtime", "build_model": "runtime",
    "LayerMap": "predictor", "Prediction": "predictor", "Predictor": "predictor", "QueryFeatures": "predictor",
    "SupportSet": "predictor",
}
__all__ = sorted(_HOMES)

if TYPE_CHECKING:
    from .checkpoint import load_weights
    from .errors import CheckpointError, HSNetError, HubError, InputError, WeightsNotFoundError
    from .hub import from_pretrained, save_pretrained
    from .model import BACKBONES, HSNet
    from .runtime import HSNetModel, build_model
    from .predictor import LayerMap, Prediction, Predictor, QueryFeatures, SupportSet


def __getattr__(name: str) -> object:
    """The public name ``name``, imported from its module the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
