#!/usr/bin/env python3
"""Peak memory of one prediction through hsnet.Predictor, for K supports at a model side.

  python benchmarks/peak_memory.py                                   # K = 1, 5, 16 at 400 and 640 px
  python benchmarks/peak_memory.py --shots 16 --sizes 640 --limit-gb 8

Each case runs alone in a fresh process (ResNet-50, random weights, CPU): it builds the
model and the Predictor, then predicts once; the process reports its peak resident memory
(``resource.getrusage``) and its resident memory before the prediction. The parent stops a
case whose memory passes ``--limit-gb`` and records that instead, so a shared machine is never
pushed over. Results merge into benchmarks/results/peak-memory-<cpu>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import peak_rss_bytes
from report import current_commit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
QUERY_SIZE = (1024, 768)  # (W, H) of the query and support photos: resized to the model side by the Predictor


def resident_bytes(pid: int | str = "self") -> int:
    """Current resident memory of a process (Linux), 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def one_case(shots: int, side: int) -> dict[str, Any]:
    """Predict once with ``shots`` supports at ``side``; memory figures in bytes."""
    import numpy as np
    import torch

    import hsnet
    from synthetic import support_masks

    torch.manual_seed(0)
    predictor = hsnet.Predictor(hsnet.build_model("resnet50"), device="cpu", image_size=side)
    rng = np.random.default_rng(0)
    width, height = QUERY_SIZE
    photos = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(shots + 1)]
    mask = support_masks(1, max(width, height), 0.25)[0, :height, :width].numpy().astype(bool)
    before = resident_bytes()
    start = time.perf_counter()
    predictor.predict(photos[0], photos[1:], [mask] * shots)
    return {"seconds": time.perf_counter() - start, "rss_before_bytes": before, "peak_rss_bytes": peak_rss_bytes()}


def run_case(shots: int, side: int, limit_bytes: float) -> dict[str, Any]:
    """One case in a fresh interpreter, stopped if its resident memory passes ``limit_bytes``."""
    child = subprocess.Popen([sys.executable, __file__, "--worker", f"{shots},{side}"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    highest = 0
    while child.poll() is None:
        highest = max(highest, resident_bytes(child.pid))
        if highest > limit_bytes:
            child.kill()
            child.wait()
            return {"stopped": f"passed {limit_bytes / 2**30:.1f} GiB"}
        time.sleep(0.05)
    out, err = child.communicate()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return {"stopped": f"failed: {(err.strip().splitlines() or ['no output'])[-1][:200]}"}
    return json.loads(lines[-1])


def write_tables(path: Path, rows: list[dict[str, Any]]) -> None:
    path.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    lines = ["# Peak memory of one prediction (hsnet.Predictor, ResNet-50, CPU, fp32)", "",
             f"Query and supports are {QUERY_SIZE[0]}x{QUERY_SIZE[1]} photos resized to the side; each case ran "
             "alone in a fresh process (`python benchmarks/peak_memory.py`). Peak: the process's peak resident "
             "memory; model: its resident memory before the prediction (interpreter, PyTorch, weights).", "",
             "| side | supports | peak | model | prediction's own | time | commit | measured |", "|---" * 8 + "|"]
    for row in sorted(rows, key=lambda r: (r["side"], r["shots"])):
        head = f"| {row['side']} | {row['shots']} |"
        tail = f" {row['commit']} | {row['measured_at'][:16]} |"
        if "stopped" in row:
            lines.append(f"{head} {row['stopped']} | | | |{tail}")
            continue
        peak, before = row["peak_rss_bytes"], row["rss_before_bytes"]
        lines.append(f"{head} {peak / 2**30:.2f} GiB | {before / 2**30:.2f} GiB | {(peak - before) / 2**30:.2f} GiB | "
                     f"{row['seconds']:.1f} s |{tail}")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5, 16])
    parser.add_argument("--sizes", nargs="+", type=int, default=[400, 640])
    parser.add_argument("--limit-gb", type=float, default=8.0, help="stop a case whose memory passes this")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        shots, side = (int(v) for v in args.worker.split(","))
        print(json.dumps(one_case(shots, side)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "peak-memory-cpu.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    commit = current_commit()
    for side in args.sizes:
        for shots in args.shots:
            result = run_case(shots, side, args.limit_gb * 2**30)
            row = {"side": side, "shots": shots, **result, "commit": commit,
                   "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
            rows = [r for r in rows if (r["side"], r["shots"]) != (side, shots)] + [row]
            write_tables(path, rows)
            shown = result.get("stopped") or f"peak {result['peak_rss_bytes'] / 2**30:.2f} GiB"
            print(f"{shots} supports at {side} px: {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
