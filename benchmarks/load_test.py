"""Load test of the Gradio app: many concurrent clients on 127.0.0.1, every answer checked, memory watched.

Starts ``app.py`` (through ``loadkit.py`` beside this file) in a subprocess on a free local
port with a seeded random ResNet-50 checkpoint (nothing is downloaded), lets
``--clients`` gradio_client clients send ``/segment`` requests until ``--requests`` are
answered or ``--max-seconds`` pass, and checks every answer: the mask file must have
the query's size and hold only 0 and 255. Every request sends a new query photo (of
four sizes) with the same support and mask, as when people try the app's example
with their own photos, so the app's support cache is used; ``--same-queries`` cycles
through four photos instead, so that identical answers are served at once (each must
still arrive whole: see docs/robustness.md).

Memory: the server's resident size is read after a warm-up in which every client has
been answered once (each client session keeps its last result in Gradio state),
sampled during the run and read a few seconds after the last answer (the app returns
freed heap to the system itself once requests end); both ends are also read after the
harness has made the server return all its freed heap (``malloc_trim`` on SIGUSR1),
which is the memory actually in use. The tolerance applies to that.

``--image-size`` is the model's input side. At 400 (the app's own setting) the app
runs as it is; another value builds the app's predictors at that size (the app has
no setting for it), so that hundreds of requests fit in minutes on a 2-core CPU while
every other code path is the app's.

``--new-sessions`` sends every request from a new Gradio session (what each new visitor
costs until their session expires), ``--query-size 6000x6600`` sends large photos that
compress well, and ``--hostile`` then sends requests a visitor can make within the upload
limit (40 brush layers, a 25 MB data: URL, a data: URL bomb) and checks each is refused
without a memory spike. ``latency`` times one visitor's Segment, 1-shot and 5-shot;
``fairness`` times Segment alone and while another visitor's Label many runs.

Results go to ``benchmarks/results/load.json`` and ``load.md``; the exit status is 1
when any request failed, any answer was wrong, memory in use grew beyond the
tolerance, or a hostile request was not refused within its budget.

    python benchmarks/load_test.py                            # 16 clients, 320 requests, 64 px
    python benchmarks/load_test.py --image-size 400 --requests 64
    python benchmarks/load_test.py --new-sessions --query-size 6000x6600 --hostile --out benchmarks/results/load-soak
    python benchmarks/load_test.py latency                    # 1-shot and 5-shot at 400 px
    python benchmarks/load_test.py fairness --photos 50       # Segment beside a Label many of 50 photos, 400 px
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from loadkit import (
    APP_IMAGE_SIZE,
    QUERY_SIZES,
    SETTLE_S,
    Report,
    app_server,
    make_checkpoint,
    make_inputs,
    run_fairness,
    run_hostile,
    run_latency,
    run_load,
)

ROOT = Path(__file__).resolve().parent.parent
APP_FILE = ROOT / "app.py"
RESULTS = ROOT / "benchmarks" / "results"


def latency_markdown(results: list[dict], command: str, machine: str) -> str:
    """The latency results as the table docs/performance.md quotes."""
    lines = [f"# App latency ({time.strftime('%Y-%m-%d')})", "", f"`{command}` on {machine}.", "",
             "| supports | first request (new supports) | next requests (cached supports): median | min | max "
             "| the model alone, in-process: new / cached supports |",
             "|---|---|---|---|---|---|"]
    for r in results:
        c, m = r["cached_supports_s"], r["model_s"]
        lines.append(f"| {r['shots']} | {r['new_supports_s']:.2f} s | {c['median']:.2f} s | {c['min']:.2f} s | "
                     f"{c['max']:.2f} s | {m['new_supports']:.2f} s / {m['cached_supports_median']:.2f} s |")
    return "\n".join([*lines, ""])


# ------------------------------------------------------------------------------------------ results


def markdown(report: Report) -> str:
    """The report as the Markdown table docs/robustness.md quotes."""
    lat, rss = report.latency_s, report.rss_mb
    return "\n".join([
        f"# App load test ({time.strftime('%Y-%m-%d')})",
        "",
        f"`{command_line(report)}` on {report.machine}; the app on 127.0.0.1, one support with an uploaded mask "
        f"(cached after the first request), {report.distinct_queries} distinct query photos "
        + (f"of {report.query_size[0]}x{report.query_size[1]} pixels" if report.query_size else "of four sizes")
        + (", every request from a new session." if report.new_sessions else ", each client keeping its session."),
        "",
        "| clients | requests answered | failed | wrong | wall | throughput | p50 | p95 | max |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {report.clients} | {report.answered} / {report.requested} | {report.failed} | {report.wrong} | "
        f"{report.wall_seconds:.0f} s | {report.throughput_per_s:.2f} req/s | {lat.get('p50', 0):.2f} s | "
        f"{lat.get('p95', 0):.2f} s | {lat.get('max', 0):.2f} s |",
        "",
        f"Server memory in use (resident after returning freed heap to the system): "
        f"{rss['in_use_after_warmup']:.0f} MiB after the warm-up, {rss['in_use_end']:.0f} MiB at the end: "
        f"growth {rss['in_use_growth']:+.0f} MiB (tolerance {report.rss_tolerance_mb:.0f} MiB).",
        "",
        f"Resident memory as the system sees it (what a host kills a Space by): {rss['after_warmup']:.0f} MiB after "
        f"the warm-up, {rss['halfway']:.0f} MiB halfway, {rss['end']:.0f} MiB {SETTLE_S:.0f} s after the last "
        f"answer ({rss['growth']:+.0f} MiB), {rss['peak']:.0f} MiB at its peak while requests ran "
        f"({rss['peak'] - rss['after_warmup']:+.0f} MiB).",
        "",
        *(hostile_table(report.hostile) if report.hostile else []),
        f"Result: **{'pass' if report.passed else 'FAIL'}**" + (" (stopped by the time limit)" if report.stopped_by_time else ""),
        *(["", "Errors:", *[f"- {e}" for e in report.errors]] if report.errors else []),
        "",
    ])


def command_line(report: Report) -> str:
    """The command that reproduces ``report``."""
    words = ["python benchmarks/load_test.py", f"--clients {report.clients}", f"--requests {report.requested}",
             f"--max-seconds {report.max_seconds:.0f}", f"--image-size {report.image_size}"]
    if report.distinct_queries == len(QUERY_SIZES) and not report.query_size:
        words.append("--same-queries")
    if report.new_sessions:
        words.append("--new-sessions")
    if report.query_size:
        words.append(f"--query-size {report.query_size[0]}x{report.query_size[1]}")
    if report.hostile:
        words.append("--hostile")
    words.append(f"--rss-tolerance-mb {report.rss_tolerance_mb:.0f}")
    return " ".join(words)


def hostile_table(cases: list[dict]) -> list[str]:
    """Markdown lines for the hostile requests of ``run_hostile``."""
    lines = ["Hostile requests (each followed by an ordinary request):", "",
             "| request | outcome | resident before | peak while it ran | still serving | pass |", "|---|---|---|---|---|---|"]
    for case in cases:
        outcome = case["outcome"].replace("|", "/").replace("\n", " ")[:120]
        lines.append(f"| {case['case']} | {outcome} | {case['rss_before_mb']:.0f} MiB | {case['rss_peak_mb']:.0f} MiB "
                     f"(budget +{case['peak_budget_mb']:.0f}) | {'yes' if case['still_serving'] else 'NO'} | "
                     f"{'yes' if case['passed'] else 'NO'} |")
    return [*lines, ""]


def size_argument(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as a pair of ints (argparse type)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 6000x6600") from None
    return width, height


def machine_line() -> str:
    """The machine a served run is measured on, as its reports name it (load average at the start)."""
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}, load average "
            f"{os.getloadavg()[0]:.1f} at the start")


def write_report(out: Path, record: dict, markdown: str) -> None:
    """``out``.json (the record) and ``out``.md (the table), and the table on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    print(markdown)


@contextlib.contextmanager
def seeded_workdir(prefix: str) -> Iterator[tuple[Path, Path]]:
    """A temporary folder holding a seeded checkpoint, removed afterwards: (folder, checkpoint)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir, make_checkpoint(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def latency(args: argparse.Namespace) -> int:
    """The ``latency`` command: serve the app with a seeded checkpoint and time one visitor's requests."""
    machine = machine_line()
    command = f"python benchmarks/load_test.py latency --shots {' '.join(map(str, args.shots))} " \
              f"--repeats {args.repeats} --image-size {args.image_size}"
    with seeded_workdir("hsnet-latency-") as (workdir, weights):
        with app_server(APP_FILE, weights, args.image_size, workdir) as server:
            results = run_latency(server, str(weights), workdir, args.shots, args.repeats, args.image_size)
    write_report(args.out, {"command": command, "machine": machine, "image_size": args.image_size, "results": results},
                 latency_markdown(results, command, machine))
    return 0


def fairness_markdown(result: dict, command: str, machine: str) -> str:
    """The fairness run as the table docs/robustness.md quotes."""
    alone, during = result["segment_alone_s"], result["segment_during_s"]
    return "\n".join([
        f"# Segment beside Label many ({time.strftime('%Y-%m-%d')})", "", f"`{command}` on {machine}.", "",
        "| Segment alone: median / max | Segment during Label many: median / max | photos labelled meanwhile | "
        "Label many | photos labelled |",
        "|---|---|---|---|---|",
        f"| {statistics.median(alone):.2f} s / {max(alone):.2f} s | {statistics.median(during):.2f} s / "
        f"{max(during):.2f} s | {', '.join(map(str, result['photos_meanwhile']))} | {result['label_many_s']:.0f} s | "
        f"{result['labelled']} / {result['photos']} |", ""])


def fairness(args: argparse.Namespace) -> int:
    """The ``fairness`` command: Segment timed alone, then while a Label many of ``--photos`` runs."""
    machine = machine_line()
    command = f"python benchmarks/load_test.py fairness --photos {args.photos} --segments {args.segments} " \
              f"--image-size {args.image_size}"
    with seeded_workdir("hsnet-fairness-") as (workdir, weights):
        inputs = make_inputs(workdir, 2 * args.segments)
        with app_server(APP_FILE, weights, args.image_size, workdir) as server:
            result = run_fairness(server, inputs, str(weights), workdir, args.photos, args.segments)
    write_report(args.out, {"command": command, "machine": machine, "image_size": args.image_size, **result},
                 fairness_markdown(result, command, machine))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    latency_parser = sub.add_parser("latency", help="time Segment to pictures for one visitor, 1-shot and 5-shot")
    latency_parser.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    latency_parser.add_argument("--repeats", type=int, default=5, help="requests with cached supports per K")
    latency_parser.add_argument("--image-size", type=int, default=APP_IMAGE_SIZE)
    latency_parser.add_argument("--out", type=Path, default=RESULTS / "load-latency", help="writes OUT.json and OUT.md")
    fairness_parser = sub.add_parser("fairness", help="time Segment alone and beside another visitor's Label many")
    fairness_parser.add_argument("--photos", type=int, default=50, help="photos in the Label many request")
    fairness_parser.add_argument("--segments", type=int, default=5, help="Segments timed alone, then as many during")
    fairness_parser.add_argument("--image-size", type=int, default=APP_IMAGE_SIZE)
    fairness_parser.add_argument("--out", type=Path, default=RESULTS / "load-fairness",
                                 help="writes OUT.json and OUT.md")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=320, help="requests after the warm-up (one per client)")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop issuing requests after this long")
    parser.add_argument("--image-size", type=int, default=64, help=f"model input side (the app uses {APP_IMAGE_SIZE})")
    parser.add_argument("--rss-tolerance-mb", type=float, default=64.0,
                        help="allowed growth of the server's memory in use from after the warm-up to the end")
    parser.add_argument("--same-queries", action="store_true",
                        help="cycle through 4 query photos instead of sending a new photo with every request")
    parser.add_argument("--new-sessions", action="store_true",
                        help="send every request from a new Gradio session, as new visitors do")
    parser.add_argument("--query-size", type=size_argument, default=None,
                        help="send large photos of WIDTHxHEIGHT (compressible PNGs) instead of the four small sizes")
    parser.add_argument("--hostile", action="store_true",
                        help="then send hostile requests (40 brush layers, a 25 MB data: URL, a data: URL bomb)")
    parser.add_argument("--layer-side", type=int, default=3000, help="side of the transparent brush layers sent 40 times")
    parser.add_argument("--peak-budget-mb", type=float, default=512.0,
                        help="allowed rise of the server's resident memory while a hostile request runs")
    parser.add_argument("--out", type=Path, default=RESULTS / "load", help="writes OUT.json and OUT.md")
    args = parser.parse_args(argv)
    if args.command == "latency":
        return latency(args)
    if args.command == "fairness":
        return fairness(args)
    with seeded_workdir("hsnet-load-") as (workdir, weights):
        inputs = make_inputs(workdir, len(QUERY_SIZES) if args.same_queries else args.clients + args.requests,
                             args.query_size)
        with app_server(APP_FILE, weights, args.image_size, workdir) as server:
            report = run_load(server, inputs, str(weights), args.clients, args.requests, args.max_seconds,
                              workdir / "downloads", args.rss_tolerance_mb, args.image_size, args.new_sessions)
            if args.hostile:
                report.hostile = run_hostile(server, inputs, str(weights), workdir / "downloads", workdir,
                                             args.layer_side, args.peak_budget_mb)
        if not report.passed:
            print("the app's log ends with:\n" + "\n".join(server.log.read_text(errors="replace").splitlines()[-60:]),
                  file=sys.stderr)
    write_report(args.out, {**asdict(report), "passed": report.passed}, markdown(report))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
