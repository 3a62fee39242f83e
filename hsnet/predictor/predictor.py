"""Images in, masks and hypercorrelation heatmaps out: the one way hsnet turns images into masks.

Supports are encoded once (``set_supports``, cached by content) and queried many
times (``predict``, ``predict_many``). Images are resized to the model's square
side as the authors do; backbone, correlation and learner run through the runtime's
one path (``hsnet.runtime.encode`` and ``run_episode``: bounded passes under the
context's precision; with ``cuda_graphs`` a query's pixels -> logits, layer maps and features
replayed from a whole-episode CUDA graph, ``hsnet.runtime.episode.query_episode``); masks are
made at model resolution and only the final mask is resized to the query's original size.
"""
from __future__ import annotations

import hashlib
import operator
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..inputs import ImageLike, load_mask, load_rgb
from ..limits import check_image_size
from ..model import K_SHOT_RULES, FeaturePyramid, HSNet, correlate, foreground_score
from ..runtime import Episode, InferenceContext, encode, encode_episode, run_episode
from ..runtime.episode import combined_precision, query_episode
from .cache import DEFAULT_CACHE_BYTES, ByteLRU
from .results import LayerMap, Prediction, QueryFeatures, SupportSet, resized

MAX_SHOTS = 16


class _Stopwatch:
    """Seconds per stage, waiting for the device before each reading."""

    def __init__(self, context: InferenceContext):
        self.context = context
        self.timings: dict[str, float] = {}
        self.start = self.tick = time.perf_counter()

    def lap(self, stage: str) -> None:
        self.context.synchronize()
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self.tick
        self.tick = now

    def total(self) -> dict[str, float]:
        return {**self.timings, "total": time.perf_counter() - self.start}


def _as_list(items: Sequence[ImageLike] | ImageLike) -> list[ImageLike]:
    return list(items) if isinstance(items, (list, tuple)) else [items]


class Predictor:
    """Few-shot segmentation of queries from 1..16 annotated supports with one HSNet.

    ``device``: None picks CUDA when available; ``precision``: "fp32", "tf32", "bf16", "fp16"
    or "auto" (``hsnet.runtime.resolve_precision``; None: the device's default);
    ``image_size``: the square side (default: the model's, at most 640); ``cache_bytes``: the
    budget of encoded supports kept by content; ``compile`` and ``cuda_graphs``: see
    ``hsnet.runtime.InferenceContext``. The predictor takes the model over: eval mode, on its device.
    """

    def __init__(self, model: HSNet, device: str | torch.device | None = None, precision: str | None = None,
                 image_size: int | None = None, *, cache_bytes: int = DEFAULT_CACHE_BYTES, compile: bool = False,
                 cuda_graphs: bool | None = None):
        self.image_size = check_image_size(model.image_size if image_size is None else image_size)
        self.cache: ByteLRU[SupportSet] = ByteLRU(cache_bytes)
        self.context = InferenceContext.create(device, precision, compile=compile, cuda_graphs=cuda_graphs)
        self.model = self.context.prepare(model)

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return self.context.device

    @property
    def precision(self) -> str:
        """The precision the model runs in."""
        return self.context.precision

    @property
    def layer_names(self) -> list[str]:
        """Backbone layer names in the order of ``Prediction.layer_maps``."""
        return [name for _, names in self._levels() for name in names]

    def _levels(self) -> list[tuple[int, list[str]]]:
        """(level, layer names) for levels 4, 3, 2 in the order the model stacks them."""
        names = list(self.model.spec.layer_names)
        n4, n3, n2 = self.model.spec.level_sizes
        return [(4, names[len(names) - n4:]), (3, names[len(names) - n4 - n3: len(names) - n4]), (2, names[:n2])]

    # ---- decoding -------------------------------------------------------------------------------------------

    def _resized(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The authors' resize (PIL bilinear to the square side) as uint8 (N, S, S, 3)."""
        side = (self.image_size, self.image_size)
        return np.stack([np.asarray(image.resize(side, Image.BILINEAR)) for image in images])

    def _pixels(self, images: Sequence[Image.Image] | np.ndarray) -> torch.Tensor:
        """Resized images (or their (N, S, S, 3) array) as uint8 (N, 3, S, S) on the device."""
        arrays = images if isinstance(images, np.ndarray) else self._resized(images)
        return torch.from_numpy(arrays).to(self.device).permute(0, 3, 1, 2)

    def _read_supports(self, images: Sequence[ImageLike] | ImageLike,
                       masks: Sequence[ImageLike] | ImageLike) -> tuple[str, torch.Tensor, torch.Tensor]:
        """(content key, (K, 3, S, S) uint8 pixels, (K, S, S) float masks) of the supports, checked."""
        images, masks = _as_list(images), _as_list(masks)
        if not images:
            raise InputError("no support image given; give at least one support image with its mask")
        if len(images) != len(masks):
            raise InputError(f"{len(images)} support images but {len(masks)} masks; give one mask per support image")
        if len(images) > MAX_SHOTS:
            raise InputError(f"{len(images)} supports given; use at most {MAX_SHOTS}")
        small_images, small_masks = [], []
        side = (self.image_size, self.image_size)
        for i, (image, mask) in enumerate(zip(images, masks), start=1):  # one full-size support in memory at a time
            rgb = load_rgb(image, f"support image {i}")
            full = load_mask(mask, rgb.size, f"support mask {i}")
            small = np.asarray(Image.fromarray(full).resize(side, Image.NEAREST))
            if not small.any():  # the model would see an empty support: no object to look for
                raise InputError(f"support mask {i} marks only {int(full.sum())} pixel(s), which vanish when the support "
                                 f"is resized to {self.image_size}x{self.image_size}; mark a larger part of the object")
            small_images.append(self._resized([rgb])[0])
            small_masks.append(small)
        resized_rgb, mask_array = np.stack(small_images), np.stack(small_masks)
        digest = hashlib.sha256(f"{self.image_size}|{self.precision}|{self.model.mask_support}".encode())
        digest.update(resized_rgb.tobytes())
        digest.update(np.packbits(mask_array).tobytes())
        return digest.hexdigest(), self._pixels(resized_rgb), torch.from_numpy(mask_array).to(self.device, torch.float32)

    # ---- encoding -------------------------------------------------------------------------------------------

    def _encode(self, pixels: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[FeaturePyramid, str]:
        """Features of (N, 3, S, S) uint8 images (masked supports with ``masks``) and the precision that made them."""
        return encode(self.model, self.context, self.model.preprocess(pixels), masks)

    def set_supports(self, images: Sequence[ImageLike] | ImageLike,
                     masks: Sequence[ImageLike] | ImageLike) -> SupportSet:
        """Encode 1..16 support images with their masks once (or find them in the cache by content)."""
        key, pixels, mask_tensor = self._read_supports(images, masks)
        cached = self.cache.get(key)
        if cached is not None:
            return replace(cached, from_cache=True)
        return self._encoded_supports(key, pixels, mask_tensor)

    def _encoded_supports(self, key: str, pixels: torch.Tensor, masks: torch.Tensor) -> SupportSet:
        """(K, 3, S, S) uint8 supports and their masks encoded, and kept in the cache under ``key``."""
        features, precision = self._encode(pixels, masks)
        return self._kept(key, features, precision)

    def _kept(self, key: str, features: FeaturePyramid, precision: str) -> SupportSet:
        """Encoded supports as a SupportSet, kept in the cache under ``key``."""
        supports = SupportSet(features, features.levels[0].shape[0], self.image_size, key, precision=precision)
        self.cache.put(key, supports)
        return supports

    def _query(self, images: list[Image.Image], supports: SupportSet) -> tuple[QueryFeatures, Episode | None]:
        """The queries' features; with ``cuda_graphs`` also their episode, replayed from a whole-episode CUDA graph
        (None where it runs eagerly: after the backbone, in ``_segment``)."""
        pixels = self._pixels(images)
        if self.context.cuda_graphs:
            replayed = query_episode(self.model, self.context, pixels, supports.features)
            if replayed is not None:
                episode, features = replayed
                return QueryFeatures(features, images[0].size, episode.precision), episode
        features, precision = self._encode(pixels)
        return QueryFeatures(features, images[0].size, precision), None

    def encode_query(self, query: ImageLike) -> QueryFeatures:
        """One query's features at model resolution (what ``point_correlation`` reads), with its original size."""
        image = load_rgb(query, "query image")
        features, precision = self._encode(self._pixels([image]))
        return QueryFeatures(features, image.size, precision)

    # ---- predictions ----------------------------------------------------------------------------------------

    def predict(self, query: ImageLike, supports: SupportSet | Sequence[ImageLike] | ImageLike,
                masks: Sequence[ImageLike] | ImageLike | None = None, rule: str = "vote") -> Prediction:
        """Segment ``query`` given a ``SupportSet``, or support images and their ``masks`` (encoded and cached).

        ``rule`` merges K > 1 shots: "vote" (the authors') or "mean-prob".
        """
        self._check_rule(rule)
        watch = _Stopwatch(self.context)
        image = load_rgb(query, "query image")
        if isinstance(supports, SupportSet):
            if masks is not None:
                raise InputError("masks given with a SupportSet; its supports are already masked, pass it alone")
            handle, query_features = supports, None
            watch.lap("preprocess")
        else:
            if masks is None:
                raise InputError("support images given without masks; give one mask per support image")
            handle, query_features = self._encode_episode(image, supports, masks, watch)
        episode = None
        if query_features is None:
            query_features, episode = self._query([image], handle)
        watch.lap("backbone" if episode is None else "episode (CUDA graph)")
        (result,) = self._segment([image], query_features, handle, rule, watch, fresh_supports=not handle.from_cache
                                  and not isinstance(supports, SupportSet), episode=episode)
        return result

    def _encode_episode(self, query: Image.Image, images: Sequence[ImageLike] | ImageLike,
                        masks: Sequence[ImageLike] | ImageLike,
                        watch: _Stopwatch) -> tuple[SupportSet, QueryFeatures | None]:
        """The supports' handle, and the query's features when the supports were new (one backbone batch if it
        fits one pass; with ``cuda_graphs`` the supports alone, the query goes through the replayed episode)."""
        key, pixels, mask_tensor = self._read_supports(images, masks)
        cached = self.cache.get(key)
        watch.lap("preprocess")
        if cached is not None:
            return replace(cached, from_cache=True), None
        if self.context.cuda_graphs:
            return self._encoded_supports(key, pixels, mask_tensor), None
        batch = self.model.preprocess(torch.cat([self._pixels([query]), pixels]))
        query_features, features, precision = encode_episode(self.model, self.context, batch[:1], batch[1:],
                                                             mask_tensor)
        return self._kept(key, features, precision), QueryFeatures(query_features, query.size, precision)

    def predict_many(self, queries: Iterable[ImageLike], supports: SupportSet, batch_size: int = 4,
                     rule: str = "vote") -> Iterator[Prediction]:
        """Segment every query against one ``SupportSet``, ``batch_size`` queries per backbone batch; yields one
        Prediction per query in input order. A query that cannot be decoded raises InputError after the results
        of the queries before it. Each Prediction keeps its query's features (for ``point_correlation``): keep
        only the results you need."""
        self._check_rule(rule)
        if not isinstance(supports, SupportSet):
            raise InputError("predict_many takes a SupportSet; make one with predictor.set_supports(images, masks)")
        try:
            batch_size = operator.index(batch_size)
        except TypeError:
            raise InputError(f"batch size {batch_size!r} is not an integer; give 1 or more") from None
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be at least 1")
        pending: list[Image.Image] = []
        for index, query in enumerate(queries, start=1):
            try:
                pending.append(load_rgb(query, f"query image {index}"))
            except InputError:
                yield from self._predict_batch(pending, supports, rule)
                raise
            if len(pending) == batch_size:
                yield from self._predict_batch(pending, supports, rule)
                pending = []
        yield from self._predict_batch(pending, supports, rule)

    def _predict_batch(self, images: list[Image.Image], supports: SupportSet, rule: str) -> list[Prediction]:
        if not images:
            return []
        watch = _Stopwatch(self.context)
        query, episode = self._query(images, supports)
        watch.lap("backbone" if episode is None else "episode (CUDA graph)")
        return self._segment(images, query, supports, rule, watch, episode=episode)

    def _segment(self, images: list[Image.Image], query: QueryFeatures, supports: SupportSet, rule: str,
                 watch: _Stopwatch, fresh_supports: bool = False, episode: Episode | None = None) -> list[Prediction]:
        """The runtime's forward path (logits and layer maps at model resolution; ``episode`` when it was replayed
        already), then each final mask resized; ``query`` holds the features of every image in ``images``."""
        if episode is None:
            side = (self.image_size, self.image_size)
            episode = run_episode(self.model, self.context, query.features, supports.features, supports.shots, side,
                                  layer_maps=True)
            watch.lap("correlation+learner")
        precision = combined_precision(episode.precision, query.precision, supports.precision)
        with self.context.inference():
            probabilities = episode.logits.softmax(dim=2)[:, :, 1].cpu().numpy()
            scores = foreground_score(episode.logits, rule).cpu().numpy()
        maps = [m.cpu().numpy() for m in episode.layer_maps]
        results = []
        for i, image in enumerate(images):
            layer_maps = [LayerMap(name, level, values[i, j])
                          for values, (level, names) in zip(maps, self._levels()) for j, name in enumerate(names)]
            features = query.features.select(slice(i, i + 1))
            if len(images) > 1:  # a copy of its own, so that a kept result does not hold the whole batch
                features = FeaturePyramid([x.clone() for x in features.levels])
            results.append(Prediction(
                mask=resized(scores[i], image.size) >= 0.5, shot_probabilities=probabilities[i].copy(),
                layer_maps=layer_maps, timings={}, device=str(self.device), support_cache_hit=not fresh_supports,
                query_features=QueryFeatures(features, image.size, query.precision), supports=supports,
                precision=precision,
            ))
        watch.lap("postprocess")
        for result in results:
            result.timings = watch.total()
        return results

    def point_correlation(self, supports: SupportSet, query_features: QueryFeatures, x: float,
                          y: float) -> list[list[LayerMap]]:
        """Correlation of the query point (x, y) (original pixels) with every support cell: per support, per layer,
        under the context's precision."""
        width, height = query_features.size
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"point ({x:.0f}, {y:.0f}) is outside the {width}x{height} query")
        per_level = []
        with self.context.inference():
            for q, s in zip(query_features.features.levels, supports.features.levels):
                hq, wq = q.shape[-2:]
                row, col = min(int(y * hq / height), hq - 1), min(int(x * wq / width), wq - 1)
                point = q[:, :, :, row: row + 1, col: col + 1].to(self.device)  # (1, L, C, 1, 1)
                corr = correlate(point, s.to(self.device)[None])  # (K, L, 1, 1, hs, ws)
                per_level.append(corr[:, :, 0, 0].float().cpu().numpy())
        return [[LayerMap(name, level, values[k, i])
                 for values, (level, names) in zip(per_level, self._levels()) for i, name in enumerate(names)]
                for k in range(supports.shots)]

    def clear_cache(self) -> None:
        """Forget every cached support."""
        self.cache.clear()

    @staticmethod
    def _check_rule(rule: str) -> None:
        if rule not in K_SHOT_RULES:
            raise InputError(f"unknown k-shot rule {str(rule)[:40]!r}; choose one of {', '.join(K_SHOT_RULES)}")
