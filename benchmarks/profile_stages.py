#!/usr/bin/env python3
"""Where an episode's time goes: backbone, correlation, and each block of the learner.

  python benchmarks/profile_stages.py                      # ResNet-50, 400x400, 1-shot, this machine's threads
  python benchmarks/profile_stages.py --shots 5 --threads 1 --cpu-time

Stages are timed one after another on the same inputs (minimum of the repeats);
the learner's blocks through forward hooks. ``--cpu-time`` reports this process's
CPU time instead of wall time: with one thread it is insensitive to other
processes on a shared machine, which makes it the better way to compare code
changes there.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import torch

import hsnet
from hsnet.runtime import pick_ops
from synthetic import support_masks


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet50", choices=list(hsnet.BACKBONES))
    parser.add_argument("--side", type=int, default=400)
    parser.add_argument("--shots", type=int, default=1)
    parser.add_argument("--mask-cover", type=float, default=0.25)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu-time", action="store_true", help="process CPU time instead of wall time")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock: Callable[[], float] = time.process_time if args.cpu_time else time.perf_counter
    torch.manual_seed(0)
    model = hsnet.build_model(args.backbone).eval()
    ops = pick_ops(model, torch.device("cpu"))  # the kernels hsnet's runtime runs on the CPU
    k, side = args.shots, args.side
    query, supports = torch.randn(1, 3, side, side), torch.randn(k, 3, side, side)
    masks = support_masks(k, side, args.mask_cover)

    blocks: dict[str, list[float]] = {}
    for name, module in model.hpn_learner.named_children():
        module.register_forward_pre_hook(lambda m, i: setattr(m, "_start", clock()))
        module.register_forward_hook(lambda m, i, o, name=name: blocks.setdefault(name, []).append(clock() - m._start))

    def best(fn: Callable[[], object]) -> tuple[float, object]:
        out = fn()
        times = []
        for _ in range(args.repeats):
            start = clock()
            out = fn()
            times.append(clock() - start)
        return min(times), out

    stages: dict[str, float] = {}
    with torch.inference_mode():
        stages["query backbone"], q = best(lambda: model.query_features(query, ops))
        stages[f"support backbone ({k} images)"], s = best(lambda: model.support_features(supports, masks, ops))
        stages["correlation"], corr = best(lambda: model.hypercorrelation(q, s, k, ops))
        blocks.clear()
        stages["learner"], _ = best(lambda: model.decode(corr, k, (side, side), ops))
    unit = "CPU time" if args.cpu_time else "wall time"
    print(f"{args.backbone} {side}x{side} {k}-shot, {args.threads} thread(s), cover {args.mask_cover:g}, "
          f"minimum of {args.repeats}, {unit}")
    total = sum(stages.values())
    for name, seconds in stages.items():
        print(f"  {name:32s} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f}%")
        if name == "learner":
            for block, times in blocks.items():
                print(f"    {block:30s} {min(times) * 1000:8.1f} ms")
    print(f"  {'sum':32s} {total * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
