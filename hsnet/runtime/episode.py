"""The one forward path: (query features, support features) -> logits and per-layer maps, in bounded passes.

``run_passes`` is the path itself: correlation and learner for a few (query, support)
pairs at a time (``hsnet.runtime.passes``), so peak memory depends on the budget, not on
K or B. Everything that turns features into logits calls it: the Predictor, ``hsnet
predict``/``label``, evaluation and training's validation (``episode_logits``), the
benchmark, and the tensor API (``HSNetModel.forward``/``predict_mask``). ``run_episode`` and
``encode`` run it and the backbone under an ``InferenceContext`` (precision, fast kernels,
the fp16 guard).

With ``context.cuda_graphs`` the front ends that run episodes on tensors (``episode_logits``;
the Predictor through ``query_episode``) replay whole episodes, backbone included, from
``EpisodeGraphs``. A captured episode runs in one backbone and one correlation pass: one whose
batch bucket would need more passes within the budget runs eagerly. Under fp16 the replay's
outputs are checked after it and the episode computed again eagerly in the fallback when they
are not finite (``hsnet.runtime.guard``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch

from ..model import FeaturePyramid, HSNet, Ops
from .context import InferenceContext
from .cuda_graphs import EpisodeGraphs, Outputs, bucket_of
from .guard import guarded
from .kernels import pick_ops
from .passes import backbone_passes, bounded_passes, image_bytes, one_pass, pair_bytes

PassResult = tuple[torch.Tensor, list[torch.Tensor]]
Guard = Callable[[Callable[[], PassResult]], tuple[PassResult, str]]


@dataclass
class Episode:
    """What the forward path gives for B queries against K supports each."""

    logits: torch.Tensor  # (B, K, 2, h, w) float32
    layer_maps: list[torch.Tensor]  # per level, deepest first: (B, L, hq, wq) float32, each query cell's best match
    # with the support cells, averaged over the K supports ([] unless asked for)
    precision: str  # what produced it: the context's precision, or e.g. "fp16->bf16" when the guard stepped in


def combined_precision(*precisions: str) -> str:
    """One label for a result made of parts: the first fallback ("fp16->bf16") if any part fell back."""
    return next((p for p in precisions if "->" in p), precisions[0])


def run_passes(model: HSNet, ops: Ops, query: FeaturePyramid, support: FeaturePyramid, shots: int,
               output_size: tuple[int, int], budget: int, *, layer_maps: bool = False,
               guard: Guard | None = None, precision: str = "") -> Episode:
    """Logits of B queries against their B*K (or K shared) supports, at most ``budget`` correlation bytes a pass,
    under the caller's grad and autocast mode; ``guard`` may compute a pass again (see ``hsnet.runtime.guard``)."""
    batch = query.levels[0].shape[0]
    logits: torch.Tensor | None = None
    maps: list[torch.Tensor] = []
    used = []
    for queries, shot_range, q, s in bounded_passes(query, support, shots, budget):
        n = shot_range.stop - shot_range.start

        def compute_pass() -> PassResult:
            corr = model.hypercorrelation(q, s, n, ops)
            best = [c.amax(dim=(-2, -1)).float().unflatten(0, (-1, n)).sum(dim=1) for c in corr] if layer_maps else []
            return model.decode(corr, n, output_size, ops).float(), best

        (part, best), pass_precision = guard(compute_pass) if guard is not None else (compute_pass(), precision)
        used.append(pass_precision)
        if logits is None:
            logits = part.new_empty(batch, shots, *part.shape[2:])
            maps = [m.new_zeros(batch, *m.shape[1:]) for m in best]
        logits[queries, shot_range] = part
        for total, m in zip(maps, best):
            total[queries] += m
    return Episode(logits, [m / shots for m in maps], combined_precision(*used))


def run_episode(model: HSNet, context: InferenceContext, query: FeaturePyramid, support: FeaturePyramid, shots: int,
                output_size: tuple[int, int], *, layer_maps: bool = False) -> Episode:
    """``run_passes`` under ``context``: its device, precision, kernels, pass budget and fp16 guard."""
    device = context.device

    def guard(compute: Callable[[], PassResult]) -> tuple[PassResult, str]:
        return guarded(context, compute, lambda result: [result[0]], "correlation and learner")

    with context.inference():
        return run_passes(model, pick_ops(model, device), query.to(device), support.to(device), shots, output_size,
                          context.pass_bytes, layer_maps=layer_maps, guard=guard)


def _features(model: HSNet, context: InferenceContext, ops: Ops, images: torch.Tensor,
              masks: torch.Tensor | None) -> tuple[FeaturePyramid, str]:
    """Features of one backbone pass, fp16-guarded (call inside ``context.inference()``)."""
    def compute() -> FeaturePyramid:
        return model.query_features(images, ops) if masks is None else model.support_features(images, masks, ops)

    return guarded(context, compute, lambda features: features.levels, "backbone features")


def encode(model: HSNet, context: InferenceContext, images: torch.Tensor,
           masks: torch.Tensor | None = None) -> tuple[FeaturePyramid, str]:
    """Features of (N, 3, H, W) normalized images (masked supports when ``masks`` are given), a bounded backbone
    batch at a time, and the precision that produced them."""
    device = context.device
    ops = pick_ops(model, device)
    parts, used = [], []
    with context.inference():
        for part in backbone_passes(len(images), image_bytes(model, *images.shape[-2:]), context.pass_bytes):
            features, precision = _features(model, context, ops, images[part].to(device),
                                            None if masks is None else masks[part].to(device))
            parts.append(features)
            used.append(precision)
    return FeaturePyramid.cat(parts), combined_precision(*used)


def encode_episode(model: HSNet, context: InferenceContext, query: torch.Tensor, supports: torch.Tensor,
                   masks: torch.Tensor) -> tuple[FeaturePyramid, FeaturePyramid, str]:
    """Query (B, 3, H, W) and masked support (N, 3, H, W) features: in one backbone batch when they share a size
    and fit one pass (less backbone time than two batches), else each in bounded passes."""
    device = context.device
    each = image_bytes(model, *query.shape[-2:])
    if query.shape[-2:] == supports.shape[-2:] and len(backbone_passes(len(query) + len(supports), each,
                                                                       context.pass_bytes)) == 1:
        ops = pick_ops(model, device)
        with context.inference():
            (q, s), precision = guarded(
                context, lambda: model.episode_features(query.to(device), supports.to(device), masks.to(device), ops),
                lambda pair: [*pair[0].levels, *pair[1].levels], "backbone features")
        return q, s, precision
    q, query_precision = encode(model, context, query)
    s, support_precision = encode(model, context, supports, masks)
    return q, s, combined_precision(query_precision, support_precision)


def episode_logits(model: HSNet, context: InferenceContext, query: torch.Tensor, supports: torch.Tensor,
                   masks: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, 3, H, W), (B, K, 3, H, W), (B, K, H, W) normalized tensors -> (B, K, 2, h, w) float32 logits;
    ``output_size`` defaults to the query's (H, W). Replayed from CUDA graphs with ``context.cuda_graphs``."""
    size = output_size or tuple(query.shape[-2:])
    if context.cuda_graphs and _replayable(model, context, query, supports):
        eager = partial(_episode_outputs, model, context, size)
        graphs = context.kept(model, ("episode", size), lambda: EpisodeGraphs(eager, context))
        inputs = tuple(x.to(context.device) for x in (query, supports, masks))
        return _replayed(context, graphs, inputs, (),
                         lambda: _eager_logits(model, _in_fallback(context), *inputs, size))[0]
    return _eager_logits(model, context, query, supports, masks, size)


def _eager_logits(model: HSNet, context: InferenceContext, query: torch.Tensor, supports: torch.Tensor,
                  masks: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """``episode_logits`` eagerly, in bounded passes."""
    q, s, _ = encode_episode(model, context, query, supports.flatten(0, 1), masks.flatten(0, 1))
    return run_episode(model, context, q, s, supports.shape[1], output_size).logits


def query_episode(model: HSNet, context: InferenceContext, pixels: torch.Tensor,
                  support: FeaturePyramid) -> tuple[Episode, FeaturePyramid] | None:
    """The episode (with layer maps) and features of (B, 3, S, S) uint8 query pixels against K shared encoded
    supports, replayed from a whole-episode CUDA graph (the Predictor with ``context.cuda_graphs``); None where the
    batch bucket would need more than one pass (the caller runs it eagerly)."""
    shots = support.levels[0].shape[0]
    bucket = bucket_of(len(pixels))
    if not one_pass(bucket, image_bytes(model, *pixels.shape[-2:]), bucket, shots,
                    pair_bytes(support.levels, support.levels), context.pass_bytes):
        return None
    graphs = context.kept(model, "query episode", lambda: EpisodeGraphs(partial(_query_outputs, model, context),
                                                                         context))
    levels = tuple(x.to(context.device) for x in support.levels)

    def eager() -> tuple[torch.Tensor, ...]:
        fallback = _in_fallback(context)
        features, _ = encode(model, fallback, model.preprocess(pixels))
        episode = run_episode(model, fallback, features, support, shots, tuple(pixels.shape[-2:]), layer_maps=True)
        return (episode.logits, *episode.layer_maps, *features.levels)

    outputs, precision = _replayed(context, graphs, (pixels.to(context.device),), levels, eager)
    n = len(levels)
    return Episode(outputs[0], list(outputs[1:1 + n]), precision), FeaturePyramid(list(outputs[1 + n:]))


def _episode_outputs(model: HSNet, context: InferenceContext, output_size: tuple[int, int], query: torch.Tensor,
                     supports: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``episode_logits`` as a pure tensor function (no host syncs, no guard): what its graph captures."""
    ops = pick_ops(model, context.device)
    q, s = model.episode_features(query, supports.flatten(0, 1), masks.flatten(0, 1), ops)
    return run_passes(model, ops, q, s, supports.shape[1], output_size, context.pass_bytes).logits


def _query_outputs(model: HSNet, context: InferenceContext, pixels: torch.Tensor,
                   *support_levels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Logits, layer maps and query features of uint8 pixels against shared supports as a pure tensor function."""
    ops = pick_ops(model, context.device)
    query = model.query_features(model.preprocess(pixels), ops)
    episode = run_passes(model, ops, query, FeaturePyramid(list(support_levels)), support_levels[0].shape[0],
                         tuple(pixels.shape[-2:]), context.pass_bytes, layer_maps=True)
    return (episode.logits, *episode.layer_maps, *query.levels)


def _replayable(model: HSNet, context: InferenceContext, query: torch.Tensor, supports: torch.Tensor) -> bool:
    """Whether an ``episode_logits`` call's batch bucket fits one backbone and one correlation pass (the bytes of
    a pair are learned once per shape from one query's features)."""
    if query.shape[-2:] != supports.shape[-2:]:
        return False
    batch, shots = supports.shape[:2]
    bucket = bucket_of(batch)

    def pair() -> int:
        features, _ = encode(model, context, query[:1])
        return pair_bytes(features.levels, features.levels)

    pair_size = context.kept(model, ("pair bytes", tuple(query.shape[1:])), pair)
    return one_pass(bucket * (1 + shots), image_bytes(model, *query.shape[-2:]), bucket, shots, pair_size,
                    context.pass_bytes)


def _in_fallback(context: InferenceContext) -> InferenceContext:
    """``context`` in its fallback precision, eager: where a replayed fp16 episode that was not finite is redone."""
    return replace(context, precision=context.fallback, cuda_graphs=False)


def _replayed(context: InferenceContext, graphs: EpisodeGraphs, inputs: tuple[torch.Tensor, ...],
              shared: tuple[torch.Tensor, ...], eager: Callable[[], Outputs]) -> tuple[Outputs, str]:
    """``graphs.run(*inputs, shared=shared)`` under ``context``, and its precision: under fp16 its outputs are checked
    and, if not all finite, ``eager()`` computes them again in the fallback (bounded passes)."""
    def outputs(result: Outputs) -> tuple[torch.Tensor, ...]:
        return (result,) if isinstance(result, torch.Tensor) else result

    with context.inference():
        return guarded(context, lambda: graphs.run(*inputs, shared=shared), outputs, "replayed episode",
                       again=eager)
