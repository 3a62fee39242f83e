"""Pretrained weights as the commands, the app and users import them (``hsnet.hub``); see ``hsnet.weights``."""
from .weights import (
    BENCHMARKS,
    DEFAULT_WEIGHTS,
    HUB_ORG_ENV,
    WeightsEntry,
    WeightsStatus,
    convert_checkpoint,
    download,
    from_pretrained,
    push_to_hub,
    registry,
    registry_entry_for,
    save_pretrained,
    status,
)

__all__ = [
    "BENCHMARKS", "DEFAULT_WEIGHTS", "HUB_ORG_ENV", "WeightsEntry", "WeightsStatus", "convert_checkpoint", "download",
    "from_pretrained", "push_to_hub", "registry", "registry_entry_for", "save_pretrained", "status",
]
