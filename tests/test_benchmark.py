"""The inference benchmark runs end to end on a tiny setting and writes its JSON and Markdown tables.

No time is asserted (timings belong to the benchmark, not the tests); what is checked is that
every case runs, the authors'-way baseline computes the same masks as hsnet, and the tables are written.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("episode", "cached", "authors", "predictor")


def test_benchmark_measures_every_case_and_writes_both_tables(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "inference.py"), "--backbones", "resnet50", "--sizes", "64",
               "--shots", "2", "--batches", "1", "--cases", *CASES, "--repeats", "3", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    (table,) = tmp_path.glob("*.json")
    rows = json.loads(table.read_text())["rows"]
    assert sorted(r["case"] for r in rows) == sorted(CASES)
    assert all(r["median_s"] > 0 and r["repeats"] >= 3 and r["peak_memory_bytes"] > 0 for r in rows)
    (authors,) = [r for r in rows if r["case"] == "authors"]
    assert authors["agreement_with_hsnet"] == 1.0
    markdown = table.with_suffix(".md").read_text()
    assert "## All measurements" in markdown and "## Against the issue's targets" in markdown
    assert markdown.count("| resnet50 | fp32 | 64 | 2 | 1 |") == len(CASES)
