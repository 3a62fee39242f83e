"""The Predictor: original-size outputs for odd shapes, support caching, per-layer maps."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hsnet.errors import InputError
from hsnet.predictor import Predictor


def photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8))


def blob_mask(width: int, height: int) -> Image.Image:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 255
    return Image.fromarray(mask)


@pytest.fixture(scope="module")
def predictor(resnet50) -> Predictor:
    return Predictor(resnet50, device="cpu", image_size=128)


@pytest.mark.parametrize("width,height", [(517, 333), (333, 517), (1, 7), (64, 64)])
def test_outputs_have_the_query_original_size(predictor: Predictor, width: int, height: int) -> None:
    result = predictor.predict(photo(width, height, 0), photo(200, 150, 1), blob_mask(200, 150))
    assert result.mask.shape == (height, width) and result.mask.dtype == bool
    assert result.probability.shape == (height, width)
    assert 0 <= result.probability.min() and result.probability.max() <= 1
    assert len(result.layer_maps) == 13
    assert [m.name for m in result.layer_maps] == predictor.layer_names
    assert result.heatmap(0).shape == (height, width)
    assert set(result.timings) >= {"preprocess", "backbone", "correlation", "learner", "total"}


def test_second_query_with_same_supports_skips_support_backbone(resnet50, monkeypatch) -> None:
    predictor = Predictor(resnet50, device="cpu", image_size=128)
    batches = []  # images per backbone call
    original = resnet50._backbone_features
    monkeypatch.setattr(resnet50, "_backbone_features", lambda x: batches.append(x.shape[0]) or original(x))
    support, mask = photo(120, 90, 2), blob_mask(120, 90)
    first = predictor.predict(photo(100, 80, 3), support, mask)
    second = predictor.predict(photo(90, 110, 4), support.copy(), mask.copy())
    assert batches == [2, 1]  # the query and the support together, then the query alone
    assert not first.support_cache_hit and second.support_cache_hit
    other_mask = Image.fromarray(255 - np.asarray(mask))
    predictor.predict(photo(90, 110, 4), support, other_mask)  # another mask is another support
    assert batches == [2, 1, 2]


def test_cached_support_gives_the_uncached_result(resnet50) -> None:
    support, mask, query = photo(120, 90, 2), blob_mask(120, 90), photo(100, 80, 3)
    predictor = Predictor(resnet50, device="cpu", image_size=128)
    predictor.predict(photo(64, 64, 5), support, mask)
    cached = predictor.predict(query, support, mask)
    fresh = Predictor(resnet50, device="cpu", image_size=128).predict(query, support, mask)
    assert cached.support_cache_hit and not fresh.support_cache_hit
    np.testing.assert_allclose(cached.probability, fresh.probability, atol=1e-5)


def test_k_shot_gives_each_support_mask_and_vote_map(predictor: Predictor) -> None:
    supports = [photo(150, 100 + 10 * k, k) for k in range(3)]
    masks = [blob_mask(150, 100 + 10 * k) for k in range(3)]
    result = predictor.predict(photo(211, 97, 9), supports, masks)
    assert len(result.shot_masks) == 3 and all(m.shape == (97, 211) for m in result.shot_masks)
    assert result.vote_map.shape == (97, 211)
    maps = predictor.point_correlation(result, 10.0, 50.0)
    assert len(maps) == 3 and len(maps[0]) == 13
    assert all(0 <= m.values.min() and m.values.max() <= 1 + 1e-5 for m in maps[0])


@pytest.mark.parametrize("size", [0, 641, 2048])
def test_image_size_outside_the_cap_is_refused(resnet50, size: int) -> None:
    with pytest.raises(InputError, match="image size"):
        Predictor(resnet50, device="cpu", image_size=size)
