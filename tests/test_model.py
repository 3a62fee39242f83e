"""The model, per entry of the backbone table: a new backbone entry is tested by adding it to BACKBONES."""
from __future__ import annotations

import pytest
import torch
from torchvision import models

import hsnet
from hsnet.model import BACKBONES, DEFAULT_IMAGE_SIDE, detect_backbone
from hsnet.model.correlation import stack_level


def shapes_of(module: torch.nn.Module, prefix: str = "") -> dict[str, tuple[int, ...]]:
    return {prefix + name: tuple(t.shape) for name, t in module.state_dict().items()}


def meta_model(name: str) -> hsnet.HSNet:
    """The entry's HSNet without memory (shapes only)."""
    with torch.device("meta"):
        return hsnet.build_model(name)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_each_entry_is_detected_from_its_state_dict(name: str) -> None:
    state = shapes_of(meta_model(name))
    assert detect_backbone(state) == name
    assert detect_backbone({f"module.{k}": v for k, v in state.items()}) == name  # the authors' DataParallel names
    assert detect_backbone({k: v for k, v in state.items() if not k.startswith("backbone.")}) is None


@pytest.mark.parametrize("name", list(BACKBONES))
def test_declared_identity_is_the_network_s(name: str) -> None:
    """What the table declares for detection is what torchvision's network has."""
    spec = BACKBONES[name]
    with torch.device("meta"):
        shapes = shapes_of(spec.builder(weights=None))
    assert all(shapes.get(key) == shape for key, shape in spec.present)
    assert not any(key in shapes for key in spec.absent)


@pytest.mark.parametrize("builder", [models.resnet152, models.resnet34, models.resnet18, models.wide_resnet50_2,
                                     models.resnext50_32x4d, models.vgg19, models.vgg16_bn, models.vgg11])
def test_other_torchvision_networks_are_no_entry(builder) -> None:
    """A deeper or sibling network (ResNet-152 beside ResNet-101, VGG-19 beside VGG-16) is never taken for one."""
    with torch.device("meta"):
        shapes = shapes_of(builder(weights=None), "backbone.")
    assert detect_backbone(shapes) is None


@pytest.mark.parametrize("name", list(BACKBONES))
def test_forward_and_k_shot_shapes(name: str, seeded) -> None:
    model = seeded(name)
    torch.manual_seed(1)
    query, supports = torch.randn(1, 3, 64, 80), torch.randn(1, 2, 3, 64, 80)
    masks = torch.zeros(1, 2, 64, 80)
    masks[..., 16:48, 20:60] = 1
    with torch.no_grad():
        logits = model(query, supports[:, 0], masks[:, 0])
        mask = model.predict_mask(query, supports, masks, output_size=(30, 40))
    assert logits.shape == (1, 2, 64, 80) and torch.isfinite(logits).all()
    assert mask.shape == (1, 30, 40) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert len(model.spec.layer_names) == sum(model.spec.level_sizes)


def test_preprocess_uses_the_model_s_own_mean_and_std(resnet50) -> None:
    images = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(resnet50.preprocess(images), (images.float() / 255 - mean) / std)
    assert not any(key.startswith("pixel_") for key in resnet50.state_dict())  # checkpoints are unchanged


def test_configuration_defaults_are_the_authors(resnet50) -> None:
    assert resnet50.image_size == DEFAULT_IMAGE_SIDE == 400 and resnet50.mask_support


def test_without_support_masking_the_mask_does_not_matter(seeded) -> None:
    """The authors' Table 1 variant (dagger): support features are not masked."""
    torch.manual_seed(2)
    query, support = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    full, part = torch.ones(1, 64, 64), torch.zeros(1, 64, 64)
    part[:, 10:30, 10:30] = 1
    unmasked, masked = seeded("resnet50", mask_support=False), seeded("resnet50")
    with torch.no_grad():
        torch.testing.assert_close(unmasked(query, support, part), unmasked(query, support, full))
        torch.testing.assert_close(unmasked(query, support, part), masked(query, support, full))
        assert not torch.allclose(masked(query, support, part), masked(query, support, full))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_a_level_is_its_taps_masked_stacked_and_normalized(layout) -> None:
    """``stack_level`` writes each tap into the level in place; the formula: resize the mask, multiply, stack,
    divide by the channel norm plus 1e-5 (the authors' order)."""
    torch.manual_seed(3)
    taps = [torch.randn(2, 8, 5, 6).contiguous(memory_format=layout) for _ in range(3)]
    mask = (torch.rand(2, 1, 20, 24) > 0.5).float()
    resized = torch.nn.functional.interpolate(mask, (5, 6), mode="bilinear", align_corners=True)
    for given, expected_taps in ((None, taps), (mask, [t * resized for t in taps])):
        stacked = torch.stack(expected_taps, dim=1)
        expected = stacked / (stacked.norm(dim=2, keepdim=True) + 1e-5)
        level = stack_level(taps, given)
        torch.testing.assert_close(level, expected, rtol=0, atol=1e-6)
        assert level.stride() == expected.stride()  # laid out as torch.stack lays out these taps


def test_episode_features_are_query_and_support_features_each_in_its_own_storage(resnet50) -> None:
    """One backbone batch for both, but a kept pyramid (the Predictor caches supports, a result keeps its query's
    features) must not hold the other's memory."""
    torch.manual_seed(4)
    query, supports = torch.randn(1, 3, 96, 96), torch.randn(2, 3, 96, 96)
    masks = (torch.rand(2, 96, 96) > 0.5).float()
    with torch.no_grad():
        together = resnet50.episode_features(query, supports, masks)
        apart = resnet50.query_features(query), resnet50.support_features(supports, masks)
    for both, alone in zip(together, apart):
        for level, expected in zip(both.levels, alone.levels):
            torch.testing.assert_close(level, expected, rtol=1e-4, atol=1e-5)
            assert level.untyped_storage().nbytes() == level.numel() * level.element_size()
