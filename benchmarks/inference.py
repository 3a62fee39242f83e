#!/usr/bin/env python3
"""How long hsnet takes per few-shot episode, against the authors' way, with peak memory.

Each measurement runs in a fresh Python process (clean peak memory, no state
carried between settings): build the model (random weights: speed does not depend
on them), warm up, then time repeated calls and report the median and minimum.

  python benchmarks/inference.py --quick      # ResNet-50, 400x400, batch 1, 1- and 5-shot (a few minutes on 2 CPU cores)
  python benchmarks/inference.py              # every backbone x shots {1,5} x batch {1, larger} x side {400, 800} x precision
  python benchmarks/inference.py --scaling    # ResNet-50: cost against side, shots, batch and mask cover
  python benchmarks/inference.py --backbones resnet101 --sizes 400 --shots 1 --batches 1 32 --precisions bf16 --cuda-graphs

Cases: "episode" segments a query from K supports (hsnet's path: the query's
features once, the supports batched); "cached" is a further query against
supports whose features were kept (what the Predictor does on a repeated
support); "authors" runs the authors' way (benchmarks/authors_way.py: one full
1-shot forward per support); "predictor" is hsnet.Predictor.predict end to end
(images in, mask and heatmaps out) with its support cache hit.

Results merge into benchmarks/results/<device>.json (one row per setting, the
latest measurement wins) and benchmarks/results/<device>.md is rewritten from it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hsnet.limits import MAX_IMAGE_SIDE  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
BACKBONES = ("resnet50", "resnet101", "vgg16")
CASES = ("episode", "cached", "authors", "predictor")
# Issue #6: the authors' implementation on the project's 2-core CPU machines, ResNet-50, 400x400, fp32, batch 1.
AUTHORS_REPORTED_S = {1: 0.6, 5: 3.0}
CPU_TARGETS_S = {("episode", 1): 0.35, ("episode", 5): 0.9, ("cached", 1): 0.25}
CUDA_TARGET = "ResNet-101, 1-shot, 400x400, bf16: under 10 ms per episode at batch 1, over 300 episodes/s at batch 32 (H100)"
SCALING = {"side": (240, 320, 400, 480, 560, 640, 720, 800), "shots": (1, 2, 3, 5, 8),
           "batch": (1, 2, 4, 8), "mask_cover": (0.05, 0.25, 0.5, 1.0)}


@dataclass(frozen=True)
class Setting:
    """One measured configuration; every field is part of the row's identity."""

    backbone: str
    case: str
    shots: int
    batch: int
    side: int
    precision: str
    device: str
    mask_cover: float = 0.25
    compile: bool = False
    cuda_graphs: bool = False
    retain_memory: bool = True

    def label(self) -> str:
        extras = [n for n, on in (("compile", self.compile), ("graphs", self.cuda_graphs),
                                  ("default-allocator", not self.retain_memory)) if on]
        return (f"{self.backbone} {self.case} {self.shots}-shot batch {self.batch} {self.side}px {self.precision} "
                f"cover {self.mask_cover:g}" + (f" ({', '.join(extras)})" if extras else ""))


# ---------------------------------------------------------------- worker (one setting, fresh process)

def _cpu_busy() -> tuple[float, float]:
    """(busy, total) clock ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kib(field: str) -> int | None:
    """A VmRSS/VmHWM line of /proc/self/status in KiB (None off Linux)."""
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Make VmHWM restart from the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def blob_masks(n: int, side: int, cover: float) -> "torch.Tensor":
    """(n, side, side) masks: a centred ellipse covering ``cover`` of the image (1.0: everything)."""
    import math

    import torch

    if cover >= 1:
        return torch.ones(n, side, side)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    # Semi-axes 0.8r and r/0.8: area pi*r^2 of the square's 4 (exact while r/0.8 <= 1, i.e. cover <= 0.5).
    radius = math.sqrt(4 * cover / math.pi)
    mask = ((yy / (radius * 0.8)) ** 2 + (xx / (radius / 0.8)) ** 2 <= 1).float()
    return mask.expand(n, side, side).contiguous()


def run_setting(setting: Setting, repeats: int, warmup: int, max_seconds: float) -> dict[str, Any]:
    """Time one setting in this process; returns the measurement as a JSON-able dict."""
    import torch

    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    import hsnet
    from authors_way import authors_episode
    from hsnet.model import combine_shots
    from hsnet.runtime import InferenceContext, cached_logits, episode_logits, retain_freed_memory

    if setting.retain_memory and setting.device == "cpu":
        retain_freed_memory()

    device = torch.device(setting.device)
    torch.manual_seed(0)
    model = hsnet.build_model(setting.backbone).eval().to(device)
    b, k, side = setting.batch, setting.shots, setting.side
    query = torch.randn(b, 3, side, side, device=device)
    supports = torch.randn(b, k, 3, side, side, device=device)
    masks = blob_masks(b * k, side, setting.mask_cover).view(b, k, side, side).to(device)
    context = InferenceContext.create(device, setting.precision, compile=setting.compile,
                                      cuda_graphs=setting.cuda_graphs)
    context.prepare(model)
    extra: dict[str, Any] = {"mask_pixels": round(float(masks.mean()), 3)}

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if setting.case == "episode":
        def call() -> Any:
            return combine_shots(episode_logits(model, context, query, supports, masks), "vote")
    elif setting.case == "cached":
        with context.inference():
            cached = model.support_features(supports.flatten(0, 1), masks.flatten(0, 1))
        level2 = cached.levels[-1]
        extra["kept_support_positions"] = float((level2.abs().amax(dim=(1, 2)) > 0).float().mean())

        def call() -> Any:
            return combine_shots(cached_logits(model, context, query, cached, k), "vote")
    elif setting.case == "authors":
        with torch.inference_mode():  # the baseline computes the same masks as hsnet's episode
            ours = combine_shots(model.shot_logits(query, supports, masks), "vote")
            extra["agreement_with_hsnet"] = float((authors_episode(model, query, supports, masks) == ours).float().mean())

        def call() -> Any:
            return authors_episode(model, query, supports, masks)
    elif setting.case == "predictor":
        import numpy as np

        predictor = hsnet.Predictor(model, device=device, precision=setting.precision, image_size=side)
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(k + 1)]
        mask_arrays = [m.cpu().numpy().astype(bool) for m in masks[0]]

        def call() -> Any:
            return predictor.predict(images[0], images[1:], mask_arrays)
    else:
        raise ValueError(f"unknown case {setting.case!r}")

    def timed(calls: int) -> list[float]:
        """Seconds of each of ``calls`` calls, waiting for the device to finish each."""
        out = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            sync()
            out.append(time.perf_counter() - start)
        return out

    warm = timed(warmup)
    n = max(3, min(repeats, int(max_seconds / max(warm[-1], 1e-6))))
    rss_before = _status_kib("VmRSS")
    peak_reset = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    busy0, total0, own0 = *_cpu_busy(), _own_cpu_seconds()
    times = timed(n)
    busy1, total1, own1 = *_cpu_busy(), _own_cpu_seconds()
    ticks = os.sysconf("SC_CLK_TCK")
    others = max(0.0, (busy1 - busy0) - (own1 - own0) * ticks) / max(1.0, total1 - total0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        hwm = _status_kib("VmHWM") if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = hwm * 1024 if hwm else None
    return {
        "times_s": times, "warmup_s": warm, "peak_memory_bytes": peak,
        "memory_before_bytes": (rss_before or 0) * 1024 if device.type == "cpu" else None,
        "peak_kind": "CUDA max_memory_allocated" if device.type == "cuda" else
        ("process peak RSS (VmHWM reset before timing)" if peak_reset else "process lifetime peak RSS"),
        "background_cpu_share": round(others, 3), "threads": torch.get_num_threads(), **extra,
    }


# ---------------------------------------------------------------- parent: plan, run, record

def device_info(device: str) -> dict[str, str]:
    import torch

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


def estimated_bytes(s: Setting) -> float:
    """Rough peak: the correlation pyramids held at once (CPU passes, see hsnet/runtime/passes.py), 2.5x for the
    learner's copies, plus the runtime and model (calibrated on ResNet-50 at 400x400: 1.5 GB for 1 pair)."""
    from hsnet.runtime.passes import CPU_PASS_BYTES

    levels = {"resnet50": ((4, 8), (6, 16), (3, 32)), "resnet101": ((4, 8), (23, 16), (3, 32)),
              "vgg16": ((3, 16), (3, 16), (1, 32))}[s.backbone]
    pair = 4 * sum(n * (-(-s.side // stride)) ** 4 for n, stride in levels)
    pairs = s.batch * (1 if s.case == "authors" else s.shots)
    if s.device == "cpu":
        pairs = min(pairs, max(1, CPU_PASS_BYTES // pair))
    return 2.5 * pair * pairs + 1.5e9


def available_bytes(device: str) -> float:
    import torch

    if device == "cuda":
        return 0.9 * torch.cuda.get_device_properties(0).total_memory
    match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return 0.8 * int(match.group(1)) * 1024 if match else float("inf")


def plan(args: argparse.Namespace, device: str) -> list[Setting]:
    settings: list[Setting] = []
    flags = {"compile": args.compile, "cuda_graphs": args.cuda_graphs, "retain_memory": not args.default_allocator}

    def add(**kw: Any) -> None:
        s = Setting(device=device, **{**flags, **kw})
        if s.case == "authors" and s.precision != "fp32":
            return  # the baseline is the authors' fp32
        if s.case == "predictor" and (s.batch != 1 or s.side > MAX_IMAGE_SIDE):
            return  # the predictor takes one query, resized to at most hsnet.limits.MAX_IMAGE_SIDE
        if s not in settings:
            settings.append(s)

    if not args.scaling_only:
        for backbone in args.backbones:
            for side in args.sizes:
                for precision in args.precisions:
                    for shots in args.shots:
                        for batch in args.batches:
                            for case in args.cases:
                                add(backbone=backbone, case=case, shots=shots, batch=batch, side=side,
                                    precision=precision, mask_cover=args.mask_cover)
    if args.scaling or args.scaling_only:
        precision = args.precisions[0]
        base = dict(backbone="resnet50", shots=1, batch=1, side=400, precision=precision, mask_cover=args.mask_cover)
        for side in SCALING["side"]:
            for case in ("episode", "cached"):
                add(**{**base, "case": case, "side": side})
        for shots in SCALING["shots"]:
            add(**{**base, "case": "episode", "shots": shots})
            add(**{**base, "case": "authors", "shots": shots})
        for batch in SCALING["batch"]:
            add(**{**base, "case": "episode", "batch": batch})
        for cover in SCALING["mask_cover"]:
            add(**{**base, "case": "episode", "mask_cover": cover})
    return settings


def wait_until_quiet(limit_s: float, threshold: float = 0.15) -> float:
    """Wait (up to limit_s) for a second in which other processes use under ``threshold`` of the CPU."""
    deadline = time.time() + limit_s
    while True:
        busy0, total0 = _cpu_busy()
        time.sleep(1.0)
        busy1, total1 = _cpu_busy()
        share = (busy1 - busy0) / max(1.0, total1 - total0)
        if share < threshold or time.time() > deadline:
            return share


def measure(setting: Setting, args: argparse.Namespace) -> dict[str, Any]:
    """Run one setting in a fresh interpreter and return its measurement (or why it has none)."""
    need, have = estimated_bytes(setting), available_bytes(setting.device)
    if need > have:
        return {"skipped": f"needs about {need / 2**30:.0f} GiB, {have / 2**30:.0f} GiB available"}
    if args.wait_quiet and setting.device == "cpu":
        wait_until_quiet(args.wait_quiet)
    command = [sys.executable, __file__, "--worker", json.dumps(asdict(setting)), "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--max-seconds", str(args.max_seconds)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"ran over {args.timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"failed: {tail[:200]}"}
    return json.loads(lines[-1])


def summarize(result: dict[str, Any], setting: Setting) -> dict[str, Any]:
    if "skipped" in result:
        return result
    times = result["times_s"]
    median = statistics.median(times)
    return {**result, "median_s": median, "min_s": min(times), "repeats": len(times),
            "per_episode_s": median / setting.batch, "episodes_per_s": setting.batch / median}


def load_rows(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["rows"] if path.exists() else []


def setting_of(row: dict[str, Any]) -> Setting:
    return Setting(**{f.name: row[f.name] for f in fields(Setting) if f.name in row})


# ---------------------------------------------------------------- markdown

def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _find(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    defaults = {"mask_cover": 0.25, "compile": False, "cuda_graphs": False, "retain_memory": True}
    want = {**defaults, **match}
    for row in rows:
        if "median_s" in row and all(row.get(key) == value for key, value in want.items()):
            return row
    return None


def _targets_cpu(rows: list[dict[str, Any]]) -> list[str]:
    base = dict(backbone="resnet50", side=400, precision="fp32", batch=1)
    out = ["## Against the issue's targets (ResNet-50, 400x400, fp32, batch 1)", "",
           "| episode | hsnet | authors' way, measured here | speed-up | authors' code, issue #6 figure | target |",
           "|---|---|---|---|---|---|"]
    for (case, shots), target in CPU_TARGETS_S.items():
        ours = _find(rows, case=case, shots=shots, **base)
        theirs = _find(rows, case="authors", shots=shots, **base)
        speedup = f"{theirs['median_s'] / ours['median_s']:.1f}x" if ours and theirs else "-"
        name = f"{shots}-shot" if case == "episode" else f"{shots}-shot, second query against cached supports"
        reported = _fmt_s(AUTHORS_REPORTED_S.get(shots)) if case == "episode" else "-"
        out.append(f"| {name} | {_fmt_s(ours and ours['median_s'])} | {_fmt_s(theirs and theirs['median_s'])} | "
                   f"{speedup} | {reported} | at most {_fmt_s(target)} |")
    return out + [""]


def _targets_cuda(rows: list[dict[str, Any]]) -> list[str]:
    base = dict(backbone="resnet101", side=400, precision="bf16", shots=1, case="episode")
    one, many = _find(rows, batch=1, **base), _find(rows, batch=32, **base)
    return ["## Against the issue's target", "", f"Target: {CUDA_TARGET}.", "",
            "| batch | ms per episode | episodes/s |", "|---|---|---|",
            *(f"| {b} | {_fmt_s(r and r['per_episode_s'])} | {r['episodes_per_s']:.0f} |" if r else f"| {b} | - | - |"
              for b, r in ((1, one), (32, many))), ""]


def _memory(row: dict[str, Any] | None) -> str:
    peak = row and row.get("peak_memory_bytes")
    return f"{peak / 2**20:.0f} MiB" if peak else "-"


def _row_line(row: dict[str, Any]) -> str:
    s = setting_of(row)
    extras = ", ".join(n for n, on in (("compile", s.compile), ("CUDA graphs", s.cuda_graphs),
                                      ("default allocator", not s.retain_memory)) if on)
    precision = f"{s.precision} ({extras})" if extras else s.precision
    head = f"| {s.backbone} | {precision} | {s.side} | {s.shots} | {s.batch} | {s.case} | {s.mask_cover:g} |"
    if "median_s" not in row:
        return f"{head} {row.get('skipped', 'not measured')} | | | | | |"
    return (f"{head} {_fmt_s(row['median_s'])} [{_fmt_s(row['min_s'])}] | {_fmt_s(row['per_episode_s'])} | "
            f"{row['episodes_per_s']:.2f} | {_memory(row)} | {row['repeats']} | "
            f"{100 * row['background_cpu_share']:.0f}% |")


def _scaling(rows: list[dict[str, Any]]) -> list[str]:
    out = ["## Scaling (ResNet-50, 400x400, 1-shot, batch 1, cover 0.25, except the varied quantity)", "",
           "The 4D correlation and the first learner layers hold (side/8)^4 entries per level-2 layer: doubling the "
           "side multiplies them by 16, while the backbone grows by 4. Shots multiply the support backbone, the "
           "correlation and the learner, not the query backbone. Batch multiplies everything (the CPU is already "
           "busy at batch 1). Mask cover matters on the CPU only, through the sparse correlation.", ""]
    precision = "bf16" if _find(rows, backbone="resnet50", case="episode", precision="bf16") else "fp32"
    base = {"backbone": "resnet50", "side": 400, "shots": 1, "batch": 1, "precision": precision}
    beside = {"side": ("cached", "cached supports"), "shots": ("authors", "authors' way")}
    for variable, values in SCALING.items():
        other = beside.get(variable)
        lines = []
        for value in values:
            match = {**base, variable: value}
            ours = _find(rows, case="episode", **match)
            if ours:
                extra = ""
                if other:
                    row = _find(rows, case=other[0], **match)
                    extra = f" {_fmt_s(row['median_s']) if row else '-'} |"
                lines.append(f"| {value:g} | {_fmt_s(ours['median_s'])} | {_fmt_s(ours['per_episode_s'])} |{extra} "
                             f"{_memory(ours)} |")
        if lines:
            title = variable.replace("_", " ")
            head = f"| {title} | per call | per episode |" + (f" {other[1]} |" if other else "") + " peak memory |"
            out += [f"### {title}", "", head, "|---" * (4 + bool(other)) + "|", *lines, ""]
    return out


def write_markdown(path: Path, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    commands = sorted({row["command"] for row in rows if "command" in row})
    dates = sorted(row["measured_at"][:10] for row in rows if "measured_at" in row)
    lines = [f"# hsnet inference benchmark: {info['name']}", "",
             f"PyTorch {info['torch']}. Measured {dates[0]} to {dates[-1]} with:" if dates else "", "",
             *(f"    {c}" for c in commands), "",
             "Times are per call (median of the repeats, minimum in brackets); a call segments `batch` queries, each "
             "from `shots` supports. \"episode\": hsnet's path; \"cached\": a further query against supports whose "
             "features were kept; \"authors\": the authors' way (one full 1-shot forward per support, permuted "
             "center-pivot convolutions; benchmarks/authors_way.py); \"predictor\": hsnet.Predictor.predict end to "
             "end with its support cache hit. Masks are centred ellipses covering `cover` of the image. CPU rows run "
             "with hsnet.model.retain_freed_memory() (glibc keeps freed memory for the next episode, as "
             "hsnet evaluate and train do) unless marked \"default allocator\". Background: "
             "share of the machine's CPU that other processes used while the row was timed (this machine is shared; "
             "rows with a high share are slower than the machine is).", ""]
    lines += _targets_cuda(rows) if info["slug"].startswith("cuda") else _targets_cpu(rows)
    lines += ["## All measurements", "",
              "| backbone | precision | side | shots | batch | case | cover | per call | per episode | episodes/s | "
              "peak memory | repeats | background |", "|---" * 13 + "|"]
    order = {name: i for i, name in enumerate(BACKBONES)}
    key = lambda r: (order.get(r["backbone"], 9), r["precision"], r["side"], r["shots"], r["batch"],  # noqa: E731
                     CASES.index(r["case"]), r["mask_cover"], r["compile"], r["cuda_graphs"], not r["retain_memory"])
    lines += [_row_line(row) for row in sorted(rows, key=key)]
    lines += [""] + _scaling(rows)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- command line

def parse_args(argv: list[str]) -> argparse.Namespace:
    cuda = _cuda_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if cuda else "cpu")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument("--shots", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--batches", nargs="+", type=int, help="default: 1 and 4 on the CPU, 1 and 32 on CUDA")
    parser.add_argument("--sizes", nargs="+", type=int, default=[400, 800], help="model input sides")
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16", "fp16"),
                        help="default: fp32 on the CPU; fp32, bf16 and fp16 on CUDA")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=["episode", "cached", "authors"])
    parser.add_argument("--mask-cover", type=float, default=0.25, help="fraction of each support image its mask covers")
    parser.add_argument("--compile", action="store_true", help="torch.compile the episode")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay each episode shape from a CUDA graph")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's allocator as it is (by default freed memory is kept for reuse)")
    parser.add_argument("--quick", action="store_true", help="ResNet-50, 400x400, batch 1, 1- and 5-shot")
    parser.add_argument("--scaling", action="store_true", help="also measure cost against side, shots, batch, cover")
    parser.add_argument("--scaling-only", action="store_true", help="only the scaling measurements")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=None, help="default: 1 on the CPU, 3 on CUDA")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="fewer repeats (at least 3) past this")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on one setting after this")
    parser.add_argument("--wait-quiet", type=float, default=0.0,
                        help="before each CPU setting, wait up to this many seconds for other processes to go idle")
    parser.add_argument("--max-background", type=float, default=0.1,
                        help="measure again when other processes used more than this share of the CPU")
    parser.add_argument("--retries", type=int, default=0, help="how many times to measure again (keeps the quietest)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    on_cuda = args.device == "cuda"
    if args.quick:
        args.backbones, args.sizes, args.batches = ["resnet50"], [400], [1]
        args.repeats = min(args.repeats, 5)
    args.batches = args.batches or ([1, 32] if on_cuda else [1, 4])
    args.precisions = args.precisions or (["fp32", "bf16", "fp16"] if on_cuda else ["fp32"])
    args.warmup = args.warmup if args.warmup is not None else (3 if on_cuda else 1)
    return args


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_setting(Setting(**json.loads(args.worker)), args.repeats, args.warmup, args.max_seconds)))
        return 0
    info = device_info(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"{info['slug']}.json", args.out / f"{info['slug']}.md"
    rows = load_rows(json_path)
    command = "python benchmarks/inference.py " + shlex.join(argv) if argv else "python benchmarks/inference.py"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    settings = plan(args, args.device)
    print(f"{len(settings)} settings on {info['name']}; results in {md_path}", flush=True)
    for i, setting in enumerate(settings, 1):
        result = summarize(measure(setting, args), setting)
        for _ in range(args.retries):  # a busy neighbour slows 2 threads far more than its share
            if result.get("background_cpu_share", 0) <= args.max_background:
                break
            again = summarize(measure(setting, args), setting)
            if again.get("background_cpu_share", 1) < result["background_cpu_share"]:
                result = again
        row = {**asdict(setting), **result, "command": command, "commit": commit,
               "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        rows = [r for r in rows if setting_of(r) != setting] + [row]
        json_path.write_text(json.dumps({"device": info, "rows": rows}, indent=1) + "\n")
        write_markdown(md_path, info, rows)
        shown = (f"{_fmt_s(row['median_s'])} per call, {row['episodes_per_s']:.2f} episodes/s, "
                 f"background {100 * row['background_cpu_share']:.0f}%") if "median_s" in row else row["skipped"]
        print(f"[{i}/{len(settings)}] {setting.label()}: {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
