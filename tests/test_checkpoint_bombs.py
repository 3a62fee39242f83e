"""Checkpoints that would cost gigabytes or hang: refused from their declarations, before any tensor exists.

A ``torch.save`` zip declares each record's unpacked size in its directory and each storage's
element count in its pickle; a safetensors file declares shapes in its header. Each family is
refused fast, with one line, without ``torch.load`` or safetensors' loader ever running.
"""
from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import hsnet
from crafted_files import torch_zip_declaring
from hsnet import checkpoint
from hsnet.checkpoint import read_state_dict


@pytest.fixture
def loaders_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make torch.load and safetensors' load_file fail the test if a refusal comes too late."""
    def never(*args, **kwargs):
        raise AssertionError("the file was loaded before it was refused")

    monkeypatch.setattr(checkpoint.torch, "load", never)
    monkeypatch.setattr(checkpoint, "load_file", never)


def refused(path: Path, match: str) -> str:
    start = time.monotonic()
    with pytest.raises(hsnet.CheckpointError, match=match) as info:
        read_state_dict(path)
    assert time.monotonic() - start < 2
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    return message


def test_a_pickle_declaring_a_6_gb_storage_in_a_tiny_file_is_refused(tmp_path: Path, loaders_must_not_run) -> None:
    path = tmp_path / "best_model.pt"
    torch.save({"hpn_learner.w": torch.zeros(5)}, path)
    torch_zip_declaring(path, 1_500_000_000)  # 1.5 G floats: 6 GB
    assert path.stat().st_size < 10_000
    refused(path, r"declares 6.0 GB of tensors, more than any HSNet checkpoint .*refused before loading it")


def test_a_compressed_record_that_unpacks_beyond_the_limit_is_refused(tmp_path: Path, loaders_must_not_run,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 4 << 20)  # the mechanism, at a size a test can afford
    path = tmp_path / "best_model.pt"
    torch.save({"hpn_learner.w": torch.zeros(5)}, path)
    with zipfile.ZipFile(path) as archive:
        records = {info.filename: archive.read(info) for info in archive.infolist()}
    data = next(name for name in records if name.endswith("/data/0"))
    records[data] = bytes(16 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in records.items():
            archive.writestr(name, content)
    assert path.stat().st_size < 100_000
    refused(path, r"declares 17 MB of tensors, more than any HSNet checkpoint \(at most 4 MB\)")


def test_a_plain_file_larger_than_any_checkpoint_is_refused_unread(tmp_path: Path, loaders_must_not_run,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 1 << 20)
    for name in ("big.pt", "big.safetensors"):
        path = tmp_path / name
        with path.open("wb") as f:
            f.truncate(2 << 20)  # sparse: costs no disk
        refused(path, r"declares 2 MB of tensors")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_key_names_of_another_model_are_refused_before_loading(tmp_path: Path, loaders_must_not_run,
                                                               suffix: str) -> None:
    state = {"encoder.layer.0.weight": torch.zeros(3), "decoder.bias": torch.zeros(2)}
    path = tmp_path / f"other{suffix}"
    torch.save(state, path) if suffix == ".pt" else save_file(state, str(path))
    refused(path, "is not an HSNet checkpoint")


def test_a_safetensors_header_declaring_too_much_is_refused(tmp_path: Path, loaders_must_not_run,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"hpn_learner.w": torch.zeros(750_000)}, str(path))  # 3 MB declared
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", 1_000_000)
    refused(path, r"declares 3 MB of tensors, more than any HSNet checkpoint \(at most 1 MB\)")


def test_odd_paths_say_what_they_are(tmp_path: Path) -> None:
    loop = tmp_path / "loop.pt"
    os.symlink(loop, loop)
    refused(loop, "loop.pt is a loop of symbolic links")
    refused(Path("/dev/zero"), "/dev/zero is not a regular file")
    refused(tmp_path / ("x" * 300 + ".pt"), r"is too long a name for this system \(\d+ characters\)")
    refused(tmp_path / "nothing.pt", "nothing.pt does not exist")
    (tmp_path / "file").write_text("")
    refused(tmp_path / "file" / "below.pt", "does not exist")
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    refused(fifo, "pipe.pt is not a regular file")
