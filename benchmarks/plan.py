"""Which settings a benchmark run measures: each is one fresh process in which its cases alternate."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

BACKBONES = ("resnet50", "resnet101", "vgg16")
CASES = ("authors", "hsnet", "graphs", "cached", "predictor", "authors-train", "train", "evaluate")
TASKS = {"episode": ("authors", "hsnet", "graphs", "cached", "predictor"), "train": ("authors-train", "train"),
         "evaluate": ("evaluate",)}
AUTHORS_PRECISIONS = ("fp32", "bf16")  # their code as it is, and under plain bf16 autocast
SCALING = {"side": (240, 320, 400, 480, 560, 640), "shots": (1, 2, 3, 5, 8), "mask_cover": (0.05, 0.25, 0.5, 1.0)}


@dataclass(frozen=True)
class Setting:
    """One measured configuration; every field is part of its rows' identity."""

    backbone: str
    shots: int
    batch: int
    side: int
    precision: str
    device: str
    mask_cover: float = 0.25
    compile: bool = False
    cuda_graphs: bool = False
    retain_memory: bool = True
    task: str = "episode"  # "episode" (inference), "train" (training steps) or "evaluate" (hsnet evaluate)

    def label(self) -> str:
        extras = [n for n, on in (("compile", self.compile), ("graphs", self.cuda_graphs),
                                  ("default allocator", not self.retain_memory)) if on]
        task = "" if self.task == "episode" else f"{self.task}: "
        return (f"{task}{self.backbone} {self.shots}-shot batch {self.batch} {self.side}px {self.precision} "
                f"cover {self.mask_cover:g}" + (f" ({', '.join(extras)})" if extras else ""))

    def cases(self, wanted: list[str], with_authors: bool) -> list[str]:
        """The wanted cases of this setting's task it can run: the authors' code runs plain in fp32 or under bf16
        autocast; the predictor takes one query."""
        out = []
        for case in wanted:
            if case not in TASKS[self.task]:
                continue
            if case.startswith("authors") and (not with_authors or self.precision not in AUTHORS_PRECISIONS
                                               or self.compile or self.cuda_graphs):
                continue
            if case == "predictor" and self.batch != 1:
                continue
            if case == "graphs" and (self.device != "cuda" or self.precision == "fp16" or self.compile
                                     or self.cuda_graphs):  # the fp16 guard reads the host: not capturable
                continue
            out.append(case)
        return out


def plan(args: argparse.Namespace) -> list[Setting]:
    """Throughput, training and evaluation settings (first: they hold issue 21's goals), the grid the arguments ask
    for, then the scaling sweeps (ResNet-50, 400 px, 1-shot, batch 1 otherwise)."""
    flags = {"device": args.device, "compile": args.compile, "cuda_graphs": args.cuda_graphs,
             "retain_memory": not args.default_allocator, "mask_cover": args.mask_cover}
    settings: list[Setting] = []

    def add(**kw: object) -> None:
        setting = Setting(**{**flags, **kw})
        if setting not in settings:
            settings.append(setting)

    for backbone in args.backbones:
        for precision in getattr(args, "throughput_precisions", None) or []:
            add(backbone=backbone, shots=1, batch=args.throughput_batch, side=args.sizes[0], precision=precision)
    for precision in getattr(args, "train_precisions", None) or []:
        add(task="train", backbone="resnet50", shots=1, batch=args.train_batch, side=args.train_side,
            precision=precision)
    for precision in getattr(args, "evaluate_precisions", None) or []:
        add(task="evaluate", backbone="resnet50", shots=1, batch=args.evaluate_batch, side=args.sizes[0],
            precision=precision)
    if not args.scaling_only:
        for backbone in args.backbones:
            for side in args.sizes:
                for precision in args.precisions:
                    for shots in args.shots:
                        for batch in args.batches:
                            add(backbone=backbone, shots=shots, batch=batch, side=side, precision=precision)
    if args.scaling or args.scaling_only:
        base = dict(backbone="resnet50", shots=1, batch=1, side=400, precision=args.precisions[0])
        for variable, values in SCALING.items():
            for value in values:
                add(**{**base, variable: value})
    return settings
