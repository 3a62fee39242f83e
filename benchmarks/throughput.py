#!/usr/bin/env python3
"""Labelling throughput: queries per second against supports encoded once, by predict_many's batch size.

  python benchmarks/throughput.py                       # ResNet-50, 400 px, 1 and 5 supports, batch 1 2 4 8
  python benchmarks/throughput.py --device cuda --batches 1 8 32

What ``hsnet label`` does: ``Predictor.set_supports`` once, then ``Predictor.predict_many`` over a
folder of photos. The batch sizes alternate round by round in one process (measure.py), each round
labelling ``--queries`` photos; results merge into benchmarks/results/throughput-<device>.json and .md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hsnet
from inference import device_info
from measure import alternate
from report import current_commit
from synthetic import support_masks

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PHOTO = (640, 480)  # (W, H) of the generated photos


def measure(shots: int, side: int, batches: list[int], queries: int, rounds: int, device: str) -> list[dict[str, Any]]:
    """Rows of queries per second for each batch size, ``shots`` supports encoded once."""
    torch.manual_seed(0)
    predictor = hsnet.Predictor(hsnet.build_model("resnet50"), device=device, image_size=side)
    rng = np.random.default_rng(0)
    width, height = PHOTO
    photos = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(queries + shots)]
    mask = support_masks(1, width, 0.25)[0, :height].numpy().astype(bool)
    supports = predictor.set_supports(photos[:shots], [mask] * shots)

    def label(batch: int):
        return lambda: list(predictor.predict_many(photos[shots:], supports, batch_size=batch))

    samples, background = alternate({str(b): label(b) for b in batches}, rounds, warmup=1,
                                    sync=torch.cuda.synchronize if device == "cuda" else (lambda: None))
    return [{"shots": shots, "side": side, "batch": int(b), "queries": queries,
             "queries_per_s": queries / statistics.median(s.wall), "cpu_s_per_query": statistics.median(s.cpu) / queries,
             "rounds": len(s.wall), "background_cpu_share": background} for b, s in samples.items()]


def write_markdown(path: Path, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    lines = [f"# Labelling throughput: {info['name']}", "", f"PyTorch {info['torch']}. Queries are {PHOTO[0]}x{PHOTO[1]} "
             "photos labelled by `Predictor.predict_many` against supports encoded once (`set_supports`); ResNet-50, "
             "fp32. Batch sizes alternate round by round in one process; queries/s is the median round's.", ""]
    if info.get("shared"):
        lines += [f"**Shared machine:** {info['shared']}", ""]
    lines += ["| side | supports | batch | queries/s | CPU s per query | rounds | background | measured |",
              "|---" * 8 + "|"]
    for row in sorted(rows, key=lambda r: (r["side"], r["shots"], r["batch"])):
        best = max(r["queries_per_s"] for r in rows if (r["side"], r["shots"]) == (row["side"], row["shots"]))
        mark = " (best)" if row["queries_per_s"] == best else ""
        lines.append(f"| {row['side']} | {row['shots']} | {row['batch']} | {row['queries_per_s']:.2f}{mark} | "
                     f"{row['cpu_s_per_query']:.2f} | {row['rounds']} | {100 * row['background_cpu_share']:.0f}% | "
                     f"{row['measured_at'][:16]} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--sizes", nargs="+", type=int, default=[400])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--queries", type=int, default=16, help="photos labelled per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared", default="", help="say in the results that other work shared the machine")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    info = {**device_info(args.device), "shared": args.shared}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"throughput-{info['slug']}.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    commit = current_commit()
    for side in args.sizes:
        for shots in args.shots:
            when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            new = [{**r, "commit": commit, "measured_at": when}
                   for r in measure(shots, side, args.batches, args.queries, args.rounds, args.device)]
            rows = [r for r in rows if (r["side"], r["shots"]) != (side, shots)] + new
            path.write_text(json.dumps({"device": info, "rows": rows}, indent=1) + "\n")
            write_markdown(path.with_suffix(".md"), info, rows)
            print(f"{shots} supports at {side} px: " + ", ".join(f"batch {r['batch']} {r['queries_per_s']:.2f} q/s"
                                                               for r in new), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
