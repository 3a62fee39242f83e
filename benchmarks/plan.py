"""Which settings a benchmark run measures: each is one fresh process in which its cases alternate."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

BACKBONES = ("resnet50", "resnet101", "vgg16")
CASES = ("authors", "hsnet", "predict_mask", "cached", "predictor")
SCALING = {"side": (240, 320, 400, 480, 560, 640), "shots": (1, 2, 3, 5, 8), "mask_cover": (0.05, 0.25, 0.5, 0.75, 1.0)}


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

    def label(self) -> str:
        extras = [n for n, on in (("compile", self.compile), ("graphs", self.cuda_graphs),
                                  ("default allocator", not self.retain_memory)) if on]
        return (f"{self.backbone} {self.shots}-shot batch {self.batch} {self.side}px {self.precision} "
                f"cover {self.mask_cover:g}" + (f" ({', '.join(extras)})" if extras else ""))

    def cases(self, wanted: list[str], with_authors: bool) -> list[str]:
        """The wanted cases this setting can run: the authors' code is fp32 and plain; the predictor takes one query."""
        out = []
        for case in wanted:
            if case == "authors" and (not with_authors or self.precision != "fp32" or self.compile or self.cuda_graphs):
                continue
            if case == "predictor" and self.batch != 1:
                continue
            if case == "predict_mask" and (self.precision != "fp32" or self.compile or self.cuda_graphs):
                continue  # the tensor API runs fp32 as it is
            out.append(case)
        return out


def plan(args: argparse.Namespace) -> list[Setting]:
    """The grid the arguments ask for, then the scaling sweeps (ResNet-50, 400 px, 1-shot, batch 1 otherwise)."""
    flags = {"device": args.device, "compile": args.compile, "cuda_graphs": args.cuda_graphs,
             "retain_memory": not args.default_allocator, "mask_cover": args.mask_cover}
    settings: list[Setting] = []

    def add(**kw: object) -> None:
        setting = Setting(**{**flags, **kw})
        if setting not in settings:
            settings.append(setting)

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
