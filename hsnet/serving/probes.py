"""What a click on a result needs, kept per session at model resolution within one byte budget.

A click asks how one query point correlates with every support pixel. Keeping the
whole prediction (feature pyramids, full-size maps) per session cost hundreds of MB
for a large query; a ``Probe`` keeps the query's and supports' pixels at the model's
input side instead (about 0.6 MB per image at 400), and the features are computed
again on click. ``ProbeStore`` holds the most recent probes across all sessions within
``budget_bytes``, so N new sessions never cost more than the budget.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import InputError
from ..predictor import LayerMap, Predictor

PROBE_BUDGET_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Probe:
    """A segmentation's inputs at model resolution: enough to compute a point's correlation again."""

    weights: str
    query: np.ndarray  # (S, S, 3) uint8
    supports: tuple[np.ndarray, ...]  # each (S, S, 3) uint8
    masks: tuple[np.ndarray, ...]  # each (S, S) bool
    size: tuple[int, int]  # the query's original (width, height)

    @classmethod
    def build(cls, weights: str, query: Image.Image, supports: Sequence[Image.Image], masks: Sequence[np.ndarray],
              side: int) -> "Probe":
        """A probe of decoded RGB images and their boolean masks, resized as the Predictor resizes them."""
        def pixels(image: Image.Image) -> np.ndarray:
            return np.asarray(image.resize((side, side), Image.BILINEAR), dtype=np.uint8)

        def mask(values: np.ndarray) -> np.ndarray:
            small = Image.fromarray(np.asarray(values, dtype=np.uint8) * 255).resize((side, side), Image.NEAREST)
            return np.asarray(small) > 0

        return cls(weights, pixels(query), tuple(pixels(s) for s in supports), tuple(mask(m) for m in masks),
                   query.size)

    @property
    def nbytes(self) -> int:
        """The bytes its arrays hold."""
        return self.query.nbytes + sum(a.nbytes for a in self.supports) + sum(m.nbytes for m in self.masks)

    def model_point(self, x: float, y: float) -> tuple[float, float]:
        """A point in original query pixels as a point in the model-resolution query."""
        width, height = self.size
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"point ({x:.0f}, {y:.0f}) is outside the {width}x{height} query; click on the result")
        side = self.query.shape[1], self.query.shape[0]
        return x * side[0] / width, y * side[1] / height

    def preview(self, max_side: int) -> Image.Image:
        """The query as kept, at its original aspect ratio with the longer side ``max_side`` (for marking a point)."""
        width, height = self.size
        scale = max_side / max(width, height)
        return Image.fromarray(self.query).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                  Image.BILINEAR)


def point_maps(predictor: Predictor, probe: Probe, x: float, y: float) -> list[list[LayerMap]]:
    """The correlation of query point (x, y) (original pixels) with every support cell, per support and layer.

    The supports are found in the predictor's cache by content (they were encoded for the
    segmentation); the query's features are computed again from its model-resolution pixels.
    """
    mx, my = probe.model_point(x, y)
    supports = predictor.set_supports(list(probe.supports), list(probe.masks))
    return predictor.point_correlation(supports, predictor.encode_query(probe.query), mx, my)


class ProbeExpiredError(InputError):
    """A click refers to a result the store no longer keeps."""


class ProbeStore:
    """The latest Probe of each session key, least recently used dropped first beyond ``budget_bytes`` in all."""

    def __init__(self, budget_bytes: int = PROBE_BUDGET_BYTES):
        self.budget_bytes = budget_bytes
        self._probes: OrderedDict[str, Probe] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held across all sessions (never more than ``budget_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._probes)

    def put(self, key: str, probe: Probe) -> None:
        """Keep ``probe`` as session ``key``'s latest (replacing its previous one), evicting the oldest to fit."""
        with self._lock:
            old = self._probes.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            if probe.nbytes > self.budget_bytes:
                return  # larger than everything may hold: a click then asks to segment again
            self._probes[key] = probe
            self._bytes += probe.nbytes
            while self._bytes > self.budget_bytes:
                _, dropped = self._probes.popitem(last=False)
                self._bytes -= dropped.nbytes

    def get(self, key: str | None) -> Probe:
        """Session ``key``'s latest probe; ProbeExpiredError (one line, "segment again") when it is not kept."""
        if key is None:
            raise ProbeExpiredError("no result to explore yet; press Segment first, then click a point on the result")
        with self._lock:
            probe = self._probes.get(key)
            if probe is None:
                raise ProbeExpiredError("this result is no longer kept on the server (it keeps only the most recent "
                                        "results); press Segment again, then click a point")
            self._probes.move_to_end(key)
            return probe

    def discard(self, key: str) -> None:
        """Forget session ``key``'s probe (e.g. when the session ends)."""
        with self._lock:
            old = self._probes.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
