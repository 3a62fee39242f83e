"""``hsnet evaluate`` timed with its data loading, on a PASCAL-5i-like folder of full-size JPEGs.

The folder is generated into a temporary directory: ``VOC2012/JPEGImages/*.jpg`` (500x375, the
size of most VOC photos, textured noise with one object), ``VOC2012/SegmentationClassAug/*.png``
and the split list ``pascal/val/fold0.txt``. One call is ``hsnet.evaluate.evaluate`` over the first
``episodes`` episodes (decoding, resizing, batching in ``workers`` processes, the model, the meter).
Stages: the data loader alone over the same episodes, and the model alone on as many batches.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

import hsnet
from hsnet.data import build_dataset
from hsnet.evaluate import evaluate
from hsnet.model import combine_shots
from hsnet.runtime import InferenceContext, episode_logits
from cases import device_sync, stopwatch
from plan import Setting

PHOTO = (500, 375)  # (W, H) of the generated photos
FOLD0_CLASSES = range(1, 6)


def write_pascal_layout(root: Path, per_class: int, seed: int = 0) -> Path:
    """Photos, class masks and fold 0's val list under ``root``; returns the splits folder."""
    rng = np.random.default_rng(seed)
    width, height = PHOTO
    images, masks, splits = root / "VOC2012" / "JPEGImages", root / "VOC2012" / "SegmentationClassAug", root / "splits"
    for folder in (images, masks, splits / "pascal" / "val"):
        folder.mkdir(parents=True, exist_ok=True)
    lines = []
    yy, xx = np.mgrid[0:height, 0:width]
    for cls in FOLD0_CLASSES:
        for i in range(per_class):
            name = f"2008_{cls:02d}{i:04d}"
            coarse = rng.integers(0, 256, (height // 25 + 1, width // 25 + 1, 3), dtype=np.uint8)
            photo = np.kron(coarse, np.ones((25, 25, 1), np.uint8))[:height, :width]
            cy, cx, ry, rx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width, height / 4, width / 4
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            Image.fromarray(photo).save(images / f"{name}.jpg", quality=90)
            Image.fromarray(np.where(inside, cls, 0).astype(np.uint8)).save(masks / f"{name}.png")
            lines.append(f"{name}__{cls:02d}\n")
    (splits / "pascal" / "val" / "fold0.txt").write_text("".join(lines))
    return splits


def build_evaluation_cases(setting: Setting, names: list[str],
                           options: dict[str, Any]) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    episodes, workers = int(options.get("episodes", 64)), int(options.get("workers", 0))
    root = Path(tempfile.mkdtemp(prefix="hsnet-bench-pascal-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    splits = write_pascal_layout(root, per_class=max(2, episodes // len(FOLD0_CLASSES)))
    dataset = build_dataset("pascal", root, fold=0, split="test", shots=setting.shots, image_size=setting.side,
                            limit=episodes, splits_dir=splits)
    model = hsnet.build_model(setting.backbone)
    device = torch.device(setting.device)
    sync = device_sync(device)

    def run() -> Any:
        return evaluate(model, dataset, device=device, batch_size=setting.batch, num_workers=workers,
                        precision=setting.precision)

    def loading() -> None:
        for _ in DataLoader(dataset, batch_size=setting.batch, num_workers=workers, pin_memory=device.type == "cuda"):
            pass

    def stages() -> dict[str, float]:
        context = InferenceContext.create(device, setting.precision)
        sample = next(iter(DataLoader(dataset, batch_size=setting.batch)))
        inputs = [sample[key].to(device) for key in ("query_img", "support_imgs", "support_masks")]
        batches = -(-len(dataset) // setting.batch)

        def model_alone() -> None:
            for _ in range(batches):
                combine_shots(episode_logits(model, context, *inputs), "vote")

        return stopwatch(sync, {"data loading alone": loading, "model alone": model_alone})

    facts = {"episodes_per_call": len(dataset), "workers": workers, "photo": f"{PHOTO[0]}x{PHOTO[1]} JPEG",
             "stages": {"evaluate": stages}}
    return {"evaluate": run} if "evaluate" in names else {}, facts
