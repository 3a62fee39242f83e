"""The Predictor: supports encoded once, original-size outputs for odd shapes, caching, batches, per-layer maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import hsnet
from hsnet import InputError, Predictor, SupportSet
from hsnet.predictor import SupportCache


@pytest.fixture(scope="module")
def predictor(predictor_resnet50) -> Predictor:
    return Predictor(predictor_resnet50, device="cpu", image_size=128)


@pytest.mark.parametrize("width,height", [(517, 333), (333, 517), (1, 7), (64, 64)])
def test_outputs_have_the_query_original_size(predictor: Predictor, photo, blob, width: int, height: int) -> None:
    result = predictor.predict(photo(width, height, 0), photo(200, 150, 1), blob(200, 150))
    assert result.mask.shape == (height, width) and result.mask.dtype == bool
    assert result.size == (width, height)
    assert result.probability.shape == (height, width)
    assert 0 <= result.probability.min() and result.probability.max() <= 1
    assert len(result.layer_maps) == 13
    assert [m.name for m in result.layer_maps] == predictor.layer_names
    assert result.heatmap(0).shape == (height, width)
    assert set(result.timings) >= {"preprocess", "backbone", "correlation", "learner", "total"}


def test_second_query_with_same_supports_skips_support_backbone(predictor_resnet50, monkeypatch, photo, blob) -> None:
    predictor = Predictor(predictor_resnet50, device="cpu", image_size=128)
    batches = []  # images per backbone call
    original = predictor_resnet50._backbone_features
    monkeypatch.setattr(predictor_resnet50, "_backbone_features", lambda x: batches.append(x.shape[0]) or original(x))
    support, mask = photo(120, 90, 2), blob(120, 90)
    first = predictor.predict(photo(100, 80, 3), support, mask)
    second = predictor.predict(photo(90, 110, 4), support.copy(), mask.copy())
    assert batches == [2, 1]  # the query and the support together, then the query alone
    assert not first.support_cache_hit and second.support_cache_hit
    other_mask = ~mask
    predictor.predict(photo(90, 110, 4), support, other_mask)  # another mask is another support
    assert batches == [2, 1, 2]
    handle = predictor.set_supports([support], [mask])
    assert handle.from_cache and batches == [2, 1, 2]
    predictor.predict(photo(50, 60, 5), handle)
    assert batches == [2, 1, 2, 1]


def test_cached_support_gives_the_uncached_result(predictor_resnet50, photo, blob) -> None:
    support, mask, query = photo(120, 90, 2), blob(120, 90), photo(100, 80, 3)
    predictor = Predictor(predictor_resnet50, device="cpu", image_size=128)
    predictor.predict(photo(64, 64, 5), support, mask)
    cached = predictor.predict(query, support, mask)
    fresh = Predictor(predictor_resnet50, device="cpu", image_size=128).predict(query, support, mask)
    handle = predictor.predict(query, predictor.set_supports(support, mask))
    assert cached.support_cache_hit and not fresh.support_cache_hit
    for other in (cached, handle):
        np.testing.assert_allclose(other.probability, fresh.probability, atol=1e-5)
        assert np.array_equal(other.mask, fresh.mask)


def test_k_shot_gives_each_support_mask_vote_map_and_point_probe(predictor: Predictor, photo, blob) -> None:
    supports = [photo(150, 100 + 10 * k, k) for k in range(3)]
    masks = [blob(150, 100 + 10 * k) for k in range(3)]
    handle = predictor.set_supports(supports, masks)
    assert isinstance(handle, SupportSet) and handle.shots == 3
    result = predictor.predict(photo(211, 97, 9), handle)
    assert len(result.shot_masks) == 3 and all(m.shape == (97, 211) for m in result.shot_masks)
    assert result.vote_map.shape == (97, 211)
    maps = predictor.point_correlation(handle, result.query_features, 10.0, 50.0)
    assert len(maps) == 3 and len(maps[0]) == 13
    assert [m.name for m in maps[0]] == predictor.layer_names
    assert all(0 <= m.values.min() and m.values.max() <= 1 + 1e-5 for m in maps[0])
    with pytest.raises(InputError, match="outside"):
        predictor.point_correlation(handle, result.query_features, 211, 0)


def test_point_probe_is_the_correlation_row_of_that_cell(predictor: Predictor, photo, blob) -> None:
    """The probe at a query cell equals that cell's slice of the model's hypercorrelation (one support)."""
    handle = predictor.set_supports(photo(128, 128, 1), blob(128, 128))
    features = predictor.encode_query(photo(128, 128, 2))
    corr = predictor.model.hypercorrelation(features.features, handle.features, 1)
    probe = predictor.point_correlation(handle, features, 40.0, 90.0)[0]
    for level, maps in zip(corr, (probe[:3], probe[3:9], probe[9:])):  # ResNet-50: 3, 6, 4 layers
        hq, wq = level.shape[2:4]
        row, col = int(90 * hq / 128), int(40 * wq / 128)
        for i, layer_map in enumerate(maps):
            np.testing.assert_allclose(layer_map.values, level[0, i, row, col].numpy(), atol=1e-6)


def test_predict_many_yields_each_query_in_order_like_predict(predictor: Predictor, photo, blob) -> None:
    handle = predictor.set_supports([photo(90, 90, 1), photo(80, 100, 2)], [blob(90, 90), blob(80, 100)])
    queries = [photo(60 + 7 * i, 50 + 3 * i, 10 + i) for i in range(5)]
    results = list(predictor.predict_many(queries, handle, batch_size=2))
    assert [r.size for r in results] == [q.size for q in queries]
    for query, result in zip(queries, results):
        alone = predictor.predict(query, handle)
        np.testing.assert_allclose(result.shot_probabilities, alone.shot_probabilities, atol=1e-4)


def test_predict_many_gives_the_results_before_a_bad_query_then_refuses_it(predictor, photo, blob) -> None:
    handle = predictor.set_supports(photo(90, 90, 1), blob(90, 90))
    produced = []
    with pytest.raises(InputError, match="query image 3"):
        for result in predictor.predict_many([photo(40, 40, 1), photo(50, 40, 2), "no/such/file.png"], handle,
                                             batch_size=4):
            produced.append(result)
    assert [r.size for r in produced] == [(40, 40), (50, 40)]


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "2"])
def test_predict_many_refuses_a_bad_batch_size(predictor: Predictor, batch_size: object, photo, blob) -> None:
    handle = predictor.set_supports(photo(90, 90, 1), blob(90, 90))
    with pytest.raises(InputError, match="batch size"):
        next(predictor.predict_many([photo(40, 40, 1)], handle, batch_size=batch_size))


@pytest.mark.parametrize("size", [0, 31, 641, 2048, -400, 400.0, "400", True, [400]])
def test_image_size_outside_the_range_or_not_an_integer_is_refused(predictor_resnet50, size: object) -> None:
    with pytest.raises(InputError, match="image size") as caught:
        Predictor(predictor_resnet50, device="cpu", image_size=size)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("size", [np.int64(96), np.int32(32), 640, torch.tensor(64)])
def test_integer_like_image_sizes_are_accepted(predictor_resnet50, size: object) -> None:
    assert Predictor(predictor_resnet50, device="cpu", image_size=size).image_size == int(size)


def test_image_size_defaults_to_the_model_s(predictor_resnet50) -> None:
    assert Predictor(predictor_resnet50, device="cpu").image_size == predictor_resnet50.image_size == 400


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps", "meta", "foo", "xla", "cpu:x", ""])
def test_unusable_devices_are_one_line_input_errors(predictor_resnet50, device: str) -> None:
    if device.startswith("cuda") and torch.cuda.device_count() > int(device.partition(":")[2] or 0):
        pytest.skip("this machine has that GPU")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(InputError, match="device") as caught:
        Predictor(predictor_resnet50, device=device)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("precision,match", [("fp64", "unknown precision"), ("FP32", "unknown precision"),
                                             ("fp16", "fp16 needs a GPU")])
def test_unusable_precisions_are_one_line_input_errors(predictor_resnet50, precision: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Predictor(predictor_resnet50, device="cpu", precision=precision)


@pytest.mark.parametrize("call,match", [
    (lambda p, s, photo, blob: p.predict(photo(40, 40, 1), s, blob(90, 90)), "masks given with a SupportSet"),
    (lambda p, s, photo, blob: p.predict(photo(40, 40, 1), [photo(40, 40, 2)]), "without masks"),
    (lambda p, s, photo, blob: p.predict(photo(40, 40, 1), s, rule="median"), "k-shot rule"),
    (lambda p, s, photo, blob: p.set_supports([photo(40, 40, 2)] * 17, [blob(40, 40)] * 17), "at most 16"),
    (lambda p, s, photo, blob: p.set_supports([photo(40, 40, 2)] * 2, [blob(40, 40)]), "one mask per support"),
    (lambda p, s, photo, blob: p.set_supports([], []), "no support image"),
    (lambda p, s, photo, blob: next(p.predict_many([photo(40, 40, 1)], [photo(40, 40, 2)])), "takes a SupportSet"),
])
def test_bad_calls_are_one_line_input_errors(predictor: Predictor, call, match: str, photo, blob) -> None:
    handle = predictor.set_supports(photo(90, 90, 1), blob(90, 90))
    with pytest.raises(InputError, match=match):
        call(predictor, handle, photo, blob)


def test_decoded_inputs_are_used_as_they_are(predictor: Predictor, photo, blob) -> None:
    """What hsnet.inputs returns (an RGB image, a boolean mask) goes into the Predictor without a second decode."""
    image = hsnet.inputs.load_rgb(photo(90, 70, 1))
    mask = hsnet.inputs.load_mask(blob(90, 70), image.size)
    assert hsnet.inputs.load_rgb(image) is image and hsnet.inputs.load_mask(mask, image.size) is mask
    assert predictor.set_supports(image, mask).shots == 1


def test_support_cache_is_bounded_by_bytes(predictor: Predictor, photo, blob) -> None:
    one = predictor.set_supports(photo(90, 90, 1), blob(90, 90))
    cache = SupportCache(max_bytes=2 * one.nbytes)
    for seed in range(4):
        cache.put(SupportSet(one.features, 1, 128, key=str(seed)))
    assert len(cache) == 2 and cache.nbytes <= 2 * one.nbytes
    assert cache.get("0") is None and cache.get("3") is not None
    tiny = SupportCache(max_bytes=one.nbytes - 1)
    tiny.put(one)
    assert len(tiny) == 0  # larger than the whole budget: used, not kept


def test_prediction_moves_its_features(predictor: Predictor, photo, blob) -> None:
    result = predictor.predict(photo(40, 40, 1), photo(90, 90, 1), blob(90, 90)).to("cpu")
    assert result.query_features.features.levels[0].device.type == "cpu"
    assert result.supports.features.levels[0].device.type == "cpu"
