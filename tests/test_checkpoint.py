"""Loading the authors' checkpoint layout, plain state dicts and safetensors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import hsnet
from hsnet.checkpoint import infer_backbone, normalize_state_dict


def authors_layout(model: hsnet.HSNet) -> dict[str, torch.Tensor]:
    """The model's weights as the authors saved them: ``module.`` prefix, classifier head included."""
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    state["module.backbone.fc.weight"] = torch.zeros(1000, 2048)
    state["module.backbone.fc.bias"] = torch.zeros(1000)
    return state


def outputs(model: hsnet.HSNet) -> torch.Tensor:
    torch.manual_seed(7)
    q, s = torch.randn(1, 3, 96, 96), torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        return model(q, s, torch.ones(1, 96, 96))


def test_authors_layout_loads_strictly(resnet50, tmp_path: Path) -> None:
    target = hsnet.build_model("resnet50")
    hsnet.load_weights(target, authors_layout(resnet50))
    torch.testing.assert_close(outputs(target), outputs(resnet50))
    path = tmp_path / "best_model.pt"
    torch.save(authors_layout(resnet50), path)
    torch.testing.assert_close(outputs(hsnet.load_weights(hsnet.build_model("resnet50"), path)), outputs(resnet50))


def test_plain_state_dict_loads(resnet50) -> None:
    target = hsnet.load_weights(hsnet.build_model("resnet50"), resnet50.state_dict())
    torch.testing.assert_close(outputs(target), outputs(resnet50))


def test_safetensors_round_trip(resnet50, tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in normalize_state_dict(authors_layout(resnet50)).items()}, str(path))
    target = hsnet.load_weights(hsnet.build_model("resnet50"), path)
    torch.testing.assert_close(outputs(target), outputs(resnet50))


def test_wrong_backbone_names_both(vgg16) -> None:
    vgg = vgg16.state_dict()
    assert infer_backbone(vgg) == "vgg16"
    with pytest.raises(hsnet.CheckpointError, match="vgg16.*resnet50"):
        hsnet.load_weights(hsnet.build_model("resnet50"), vgg)


def test_missing_keys_are_reported(resnet50) -> None:
    state = dict(resnet50.state_dict())
    state.pop("hpn_learner.decoder2.2.bias")
    with pytest.raises(hsnet.CheckpointError, match="missing: hpn_learner.decoder2.2.bias"):
        hsnet.load_weights(hsnet.build_model("resnet50"), state)
