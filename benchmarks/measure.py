"""Timing in one process: the cases alternate call by call, so a busy neighbour slows all of them alike.

Each round calls every case once, in an order rotated from round to round; each
call records its wall time and this process's CPU time (all threads). The
machine's CPU used by other processes during the rounds is recorded beside them.
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch


@dataclass
class Samples:
    """Seconds of each measured call of one case."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int]:
        return {"median_s": statistics.median(self.wall), "min_s": min(self.wall),
                "cpu_median_s": statistics.median(self.cpu), "repeats": len(self.wall)}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot (Linux; zeros elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def alternate(cases: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
              sync: Callable[[], None] = lambda: None) -> tuple[dict[str, Samples], float]:
    """Time ``rounds`` calls of every case, interleaved after ``warmup`` unrecorded rounds.

    Returns the samples per case and the share of the machine's CPU other processes used meanwhile.
    """
    names = list(cases)
    samples = {name: Samples() for name in names}
    busy0, total0 = machine_ticks()
    own0 = time.process_time()
    for round_index in range(warmup + rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            cases[name]()
            sync()
            if round_index >= warmup:
                samples[name].wall.append(time.perf_counter() - wall)
                samples[name].cpu.append(time.process_time() - cpu)
    busy1, total1 = machine_ticks()
    own = (time.process_time() - own0) * os.sysconf("SC_CLK_TCK")
    others = max(0.0, (busy1 - busy0) - own) / max(1, total1 - total0)
    return samples, round(others, 3)


def peak_gpu_bytes(call: Callable[[], object]) -> int:
    """GPU memory one call allocates at its peak beyond what was allocated before it."""
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    call()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


def stopwatch(sync: Callable[[], None], steps: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Seconds of each step run in order, the device waited for after each."""
    out = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        sync()
        out[name] = time.perf_counter() - start
    return out


def device_sync(device: torch.device) -> Callable[[], None]:
    """What waits for ``device``'s queued work (nothing on the CPU)."""
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
