"""How the model runs: inference context (device, precision, compilation), BatchNorm folding, bounded passes,
and the allocator setting for long runs. The mathematics lives in ``hsnet.model``."""
from .allocator import retain_freed_memory
from .context import PRECISIONS, InferenceContext, autocast, autocast_dtype, resolve_device
from .episodes import cached_logits, episode_logits
from .folding import ConvBNFolder, fold_batchnorm
from .passes import backbone_passes, bounded_logits, bounded_passes

__all__ = [
    "PRECISIONS", "ConvBNFolder", "InferenceContext", "autocast", "autocast_dtype", "backbone_passes",
    "bounded_logits", "bounded_passes", "cached_logits", "episode_logits", "fold_batchnorm", "resolve_device",
    "retain_freed_memory",
]
