"""`hsnet predict` with bad inputs: exit status 2, exactly one line on stderr, never a traceback.

Every case runs through ``hsnet.cli.main`` in this process; two of them also run as real
``python -m hsnet predict`` subprocesses (started together, so torch is imported in parallel) to
check what a shell sees: the exit status and a stderr free of warnings and tracebacks.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from crafted_files import png_claiming
from hsnet.cli import main

ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_CASES = ("missing query", "empty mask", "pickled code as weights")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def write_files(folder: Path, resnet50) -> None:
    """Images, masks and checkpoints that the cases below refer to by name."""
    rng = np.random.default_rng(0)
    for name, (width, height) in {"query.png": (90, 60), "support.png": (80, 60)}.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / name)
    mask = np.zeros((60, 80), np.uint8)
    mask[15:45, 20:60] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(folder / "empty_mask.png")
    Image.fromarray(np.full((80, 60), 255, np.uint8)).save(folder / "tall_mask.png")
    (folder / "notes.png").write_text("this is a text file with an image's name\n")
    (folder / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    save_file({k: v.contiguous() for k, v in resnet50.state_dict().items()}, str(folder / "model.safetensors"))
    data = (folder / "model.safetensors").read_bytes()
    (folder / "cut.safetensors").write_bytes(data[: len(data) // 3])
    (folder / "code.pt").write_bytes(pickle.dumps(RunsCode(), protocol=4))  # protocol 4: torch warns about it


class RunsCode:
    """Unpickling this makes a folder ``pickle-ran``: proof that code ran."""

    def __reduce__(self):
        return os.mkdir, ("pickle-ran",)


GOOD = ["--query", "query.png", "--support", "support.png", "--support-mask", "mask.png"]
WEIGHTS = ["--weights", "model.safetensors"]
CASES = {
    "missing query": (["--query", "nope.png", "--support", "support.png", "--support-mask", "mask.png", *WEIGHTS],
                      "query image file nope.png does not exist"),
    "text file as query": (["--query", "notes.png", "--support", "support.png", "--support-mask", "mask.png", *WEIGHTS],
                           "query image notes.png is not an image"),
    "decompression bomb": (["--query", "bomb.png", "--support", "support.png", "--support-mask", "mask.png", *WEIGHTS],
                           "megapixel limit"),
    "empty mask": (["--query", "query.png", "--support", "support.png", "--support-mask", "empty_mask.png", *WEIGHTS],
                   "support mask 1 marks no pixels"),
    "mask of another shape": (["--query", "query.png", "--support", "support.png", "--support-mask", "tall_mask.png", *WEIGHTS],
                              "give the mask drawn on that image"),
    "more supports than masks": ([*GOOD, "--support", "support.png", *WEIGHTS], "2 --support but 1 --support-mask"),
    "missing weights": ([*GOOD, "--weights", "nowhere/model.safetensors"], "unknown weights"),
    "damaged weights": ([*GOOD, "--weights", "cut.safetensors"], "cut.safetensors is damaged"),
    "pickled code as weights": ([*GOOD, "--weights", "code.pt"], "refused without running them"),
    "image size above the cap": ([*GOOD, *WEIGHTS, "--image-size", "1024"], "image size 1024 is above the 640-pixel cap"),
    "folder as support": (["--query", "query.png", "--support", ".", "--support-mask", "mask.png", *WEIGHTS],
                          "support image 1 . is a folder"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, resnet50) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    write_files(folder, resnet50)
    return folder


def command(case: str) -> list[str]:
    return ["predict", *CASES[case][0], "--out", f"out-{case.replace(' ', '-')}", "--device", "cpu"]


@pytest.fixture(scope="module")
def processes(folder: Path) -> dict[str, Run]:
    """The subprocess cases, run concurrently in the folder of test files."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    started = {case: subprocess.Popen([sys.executable, "-m", "hsnet", *command(case)], cwd=folder, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for case in SUBPROCESS_CASES}
    runs = {}
    for case, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        runs[case] = Run(process.returncode, stdout, stderr)
    return runs


def assert_one_line_error(run: Run, case: str) -> None:
    lines = run.stderr.strip("\n").split("\n")
    assert run.returncode == 2, run.stderr
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith("hsnet predict: error: ") and CASES[case][1] in lines[0], lines[0]
    assert run.stdout == ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line(folder: Path, monkeypatch, capsys, case: str) -> None:
    monkeypatch.chdir(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(command(case))
    captured = capsys.readouterr()
    assert_one_line_error(Run(code, captured.out, captured.err), case)
    assert not (folder / "pickle-ran").exists()


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_exits_2_with_one_line_from_the_shell(processes: dict[str, Run], folder: Path, case: str) -> None:
    assert_one_line_error(processes[case], case)
    assert not (folder / "pickle-ran").exists()

