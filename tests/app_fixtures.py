"""The Gradio app served for real on 127.0.0.1, for the app's API and browser tests (a pytest plugin module:
the app's test modules load it with ``pytest_plugins = ["app_fixtures"]``).

``serve_app`` (also the ``launch_app`` fixture) starts ``python app.py`` in a subprocess on a free port with
``HSNET_WEIGHTS`` pointing wherever the test says, waits until the page answers,
and stops it afterwards. ``app_server`` serves it once per test session with a
small real checkpoint (ResNet-50 HSNet, seeded random weights) written in the
test, so nothing is downloaded.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import loadkit

ROOT = Path(__file__).resolve().parent.parent

START_TIMEOUT = 120.0


@dataclass
class Served:
    """A running app: its address and the file its output goes to."""

    url: str
    log: Path
    tmp: Path  # the server's temporary directory (TMPDIR), so that tests can see what it leaves

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def serve_app(weights: str | os.PathLike, log: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Run app.py with ``HSNET_WEIGHTS=weights`` (and ``env`` over the defaults) until the block ends.

    RuntimeError with its log if it does not start. By default the Hub is offline.
    """
    port = loadkit.free_port()
    tmp = log.parent / f"{log.stem}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "HSNET_WEIGHTS": str(weights), "GRADIO_SERVER_NAME": "127.0.0.1", "TMPDIR": str(tmp),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port)]
    with loadkit.running_server(command, env, log, url, timeout=START_TIMEOUT):
        yield Served(url, log, tmp)


@pytest.fixture(scope="session")
def app_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-50 HSNet with seeded random weights, saved as a Hub folder (its masks are arbitrary)."""
    return loadkit.make_checkpoint(tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="session")
def app_server(app_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app served with ``app_checkpoint`` for the whole session."""
    with serve_app(app_checkpoint, tmp_path_factory.mktemp("app-log") / "app.log") as served:
        yield served


@pytest.fixture
def launch_app():
    """``serve_app`` itself, for a test that needs its own server (other weights, its own temporary folder)."""
    return serve_app
