"""The calls a setting times, on one set of weights and inputs: the authors' code and hsnet's paths.

- "authors": the authors' ``predict_mask_nshot`` (one full 1-shot ``forward`` per support, then
  their vote) on their own model, under ``torch.no_grad`` as in their test script;
- "hsnet": the same episode through hsnet (tensors in, voted mask out);
- "graphs" (CUDA): the "hsnet" episode replayed from a whole-episode CUDA graph
  (``hsnet.runtime.cuda_graphs.EpisodeGraphs``; the capture's seconds are recorded);
- "cached": a further query against supports whose features were kept;
- "predictor": ``hsnet.Predictor.predict`` end to end (uint8 images in, mask and heatmaps out),
  its support cache emptied before each call.

In a bf16 setting the authors' code runs under plain bf16 autocast. Training and ``hsnet evaluate``
settings have cases of their own (training_cases.py, evaluation_cases.py). ``facts["stages"]``
maps a case to a probe that times its stages once (where the time goes), run after the rounds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import hsnet
from hsnet.model import combine_shots
from hsnet.runtime import InferenceContext, autocast, cached_logits, episode_logits
from authors_code import build_authors_model
from plan import Setting
from synthetic import episode_tensors

Stages = Callable[[], dict[str, float]]


def stopwatch(sync: Callable[[], None], steps: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Seconds of each step run in order, the device waited for after each."""
    import time

    out = {}
    for name, step in steps.items():
        start = time.perf_counter()
        step()
        sync()
        out[name] = time.perf_counter() - start
    return out


def device_sync(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def build_cases(setting: Setting, names: list[str], authors_code: Path | None,
                options: dict[str, Any] | None = None) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """The callables of ``names`` for ``setting`` and facts to record beside them (e.g. agreement of the masks)."""
    if setting.task == "train":
        from training_cases import build_training_cases

        return build_training_cases(setting, names, authors_code)
    if setting.task == "evaluate":
        from evaluation_cases import build_evaluation_cases

        return build_evaluation_cases(setting, names, options or {})
    device = torch.device(setting.device)
    k = setting.shots
    query, supports, masks = episode_tensors(setting.batch, k, setting.side, setting.mask_cover, setting.device)
    model = hsnet.build_model(setting.backbone).eval()
    authors = None
    if "authors" in names:
        authors = build_authors_model(authors_code, setting.backbone)
        hsnet.load_weights(model, authors.state_dict())  # one full state dict in both models
        authors.to(device)
    context = InferenceContext.create(device, setting.precision, compile=setting.compile,
                                      cuda_graphs=setting.cuda_graphs)
    model = context.prepare(model)
    facts: dict[str, Any] = {"mask_pixels": round(float(masks.mean()), 3)}
    cases: dict[str, Callable[[], Any]] = {}
    sync = device_sync(device)

    def episode() -> torch.Tensor:
        return combine_shots(episode_logits(model, context, query, supports, masks), "vote")

    if authors is not None:
        batch = {"query_img": query, "support_imgs": supports, "support_masks": masks}

        def authors_episode() -> torch.Tensor:
            with torch.no_grad(), autocast(device, context.dtype):
                return authors.predict_mask_nshot(batch, k)

        agree = (authors_episode().float().view_as(episode()) == episode()).float().mean()
        facts["agreement_with_authors"] = float(agree)
        cases["authors"] = authors_episode
    stages: dict[str, Stages] = {}
    if "hsnet" in names:
        cases["hsnet"] = episode

        def episode_stages() -> dict[str, float]:
            kept: dict[str, Any] = {}
            with context.inference():
                return stopwatch(sync, {
                    "backbone": lambda: kept.update(f=model.episode_features(
                        query, supports.flatten(0, 1), masks.flatten(0, 1))),
                    "correlation": lambda: kept.update(c=model.hypercorrelation(*kept["f"], k)),
                    "learner and vote": lambda: combine_shots(
                        model.decode(kept["c"], k, tuple(query.shape[-2:])).float(), "vote"),
                })

        stages["hsnet"] = episode_stages
    if "graphs" in names:
        from hsnet.runtime.cuda_graphs import EpisodeGraphs

        graphs = EpisodeGraphs(lambda q, s, m: combine_shots(episode_logits(model, context, q, s, m), "vote"), context)
        facts["graph_capture_s"] = stopwatch(sync, {"capture": lambda: graphs.run(query, supports, masks)})["capture"]
        cases["graphs"] = lambda: graphs.run(query, supports, masks)
    if "cached" in names:
        with context.inference():
            cached = model.support_features(supports.flatten(0, 1), masks.flatten(0, 1))
        cases["cached"] = lambda: combine_shots(cached_logits(model, context, query, cached, k), "vote")
    if "predictor" in names:
        predictor = hsnet.Predictor(model, device=device, precision=setting.precision, image_size=setting.side)
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (setting.side, setting.side, 3), dtype=np.uint8) for _ in range(k + 1)]
        mask_arrays = [m.cpu().numpy().astype(bool) for m in masks[0]]

        def predict() -> Any:
            predictor.clear_cache()
            return predictor.predict(images[0], images[1:], mask_arrays)

        cases["predictor"] = predict
        stages["predictor"] = lambda: {k: v for k, v in predict().timings.items() if k != "total"}
    facts["stages"] = stages
    return {name: cases[name] for name in names}, facts
