"""What ``from_pretrained`` and ``hsnet convert`` say about names and paths that cannot be weights: one true line."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

import hsnet
from hsnet.cli import main as cli


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty hsnet cache and offline mode: none of these cases may reach the network."""
    monkeypatch.setenv("HSNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HSNET_HUB_ORG", raising=False)


def refused(name: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        hsnet.from_pretrained(name)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_an_empty_name_never_loads_the_current_folder(name, tmp_path: Path, monkeypatch, resnet50) -> None:
    hsnet.save_pretrained(resnet50, tmp_path)  # the current folder holds loadable weights
    monkeypatch.chdir(tmp_path)
    refused(name, hsnet.WeightsNotFoundError, "no weights given")


def test_odd_paths_say_what_they_are(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    refused(str(loop), hsnet.CheckpointError, "is a loop of symbolic links")
    refused(str(loop / "model.safetensors"), hsnet.CheckpointError, "is a loop of symbolic links")
    ring = tmp_path / "ring-a"
    os.symlink(tmp_path / "ring-b", ring)
    os.symlink(ring, tmp_path / "ring-b")
    refused(str(ring), hsnet.CheckpointError, "ring-a is a loop of symbolic links")
    (tmp_path / "links").mkdir()
    dangling = tmp_path / "links" / "best_model.pt"
    os.symlink(tmp_path / "moved-away.pt", dangling)
    refused(str(dangling), hsnet.CheckpointError, "is a symbolic link to .*moved-away.pt, which does "
                                                  "not exist")
    refused("/dev/zero", hsnet.CheckpointError, "/dev/zero is not a regular file")
    refused("w" * 300, hsnet.WeightsNotFoundError, r"\(300 characters\) is no registry name and too long a file name")
    refused(str(tmp_path / ("w" * 300)), hsnet.WeightsNotFoundError, "too long a file name for this system")
    refused("pascal-resnet50-fold9", hsnet.WeightsNotFoundError, "did you mean pascal-resnet50-fold")
    refused(str(tmp_path), hsnet.WeightsNotFoundError, "holds neither model.safetensors nor best_model.pt")


def test_convert_refuses_an_existing_file_and_an_impossible_out(resnet50, tmp_path: Path, capsys) -> None:
    best = tmp_path / "best_model.pt"
    torch.save(resnet50.state_dict(), best)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for out, says in ((taken, "is an existing file, not a folder; give a new folder name"),
                      (taken / "below", "cannot create the folder .*taken is a file, not a folder"),
                      (Path("/proc/hsnet-out"), "cannot create the folder"),
                      (tmp_path / ("o" * 300), "cannot create the folder .*File name too long")):
        code = cli(["convert", str(best), "--backbone", "resnet50", "--benchmark", "fss", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert re.search(says, err), err
    assert taken.read_text() == "mine"


def odd_entry(path: Path, kind: str, tmp_path: Path) -> None:
    """Put something at ``path`` that is not a readable regular file."""
    if kind == "loop":
        os.symlink(path, path)
    elif kind == "dangling link":
        os.symlink(tmp_path / "gone", path)
    elif kind == "device":
        os.symlink("/dev/zero", path)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()


ODD = {"loop": "is a loop of symbolic links", "dangling link": "is a symbolic link to .*/gone, which does not exist",
       "device": "is not a regular file", "fifo": "is not a regular file", "folder": "is a folder"}


@pytest.mark.parametrize("kind", ODD)
@pytest.mark.parametrize("name", ["model.safetensors", "best_model.pt", "config.json"])
def test_an_odd_entry_in_a_weights_folder_is_named_for_what_it_is(kind: str, name: str, tmp_path: Path,
                                                                   resnet50) -> None:
    folder = tmp_path / "weights"
    if name == "config.json":  # beside real weights: an odd config.json must not be taken for a missing one
        hsnet.save_pretrained(resnet50, folder)
        (folder / name).unlink()
    else:
        folder.mkdir()
    odd_entry(folder / name, kind, tmp_path)
    refused(folder, hsnet.CheckpointError, f"folder {folder}: {name} {ODD[kind]}")


def test_a_device_asked_for_that_this_machine_lacks_is_one_line_before_any_download(tmp_path: Path,
                                                                                   resnet50) -> None:
    folder = hsnet.save_pretrained(resnet50, tmp_path / "weights")
    if not torch.cuda.is_available():
        with pytest.raises(hsnet.InputError, match="no usable CUDA GPU; use 'cpu'") as info:
            hsnet.from_pretrained(folder, device="cuda")
        assert "\n" not in str(info.value)
        # A registry name offline would otherwise fail on the download: the device is refused first.
        with pytest.raises(hsnet.InputError, match="no usable CUDA GPU"):
            hsnet.from_pretrained("pascal-resnet50-fold0", device="cuda:0")
    for device, says in (("tpu", "unknown device 'tpu'"), ("meta", "cannot run hsnet"), (3.5, "unknown device")):
        with pytest.raises(hsnet.InputError, match=says):
            hsnet.from_pretrained(folder, device=device)
    assert hsnet.from_pretrained(folder, device="cpu").backbone_name == "resnet50"
