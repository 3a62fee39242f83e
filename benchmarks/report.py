"""Benchmark results: one JSON file of rows per device (the latest measurement of a row wins) and its Markdown table."""
from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from plan import BACKBONES, CASES, Setting


def current_commit() -> str:
    """The short hash of the checked-out commit, recorded beside every measurement ('' outside git)."""
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent).stdout.strip()

# Issue 16's targets on the project's 2-core CPU machines: ResNet-50, 400x400, fp32, batch 1, cover 0.25.
CPU_TARGET_SPEEDUPS = {1: 1.5, 5: 2.0}
NOTES = (
    "Times are per call (median of the repeats, minimum in brackets; CPU time is this process's, all threads). "
    "A call segments `batch` queries, each from `shots` supports. All cases of a setting run in one fresh process "
    "on the same weights and inputs, alternating call by call (see benchmarks/measure.py), so a busy neighbour "
    "slows them alike; speed-ups are ratios of medians from the same run, and \"per round\" the median of the "
    "ratios within each round (steadier when the neighbours' load comes in bursts). \"authors\": the authors' "
    "`predict_mask_nshot` from their own code (`--authors-code`); \"hsnet\": the same episode through hsnet; "
    "\"cached\": a further query against supports whose features were kept; \"predictor\": "
    "`hsnet.Predictor.predict` end to end (uint8 images in, mask and heatmaps out, support cache emptied); "
    "\"train\"/\"authors-train\": one training step each (benchmarks/training_cases.py); \"evaluate\": "
    "`hsnet evaluate` with its data loading (benchmarks/evaluation_cases.py). In bf16 settings the authors' code "
    "runs under plain bf16 autocast. "
    "Masks are centred ellipses covering `cover` of the image. CPU rows run with "
    "`retain_freed_memory()` (glibc keeps freed memory for the next episode, in both models' process) unless "
    "marked \"default allocator\". Background: share of the machine's CPU other processes used during the "
    "setting's rounds."
)


def row_key(row: dict[str, Any]) -> tuple[Setting, str]:
    return Setting(**{f.name: row[f.name] for f in fields(Setting) if f.name in row}), row["case"]


def merge_rows(path: Path, info: dict[str, Any], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``new`` rows into the JSON file at ``path``, replacing rows of the same setting and case."""
    old = json.loads(path.read_text())["rows"] if path.exists() else []
    keys = {row_key(r) for r in new}
    rows = [r for r in old if row_key(r) not in keys] + new
    path.write_text(json.dumps({"device": info, "rows": rows}, indent=1) + "\n")
    return rows


def rows_of(setting: Setting, measured: dict[str, dict[str, Any]], **shared: Any) -> list[dict[str, Any]]:
    """One row per case of a measured setting."""
    return [{**asdict(setting), "case": case, **result, **shared} for case, result in measured.items()]


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def find(rows: list[dict[str, Any]], case: str, **match: Any) -> dict[str, Any] | None:
    want = {"mask_cover": 0.25, "compile": False, "cuda_graphs": False, "retain_memory": True, "task": "episode",
            **match}
    for row in rows:
        if row["case"] == case and "median_s" in row and all(row.get(k, "episode" if k == "task" else None) == v
                                                             for k, v in want.items()):
            return row
    return None


def speedup(theirs: dict[str, Any] | None, ours: dict[str, Any] | None, key: str = "median_s") -> str:
    return f"{theirs[key] / ours[key]:.2f}x" if theirs and ours else "-"


def paired_speedup(theirs: dict[str, Any] | None, ours: dict[str, Any] | None) -> str:
    """Median over rounds of the two cases' time ratio within the round: steadier than a ratio of medians
    when a neighbour's load comes in bursts, since calls of one round run side by side."""
    if not (theirs and ours and theirs.get("wall_s") and ours.get("wall_s")):
        return "-"
    return f"{statistics.median(a / b for a, b in zip(theirs['wall_s'], ours['wall_s'])):.2f}x"


def targets_table(rows: list[dict[str, Any]]) -> list[str]:
    base = dict(backbone="resnet50", side=400, precision="fp32", batch=1)
    out = ["## Against the authors' code (ResNet-50, 400x400, fp32, batch 1, cover 0.25)", "",
           "| shots | authors' code | hsnet | speed-up (wall) | per round | speed-up (CPU time) | cached supports | "
           "predictor | target | background |", "|---" * 10 + "|"]
    for shots, target in CPU_TARGET_SPEEDUPS.items():
        theirs, ours = find(rows, "authors", shots=shots, **base), find(rows, "hsnet", shots=shots, **base)
        cached, predictor = find(rows, "cached", shots=shots, **base), find(rows, "predictor", shots=shots, **base)
        background = f"{100 * ours['background_cpu_share']:.0f}%" if ours else "-"
        out.append(f"| {shots} | {fmt_s(theirs and theirs['median_s'])} | {fmt_s(ours and ours['median_s'])} | "
                   f"{speedup(theirs, ours)} | {paired_speedup(theirs, ours)} | {speedup(theirs, ours, 'cpu_median_s')} | "
                   f"{fmt_s(cached and cached['median_s'])} | {fmt_s(predictor and predictor['median_s'])} | "
                   f"at least {target:.1f}x | {background} |")
    return out + [""]


def per_second(row: dict[str, Any] | None) -> float | None:
    """Episodes (or training steps) per second of a row: its batch, or the episodes one call ran, per call."""
    return row.get("episodes_per_call", row["batch"]) / row["median_s"] if row else None


def fmt_rate(rate: float | None) -> str:
    return f"{rate:.1f}" if rate is not None else "-"


def stages_text(row: dict[str, Any]) -> str:
    """Where a case's time goes, its largest stage (the bottleneck) first."""
    stages = sorted(row.get("stages_s", {}).items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {fmt_s(seconds)}" for name, seconds in stages)


def graphs_text(rows: list[dict[str, Any]], **match: Any) -> str:
    """ms of the eager episode and of its CUDA-graph replay, with the capture's seconds."""
    eager, graphs = find(rows, "hsnet", **match), find(rows, "graphs", **match)
    if not graphs:
        return f"{eager['median_s'] * 1000:.1f} / -" if eager else "-"
    return (f"{eager['median_s'] * 1000:.1f} / {graphs['median_s'] * 1000:.1f} ({graphs['graph_capture_s']:.1f} s)"
            if eager else "-")


def cuda_tables(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 21's measurements against its goals: latency at batch 1, throughput at batch 32, training, evaluation."""
    out = ["## Latency at batch 1 (400x400, ms per call; hsnet: `Predictor.predict` end to end)", "",
           "Goal (ResNet-101): 1-shot <= 6 ms, 5-shot <= 10 ms; bf16 never slower than fp32.", "",
           "| backbone | shots | authors fp32 | authors bf16 autocast | hsnet fp32 | hsnet tf32 | hsnet bf16 | hsnet fp16 | "
           "episode bf16: eager / graphs (capture) | where hsnet bf16's time goes |", "|---" * 10 + "|"]
    ms = lambda r: f"{r['median_s'] * 1000:.1f}" if r else "-"  # noqa: E731
    for backbone in ("resnet101", "resnet50"):
        for shots in (1, 5):
            base = dict(backbone=backbone, shots=shots, batch=1, side=400)
            cells = [ms(find(rows, "authors", precision=p, **base)) for p in ("fp32", "bf16")]
            cells += [ms(find(rows, "predictor", precision=p, **base)) for p in ("fp32", "tf32", "bf16", "fp16")]
            bf16 = find(rows, "predictor", precision="bf16", **base)
            cells.append(graphs_text(rows, precision="bf16", **base))
            out.append(f"| {backbone} | {shots} | {' | '.join(cells)} | {stages_text(bf16) if bf16 else '-'} |")
    out += ["", "## Throughput (1-shot, 400x400, episodes/s)", "",
            "Goal (ResNet-101, batch 32): hsnet bf16 >= 1000 episodes/s, >= 4x the authors' fp32 and >= 2x the "
            "authors' code under bf16 autocast.", "",
            "| backbone | batch | authors fp32 | authors bf16 autocast | hsnet fp32 | hsnet bf16 | hsnet bf16 graphs | "
            "bf16 / authors fp32 | bf16 / authors bf16 | peak GPU (hsnet bf16) | where hsnet bf16's time goes |",
            "|---" * 11 + "|"]
    for row in sorted((r for r in rows if r["case"] == "hsnet" and r["batch"] > 1 and "median_s" in r
                       and r.get("task", "episode") == "episode" and r["shots"] == 1 and r["side"] == 400),
                      key=lambda r: (r["backbone"], r["batch"], r["precision"])):
        if row["precision"] != "bf16":
            continue
        base = dict(backbone=row["backbone"], shots=1, batch=row["batch"], side=400)
        theirs32, theirs16 = (find(rows, "authors", precision=p, **base) for p in ("fp32", "bf16"))
        ours32 = find(rows, "hsnet", precision="fp32", **base)
        peak = f"{row['peak_gpu_bytes'] / 2**30:.2f} GiB" if "peak_gpu_bytes" in row else "-"
        graphed = find(rows, "graphs", precision="bf16", **base)
        out.append(f"| {row['backbone']} | {row['batch']} | {fmt_rate(per_second(theirs32))} | "
                   f"{fmt_rate(per_second(theirs16))} | {fmt_rate(per_second(ours32))} | {fmt_rate(per_second(row))} | "
                   f"{fmt_rate(per_second(graphed))} | {speedup(theirs32, row)} | {speedup(theirs16, row)} | {peak} | "
                   f"{stages_text(row)} |")
    out += ["", "## Training steps (ResNet-50, 1-shot, Adam lr 1e-3, the authors' loss; steps/s)", "",
            "Goal: `hsnet train` >= 2x the authors' training steps/s on the same GPU.", "",
            "| precision | batch | side | authors | hsnet | speed-up | where hsnet's time goes | where the authors' goes |",
            "|---" * 8 + "|"]
    for row in (r for r in rows if r["case"] == "train" and "median_s" in r):
        theirs = find(rows, "authors-train", task="train", precision=row["precision"], batch=row["batch"],
                      side=row["side"])
        rate = lambda r: f"{1 / r['median_s']:.2f}" if r else "-"  # noqa: E731
        out.append(f"| {row['precision']} | {row['batch']} | {row['side']} | {rate(theirs)} | {rate(row)} | "
                   f"{speedup(theirs, row)} | {stages_text(row)} | {stages_text(theirs) if theirs else '-'} |")
    out += ["", "## hsnet evaluate with data loading (PASCAL-like 500x375 JPEGs, 1-shot, 400x400)", "",
            "| precision | batch | workers | episodes | episodes/s | where the time goes |", "|---" * 6 + "|"]
    for row in (r for r in rows if r["case"] == "evaluate" and "median_s" in r):
        out.append(f"| {row['precision']} | {row['batch']} | {row.get('workers', '-')} | {row.get('episodes_per_call')} "
                   f"| {fmt_rate(per_second(row))} | {stages_text(row)} |")
    return out + [""]


def row_line(row: dict[str, Any]) -> str:
    setting, case = row_key(row)
    extras = ", ".join(n for n, on in (("compile", setting.compile), ("CUDA graphs", setting.cuda_graphs),
                                      ("default allocator", not setting.retain_memory)) if on)
    precision = f"{setting.precision} ({extras})" if extras else setting.precision
    head = (f"| {setting.backbone} | {precision} | {setting.side} | {setting.shots} | {setting.batch} | "
            f"{setting.mask_cover:g} | {case} |")
    if "median_s" not in row:
        return f"{head} {row.get('skipped', 'not measured')} | | | | | | |"
    peak = f"{row['peak_gpu_bytes'] / 2**30:.2f} GiB" if "peak_gpu_bytes" in row else "-"
    return (f"{head} {fmt_s(row['median_s'])} [{fmt_s(row['min_s'])}] | {fmt_s(row['cpu_median_s'])} | "
            f"{per_second(row):.2f} | {row['repeats']} | {100 * row['background_cpu_share']:.0f}% | {peak} | "
            f"{stages_text(row) or '-'} |")


def write_markdown(path: Path, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    commands = sorted({row["command"] for row in rows if "command" in row})
    dates = sorted(row["measured_at"][:16] for row in rows if "measured_at" in row)
    lines = [f"# hsnet inference benchmark: {info['name']}", "", f"PyTorch {info['torch']}."]
    if dates:
        lines += [f"Measured {dates[0]} to {dates[-1]} UTC with:", "", *(f"    {c}" for c in commands)]
    if info.get("shared"):
        lines += ["", f"**Shared machine:** {info['shared']}"]
    lines += ["", NOTES, ""]
    lines += cuda_tables(rows) if info["slug"].startswith("cuda") else targets_table(rows)
    lines += ["## All measurements", "",
              "(episodes/s: episodes trained per second for the training cases; an evaluate call runs "
              "`episodes_per_call` episodes.)", "",
              "| backbone | precision | side | shots | batch | cover | case | per call | CPU time | episodes/s | "
              "repeats | background | peak GPU | where the time goes |", "|---" * 14 + "|"]
    order = {name: i for i, name in enumerate(BACKBONES)}

    def key(r: dict[str, Any]) -> tuple:
        return (r.get("task", "episode"), order.get(r["backbone"], 9), r["precision"], r["side"], r["shots"],
                r["batch"], r["mask_cover"], r["compile"], r["cuda_graphs"], not r["retain_memory"],
                CASES.index(r["case"]))

    lines += [row_line(row) for row in sorted(rows, key=key)]
    path.write_text("\n".join(lines) + "\n")
