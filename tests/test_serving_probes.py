"""ProbeStore: what a click needs, at model resolution, within one byte budget across all sessions."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hsnet.errors import InputError
from hsnet.serving import Probe, ProbeExpiredError, ProbeStore, point_maps

SIDE = 400


def make_probe(shots: int = 1, size: tuple[int, int] = (640, 480), seed: int = 0) -> Probe:
    rng = np.random.default_rng(seed)
    query = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    supports = [Image.fromarray(rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)) for _ in range(shots)]
    masks = [np.zeros((300, 200), bool) for _ in range(shots)]
    for mask in masks:
        mask[100:200, 50:150] = True
    return Probe.build("w", query, supports, masks, SIDE)


def test_a_probe_is_at_model_resolution_whatever_the_query_size() -> None:
    small, large = make_probe(size=(64, 48)), make_probe(size=(3000, 2200))
    assert small.nbytes == large.nbytes == SIDE * SIDE * 3 * 2 + SIDE * SIDE
    assert large.size == (3000, 2200) and large.query.shape == (SIDE, SIDE, 3)
    assert large.masks[0].dtype == bool and large.masks[0].any() and not large.masks[0].all()


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


def test_a_click_maps_to_model_resolution_and_outside_points_are_refused() -> None:
    probe = make_probe(size=(800, 200))
    assert probe.model_point(400, 100) == (200, 200)
    assert probe.preview(400).size == (400, 100)
    for x, y in ((-1, 10), (800, 10), (10, 200)):
        with pytest.raises(InputError, match="outside the 800x200 query"):
            probe.model_point(x, y)


def test_a_click_on_a_kept_probe_gives_the_maps_of_the_full_prediction(predictor_resnet50) -> None:
    import hsnet

    predictor = hsnet.Predictor(predictor_resnet50, device="cpu", image_size=64)
    rng = np.random.default_rng(4)
    query = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    support = Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8))
    mask = np.zeros((70, 50), bool)
    mask[20:50, 10:40] = True
    prediction = predictor.predict(query, [support], [mask])
    probe = Probe.build("w", query, [support], [mask], predictor.image_size)
    expected = predictor.point_correlation(prediction.supports, prediction.query_features, 70.0, 33.0)
    got = point_maps(predictor, probe, 70.0, 33.0)
    assert [m.name for m in got[0]] == [m.name for m in expected[0]] == predictor.layer_names
    for mine, theirs in zip(got[0], expected[0]):
        np.testing.assert_allclose(mine.values, theirs.values, rtol=1e-5, atol=1e-6)
    assert predictor.set_supports(list(probe.supports), list(probe.masks)).from_cache  # no second encoding
