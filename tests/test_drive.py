"""The authors' Google Drive as the source of registry names, through gdown, with Drive stood in for at the two
gdown calls hsnet makes (``download_folder(id=..., skip_download=True)`` and ``download(id=..., output=...)``).

The end-to-end test is the issue's "done when": from a clean cache, ``hsnet predict --weights
pascal-resnet50-fold0`` downloads the authors' best_model.pt, converts and caches it, segments, and
then works again with HF_HUB_OFFLINE=1 and no Drive at all.
"""
from __future__ import annotations

import inspect
import json
import shutil
import time
from pathlib import Path

import gdown
import numpy as np
import pytest
import requests
import torch
from gdown.download import GoogleDriveFileToDownload
from huggingface_hub import constants
from PIL import Image
from safetensors.torch import load_file

import hsnet
from hsnet.cli import main as cli
from hsnet.errors import CheckpointError, HubError, InputError, WeightsNotFoundError
from hsnet.weights import cache, hub, registry
from hsnet.weights.drive import DriveFile, pick_checkpoint

# What the installed gdown accepts: every call hsnet makes to the stand-in must also bind to the real function.
REAL_SIGNATURES = {"download_folder": inspect.signature(gdown.download_folder),
                   "download": inspect.signature(gdown.download)}
PASCAL = registry()["pascal-resnet50-fold0"].drive
NOMASK = registry()["pascal-resnet101-fold2-nomask"].drive
# The layout seen in public code that downloaded the authors' folders, with the tensorboard logs beside.
PASCAL_LAYOUT = [f"res{b}_pas/res{b}_pas_fold{f}/{name}" for b in (50, 101) for f in range(4)
                 for name in ("best_model.pt", "events.out.tfevents.1620000000.host")]


class FakeDrive:
    """Folders (by id) of files (path inside the folder -> local file); every call recorded."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Path | None]] = {}  # folder id -> path -> local file (None: unreadable)
        self.calls: list[tuple[str, str]] = []  # ("list", folder id) or ("download", file id)
        self.fail_listing: BaseException | None = None
        self.fail_download: BaseException | None = None

    def add(self, folder_url: str, files: dict[str, Path | None]) -> None:
        self.folders[folder_url.rstrip("/").rsplit("/", 1)[-1]] = dict(files)

    @staticmethod
    def file_id(folder_id: str, path: str) -> str:
        return f"{folder_id}:{path}"

    def download_folder(self, url=None, id=None, output=None, quiet=False, skip_download=False, **kwargs):
        assert url is None and skip_download, "hsnet lists a folder by id, without downloading it"
        REAL_SIGNATURES["download_folder"].bind(id=id, skip_download=skip_download, quiet=quiet, **kwargs)
        self.calls.append(("list", id))
        if self.fail_listing is not None:
            raise self.fail_listing
        files = self.folders[id]
        return [GoogleDriveFileToDownload(id=self.file_id(id, path), path=path, local_path=path) for path in files]

    def download(self, url=None, output=None, quiet=False, id=None, progress=None, **kwargs):
        assert url is None and isinstance(output, str), "hsnet fetches one file by id into a named output"
        REAL_SIGNATURES["download"].bind(id=id, output=output, quiet=quiet, progress=progress, **kwargs)
        self.calls.append(("download", id))
        if self.fail_download is not None:
            raise self.fail_download
        folder_id, path = id.split(":", 1)
        source = self.folders[folder_id][path]
        shutil.copyfile(source, output)
        size = Path(output).stat().st_size
        if progress is not None:
            progress(size // 2, size)
            progress(size, size)
        return output


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeDrive:
    """A fresh fake Drive in gdown's place, an empty hsnet cache, no Hub organisation, online."""
    fake = FakeDrive()
    monkeypatch.setattr(gdown, "download_folder", fake.download_folder)
    monkeypatch.setattr(gdown, "download", fake.download)
    monkeypatch.setenv("HSNET_CACHE_DIR", str(tmp_path / "hsnet-cache"))
    monkeypatch.delenv("HSNET_HUB_ORG", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return fake


def authors_checkpoint(model: hsnet.HSNet, path: Path) -> Path:
    """``model`` saved as the authors saved theirs: DataParallel's ``module.`` prefix, the ImageNet head kept."""
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items()}
    if model.backbone_name == "vgg16":
        state["module.backbone.classifier.0.weight"] = torch.zeros(8, 8)
    else:
        width = 2048
        state["module.backbone.fc.weight"] = torch.zeros(1000, width)
        state["module.backbone.fc.bias"] = torch.zeros(1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def resnet50_best(resnet50: hsnet.HSNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return authors_checkpoint(resnet50, tmp_path_factory.mktemp("authors") / "best_model.pt")


def pascal_folder(drive: FakeDrive, best: Path) -> None:
    """The authors' PASCAL folder as listed: every fold's best_model.pt (all the same file here) and logs."""
    drive.add(PASCAL.url, {path: best if path.endswith(".pt") else None for path in PASCAL_LAYOUT})


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
