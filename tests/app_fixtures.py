"""The Gradio app served for real on 127.0.0.1, for the app's API and browser tests.

``serve_app`` starts ``python app.py`` in a subprocess on a free port with
``HSNET_WEIGHTS`` pointing wherever the test says, waits until the page answers,
and stops it afterwards. ``app_server`` serves it once per test session with a
small real checkpoint (ResNet-50 HSNet, seeded random weights) written in the
test, so nothing is downloaded.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import hsnet
from hsnet.hub import save_pretrained

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_app(weights: str | os.PathLike, log: Path) -> Iterator[Served]:
    """Run app.py with ``HSNET_WEIGHTS=weights`` until the block ends; fail with its log if it does not start."""
    port = free_port()
    tmp = log.parent / f"{log.stem}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "HSNET_WEIGHTS": str(weights), "GRADIO_SERVER_NAME": "127.0.0.1", "TMPDIR": str(tmp),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    url = f"http://127.0.0.1:{port}/"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    served = Served(url, log, tmp)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with status {process.returncode}:\n{served.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer on {url} within {START_TIMEOUT:.0f} s:\n{served.log_text()[-3000:]}")
            time.sleep(0.5)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def app_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-50 HSNet with seeded random weights, saved as a Hub folder (its masks are arbitrary)."""
    torch.manual_seed(0)
    return save_pretrained(hsnet.build_model("resnet50"), tmp_path_factory.mktemp("app") / "checkpoint")


@pytest.fixture(scope="session")
def app_server(app_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app served with ``app_checkpoint`` for the whole session."""
    with serve_app(app_checkpoint, tmp_path_factory.mktemp("app-log") / "app.log") as served:
        yield served
