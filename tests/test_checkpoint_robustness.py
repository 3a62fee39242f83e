"""Checkpoints a user may hand hsnet by mistake or with bad intent: each gives one clear CheckpointError.

Only tensors are ever deserialized, so a pickle carrying code is refused without running it.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file

import hsnet
from hsnet.checkpoint import load_weights, read_state_dict


class SideEffect:
    """Unpickling this runs ``os.system`` and creates ``marker``: it must never happen."""

    marker: Path

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def plain_state(resnet50) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in resnet50.state_dict().items()}


@pytest.fixture(scope="module")
def model() -> hsnet.HSNet:
    """One target model: every refusal happens before any weight is copied into it."""
    return hsnet.build_model("resnet50")


def refused(model: hsnet.HSNet, source, match: str) -> str:
    """``load_weights`` must raise a one-line CheckpointError matching ``match``; returns the message."""
    with pytest.raises(hsnet.CheckpointError, match=match) as info:
        load_weights(model, source)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    return message


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_files_are_damaged(tmp_path: Path, model, plain_state, suffix: str, keep) -> None:
    whole = tmp_path / f"whole{suffix}"
    torch.save(plain_state, whole) if suffix == ".pt" else save_file(plain_state, str(whole))
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    refused(model, cut, "cut.* is damaged or not a PyTorch/safetensors file .*download or save it again")


@pytest.mark.parametrize("how", ["zip", "legacy", "raw pickle"])
def test_pickled_code_is_refused_and_never_runs(tmp_path: Path, model, how: str) -> None:
    SideEffect.marker = tmp_path / "code-ran"
    payload = {"backbone.conv1.weight": torch.zeros(1), "hpn_learner.x": SideEffect()}
    path = tmp_path / "best_model.pt"
    if how == "raw pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=how == "zip")
    refused(model, path, "holds Python objects other than tensors and was refused without running them")
    assert not SideEffect.marker.exists()


def test_wrong_backbone_names_both_backbones(model) -> None:
    state = hsnet.build_model("resnet101").state_dict()
    refused(model, state, "is for backbone resnet101, but the model is resnet50; build the model with backbone='resnet101'")


def test_a_backbone_hsnet_does_not_know_is_not_taken_for_a_close_one(model, plain_state) -> None:
    resnet152 = {f"backbone.{k}": v for k, v in torchvision.models.resnet152().state_dict().items()}
    learner = {k: v for k, v in plain_state.items() if k.startswith("hpn_learner.")}
    refused(model, {**resnet152, **learner}, "is not an HSNet checkpoint")


def test_wrong_backbone_file_names_both_backbones(tmp_path: Path, model, vgg16) -> None:
    path = tmp_path / "vgg.safetensors"
    save_file({k: v.contiguous() for k, v in vgg16.state_dict().items()}, str(path))
    refused(model, path, "vgg.safetensors is for backbone vgg16, but the model is resnet50")


def test_foreign_state_dict_is_not_hsnet(tmp_path: Path, model) -> None:
    path = tmp_path / "resnet50-imagenet.pt"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    refused(model, path, "is not an HSNet checkpoint .*give the authors' best_model.pt")


@pytest.mark.parametrize("content,match", [
    ([torch.zeros(2)], "holds a list, not a state dict of tensors"),
    (torch.zeros(3), "holds a Tensor, not a state dict"),
    ({}, "is empty; give an HSNet checkpoint"),
    ({"epoch": 3, "state_dict": {"a": torch.zeros(1)}}, "holds entries that are not named tensors \\('epoch', 'state_dict'\\)"),
    ({1: torch.zeros(1)}, "holds entries that are not named tensors \\(1\\)"),
])
def test_files_without_a_state_dict_say_so(tmp_path: Path, model, content, match: str) -> None:
    path = tmp_path / "odd.pt"
    torch.save(content, path)
    refused(model, path, match)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", b"PK\x03\x04" + b"\0" * 40])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_non_checkpoint_files_are_damaged(tmp_path: Path, model, content: bytes, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(content)
    refused(model, path, "is damaged or not a PyTorch/safetensors file")


def test_missing_file_and_folder(tmp_path: Path, model) -> None:
    refused(model, tmp_path / "nope.pt", "does not exist; give the path of a best_model.pt")
    refused(model, tmp_path, "is a folder; give the path of a best_model.pt")


def test_non_mapping_state_is_refused(model) -> None:
    refused(model, [torch.zeros(1)], "is a list, not a state dict")


def test_wrong_shapes_are_reported(model, plain_state) -> None:
    state = dict(plain_state, **{"hpn_learner.decoder2.2.bias": torch.zeros(7)})
    refused(model, state, "does not fit HSNet-resnet50 \\(wrong shape: hpn_learner.decoder2.2.bias\\)")


def test_a_good_file_still_loads(tmp_path: Path, model, plain_state) -> None:
    save_file(plain_state, str(tmp_path / "model.safetensors"))
    assert read_state_dict(tmp_path / "model.safetensors").keys() == plain_state.keys()
    load_weights(model, tmp_path / "model.safetensors")
