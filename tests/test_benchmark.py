"""The inference benchmark times hsnet against a clone of the authors' code and writes its JSON and Markdown tables.

No time is asserted (timings belong to the benchmark, not the tests); what is checked is that every
case runs in one process on the same weights, that the authors' code is loaded from the clone it is
given (their absolute imports, their ImageNet backbone served offline), that both compute the same
masks, and that the tables are written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AUTHORS_CLONE = ROOT.parent / "shared" / "authors-hsnet"
CASES = ("authors", "hsnet", "predict_mask", "cached", "predictor")  # every CPU episode case

# A stand-in clone laid out like the authors' repository: namespace packages ``model`` and ``common``,
# an absolute import across them, a relative one inside, and ``resnet50(pretrained=True)`` (which
# would download without the benchmark's offline ImageNet weights). It computes hsnet's masks.
STAND_IN = {
    "common/utils.py": "def mean(x):\n    return sum(x) / len(x)\n",
    "model/base/feature.py": "NAME = 'resnet50'\n",
    "model/hsnet.py": textwrap.dedent('''
        import torch
        from torch import nn
        from torchvision.models import resnet

        import hsnet
        from common.utils import mean
        from .base.feature import NAME


        class HypercorrSqueezeNetwork(nn.Module):
            def __init__(self, backbone, use_original_imgsize):
                super().__init__()
                assert backbone == NAME and mean([1, 3]) == 2
                self.backbone = resnet.resnet50(pretrained=True)
                self.hpn_learner = hsnet.build_model(backbone).hpn_learner
                self._twin = None

            def predict_mask_nshot(self, batch, nshot):
                if self._twin is None:
                    self._twin = hsnet.load_weights(hsnet.build_model(NAME), self.state_dict()).eval()
                with torch.inference_mode():
                    return self._twin.predict_mask(batch["query_img"], batch["support_imgs"], batch["support_masks"])
    '''),
}


@pytest.fixture
def stand_in_clone(tmp_path: Path) -> Path:
    for name, text in STAND_IN.items():
        (tmp_path / "clone" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "clone" / name).write_text(text)
    return tmp_path / "clone"


def run_benchmark(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TORCH_HOME": str(tmp_path / "empty-home")}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "inference.py"), "--device", "cpu", *args],
                          capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("clone", ["stand-in", "authors"])
def test_benchmark_times_every_case_against_the_clone(clone: str, stand_in_clone: Path, tmp_path: Path) -> None:
    if clone == "authors" and not (AUTHORS_CLONE / "model" / "hsnet.py").is_file():
        pytest.skip(f"no clone of the authors' code at {AUTHORS_CLONE}")
    code = stand_in_clone if clone == "stand-in" else AUTHORS_CLONE
    out = tmp_path / "results"
    done = run_benchmark("--authors-code", str(code), "--backbones", "resnet50", "--sizes", "64", "--shots", "2",
                         "--batches", "1", "--rounds", "2", "--warmup", "0", "--shared", "by the test suite",
                         "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (table,) = out.glob("*.json")
    rows = json.loads(table.read_text())["rows"]
    assert sorted(r["case"] for r in rows) == sorted(CASES), done.stdout
    assert all(r["median_s"] > 0 and r["cpu_median_s"] > 0 and r["repeats"] == 2 for r in rows)
    assert all(r["agreement_with_authors"] == 1.0 for r in rows)
    markdown = table.with_suffix(".md").read_text()
    assert "## All measurements" in markdown and "Shared machine:** by the test suite" in markdown
    assert markdown.count("| resnet50 | fp32 | 64 | 2 | 1 | 0.25 |") == len(CASES)


@pytest.mark.slow
def test_benchmark_without_the_authors_code_times_hsnet_alone(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = run_benchmark("--backbones", "resnet50", "--sizes", "64", "--shots", "1", "--batches", "2", "--rounds", "1",
                         "--warmup", "0", "--cases", "authors", "hsnet", "--out", str(out), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(next(out.glob("*.json")).read_text())["rows"]
    assert [r["case"] for r in rows] == ["hsnet"]


@pytest.mark.parametrize("layout", ["missing", "empty folder", "model without hsnet.py"])
def test_authors_code_that_is_not_a_clone_is_refused_in_one_line(layout: str, tmp_path: Path) -> None:
    code = tmp_path / "code"
    if layout != "missing":
        code.mkdir()
    if layout == "model without hsnet.py":
        (code / "model").mkdir()
    done = run_benchmark("--quick", "--authors-code", str(code), "--out", str(tmp_path), tmp_path=tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "--authors-code" in last and "clone of the authors' repository" in last and "Traceback" not in done.stderr


def run_tool(tool: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / tool), *args, "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_peak_memory_measures_each_case_and_stops_one_over_the_limit(tmp_path: Path) -> None:
    done = run_tool("peak_memory.py", "--sizes", "64", "--shots", "1", "2", "--limit-gb", "6", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "peak-memory-cpu.json").read_text())["rows"]
    assert [(r["side"], r["shots"]) for r in rows] == [(64, 1), (64, 2)]
    assert all(r["peak_rss_bytes"] > r["rss_before_bytes"] > 0 for r in rows)
    done = run_tool("peak_memory.py", "--sizes", "64", "--shots", "1", "--limit-gb", "0.05", tmp_path=tmp_path)
    rows = json.loads((tmp_path / "peak-memory-cpu.json").read_text())["rows"]
    assert [r.get("stopped") for r in rows if r["shots"] == 1] == ["passed 0.1 GiB"]
    assert "passed 0.1 GiB" in (tmp_path / "peak-memory-cpu.md").read_text()


@pytest.mark.slow
def test_throughput_labels_queries_at_every_batch_size(tmp_path: Path) -> None:
    done = run_tool("throughput.py", "--device", "cpu", "--sizes", "64", "--shots", "2", "--batches", "1", "3", "--queries", "4",
                    "--rounds", "1", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (table,) = tmp_path.glob("throughput-*.json")
    rows = json.loads(table.read_text())["rows"]
    assert sorted(r["batch"] for r in rows) == [1, 3] and all(r["queries_per_s"] > 0 for r in rows)
    assert "(best)" in table.with_suffix(".md").read_text()


@pytest.mark.slow
def test_the_cuda_suite_runs_every_kind_of_setting_shrunk_on_the_cpu(tmp_path: Path) -> None:
    """``--cuda-suite`` (what benchmarks/gpu.sh runs on a GPU) in its --smoke size: latency, throughput, training
    steps against the authors' step, and hsnet evaluate with data loading, each with where its time goes."""
    authors = (AUTHORS_CLONE / "model" / "hsnet.py").is_file()  # without the clone, hsnet's cases alone
    out = tmp_path / "results"
    done = run_benchmark("--cuda-suite", "--smoke", "--backbones", "resnet50", "--throughput-precisions", "bf16",
                         *(["--authors-code", str(AUTHORS_CLONE)] if authors else []), "--out", str(out),
                         tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (table,) = out.glob("*.json")
    rows = json.loads(table.read_text())["rows"]
    assert all("median_s" in r for r in rows), [r.get("skipped") for r in rows]
    kinds = {(r.get("task", "episode"), r["case"], r["batch"], r["precision"]) for r in rows}
    assert {("episode", "predictor", 1, "fp32"), ("episode", "hsnet", 2, "bf16"), ("train", "train", 2, "fp32"),
            ("evaluate", "evaluate", 2, "bf16")} <= kinds
    assert not authors or {("episode", "authors", 2, "bf16"), ("train", "authors-train", 2, "bf16")} <= kinds
    staged = {r["case"] for r in rows if r.get("stages_s")}
    assert {"hsnet", "predictor", "train", "evaluate"} | ({"authors-train"} if authors else set()) <= staged
    assert next(r for r in rows if r["case"] == "evaluate")["episodes_per_call"] == 4


def test_the_cuda_tables_report_issue_21_s_measurements_against_their_goals(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from report import write_markdown
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))

    def row(case: str, precision: str, batch: int, seconds: float, task: str = "episode", **extra) -> dict:
        return {"backbone": "resnet101" if task == "episode" else "resnet50", "shots": 1, "batch": batch,
                "side": 400, "precision": precision, "device": "cuda", "case": case, "task": task, "mask_cover": 0.25,
                "compile": False, "cuda_graphs": False, "retain_memory": True,
                "median_s": seconds, "min_s": seconds, "cpu_median_s": seconds, "repeats": 10,
                "background_cpu_share": 0.0, **extra}

    rows = [row("predictor", "bf16", 1, 0.006, stages_s={"backbone": 0.004, "learner": 0.002}),
            row("predictor-graphs", "bf16", 1, 0.003, predictor_graphs_first_call_s=2.5),
            row("hsnet", "bf16", 1, 0.01), row("graphs", "bf16", 1, 0.004, graph_capture_s=1.2),
            row("graphs", "bf16", 32, 0.016, graph_capture_s=2.0),
            row("authors", "fp32", 32, 0.2), row("authors", "bf16", 32, 0.1), row("hsnet", "fp32", 32, 0.1),
            row("hsnet", "bf16", 32, 0.032, peak_gpu_bytes=3 * 2**30),
            row("authors-train", "bf16", 20, 0.2, task="train"), row("train", "bf16", 20, 0.1, task="train"),
            row("evaluate", "bf16", 16, 0.5, task="evaluate", episodes_per_call=128, workers=8)]
    path = tmp_path / "cuda-test.md"
    write_markdown(path, {"slug": "cuda-test", "name": "a GPU", "torch": "2"}, rows)
    text = path.read_text()
    assert ("| resnet101 | 1 | - | - | - | - | 6.0 | - | 10.0 / 4.0 (1.2 s) | 6.0 / 3.0 (2.5 s) "
            "| backbone 4.0 ms, learner 2.0 ms |") in text
    assert "| resnet101 | 32 | 160.0 | 320.0 | 320.0 | 1000.0 | 2000.0 | 6.25x | 3.12x | 3.00 GiB |" in text
    assert "| bf16 | 20 | 400 | 5.00 | 10.00 | 2.00x |" in text
    assert "| bf16 | 16 | 8 | 128 | 256.0 |" in text
