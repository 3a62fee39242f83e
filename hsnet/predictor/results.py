"""What the Predictor hands out: encoded supports, encoded queries and predictions.

Everything is kept at the model's resolution; only what is asked for (the mask
eagerly, probability, per-support masks, vote map and heatmaps on access) is
resized to the query's original size.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..model import FeaturePyramid


def resized(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float (h, w) map bilinearly resized to ``size`` = (width, height), as float32."""
    width, height = size
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None, None]
    return F.interpolate(tensor, (height, width), mode="bilinear", align_corners=True)[0, 0].numpy()


@dataclass(frozen=True, eq=False)
class SupportSet:
    """K annotated supports encoded once: their masked feature pyramids at the model's resolution.

    Made by ``Predictor.set_supports``; ``key`` is the digest of their pixels and masks.
    """

    features: FeaturePyramid  # each level (K, L, C, h, w)
    shots: int
    image_size: int
    key: str = ""
    from_cache: bool = False  # set_supports found them already encoded
    precision: str = "fp32"  # what computed the features ("fp16->bf16": fp16 overflowed, computed again in bf16)

    @property
    def nbytes(self) -> int:
        """Bytes the features take (what the support cache counts)."""
        return self.features.nbytes

    def to(self, device: str | torch.device) -> "SupportSet":
        """The same supports on ``device``."""
        return replace(self, features=self.features.to(device))


@dataclass(frozen=True, eq=False)
class QueryFeatures:
    """One query's feature pyramid at the model's resolution, with the query's original (width, height)."""

    features: FeaturePyramid  # each level (1, L, C, h, w)
    size: tuple[int, int]
    precision: str = "fp32"  # what computed the features

    @property
    def nbytes(self) -> int:
        """Bytes the features take."""
        return self.features.nbytes

    def to(self, device: str | torch.device) -> "QueryFeatures":
        """The same features on ``device``."""
        return replace(self, features=self.features.to(device))


@dataclass
class LayerMap:
    """One backbone layer's correlation map at that layer's feature resolution."""

    name: str
    level: int
    values: np.ndarray  # (h, w) float32 in [0, 1]


@dataclass(eq=False)
class Prediction:
    """One query's result: the mask at the original size, the rest at model resolution until asked for."""

    mask: np.ndarray  # (H, W) bool at the query's original size
    shot_probabilities: np.ndarray  # (K, S, S) float32: each support's foreground probability at model resolution
    layer_maps: list[LayerMap]  # per layer: how strongly each query cell matches the masked supports
    timings: dict[str, float]  # seconds per stage
    device: str
    support_cache_hit: bool  # the supports' features were reused, not computed for this prediction
    query_features: QueryFeatures
    supports: SupportSet  # the supports it was made from (by reference: no copy)
    precision: str = "fp32"  # what produced it: "fp32", "tf32", "bf16", "fp16", or "fp16->bf16" (fp16 overflowed in
    # some pass, which was computed again in bf16; "fp16->fp32" where the GPU has no bf16)

    @property
    def size(self) -> tuple[int, int]:
        """The query's (width, height)."""
        return self.query_features.size

    @property
    def probability(self) -> np.ndarray:
        """(H, W) float32 foreground probability averaged over the supports (computed on access)."""
        return resized(self.shot_probabilities.mean(axis=0), self.size)

    @property
    def shot_masks(self) -> list[np.ndarray]:
        """Each support's own (H, W) bool mask when K > 1, else [] (computed on access)."""
        if len(self.shot_probabilities) < 2:
            return []
        return [resized(p, self.size) > 0.5 for p in self.shot_probabilities]

    @property
    def vote_map(self) -> np.ndarray | None:
        """(H, W) fraction of the K supports voting foreground when K > 1, else None (computed on access)."""
        if len(self.shot_probabilities) < 2:
            return None
        return resized((self.shot_probabilities > 0.5).mean(axis=0), self.size)

    def heatmap(self, index: int) -> np.ndarray:
        """Layer ``index``'s correlation map resized to the query's size (bilinear)."""
        return resized(self.layer_maps[index].values, self.size)

    def to(self, device: str | torch.device) -> "Prediction":
        """The same prediction with its features on ``device``, e.g. "cpu" before it leaves a GPU worker."""
        return replace(self, query_features=self.query_features.to(device), supports=self.supports.to(device))
