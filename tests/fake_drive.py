"""The authors' Google Drive stood in for at the two gdown calls hsnet makes: ``download_folder(id=...,
skip_download=True)`` lists a folder and ``download(id=..., output=...)`` fetches one file.

Every call is checked against the installed gdown's signatures, so the stand-in cannot drift from it.
Import the ``drive`` and ``resnet50_best`` fixtures into a test module to use them.
"""
from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import gdown
import pytest
import torch
from gdown.download import GoogleDriveFileToDownload
from huggingface_hub import constants

import hsnet
from hsnet.weights import registry

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
