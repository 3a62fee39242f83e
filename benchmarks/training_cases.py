"""Training steps timed on one batch of 1-shot episodes: ``hsnet train``'s step against the authors' step.

- "train": ``hsnet.train.train_step`` (the step ``hsnet train`` runs: autocast in the setting's
  precision, the authors' cross-entropy, Adam at their learning rate 1e-3) on the model in train mode;
- "authors-train": the authors' step, reconstructed from their train.py around their model code:
  ``train_mode()``, ``forward``, ``compute_objective``, ``zero_grad``, ``backward``, Adam (lr 1e-3) over
  all their parameters; under plain autocast in a bf16 setting.

Both start from one state dict (random ImageNet backbone as in cases.py) and take the same
seeded inputs; each keeps its own optimizer. Stages: the forward pass with its loss, then the rest
(backward and the optimizer step) as the full step's time less the forward's.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

import hsnet
from hsnet.runtime import autocast, autocast_dtype
from hsnet.train import cross_entropy, train_step
from authors_code import build_authors_model
from cases import device_sync
from plan import Setting
from synthetic import episode_tensors, support_masks

LEARNING_RATE = 1e-3  # the authors' train.py


def training_batch(batch: int, side: int, cover: float, device: torch.device) -> dict[str, torch.Tensor]:
    """A batch of 1-shot episodes as the datasets give it: images, support masks and query masks, on ``device``."""
    query, supports, masks = episode_tensors(batch, 1, side, cover, str(device))
    target = support_masks(batch, side, cover * 1.5).to(device)
    return {"query_img": query, "support_imgs": supports, "support_masks": masks, "query_mask": target}


def step_stages(forward: Callable[[], Any], step: Callable[[], Any], sync: Callable[[], None]) -> dict[str, float]:
    """Seconds of the forward pass with its loss, and of the rest of a full step."""
    start = time.perf_counter()
    forward()
    sync()
    middle = time.perf_counter()
    step()
    sync()
    total = time.perf_counter() - middle
    return {"forward and loss": middle - start, "backward and Adam": max(0.0, total - (middle - start))}


def build_training_cases(setting: Setting, names: list[str],
                         authors_code: Path | None) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    device = torch.device(setting.device)
    amp = autocast_dtype(device, setting.precision)
    batch = training_batch(setting.batch, setting.side, setting.mask_cover, device)
    query, support, mask, target = (batch["query_img"], batch["support_imgs"][:, 0], batch["support_masks"][:, 0],
                                    batch["query_mask"])
    model = hsnet.build_model(setting.backbone)
    sync = device_sync(device)
    cases: dict[str, Callable[[], Any]] = {}
    stages: dict[str, Callable[[], dict[str, float]]] = {}
    if "authors-train" in names:
        authors = build_authors_model(authors_code, setting.backbone)
        hsnet.load_weights(model, authors.state_dict())
        authors.to(device).train_mode()
        authors_optimizer = torch.optim.Adam([{"params": authors.parameters(), "lr": LEARNING_RATE}])

        def authors_forward() -> torch.Tensor:
            with autocast(device, amp):
                logits = authors(query, support, mask)
            return authors.compute_objective(logits.float(), target)

        def authors_step() -> float:
            loss = authors_forward()
            authors_optimizer.zero_grad()
            loss.backward()
            authors_optimizer.step()
            return loss.item()

        cases["authors-train"] = authors_step
        stages["authors-train"] = lambda: step_stages(authors_forward, authors_step, sync)
    model.to(device).train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)

    def hsnet_forward() -> torch.Tensor:
        with autocast(device, amp):
            logits = model(query, support, mask)
        return cross_entropy(logits, target)

    def hsnet_step() -> float:
        return train_step(model, batch, optimizer, device=device, amp=amp, scaler=scaler)[0]

    cases["train"] = hsnet_step
    stages["train"] = lambda: step_stages(hsnet_forward, hsnet_step, sync)
    facts = {"learning_rate": LEARNING_RATE, "stages": stages}
    return {name: cases[name] for name in names}, facts
