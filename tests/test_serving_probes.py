"""ProbeStore: what a click needs, at model resolution, within one byte budget across all sessions."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hsnet.errors import InputError
from hsnet.model import FeaturePyramid
from hsnet.predictor import QueryFeatures, SupportSet
from hsnet.serving import Probe, ProbeExpiredError, ProbeStore, point_maps

SIDE = 400


def make_probe(shots: int = 1, size: tuple[int, int] = (640, 480), seed: int = 0) -> Probe:
    """A probe holding ResNet-50-shaped features at SIDE (random values: the store only counts bytes)."""
    generator = torch.Generator().manual_seed(seed)

    def pyramid(n: int) -> FeaturePyramid:
        return FeaturePyramid([torch.rand(n, layers, 8, SIDE // stride, SIDE // stride, generator=generator)
                               for layers, stride in ((3, 32), (6, 16), (4, 8))])

    return Probe("w", QueryFeatures(pyramid(1), size), SupportSet(pyramid(shots), shots, SIDE))


def test_a_probe_holds_features_at_model_resolution_whatever_the_query_size() -> None:
    small, large = make_probe(size=(64, 48)), make_probe(size=(3000, 2200))
    assert small.nbytes == large.nbytes == 2 * large.query.nbytes
    assert large.size == (3000, 2200)


@pytest.mark.parametrize("shots", [1, 5])
def test_new_sessions_never_exceed_the_budget_and_the_evicted_ask_to_segment_again(shots: int) -> None:
    probe = make_probe(shots)
    budget = 10 * probe.nbytes + probe.nbytes // 2
    store = ProbeStore(budget)
    for session in range(60):
        store.put(f"session-{session}", probe)
        assert store.nbytes <= budget
        assert store.get(f"session-{session}") is probe
    assert len(store) == 10
    with pytest.raises(ProbeExpiredError, match="no longer kept.*press Segment again") as raised:
        store.get("session-0")
    assert "\n" not in str(raised.value) and isinstance(raised.value, InputError)


def test_a_session_keeps_only_its_latest_probe() -> None:
    store = ProbeStore(100 * 2**20)
    first, second = make_probe(seed=1), make_probe(seed=2)
    store.put("s", first)
    store.put("s", second)
    assert store.get("s") is second and store.nbytes == second.nbytes and len(store) == 1
    store.discard("s")
    assert store.nbytes == 0


def test_a_click_keeps_its_session_from_eviction() -> None:
    probe = make_probe()
    store = ProbeStore(3 * probe.nbytes)
    for session in "abc":
        store.put(session, probe)
    store.get("a")  # clicked: now the most recent
    store.put("d", probe)
    assert store.get("a") is probe
    with pytest.raises(ProbeExpiredError):
        store.get("b")


def test_a_probe_larger_than_the_budget_is_not_kept() -> None:
    store = ProbeStore(1000)
    store.put("s", make_probe())
    assert store.nbytes == 0
    with pytest.raises(ProbeExpiredError):
        store.get("s")


def test_no_result_yet_says_segment_first() -> None:
    with pytest.raises(ProbeExpiredError, match="press Segment first"):
        ProbeStore().get(None)


def test_a_click_on_a_kept_probe_gives_the_maps_of_the_full_prediction(predictor_resnet50, monkeypatch) -> None:
    import hsnet

    predictor = hsnet.Predictor(predictor_resnet50, device="cpu", image_size=64)
    rng = np.random.default_rng(4)
    query = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    support = Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8))
    mask = np.zeros((70, 50), bool)
    mask[20:50, 10:40] = True
    prediction = predictor.predict(query, [support], [mask])
    probe = Probe.of("w", prediction)
    expected = predictor.point_correlation(prediction.supports, prediction.query_features, 70.0, 33.0)
    calls = []
    original = predictor_resnet50.backbone_features
    monkeypatch.setattr(predictor_resnet50, "backbone_features", lambda *a: calls.append(1) or original(*a))
    got = point_maps(predictor, probe, 70.0, 33.0)
    assert calls == []  # the click reuses the prediction's features: no backbone, no resize
    assert [m.name for m in got[0]] == [m.name for m in expected[0]] == predictor.layer_names
    for mine, theirs in zip(got[0], expected[0]):
        np.testing.assert_allclose(mine.values, theirs.values, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="outside the 120x90 query"):
        point_maps(predictor, probe, 120.0, 10.0)


@pytest.mark.parametrize("budget", [float("nan"), float("inf"), -1, "1 GB", None, True])
def test_a_budget_that_is_not_a_number_of_bytes_is_one_line(budget) -> None:
    with pytest.raises(InputError) as raised:
        ProbeStore(budget)
    assert "\n" not in str(raised.value) and "budget" in str(raised.value)
