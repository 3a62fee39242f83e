"""The authors' Google Drive as the source of registry names, through gdown, with Drive stood in for at the two
gdown calls hsnet makes (``download_folder(id=..., skip_download=True)`` and ``download(id=..., output=...)``).

The end-to-end test is the issue's "done when": from a clean cache, ``hsnet predict --weights
pascal-resnet50-fold0`` downloads the authors' best_model.pt, converts and caches it, segments, and
then works again with HF_HUB_OFFLINE=1 and no Drive at all.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import gdown
import numpy as np
import pytest
import requests
import torch
from huggingface_hub import constants
from PIL import Image
from safetensors.torch import load_file

import hsnet
from hsnet.cli import main as cli
from hsnet.errors import CheckpointError, HubError, InputError, WeightsNotFoundError
from hsnet.weights import cache, hub, registry
from hsnet.weights.drive import DriveFile, pick_checkpoint

from fake_drive import (  # noqa: F401 - drive and resnet50_best are fixtures
    NOMASK, PASCAL, PASCAL_LAYOUT, FakeDrive, authors_checkpoint, drive, pascal_folder, resnet50_best,
)


def images(folder: Path) -> list[str]:
    """A query, a support and its mask on disk, for ``hsnet predict``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("query.png", "support.png"):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / name)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return ["--query", str(folder / "query.png"), "--support", str(folder / "support.png"),
            "--support-mask", str(folder / "mask.png"), "--image-size", "64", "--device", "cpu"]


def test_predict_downloads_converts_caches_then_works_offline_without_drive(
        drive: FakeDrive, resnet50_best: Path, resnet50: hsnet.HSNet, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pascal_folder(drive, resnet50_best)
    inputs = images(tmp_path / "inputs")
    assert cli(["predict", "--weights", "pascal-resnet50-fold0", *inputs, "--out", str(tmp_path / "first")]) == 0
    assert drive.calls == [("list", PASCAL.id), ("download", FakeDrive.file_id(PASCAL.id, PASCAL_LAYOUT[0]))]
    err = capsys.readouterr().err
    assert "downloading pascal-resnet50-fold0 (res50_pas/res50_pas_fold0/best_model.pt) once from the authors' " \
           f"Google Drive folder {PASCAL.url}" in err

    folder = cache.weights_folder("pascal-resnet50-fold0")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                         "provenance.json"]
    record = json.loads((folder / "provenance.json").read_text())
    assert record["original_sha256"] == cache.file_sha256(resnet50_best)
    assert record["drive_path"] == "res50_pas/res50_pas_fold0/best_model.pt" and record["drive_folder"] == PASCAL.url
    assert record["sha256"]["model.safetensors"] == cache.file_sha256(folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    assert (config["backbone"], config["fold"], config["image_size"], config["mask_support"]) == \
        ("resnet50", 0, 400, True)
    assert PASCAL.url in config["source"] and record["original_sha256"] in config["source"]
    saved = load_file(str(folder / "model.safetensors"))
    assert saved.keys() == resnet50.state_dict().keys()
    assert all(torch.equal(saved[k], v) for k, v in resnet50.state_dict().items())
    first = np.array(Image.open(tmp_path / "first" / "mask.png"))

    drive.calls.clear()
    drive.fail_listing = drive.fail_download = AssertionError("Drive must not be asked again")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli(["predict", "--weights", "pascal-resnet50-fold0", *inputs, "--out", str(tmp_path / "again")]) == 0
    assert drive.calls == []
    assert np.array_equal(np.array(Image.open(tmp_path / "again" / "mask.png")), first)


def test_offline_without_a_cached_copy_says_so_and_asks_nobody(drive: FakeDrive, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE is set and fss-resnet50 is not in hsnet's cache"):
        hsnet.from_pretrained("fss-resnet50")
    assert drive.calls == []


def test_weights_command_shows_source_and_cache_state_and_downloads(drive: FakeDrive, resnet50_best: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pascal_folder(drive, resnet50_best)
    assert cli(["weights"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("pascal-resnet50-fold1 "))
    assert row.split()[6] == "no" and row.endswith(f"drive {PASCAL.url}")  # column "cached", then the source
    assert cli(["weights", "--download", "pascal-resnet50-fold1"]) == 0
    assert capsys.readouterr().out.strip() == f"pascal-resnet50-fold1: {cache.weights_folder('pascal-resnet50-fold1')}"
    assert cli(["weights"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("pascal-resnet50-fold1 "))
    assert row.split()[6] == "yes"
    assert ("download", FakeDrive.file_id(PASCAL.id, "res50_pas/res50_pas_fold1/best_model.pt")) in drive.calls


def test_the_variant_without_support_masking_loads_with_mask_support_off(drive: FakeDrive, tmp_path: Path) -> None:
    model = hsnet.build_model("resnet101")
    best = authors_checkpoint(model, tmp_path / "nomask" / "best_model.pt")
    drive.add(NOMASK.url, {f"res101_pas_nomask/fold{f}/best_model.pt": best for f in range(4)})
    loaded = hsnet.from_pretrained("pascal-resnet101-fold2-nomask")
    assert loaded.mask_support is False and loaded.image_size == 400
    masking = hsnet.load_weights(hsnet.build_model("resnet101"), loaded.state_dict()).eval()
    torch.manual_seed(0)
    query, support, mask = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64)
    with torch.no_grad():  # the same weights, with and without the masking of the support features
        assert not torch.allclose(loaded(query, support, mask), masking(query, support, mask))
    config = json.loads((cache.weights_folder("pascal-resnet101-fold2-nomask") / "config.json").read_text())
    assert config["mask_support"] is False
    assert drive.calls[-1] == ("download", FakeDrive.file_id(NOMASK.id, "res101_pas_nomask/fold2/best_model.pt"))


def test_download_progress_reaches_the_caller(drive: FakeDrive, resnet50_best: Path) -> None:
    pascal_folder(drive, resnet50_best)
    seen: list[tuple[int, int | None]] = []
    hsnet.from_pretrained("pascal-resnet50-fold3", progress=lambda done, total: seen.append((done, total)))
    size = resnet50_best.stat().st_size
    assert seen[-1] == (size, size)


@pytest.mark.parametrize("paths,entry,expected", [
    (PASCAL_LAYOUT, "pascal-resnet101-fold3", "res101_pas/res101_pas_fold3/best_model.pt"),
    (["logs/fold0.log", "resnet50_fold0/best_model.pt", "resnet50_fold0/last_model.pt"], "coco-resnet50-fold0",
     "resnet50_fold0/best_model.pt"),
    (["vgg16/best_model.pt", "resnet50/best_model.pt", "resnet101/best_model.pt"], "fss-resnet50",
     "resnet50/best_model.pt"),
    (["VGG_fold_1/model.pth", "VGG_fold_2/model.pth"], "pascal-vgg16-fold1", "VGG_fold_1/model.pth"),
])
def test_the_file_is_picked_by_backbone_and_fold_tokens(paths, entry, expected) -> None:
    files = [DriveFile(str(i), p) for i, p in enumerate(paths)]
    assert pick_checkpoint(files, registry()[entry]).path == expected


@pytest.mark.parametrize("paths,what", [
    ([], "no file"),
    (["res50_pas/res50_pas_fold0/events.out"], "no file"),
    (["res50_fold0/a.pt", "res50_fold0/b.pt"], "2 files"),
    ([f"folder{i}/notes{i}.txt" for i in range(20)], "no file"),
])
def test_no_single_match_lists_the_folder_and_says_how_to_pass_a_file(paths, what) -> None:
    files = [DriveFile(str(i), p) for i, p in enumerate(paths)]
    with pytest.raises(WeightsNotFoundError) as err:
        pick_checkpoint(files, registry()["pascal-resnet50-fold0"])
    message = str(err.value)
    assert message.startswith(what) and "\n" not in message
    assert f"the folder holds {paths[0] if paths else 'nothing'}" in message
    assert PASCAL.url in message and "pass --weights PATH/TO/best_model.pt" in message
    if len(paths) > 8:
        assert "and 12 more" in message


@pytest.mark.parametrize("call,error,says", [
    ("list", gdown.exceptions.DownloadError("Failed to retrieve folder contents for folder ID: x (status code 403). "
                                            "You may need to change the permission to 'Anyone with the link', or "
                                            "have had many accesses."), "too many users"),
    ("list", gdown.exceptions.DownloadError("Failed to retrieve folder contents for folder ID: x (status code 404)."),
     "refused access"),
    ("list", gdown.exceptions.DownloadError("Failed to parse folder contents for folder ID: x. The page structure "
                                            "may have changed."), "page changed"),
    ("list", requests.ConnectionError("Max retries exceeded with url: /embeddedfolderview"), "could not reach"),
    ("download", gdown.exceptions.FileURLRetrievalError(
        "Failed to retrieve file url:\n\n\tToo many users have viewed or downloaded this file recently. Please try "
        "accessing the file again later.\n\nYou may still be able to access the file from the browser"),
     "too many users"),
    ("download", gdown.exceptions.FileURLRetrievalError("Failed to retrieve file url:\n\n\tCannot retrieve the "
                                                       "public link of the file. You may need to change the "
                                                       "permission"), "refused access"),
    ("download", requests.exceptions.ReadTimeout("read timed out"), "could not reach"),
    ("download", gdown.exceptions.DownloadError("Response exceeds the announced byte range"), "failed to download"),
])
def test_drive_refusals_are_one_line_saying_what_to_do(drive: FakeDrive, resnet50_best: Path, call: str,
                                                       error: Exception, says: str) -> None:
    pascal_folder(drive, resnet50_best)
    setattr(drive, "fail_listing" if call == "list" else "fail_download", error)
    with pytest.raises(HubError) as err:
        hsnet.from_pretrained("pascal-resnet50-fold0")
    message = str(err.value)
    assert says in message and "\n" not in message and len(message) < 400
    assert f"best_model.pt by hand from {PASCAL.url} and pass --weights" in message
    assert not cache.weights_folder("pascal-resnet50-fold0").exists()
    assert not [p for p in cache.weights_folder("x").parent.glob("*")]  # no half-written folder left behind


def test_a_drive_file_that_is_no_checkpoint_leaves_nothing_in_the_cache(drive: FakeDrive, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<html>Google Drive - Virus scan warning</html>")
    drive.add(PASCAL.url, {"res50_pas/res50_pas_fold0/best_model.pt": page})
    with pytest.raises(CheckpointError, match="best_model.pt is a web page, not a checkpoint"):
        hsnet.from_pretrained("pascal-resnet50-fold0")
    assert not list(cache.weights_folder("x").parent.glob("*"))


def test_a_cached_copy_that_changed_is_refused(drive: FakeDrive, resnet50_best: Path) -> None:
    pascal_folder(drive, resnet50_best)
    hsnet.from_pretrained("pascal-resnet50-fold0")
    weights = cache.weights_folder("pascal-resnet50-fold0") / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="changed since it was written .*delete"):
        hsnet.from_pretrained("pascal-resnet50-fold0")


def test_a_revision_needs_a_hub_copy(drive: FakeDrive) -> None:
    with pytest.raises(InputError, match="--revision applies to Hub repositories"):
        hsnet.from_pretrained("pascal-resnet50-fold0", revision="main")
    assert drive.calls == []


def test_an_unreachable_hub_fails_fast_and_is_remembered(drive: FakeDrive, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HSNET_HUB_ORG", "some-org")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens there
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(hub, "_unreachable", {})
    start = time.monotonic()
    with pytest.raises(HubError, match="could not reach the Hugging Face Hub at http://127.0.0.1:9"):
        hsnet.from_pretrained("pascal-resnet50-fold0")
    assert time.monotonic() - start < hub.PROBE_TIMEOUT_S + 1
    probes = []
    monkeypatch.setattr(hub.urllib.request, "urlopen", lambda *args, **kwargs: probes.append(args))
    with pytest.raises(HubError, match="did not answer .* s ago"):
        hsnet.from_pretrained("pascal-resnet50-fold0")
    assert probes == [] and drive.calls == []


def test_an_unwritable_cache_says_which_folder_and_how_to_move_it(drive: FakeDrive, resnet50_best: Path,
                                                                 tmp_path: Path, monkeypatch) -> None:
    pascal_folder(drive, resnet50_best)
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("HSNET_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(InputError, match="cannot write hsnet's cache at .*a-file/cache/weights .*set HSNET_CACHE_DIR"):
        hsnet.from_pretrained("pascal-resnet50-fold0")
