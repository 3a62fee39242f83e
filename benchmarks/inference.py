#!/usr/bin/env python3
"""How long hsnet takes per few-shot episode, timed against the authors' own code in the same process.

  python benchmarks/inference.py --quick --authors-code ../hsnet-authors   # ResNet-50, 400 px, 1/5-shot: ~3 min
  python benchmarks/inference.py --authors-code DIR                       # every backbone x shots x batch x side
  python benchmarks/inference.py --scaling-only                            # cost against side, shots, mask cover
  python benchmarks/inference.py --device cuda --backbones resnet101 --sizes 400 --shots 1 --batches 1 32 \\
         --precisions fp32 bf16 fp16 [--compile] [--cuda-graphs]
  python benchmarks/inference.py --cuda-suite --authors-code DIR          # issue 21 on a GPU (benchmarks/gpu.sh)
  python benchmarks/inference.py --cuda-suite --smoke --device cpu        # the same settings, tiny: do they run?

DIR is a clone of the authors' repository (github.com/juhongm999/hsnet); without it
the authors' case is left out. Each setting runs in a fresh process (plan.py),
where its cases alternate call by call (measure.py, cases.py); results merge into
benchmarks/results/<device>.json and <device>.md (report.py). Besides episodes, a setting
can time training steps (training_cases.py) or ``hsnet evaluate`` with its data loading
(evaluation_cases.py); every case records where its time goes and, on CUDA, its peak GPU memory.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from hsnet.runtime import PRECISIONS
from plan import BACKBONES, CASES, Setting, plan
from report import current_commit, fmt_s, merge_rows, rows_of, write_markdown

ROOT = Path(__file__).resolve().parent.parent
PRECISION_CHOICES = tuple(p for p in ("fp32", "tf32", "bf16", "fp16") if p in PRECISIONS)
RESULTS = ROOT / "benchmarks" / "results"


def run_setting(setting: Setting, names: list[str], authors_code: Path | None, rounds: int,
                warmup: int, options: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Measure one setting in this process: per case, its timing summary, where its time goes (stages, median of
    three), its peak GPU memory, and the setting's facts."""
    from cases import build_cases
    from measure import alternate, peak_gpu_bytes

    if setting.retain_memory and setting.device == "cpu":
        from hsnet.runtime import retain_freed_memory

        retain_freed_memory()
    cases, facts = build_cases(setting, names, authors_code, options)
    probes = facts.pop("stages", {})
    sync = torch.cuda.synchronize if setting.device == "cuda" else (lambda: None)
    samples, background = alternate(cases, rounds, warmup, sync)
    shared = {**facts, "background_cpu_share": background, "threads": torch.get_num_threads()}
    if setting.device == "cuda":
        # TF32 outside hsnet's context, where the authors' code runs (PyTorch's defaults: cuDNN may use TF32)
        shared["tf32_outside_hsnet"] = {"cudnn": torch.backends.cudnn.allow_tf32,
                                        "matmul": torch.backends.cuda.matmul.allow_tf32}
    rows = {name: {**s.summary(), "wall_s": s.wall, "cpu_s": s.cpu, **shared} for name, s in samples.items()}
    for name in rows:
        if name in probes:
            runs = [probes[name]() for _ in range(3)]
            rows[name]["stages_s"] = {stage: statistics.median(r[stage] for r in runs) for stage in runs[0]}
        if setting.device == "cuda":
            rows[name]["peak_gpu_bytes"] = peak_gpu_bytes(cases[name])
    return rows


def device_info(device: str) -> dict[str, str]:
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
        return {"slug": "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"), "name": name,
                "torch": torch.__version__, "cuda": str(torch.version.cuda)}
    model = platform.processor() or "cpu"
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        model = match.group(1).strip() if match else model
    except OSError:
        pass
    threads = torch.get_num_threads()
    slug = "cpu-" + re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") + f"-{threads}t"
    return {"slug": slug, "name": f"{model}, {threads} threads ({os.cpu_count()} cores visible)",
            "torch": torch.__version__}


def measure_in_child(setting: Setting, names: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Run one setting in a fresh interpreter; on failure every case gets the reason instead of times."""
    job = {"setting": asdict(setting), "cases": names,
           "options": {"episodes": args.evaluate_episodes, "workers": args.evaluate_workers}}
    command = [sys.executable, __file__, "--worker", json.dumps(job),
               "--rounds", str(args.rounds), "--warmup", str(args.warmup)]
    if args.authors_code:
        command += ["--authors-code", str(args.authors_code)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {name: {"skipped": f"ran over {args.timeout:g} s"} for name in names}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {name: {"skipped": f"failed: {tail[:200]}"} for name in names}
    return json.loads(lines[-1])


def parse_args(argv: list[str]) -> argparse.Namespace:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-code", type=Path, help="a clone of the authors' repository (the baseline)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if cuda else "cpu")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--batches", nargs="+", type=int, help="default: 1 and 4 on the CPU, 1 and 32 on CUDA")
    parser.add_argument("--sizes", nargs="+", type=int, default=[400, 640], help="model input sides")
    parser.add_argument("--precisions", nargs="+", choices=PRECISION_CHOICES,
                        help="default: fp32 on the CPU; every precision on CUDA")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--mask-cover", type=float, default=0.25, help="fraction of each support image its mask covers")
    parser.add_argument("--compile", action="store_true", help="torch.compile hsnet's episode")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay hsnet's episode from a CUDA graph")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (by default freed memory is kept for reuse)")
    parser.add_argument("--quick", action="store_true", help="ResNet-50, 400x400, batch 1, 1- and 5-shot")
    parser.add_argument("--cuda-suite", action="store_true",
                        help="issue 21's measurements: latency at batch 1 (ResNet-101 and -50, 1/5-shot, every "
                             "precision), throughput at batch 32, training steps and hsnet evaluate")
    parser.add_argument("--throughput-batch", type=int, default=32, help="batch of the throughput settings")
    parser.add_argument("--throughput-precisions", nargs="*", choices=PRECISION_CHOICES, default=[],
                        help="1-shot settings at --throughput-batch in these precisions")
    parser.add_argument("--train-precisions", nargs="*", choices=PRECISION_CHOICES, default=[],
                        help="time training steps (ResNet-50, the authors' recipe) in these precisions")
    parser.add_argument("--train-batch", type=int, default=20)
    parser.add_argument("--train-side", type=int, default=400)
    parser.add_argument("--evaluate-precisions", nargs="*", choices=PRECISION_CHOICES, default=[],
                        help="time hsnet evaluate with data loading (PASCAL-like 500x375 JPEGs) in these precisions")
    parser.add_argument("--evaluate-batch", type=int, default=16)
    parser.add_argument("--evaluate-episodes", type=int, default=128)
    parser.add_argument("--evaluate-workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--smoke", action="store_true",
                        help="the same settings shrunk to seconds (64 px, ResNet-50, one round): checks that they run")
    parser.add_argument("--scaling", action="store_true", help="also measure cost against side, shots, cover")
    parser.add_argument("--scaling-only", action="store_true", help="only the scaling measurements")
    parser.add_argument("--rounds", type=int, default=9, help="measured calls of each case")
    parser.add_argument("--warmup", type=int, default=None, help="unrecorded rounds first (default: 1 CPU, 3 CUDA)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on one setting after this")
    parser.add_argument("--shared", default="", help="say in the results that other work shared the machine")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.backbones, args.sizes, args.batches = ["resnet50"], [400], [1]
        args.rounds = min(args.rounds, 7)
    if args.cuda_suite:
        args.backbones, args.sizes, args.batches, args.shots = ["resnet101", "resnet50"], [400], [1], [1, 5]
        args.cases = [case for case in CASES if case != "cached"]
        args.throughput_precisions = args.throughput_precisions or ["fp32", "bf16"]
        args.train_precisions = args.train_precisions or ["fp32", "bf16"]
        args.evaluate_precisions = args.evaluate_precisions or ["bf16"]
    args.batches = args.batches or ([1, 32] if args.device == "cuda" else [1, 4])
    args.precisions = args.precisions or (list(PRECISION_CHOICES) if args.device == "cuda" else ["fp32"])
    if args.device == "cpu":  # half precision in float16 needs a GPU
        for name in ("precisions", "throughput_precisions", "train_precisions", "evaluate_precisions"):
            setattr(args, name, [p for p in getattr(args, name) if p != "fp16"])
    if args.smoke:
        args.backbones, args.sizes, args.shots, args.batches = args.backbones[-1:], [64], args.shots[:1], [1]
        args.throughput_batch, args.train_batch, args.train_side = 2, 2, 64
        args.evaluate_batch, args.evaluate_episodes, args.evaluate_workers = 2, 4, 1
        args.rounds, args.warmup = 1, 0
    args.warmup = args.warmup if args.warmup is not None else (3 if args.device == "cuda" else 1)
    if args.authors_code and not (args.authors_code / "model" / "hsnet.py").is_file():
        parser.error(f"--authors-code {args.authors_code} holds no model/hsnet.py; give a clone of the authors' repository")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.worker:
        job = json.loads(args.worker)
        print(json.dumps(run_setting(Setting(**job["setting"]), job["cases"], args.authors_code, args.rounds,
                                     args.warmup, job.get("options"))))
        return 0
    info = {**device_info(args.device), "shared": args.shared}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"{info['slug']}.json", args.out / f"{info['slug']}.md"
    command = "python benchmarks/inference.py " + shlex.join(argv)
    commit = current_commit()
    settings = plan(args)
    print(f"{len(settings)} settings on {info['name']}; results in {md_path}", flush=True)
    for i, setting in enumerate(settings, 1):
        names = setting.cases(args.cases, args.authors_code is not None)
        measured = measure_in_child(setting, names, args)
        when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        rows = merge_rows(json_path, info, rows_of(setting, measured, command=command, commit=commit,
                                                   measured_at=when))
        write_markdown(md_path, info, rows)
        shown = ", ".join(f"{name} {fmt_s(r['median_s'])}" if "median_s" in r else f"{name} {r['skipped']}"
                          for name, r in measured.items())
        print(f"[{i}/{len(settings)}] {setting.label()}: {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
