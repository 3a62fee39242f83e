"""Pretrained HSNet weights: the registry of the authors' checkpoints, where they come from, and the Hub format.

- ``catalog``: the registry of names, backbones, folds and the authors' Google Drive folders (``hsnet/registry.json``).
- ``drive``: listing and fetching the authors' originals through gdown.
- ``cache``: hsnet's cache of converted copies, with their sha256 recorded.
- ``hub``: Hub copies through huggingface_hub, where one is configured.
- ``folder``: the Hub format itself (safetensors + config.json + model card) and conversion.
- ``provenance``: where converted weights came from, which decides what their model card may claim.
- ``pretrained``: ``from_pretrained``, which resolves a name through the above.
"""
from .folder import convert_checkpoint, save_pretrained
from .hub import push_to_hub
from .pretrained import WeightsStatus, download, from_pretrained, status
from .catalog import BENCHMARKS, DEFAULT_WEIGHTS, HUB_ORG_ENV, WeightsEntry, registry, registry_entry_for

__all__ = [
    "BENCHMARKS", "DEFAULT_WEIGHTS", "HUB_ORG_ENV", "WeightsEntry", "WeightsStatus", "convert_checkpoint", "download",
    "from_pretrained", "push_to_hub", "registry", "registry_entry_for", "save_pretrained", "status",
]
