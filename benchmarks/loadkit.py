"""Load and soak testing of a served hsnet app: app.py on 127.0.0.1, gradio_client visitors, answers checked, memory watched.

A test and benchmark harness, not part of the package: ``benchmarks/load_test.py`` imports it as its
neighbour and the tests through pytest's ``pythonpath`` (pyproject.toml). ``app_server`` runs the app in
a subprocess (``python benchmarks/loadkit.py APP PORT``) on a free local port with a given checkpoint;
``run_load`` sends ``/segment`` requests from many clients (or new sessions), ``run_latency`` times one
visitor, ``run_hostile`` sends requests a visitor can make within the upload limit and checks each is
refused without a memory spike.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import runpy
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

APP_IMAGE_SIZE = 400  # what app.py's predictors use by default
QUERY_SIZES = ((333, 250), (640, 427), (250, 375), (512, 512))
SUPPORT_SIZE = (320, 240)
START_TIMEOUT = 180.0
SETTLE_S = 3.0  # after the last answer, before the resident size is read: longer than the app's trim interval


# ------------------------------------------------------------------------------------------ the server


def serve(app_file: str, port: int) -> None:
    """Run ``app_file`` (app.py) as __main__ in this process (its input side comes from $HSNET_IMAGE_SIZE).

    SIGUSR1 makes the process return the heap memory it has freed to the system (glibc
    ``malloc_trim``), so that a load test can tell memory in use from memory the allocator
    merely keeps: freed memory spread over the server's threads otherwise looks like growth.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    signal.signal(signal.SIGUSR1, lambda *_: libc.malloc_trim(0))
    sys.argv = [app_file, "--port", str(port)]
    sys.path[0] = str(Path(app_file).resolve().parent)  # as `python app.py` has it, not this file's folder
    runpy.run_path(app_file, run_name="__main__")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def trimmed_rss_mb(pid: int) -> float:
    """Resident memory of the ``serve`` process ``pid`` after it has returned its freed heap to the system."""
    os.kill(pid, signal.SIGUSR1)
    time.sleep(1.0)
    return rss_mb(pid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running app: its address, process id and log file."""

    url: str
    pid: int
    log: Path


@contextmanager
def running_server(command: list[str], env: dict[str, str], log: Path, url: str,
                   timeout: float = START_TIMEOUT, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    """Run ``command`` (output to ``log``) until ``url`` answers, yield it, and stop it when the block ends.

    Raises RuntimeError with the log's end when the process exits or does not answer within ``timeout`` s.
    """
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                why = f"exited with status {process.returncode}" if process.returncode is not None else \
                    f"did not answer within {timeout:.0f} s"
                raise RuntimeError(f"{Path(command[1]).name} {why} on {url}:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def app_server(app_file: Path, weights: Path, image_size: int, workdir: Path) -> Iterator[Server]:
    """``app_file`` (app.py) on a free 127.0.0.1 port with ``HSNET_WEIGHTS=weights``, stopped when the block ends."""
    port = free_port()
    env = {**os.environ, "HSNET_WEIGHTS": str(weights), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(workdir / "server-files"),
           "PYTHONUNBUFFERED": "1", "HSNET_IMAGE_SIZE": str(image_size)}
    command = [sys.executable, str(Path(__file__).resolve()), str(app_file), str(port)]
    url, log = f"http://127.0.0.1:{port}/", workdir / "app.log"
    with running_server(command, env, log, url, cwd=app_file.parent) as process:
        yield Server(url, process.pid, log)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def make_checkpoint(folder: Path) -> Path:
    """A ResNet-50 HSNet with seeded random weights as a Hub folder (its masks are arbitrary but well-formed)."""
    import torch

    import hsnet
    from hsnet.hub import save_pretrained

    torch.manual_seed(0)
    return save_pretrained(hsnet.build_model("resnet50"), folder / "checkpoint")


# ------------------------------------------------------------------------------------------ the clients


@dataclass
class Inputs:
    """Query files (with their sizes), one support and its mask."""

    queries: list[tuple[Path, tuple[int, int]]]
    support: Path
    mask: Path


def large_photo(size: tuple[int, int], seed: int) -> Image.Image:
    """A large photo that compresses well (smooth colour ramps with a small noisy patch that makes it unique).

    Visitors' large photos are cheap to send and costly to hold: a 6000x6600 PNG of this kind is
    about 0.1 MB on the wire and 119 MB decoded.
    """
    width, height = size
    ramp_x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ramp_y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[..., 0] = ramp_x
    pixels[..., 1] = ramp_y
    pixels[..., 2] = (seed * 37) % 256
    pixels[:32, :32] = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def make_inputs(folder: Path, distinct_queries: int = len(QUERY_SIZES),
                large_size: tuple[int, int] | None = None) -> Inputs:
    """``distinct_queries`` photos (noise cycling through QUERY_SIZES, or ``large_photo``s of ``large_size``),
    and one support with a rectangle marked."""
    rng = np.random.default_rng(0)
    queries = []
    for i in range(distinct_queries):
        if large_size is not None:
            path = folder / f"query-{i}.png"
            large_photo(large_size, i).save(path)
            queries.append((path, large_size))
            continue
        width, height = QUERY_SIZES[i % len(QUERY_SIZES)]
        path = folder / f"query-{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
        queries.append((path, (width, height)))
    width, height = SUPPORT_SIZE
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / "support.png")
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    return Inputs(queries, folder / "support.png", folder / "mask.png")


def connect(url: str, downloads: Path):
    """A gradio_client Client of the app, saving the files it receives under ``downloads``."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(downloads), analytics_enabled=False)


def segment(client, query: Path, support: Path, mask: Path, weights: str) -> tuple:
    """One /segment request with an uploaded support mask, as the app's API documents it."""
    from gradio_client import handle_file

    return client.predict(query=handle_file(str(query)), weights=weights, rule="vote",
                          support_1={"background": handle_file(str(support)), "layers": [], "composite": None},
                          mask_1=handle_file(str(mask)), api_name="/segment")


def check_answer(result: tuple, size: tuple[int, int]) -> str | None:
    """None when the answer's mask file has ``size`` and only 0/255 values; else what is wrong."""
    with Image.open(result[2]) as mask:
        if mask.size != size:
            return f"mask is {mask.size[0]}x{mask.size[1]}, query is {size[0]}x{size[1]}"
        if not set(np.unique(np.asarray(mask.convert("L")))) <= {0, 255}:
            return "mask holds values other than 0 and 255"
    return None


@dataclass
class Record:
    """One request: when it started (seconds into the run), how long it took, and what went wrong if anything."""

    client: int
    start: float
    seconds: float
    error: str | None = None


@dataclass
class Report:
    clients: int
    requested: int
    max_seconds: float
    image_size: int
    distinct_queries: int
    answered: int = 0
    failed: int = 0
    wrong: int = 0
    wall_seconds: float = 0.0
    throughput_per_s: float = 0.0
    latency_s: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    rss_tolerance_mb: float = 0.0  # on the memory in use (after malloc_trim), not the raw resident size
    rss_series_mb: list[int] = field(default_factory=list)  # every 10 s from the end of the warm-up
    stopped_by_time: bool = False
    errors: list[str] = field(default_factory=list)
    machine: str = ""
    new_sessions: bool = False  # every request from a new Gradio session, as visitors arrive
    query_size: list[int] | None = None  # [width, height] of every query when large photos were sent
    hostile: list[dict] = field(default_factory=list)  # see run_hostile

    @property
    def passed(self) -> bool:
        return (self.failed == 0 and self.wrong == 0 and self.rss_mb.get("in_use_growth", 0.0) <= self.rss_tolerance_mb
                and all(case["passed"] for case in self.hostile))


def run_load(server: Server, inputs: Inputs, weights: str, clients: int, requests: int, max_seconds: float,
             downloads: Path, rss_tolerance_mb: float, image_size: int, new_sessions: bool = False) -> Report:
    """Warm up (one answered request per client), then ``requests`` more from ``clients`` threads; checks all.

    With ``new_sessions`` every request comes from a new Gradio session (what each visitor costs the
    server until their session expires), else each client keeps its session.
    """
    connections = [connect(server.url, downloads) for _ in range(clients)]
    sizes = {size for _, size in inputs.queries}
    report = Report(clients=clients, requested=requests, max_seconds=max_seconds, image_size=image_size,
                    distinct_queries=len(inputs.queries),
                    rss_tolerance_mb=rss_tolerance_mb, new_sessions=new_sessions,
                    query_size=list(sizes.pop()) if len(sizes) == 1 else None,
                    machine=f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}")

    def request(index: int, number: int, t0: float) -> Record:
        query, size = inputs.queries[number % len(inputs.queries)]
        if new_sessions:
            connections[index].reset_session()
        start = time.perf_counter()
        try:
            problem = check_answer(segment(connections[index], query, inputs.support, inputs.mask, weights), size)
            return Record(index, start - t0, time.perf_counter() - start, problem and f"wrong: {problem}")
        except Exception as exc:  # noqa: BLE001 - a load test counts every failure, whatever its kind
            return Record(index, start - t0, time.perf_counter() - start, f"failed: {type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(clients) as pool:
        warm = list(pool.map(lambda i: request(i, i, time.perf_counter()), range(clients)))

    trimmed_before = trimmed_rss_mb(server.pid)
    rss_before = rss_mb(server.pid)
    t0 = time.perf_counter()
    samples = [(0.0, rss_before)]  # (seconds into the run, MiB)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append((time.perf_counter() - t0, rss_mb(server.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    issued = iter(range(requests))
    lock = threading.Lock()
    deadline = t0 + max_seconds

    def worker(index: int) -> list[Record]:
        records = []
        while time.perf_counter() < deadline:
            with lock:
                number = next(issued, None)
            if number is None:
                break
            records.append(request(index, clients + number, t0))  # warm-up used queries 0..clients-1
        return records

    with ThreadPoolExecutor(clients) as pool:
        records = [r for batch in pool.map(worker, range(clients)) for r in batch]
    wall = time.perf_counter() - t0
    time.sleep(SETTLE_S)  # the app returns freed heap once requests end (hsnet.serving.memory)
    done.set()
    sampler.join()
    rss_after = rss_mb(server.pid)
    trimmed_after = trimmed_rss_mb(server.pid)

    latencies = sorted(r.seconds for r in records)
    everything = warm + records  # warm-up answers are checked too, but not timed
    report.answered = sum(r.error is None for r in records)
    report.failed = sum(bool(r.error and r.error.startswith("failed")) for r in everything)
    report.wrong = sum(bool(r.error and r.error.startswith("wrong")) for r in everything)
    report.errors = sorted({r.error for r in everything if r.error})[:10]
    report.stopped_by_time = len(records) < requests
    report.wall_seconds = round(wall, 2)
    report.throughput_per_s = round(len(records) / wall, 3) if wall else 0.0
    if latencies:
        report.latency_s = {"p50": round(statistics.median(latencies), 3), "p95": round(_percentile(latencies, 95), 3),
                            "max": round(latencies[-1], 3), "mean": round(statistics.fmean(latencies), 3)}
    halfway = sorted(r.start + r.seconds for r in records)[len(records) // 2] if records else 0.0
    report.rss_mb = {"after_warmup": round(rss_before, 1),
                     "halfway": round(min(samples, key=lambda s: abs(s[0] - halfway))[1], 1),
                     "end": round(rss_after, 1), "peak": round(max(m for _, m in samples), 1),
                     "growth": round(rss_after - rss_before, 1),
                     "in_use_after_warmup": round(trimmed_before, 1), "in_use_end": round(trimmed_after, 1),
                     "in_use_growth": round(trimmed_after - trimmed_before, 1)}
    report.rss_series_mb = [round(m) for t, m in samples[::20]]
    return report


# ------------------------------------------------------------------------------------------ latency


def segment_shots(client, query: Path, supports: list[tuple[Path, Path]], weights: str) -> tuple:
    """One /segment request with K supports, each with an uploaded mask."""
    from gradio_client import handle_file

    values = {}
    for i, (image, mask) in enumerate(supports, start=1):
        values[f"support_{i}"] = {"background": handle_file(str(image)), "layers": [], "composite": None}
        values[f"mask_{i}"] = handle_file(str(mask))
    return client.predict(query=handle_file(str(query)), weights=weights, rule="vote", api_name="/segment", **values)


def run_latency(server: Server, weights: str, workdir: Path, shots: Sequence[int], repeats: int,
                image_size: int) -> list[dict]:
    """Seconds from sending Segment to holding every picture of the answer, for K supports, as one visitor.

    Per K: the first request with new supports (their features are computed), then ``repeats``
    requests with a new query photo each and the same supports (their features come from the cache).
    The client uploads the query and supports and downloads the result pictures, as a browser does;
    on 127.0.0.1 the transfers take milliseconds, so this is the page's wait less the drawing.
    After each request the same prediction is timed in this process with the same weights
    (``model_s``), so that the share of the model stays visible on a busy machine.
    """
    import hsnet

    client = connect(server.url, workdir / "downloads")
    predictor = hsnet.Predictor(hsnet.from_pretrained(weights), device="cpu", image_size=image_size)
    rng = np.random.default_rng(3)
    results = []
    for k in shots:
        supports = []
        for i in range(k):
            image, mask = workdir / f"support-{k}-{i}.jpg", workdir / f"mask-{k}-{i}.png"
            Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(image, quality=90)
            marked = np.zeros((375, 500), np.uint8)
            marked[90 + 10 * i: 280, 120: 380 - 10 * i] = 255
            Image.fromarray(marked).save(mask)
            supports.append((image, mask))
        seconds, model = [], []
        predictor.clear_cache()
        for r in range(repeats + 1):
            query = workdir / f"query-{k}-{r}.jpg"
            Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(query, quality=90)
            start = time.perf_counter()
            answer = segment_shots(client, query, supports, weights)
            seconds.append(time.perf_counter() - start)
            problem = check_answer(answer, (640, 480))
            if problem:
                raise RuntimeError(f"{k}-shot answer is wrong: {problem}")
            start = time.perf_counter()
            predictor.predict(query, [image for image, _ in supports], [mask for _, mask in supports])
            model.append(time.perf_counter() - start)
        cached = sorted(seconds[1:])
        results.append({"shots": k, "new_supports_s": round(seconds[0], 3),
                        "cached_supports_s": {"median": round(statistics.median(cached), 3),
                                              "min": round(cached[0], 3), "max": round(cached[-1], 3)},
                        "model_s": {"new_supports": round(model[0], 3),
                                    "cached_supports_median": round(statistics.median(model[1:]), 3)},
                        "repeats": repeats})
    return results


# ------------------------------------------------------------------------------------------ hostile requests


def _call_segment(url: str, values: dict[str, object], names: list[str], timeout: float = 300) -> tuple[int, str]:
    """One raw /gradio_api/call/segment request with ``values`` by parameter name: (HTTP status, outcome text)."""
    import httpx

    data = [values.get(name) for name in names]
    with httpx.Client(base_url=f"{url}gradio_api/", timeout=timeout) as http:
        response = http.post("call/segment", json={"data": data})
        if response.status_code != 200:
            return response.status_code, response.text[:300]
        event = response.json()["event_id"]
        with http.stream("GET", f"call/segment/{event}") as stream:
            kind = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind in ("complete", "error"):
                    return 200, f"{kind}: {line[6:300]}"
    return 200, "no answer"


def _peak_during(pid: int, action) -> tuple[object, float, float]:
    """(what ``action()`` returned, resident MiB before it, peak resident MiB while it ran), sampled every 50 ms."""
    before = rss_mb(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak.append(rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = action()
    finally:
        done.set()
        sampler.join()
    return result, before, max(peak)


def run_hostile(server: Server, inputs: Inputs, weights: str, downloads: Path, workdir: Path, layer_side: int,
                peak_budget_mb: float) -> list[dict]:
    """Hostile requests a visitor can send within the upload limit; each must be refused without a memory spike.

    - 40 identical brush layers of a transparent ``layer_side`` square PNG (a few KB each on the wire);
    - a 25 MB image sent as a data: URL inside the JSON body (past the 20 MB per-file upload cap);
    - a data: URL of a 9000x9000 1-bit PNG (about 10 KB) whose pixels exceed the 40 megapixel limit.
    A case passes when it is refused for its reason (the layer count, the request size, the pixel
    limit), the server's resident memory rose less than ``peak_budget_mb`` while it ran, and an
    ordinary request is answered right after it.
    """
    import base64

    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client = connect(server.url, downloads)
    names = [p["parameter_name"] for p in client.view_api(print_info=False, return_format="dict")
             ["named_endpoints"]["/segment"]["parameters"]]
    Image.new("RGBA", (layer_side, layer_side)).save(workdir / "layer.png")
    large_photo((layer_side, layer_side), 0).save(workdir / "layer-background.png")
    noise = np.random.default_rng(1).integers(0, 256, (2950, 2950, 3), dtype=np.uint8)
    Image.fromarray(noise).save(workdir / "25mb.png", compress_level=1)
    Image.new("1", (9000, 9000)).save(workdir / "bomb.png")

    def data_url(path: Path) -> dict:
        return {"path": "data-url", "url": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()}

    def layers() -> str:
        editor = {"background": handle_file(str(workdir / "layer-background.png")),
                  "layers": [handle_file(str(workdir / "layer.png"))] * 40, "composite": None}
        try:
            client.reset_session()
            client.predict(query=handle_file(str(inputs.queries[0][0])), weights=weights, rule="vote",
                           support_1=editor, api_name="/segment")
            return "answered"
        except AppError as exc:
            return f"refused: {exc}"

    def posted(query: dict) -> str:
        status, outcome = _call_segment(server.url, {"query": query, "weights": weights, "rule": "vote",
                                                     "support_1": {"background": None, "layers": [], "composite": None}},
                                        names)
        return f"HTTP {status}: {outcome}" if status != 200 else outcome

    cases = [("40 brush layers", layers, "brush layers; at most"),
             (f"25 MB data: URL ({(workdir / '25mb.png').stat().st_size / 2**20:.0f} MB PNG)",
              lambda: posted(data_url(workdir / "25mb.png")), "HTTP 413"),
             ("data: URL of a 9000x9000 PNG", lambda: posted(data_url(workdir / "bomb.png")), "megapixel limit")]
    results = []
    for name, action, reason in cases:
        outcome, before, peak = _peak_during(server.pid, action)
        refused = reason in str(outcome)
        query, size = inputs.queries[1]
        still_serving = check_answer(segment(client, query, inputs.support, inputs.mask, weights), size) is None
        results.append({"case": name, "expected": reason, "outcome": str(outcome)[:200], "rss_before_mb": round(before, 1),
                        "rss_peak_mb": round(peak, 1), "peak_budget_mb": peak_budget_mb, "still_serving": still_serving,
                        "passed": refused and peak - before <= peak_budget_mb and still_serving})
    return results


# ------------------------------------------------------------------------------------------ fairness


def label_many_job(client, photos: Sequence[Path], support: Path, mask: Path, weights: str):
    """A /label_many request of ``photos`` against one support, started in the background (a gradio_client Job)."""
    from gradio_client import handle_file

    return client.submit(photos=[handle_file(str(p)) for p in photos], weights=weights, rule="vote",
                         support_1={"background": handle_file(str(support)), "layers": [], "composite": None},
                         mask_1=handle_file(str(mask)), category="object", api_name="/label_many")


def labelled_so_far(job) -> int:
    """How many photos a running /label_many job has labelled: the length of its latest gallery."""
    outputs = job.outputs()
    return len(outputs[-1][0] or []) if outputs else 0


def run_fairness(server: Server, inputs: Inputs, weights: str, workdir: Path, photos: int, segments: int) -> dict:
    """Segment timed alone, then while another visitor's Label many of ``photos`` photos runs.

    ``inputs`` needs 2 * ``segments`` query photos (each Segment its own, as visitors send). Per
    Segment during the labelling: its seconds, and how many photos the labelling finished
    meanwhile (``photos_meanwhile``; with one queue for both it would be every photo left).
    """
    rng = np.random.default_rng(5)
    folder = workdir / "to-label"
    folder.mkdir(parents=True, exist_ok=True)
    photo_files = []
    for i in range(photos):
        photo_files.append(folder / f"photo-{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(photo_files[-1], quality=90)
    from gradio_client import Client

    client = connect(server.url, workdir / "downloads")
    labeller = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)  # the gallery's links

    def timed(number: int) -> float:
        query, size = inputs.queries[number]
        start = time.perf_counter()
        problem = check_answer(segment(client, query, inputs.support, inputs.mask, weights), size)
        if problem:
            raise RuntimeError(f"Segment answer is wrong: {problem}")
        return time.perf_counter() - start

    alone = [timed(i) for i in range(segments)]
    start = time.perf_counter()
    job = label_many_job(labeller, photo_files, inputs.support, inputs.mask, weights)
    while labelled_so_far(job) == 0 and not job.done():
        time.sleep(0.1)
    during, meanwhile, left = [], [], []
    for i in range(segments):
        before = labelled_so_far(job)
        during.append(timed(segments + i))
        meanwhile.append(labelled_so_far(job) - before)
        left.append(photos - labelled_so_far(job))
    job.result(timeout=START_TIMEOUT * 10)
    label_seconds = time.perf_counter() - start
    return {"photos": photos, "labelled": labelled_so_far(job), "label_many_s": round(label_seconds, 2),
            "segment_alone_s": [round(s, 3) for s in alone], "segment_during_s": [round(s, 3) for s in during],
            "photos_meanwhile": meanwhile, "photos_left_after": left}


def _percentile(sorted_values: list[float], percent: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, int(np.ceil(percent / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
