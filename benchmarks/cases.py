"""The calls a setting times, on one set of weights and inputs: the authors' code and hsnet's paths.

- "authors": the authors' ``predict_mask_nshot`` (one full 1-shot ``forward`` per support, then
  their vote) on their own model, under ``torch.no_grad`` as in their test script;
- "hsnet": the same episode through ``hsnet.runtime.episode_logits`` (tensors in, voted mask out; what
  ``hsnet evaluate`` runs), under the setting's precision;
- "predict_mask": the tensor API users call, ``model.predict_mask`` (fp32 settings only);
- "graphs" (CUDA): the "hsnet" episode replayed from a whole-episode CUDA graph
  (``hsnet.runtime.cuda_graphs.EpisodeGraphs``; the capture's seconds are recorded);
- "cached": a further query against supports whose features were kept (``run_episode``);
- "predictor": ``hsnet.Predictor.predict`` end to end (uint8 images in, mask and heatmaps out),
  its support cache emptied before each call (with ``--cuda-graphs``: replayed from CUDA graphs);
- "predictor-graphs" (CUDA): the same call with ``cuda_graphs=True`` (the query's whole episode
  replayed from a CUDA graph; the first call's seconds, capture included, are recorded), beside
  "predictor" eager: what ``CUDA_GRAPHS_DEFAULT`` (hsnet/runtime/context.py) is chosen from.

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
from hsnet.runtime import InferenceContext, autocast, encode, episode_logits, pick_ops, run_episode
from authors_code import build_authors_model
from measure import device_sync, stopwatch
from plan import Setting
from synthetic import episode_tensors

Stages = Callable[[], dict[str, float]]


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
            ops = pick_ops(model, device)  # the kernels the runtime runs on this device
            with context.inference():
                return stopwatch(sync, {
                    "backbone": lambda: kept.update(f=model.episode_features(
                        query, supports.flatten(0, 1), masks.flatten(0, 1), ops)),
                    "correlation": lambda: kept.update(c=model.hypercorrelation(*kept["f"], k, ops)),
                    "learner and vote": lambda: combine_shots(
                        model.decode(kept["c"], k, tuple(query.shape[-2:]), ops).float(), "vote"),
                })

        stages["hsnet"] = episode_stages
    if "graphs" in names:
        from hsnet.runtime.cuda_graphs import EpisodeGraphs

        graphs = EpisodeGraphs(lambda q, s, m: combine_shots(episode_logits(model, context, q, s, m), "vote"), context)
        facts["graph_capture_s"] = stopwatch(sync, {"capture": lambda: graphs.run(query, supports, masks)})["capture"]
        cases["graphs"] = lambda: graphs.run(query, supports, masks)
    if "predict_mask" in names:
        cases["predict_mask"] = lambda: model.predict_mask(query, supports, masks, output_size=tuple(query.shape[-2:]))
    if "cached" in names:
        cached, _ = encode(model, context, supports.flatten(0, 1), masks.flatten(0, 1))

        def cached_episode() -> torch.Tensor:
            features, _ = encode(model, context, query)
            episode = run_episode(model, context, features, cached, k, tuple(query.shape[-2:]))
            return combine_shots(episode.logits, "vote")

        cases["cached"] = cached_episode
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (setting.side, setting.side, 3), dtype=np.uint8) for _ in range(k + 1)]
    mask_arrays = [m.cpu().numpy().astype(bool) for m in masks[0]]
    for name, replayed in (("predictor", setting.cuda_graphs), ("predictor-graphs", True)):
        if name in names:
            predictor = hsnet.Predictor(model, device=device, precision=setting.precision, image_size=setting.side,
                                        cuda_graphs=replayed)
            predict = predictor_call(predictor, images, mask_arrays)
            if name == "predictor-graphs":
                facts["predictor_graphs_first_call_s"] = stopwatch(sync, {"first": predict})["first"]
            cases[name] = predict
            stages[name] = lambda predict=predict: {k: v for k, v in predict().timings.items() if k != "total"}
    facts["stages"] = stages
    return {name: cases[name] for name in names}, facts


def predictor_call(predictor: hsnet.Predictor, images: list[np.ndarray], masks: list[np.ndarray]) -> Callable[[], Any]:
    """``predictor.predict`` of the first image against the others, the support cache emptied before each call."""
    def predict() -> Any:
        predictor.clear_cache()
        return predictor.predict(images[0], images[1:], masks)

    return predict
