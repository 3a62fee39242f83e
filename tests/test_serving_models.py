"""ModelStore: weights load in the background, requests never wait, failures are remembered, visitors see names only."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

import hsnet
from hsnet.errors import CheckpointError, HubError, WeightsNotFoundError
from hsnet.serving import ModelStore, WeightsNotReadyError

SECRET_DIR = "/srv/private/hsnet-weights"


class Gate:
    """A loader that waits until released (a slow download), recording every call and its progress."""

    def __init__(self, result: object = "predictor", fraction: float | None = None):
        self.result = result
        self.fraction = fraction
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, name: str, progress) -> object:
        self.calls.append(name)
        progress(self.fraction, "downloading")
        if not self.release.wait(30):
            raise TimeoutError("the test never released the loader")
        return self.result


def failing(exc: BaseException):
    calls: list[str] = []

    def loader(name: str, progress) -> object:
        calls.append(name)
        raise exc

    loader.calls = calls  # type: ignore[attr-defined]
    return loader


def test_real_checkpoint_loads_in_the_background_into_a_predictor(resnet50: hsnet.HSNet, tmp_path: Path) -> None:
    folder = hsnet.save_pretrained(resnet50, tmp_path / "checkpoint")
    store = ModelStore(str(folder), device="cpu")
    assert store.state().status == "idle"
    started = store.start()
    assert started.status in ("loading", "ready")
    state = store.wait(timeout=120)
    assert state.status == "ready", state.message
    assert isinstance(store.predictor(), hsnet.Predictor)
    assert str(tmp_path) not in state.message and "checkpoint" in state.name


def test_a_slow_load_never_blocks_a_request_or_another_name() -> None:
    slow, fast = Gate(fraction=0.5), Gate("fast predictor")
    fast.release.set()
    store = ModelStore("slow", loader=lambda name, progress: (slow if name == "slow" else fast)(name, progress))
    begun = time.monotonic()
    assert store.start("slow").status == "loading"
    with pytest.raises(WeightsNotReadyError, match="Loading weights slow: downloading \\(50%\\)") as raised:
        store.predictor("slow")
    assert raised.value.state.progress == 0.5
    assert store.wait("other", timeout=10).status == "ready"
    assert store.predictor("other") == "fast predictor"
    assert time.monotonic() - begun < 5 and store.state("slow").status == "loading"
    slow.release.set()
    assert store.wait("slow", timeout=10).status == "ready"
    assert store.predictor("slow") == "predictor" and slow.calls == ["slow"]


def test_starting_a_name_twice_loads_it_once() -> None:
    gate = Gate()
    store = ModelStore("w", loader=gate)
    for _ in range(5):
        store.start()
        with pytest.raises(WeightsNotReadyError):
            store.predictor()
    gate.release.set()
    store.wait(timeout=10)
    store.predictor()
    assert gate.calls == ["w"]


@pytest.mark.parametrize("exc,reason", [
    (WeightsNotFoundError(f"weights not in {SECRET_DIR}; set HSNET_HUB_ORG or pass --hub-org"), "not available"),
    (HubError(f"could not reach https://internal.example for {SECRET_DIR}; check HF_TOKEN"), "could not be downloaded"),
    (CheckpointError(f"{SECRET_DIR}/best_model.pt has no key 'learner.x'"), "not a usable HSNet checkpoint"),
    (OSError(f"[Errno 13] Permission denied: '{SECRET_DIR}/model.safetensors'"), "unexpected error"),
    (RuntimeError("CUDA error: out of memory"), "unexpected error"),
], ids=["not found", "hub", "checkpoint", "os error", "unexpected"])
def test_a_failure_is_remembered_and_told_without_server_details(exc: BaseException, reason: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    loader = failing(exc)
    store = ModelStore("pascal-resnet50-fold0", loader=loader, retry_after_s=600)
    with caplog.at_level(logging.WARNING, logger="hsnet.serving"):
        state = store.wait(timeout=10)
    assert state.status == "failed" and reason in state.message
    assert "pascal-resnet50-fold0" in state.message and "\n" not in state.message
    for secret in (SECRET_DIR, "HSNET_", "HF_", "internal.example", "CUDA"):
        assert secret not in state.message
    assert SECRET_DIR in caplog.text or "CUDA error" in caplog.text  # the operator gets the details
    for _ in range(3):
        with pytest.raises(WeightsNotReadyError, match="tries again in 10 min"):
            store.predictor()
    assert loader.calls == ["pascal-resnet50-fold0"]  # remembered: no new attempt per request


def test_a_failed_name_is_tried_again_after_the_retry_time() -> None:
    loader = failing(WeightsNotFoundError("offline"))
    store = ModelStore("w", loader=loader, retry_after_s=0.2)
    assert store.wait(timeout=10).status == "failed"
    time.sleep(0.3)
    with pytest.raises(WeightsNotReadyError):
        store.predictor()
    store.wait(timeout=10)
    assert loader.calls == ["w", "w"]


def test_a_local_path_is_named_by_its_last_part_only(tmp_path: Path) -> None:
    path = tmp_path / "secret-folder" / "best_model.pt"
    store = ModelStore(str(path), loader=failing(CheckpointError(f"{path} is not a checkpoint")))
    state = store.wait(timeout=10)
    assert "best_model.pt" in state.message and str(tmp_path) not in state.message and "secret-folder" not in state.message


def test_at_most_keep_predictors_are_kept_least_recently_used_dropped() -> None:
    store = ModelStore("a", loader=lambda name, progress: f"predictor {name}", keep=2)
    for name in ("a", "b"):
        store.wait(name, timeout=10)
    store.predictor("a")  # a is now more recent than b
    store.wait("c", timeout=10)
    assert [store.state(n).status for n in "abc"] == ["ready", "idle", "ready"]


@pytest.mark.parametrize("name", ["x" * 300, "bad\0name", "a\nb"], ids=["too long", "nul", "newline"])
def test_odd_names_fail_with_one_short_line(name: str) -> None:
    state = ModelStore(name, loader=failing(WeightsNotFoundError("unknown"))).wait(timeout=10)
    assert state.status == "failed" and "\n" not in state.message and len(state.message) < 300


def test_the_store_builds_predictors_at_the_side_it_is_given(resnet50: hsnet.HSNet, tmp_path: Path) -> None:
    folder = hsnet.save_pretrained(resnet50, tmp_path / "checkpoint")
    store = ModelStore(str(folder), device="cpu", image_size=64)
    assert store.wait(timeout=120).status == "ready"
    assert store.predictor().image_size == 64


def test_a_drive_download_shows_its_progress_in_the_state(resnet50: hsnet.HSNet, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Drive stood in for at gdown's two calls; the download stops halfway until the test has read the state."""
    import gdown
    import torch
    from gdown.download import GoogleDriveFileToDownload

    best = tmp_path / "best_model.pt"
    torch.save({f"module.{k}": v for k, v in resnet50.state_dict().items()}, best)
    halfway, release = threading.Event(), threading.Event()

    def listing(id=None, skip_download=False, **kwargs):
        return [GoogleDriveFileToDownload(id="file", path=f"res{b}_pas/res{b}_pas_fold{f}/best_model.pt",
                                          local_path="x") for b in (50, 101) for f in range(4)]

    def download(id=None, output=None, progress=None, **kwargs):
        size = best.stat().st_size
        progress(size // 2, size)
        halfway.set()
        release.wait(30)
        Path(output).write_bytes(best.read_bytes())
        progress(size, size)
        return output

    monkeypatch.setattr(gdown, "download_folder", listing)
    monkeypatch.setattr(gdown, "download", download)
    monkeypatch.setenv("HSNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HSNET_HUB_ORG", raising=False)
    store = ModelStore("pascal-resnet50-fold0", device="cpu", image_size=64)
    store.start()
    assert halfway.wait(60)
    state = store.state()
    assert state.status == "loading" and state.progress == pytest.approx(0.425, abs=0.01)
    assert "downloading the weights" in state.message and str(tmp_path) not in state.message
    release.set()
    assert store.wait(timeout=120).status == "ready"
