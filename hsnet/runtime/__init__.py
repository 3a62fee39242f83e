"""How the model runs: the one forward path in bounded passes (``episode``), the inference context (device,
precision policy, compilation), the fp16 guard, the kernels it picks (``cpu``: oneDNN products, sparse correlation,
kept pivots, folded BatchNorm), the tensor API (``HSNetModel``) and the allocator setting for long runs.
The mathematics lives in ``hsnet.model``; this package imports it, never the reverse."""
from .allocator import retain_freed_memory
from .context import (CUDA_DEFAULT_PRECISION, PRECISIONS, InferenceContext, autocast, autocast_dtype, resolve_device,
                      resolve_precision)
from .episode import Episode, encode, encode_episode, episode_logits, run_episode, run_passes
from .kernels import pick_ops
from .network import HSNetModel, build_model
from .passes import backbone_passes, bounded_passes

__all__ = [
    "CUDA_DEFAULT_PRECISION", "Episode", "HSNetModel", "InferenceContext", "PRECISIONS", "autocast", "autocast_dtype",
    "backbone_passes", "bounded_passes", "build_model", "encode", "encode_episode", "episode_logits",
    "pick_ops", "resolve_device", "resolve_precision", "retain_freed_memory", "run_episode", "run_passes",
]
