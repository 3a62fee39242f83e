"""`hsnet predict` with bad inputs: exit status 2, exactly one line on stderr, never a traceback.

Every case runs through ``hsnet.cli.main`` in this process; two of them also run as real
``python -m hsnet predict`` subprocesses (started together, so torch is imported in parallel) to
check what a shell sees: the exit status and a stderr free of warnings and tracebacks.
"""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
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


@pytest.mark.slow
@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_bad_input_exits_2_with_one_line_from_the_shell(processes: dict[str, Run], folder: Path, case: str) -> None:
    assert_one_line_error(processes[case], case)
    assert not (folder / "pickle-ran").exists()



# Every option of every command that reads or writes something, against bad values of its type.
# Each case must end before any work: exit status 2, one line naming the option (or the input), no
# traceback, and nothing new in the working folder.
LONG = "x" * 300
BAD_VALUES = {
    "count": ["0", "-1", "nan", "inf", "1.5", "", "two"],
    "workers": ["-1", "nan", "inf", "1.5", ""],
    "seed": ["-1", str(2**32), "nan", ""],
    "shots": ["0", "-1", "17", "nan", ""],
    "rate": ["nan", "inf", "-inf", "0", "-0.001", "fast", ""],
    "predictor side": ["0", "1", "31", "-400", "641", "nan", "inf", "4e2", ""],
    "side": ["0", "1", "31", "-400", "nan", "inf", ""],
    "device": ["foo", "meta", "cuda:99", "", "cpu:x",
               *(["cuda"] if not torch.cuda.is_available() else []),
               *(["mps"] if not torch.backends.mps.is_available() else [])],
    "choice": ["foo", ""],
    "precision": ["foo", "", "fp16"],  # fp16 on the CPU the cases run on
    "weights": [LONG, f"models/{LONG}/model.safetensors", "", " "],
    "output folder": ["", " ", "notes.png", "notes.png/sub", LONG, "/sys/hsnet-out"],
    "output file": ["", "photos", "notes.png/results.json", f"{LONG}.json", "/sys/hsnet-out/results.json"],
    "input image": ["nope.png", "photos", LONG, "notes.png"],
    "query source": ["nope.png", "nope/*.png", LONG, "empty-folder"],
    "folder": ["nowhere", "notes.png", LONG],
}
# command -> option -> (kind of value, what the error line must mention, or a tuple of alternatives)
OPTIONS = {
    "predict": {"--query": ("input image", "query image"), "--support": ("input image", "support image 1"),
                "--support-mask": ("input image", "support mask 1"), "--weights": ("weights", "--weights"),
                "--out": ("output folder", "--out"), "--device": ("device", "--device"),
                "--image-size": ("predictor side", "--image-size"), "--rule": ("choice", "--rule"),
                "--precision": ("precision", ("--precision", "precision fp16"))},
    "label": {"QUERY": ("query source", "query"), "--support": ("input image", "support image 1"),
              "--support-mask": ("input image", "support mask 1"), "--weights": ("weights", "--weights"),
              "--out": ("output folder", "--out"), "--device": ("device", "--device"),
              "--image-size": ("predictor side", "--image-size"), "--batch-size": ("count", "--batch-size"),
              "--rule": ("choice", "--rule"), "--precision": ("precision", ("--precision", "precision fp16"))},
    "evaluate": {"--benchmark": ("choice", "--benchmark"), "--fold": ("choice", "--fold"),
                 "--datapath": ("folder", ("--datapath", "not found")), "--splits": ("folder", ("--splits", "split")),
                 "--image-size": ("side", "--image-size"), "--workers": ("workers", "--workers"),
                 "--device": ("device", "--device"), "--shots": ("shots", "--shots"),
                 "--weights": ("weights", "--weights"), "--rule": ("choice", "--rule"),
                 "--batch-size": ("count", "--batch-size"), "--precision": ("precision", ("--precision", "precision fp16")),
                 "--seed": ("seed", "--seed"), "--limit": ("count", "--limit"), "--output": ("output file", "--output")},
    "train": {"--benchmark": ("choice", "--benchmark"), "--fold": ("choice", "--fold"),
              "--image-size": ("side", "--image-size"), "--workers": ("workers", "--workers"),
              "--device": ("device", "--device"), "--backbone": ("choice", "--backbone"),
              "--backbone-weights": ("choice", "--backbone-weights"), "--init": ("weights", "--init"),
              "--out": ("output folder", "--out"), "--epochs": ("count", "--epochs"),
              "--batch-size": ("count", "--batch-size"), "--lr": ("rate", "--lr"),
              "--precision": ("precision", ("--precision", "precision fp16")), "--seed": ("seed", "--seed"),
              "--limit-train": ("count", "--limit-train"), "--limit-val": ("count", "--limit-val")},
}
DATA = ["--datapath", "fss-data", "--splits", "fss-splits", "--image-size", "32", "--workers", "0", "--device", "cpu",
        "--no-progress"]
BASE = {
    "predict": [*GOOD, *WEIGHTS, "--out", "out", "--device", "cpu", "--image-size", "64"],
    "label": ["QUERY", "photos", "--support", "support.png", "--support-mask", "mask.png", *WEIGHTS, "--out", "out",
              "--device", "cpu", "--image-size", "64", "--no-progress"],
    "evaluate": ["--benchmark", "fss", *DATA, *WEIGHTS, "--limit", "1", "--output", "eval.json"],
    "train": ["--benchmark", "fss", *DATA, "--out", "run", "--backbone-weights", "none", "--epochs", "1",
              "--batch-size", "1", "--limit-train", "1", "--limit-val", "1"],
}
MATRIX = [(command, option, value) for command, options in OPTIONS.items()
          for option, (kind, _) in options.items() for value in BAD_VALUES[kind]]


def with_value(command: str, option: str, value: str) -> list[str]:
    """The command's working arguments with ``option`` set to ``value`` (QUERY: the positional queries)."""
    args = list(BASE[command])
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    if "QUERY" in args:
        at = args.index("QUERY")
        args[at: at + 2] = [args[at + 1]]
    return [command, *args]


@pytest.fixture(scope="module")
def workdir(folder: Path) -> Path:
    """The predict files plus a labelling folder, an empty folder and a tiny FSS-1000 with its split lists."""
    from synthetic_datasets import make_fss

    (folder / "photos").mkdir(exist_ok=True)
    Image.open(folder / "query.png").save(folder / "photos" / "one.png")
    (folder / "empty-folder").mkdir(exist_ok=True)
    if not (folder / "fss-data").exists():
        make_fss(folder / "fss-data", folder / "fss-splits", classes=1)
    return folder


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize(("command", "option", "value"), MATRIX, ids=[f"{c} {o} {v[:24]!r}" for c, o, v in MATRIX])
def test_every_option_refuses_bad_values_in_one_line(workdir: Path, monkeypatch, capsys, command, option, value):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = snapshot(workdir)
    code = main(with_value(command, option, value))
    captured = capsys.readouterr()
    lines = captured.err.strip("\n").split("\n")
    assert code == 2, captured.err
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    mention = OPTIONS[command][option][1]
    assert lines[0].startswith(f"hsnet {command}: error: "), lines[0]
    assert any(m in lines[0] for m in ((mention,) if isinstance(mention, str) else mention)), lines[0]
    assert captured.out == "", "the run started before the bad value was refused"
    assert snapshot(workdir) == before, "a refused run left files behind"


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_missing_and_unknown_arguments_are_one_line(command: str, capsys) -> None:
    for argv in ([command], [*with_value(command, "--device", "cpu"), "--no-such-option"]):
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith(f"hsnet {command}: error: "), err


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_the_command_lines_the_bad_values_go_into_work(workdir: Path, monkeypatch, capsys, command: str) -> None:
    """The control of the matrix: with no bad value each command runs, so each refusal above is the bad value's."""
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = snapshot(workdir)
    try:
        assert main(with_value(command, "--device", "cpu")) == 0, capsys.readouterr().err
    finally:
        for new in {Path(name).parts[0] for name in snapshot(workdir) - before}:  # out/, run/, eval.json
            shutil.rmtree(workdir / new) if (workdir / new).is_dir() else (workdir / new).unlink()
