"""What a click on a result needs, kept per session within one byte budget for all sessions.

A click asks how one query point correlates with every support cell. The segmentation
already computed the query's features (``QueryFeatures``) and the supports' (``SupportSet``,
shared by reference with the Predictor's cache), so a ``Probe`` keeps those two and a
click runs no backbone again. At 400 px with ResNet-50 one image's features take about
40 MB, so ``ProbeStore`` keeps the most recent probes across all sessions within
``PROBE_BUDGET_BYTES`` (about six 1-shot sessions); an evicted session is asked to segment again.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..predictor import ByteLRU, LayerMap, Prediction, Predictor, QueryFeatures, SupportSet

PROBE_BUDGET_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class Probe:
    """A segmentation's features at model resolution: enough for a point's correlation without the backbone."""

    weights: str
    query: QueryFeatures
    supports: SupportSet

    @classmethod
    def of(cls, weights: str, prediction: Prediction) -> "Probe":
        """The probe of ``prediction``, made with ``weights`` (its features on the CPU)."""
        return cls(weights, prediction.query_features.to("cpu"), prediction.supports.to("cpu"))

    @property
    def size(self) -> tuple[int, int]:
        """The query's original (width, height)."""
        return self.query.size

    @property
    def nbytes(self) -> int:
        """The bytes its features hold (the supports' counted too, though the Predictor's cache may share them)."""
        return self.query.nbytes + self.supports.nbytes


def point_maps(predictor: Predictor, probe: Probe, x: float, y: float) -> list[list[LayerMap]]:
    """The correlation of query point (x, y) (original pixels) with every support cell, per support and layer."""
    return predictor.point_correlation(probe.supports, probe.query, x, y)


class ProbeExpiredError(InputError):
    """A click refers to a result the store no longer keeps."""


class ProbeStore:
    """The latest Probe of each session key, least recently used dropped first beyond ``budget_bytes`` in all."""

    def __init__(self, budget_bytes: int = PROBE_BUDGET_BYTES):
        self._probes: ByteLRU[Probe] = ByteLRU(budget_bytes, "probe budget")

    @property
    def budget_bytes(self) -> int:
        """The most bytes all sessions' probes hold together."""
        return self._probes.max_bytes

    @property
    def nbytes(self) -> int:
        """Bytes held across all sessions (never more than ``budget_bytes``)."""
        return self._probes.nbytes

    def __len__(self) -> int:
        return len(self._probes)

    def put(self, key: str, probe: Probe) -> None:
        """Keep ``probe`` as session ``key``'s latest (replacing its previous one), evicting the oldest to fit; one
        larger than the whole budget is not kept (a click then asks to segment again)."""
        self._probes.put(key, probe)

    def get(self, key: str | None) -> Probe:
        """Session ``key``'s latest probe; ProbeExpiredError (one line, "segment again") when it is not kept."""
        if key is None:
            raise ProbeExpiredError("no result to explore yet; press Segment first, then click a point on the result")
        probe = self._probes.get(key)
        if probe is None:
            raise ProbeExpiredError("this result is no longer kept on the server (it keeps only the most recent "
                                    "results); press Segment again, then click a point")
        return probe

    def discard(self, key: str) -> None:
        """Forget session ``key``'s probe (e.g. when the session ends)."""
        self._probes.discard(key)
