"""Images in, masks and hypercorrelation heatmaps out: HSNet for people rather than tensors.

The predictor preprocesses as the authors do (square resize, ImageNet
normalization), caches the masked support features by content so that a second
query against the same supports skips the backbone for them, and returns
everything at the query's original size.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import InputError
from .inputs import ImageLike, load_mask, load_rgb
from .limits import DEFAULT_IMAGE_SIDE, check_image_size
from .model import K_SHOT_RULES, FeaturePyramid, HSNet, combine_shots

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_SHOTS = 16


@dataclass
class LayerMap:
    """One backbone layer's correlation map at that layer's feature resolution."""

    name: str
    level: int
    values: np.ndarray  # (h, w) float32 in [0, 1]


@dataclass
class Prediction:
    """What the predictor returns for one query; arrays are at the query's original size."""

    mask: np.ndarray  # (H, W) bool
    probability: np.ndarray  # (H, W) float32, foreground probability averaged over the shots
    shot_masks: list[np.ndarray]  # each support's own (H, W) bool mask when K > 1
    vote_map: np.ndarray | None  # fraction of the K supports voting foreground, when K > 1
    layer_maps: list[LayerMap]  # per layer: how strongly each query cell matches the masked support
    timings: dict[str, float]  # seconds per stage
    device: str
    support_cache_hit: bool
    _query: FeaturePyramid = field(repr=False)
    _support: FeaturePyramid = field(repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """The query's (width, height)."""
        return self.mask.shape[1], self.mask.shape[0]

    def to(self, device: str | torch.device) -> "Prediction":
        """The same prediction with its kept features on ``device``, e.g. "cpu" before it leaves a GPU worker."""
        return replace(self, _query=self._query.to(device), _support=self._support.to(device))

    def heatmap(self, index: int) -> np.ndarray:
        """Layer ``index``'s correlation map resized to the query's size (bilinear)."""
        values = torch.from_numpy(self.layer_maps[index].values)[None, None]
        out = F.interpolate(values, (self.mask.shape[0], self.mask.shape[1]), mode="bilinear", align_corners=True)
        return out[0, 0].numpy()


def _layer_names(model: HSNet) -> list[tuple[int, list[str]]]:
    """(level, layer names) for levels 4, 3, 2 in the order the model stacks them."""
    names = list(model.spec.layer_names)
    n4, n3, n2 = model.spec.level_sizes
    return [(4, names[len(names) - n4:]), (3, names[len(names) - n4 - n3: len(names) - n4]), (2, names[:n2])]


class Predictor:
    """Few-shot segmentation of a query from 1..K annotated supports.

    ``device`` defaults to CUDA when available; ``precision`` "bf16"/"fp16" runs the
    model under autocast (fp16 needs CUDA). ``cache_size`` bounds how many support
    images' features are kept.
    """

    def __init__(self, model: HSNet, device: str | torch.device | None = None, precision: Precision = "fp32",
                 image_size: int = DEFAULT_IMAGE_SIDE, cache_size: int = 10):
        check_image_size(image_size)
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision == "fp16" and self.device.type != "cuda":
            raise InputError("fp16 needs a CUDA device; use precision='fp32' or 'bf16' on the CPU")
        self.model = model.eval().to(self.device)
        self.precision = precision
        self.image_size = image_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, FeaturePyramid] = OrderedDict()
        self._lock = threading.Lock()
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(3, 1, 1)

    @property
    def layer_names(self) -> list[str]:
        """Backbone layer names in the order of ``Prediction.layer_maps``."""
        return [name for _, names in _layer_names(self.model) for name in names]

    @contextmanager
    def _autocast(self) -> Iterator[None]:
        enabled = self.precision != "fp32"
        with torch.inference_mode(), torch.autocast(self.device.type, PRECISIONS[self.precision], enabled=enabled):
            yield

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _resized(self, image: Image.Image) -> np.ndarray:
        """The authors' resize: PIL bilinear to a square of ``image_size``, as uint8 (S, S, 3)."""
        return np.array(image.resize((self.image_size, self.image_size), Image.BILINEAR))

    def _normalize(self, pixels: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(pixels).to(self.device).permute(2, 0, 1).float().div_(255)
        return (x - self._mean) / self._std

    def _mask_tensor(self, mask: np.ndarray) -> torch.Tensor:
        m = torch.from_numpy(np.array(mask, dtype=np.float32)).to(self.device)[None, None]
        return F.interpolate(m, (self.image_size, self.image_size), mode="nearest")[0, 0]

    def _prepared_supports(self, supports: Sequence[ImageLike],
                           masks: Sequence[ImageLike]) -> tuple[str, list[np.ndarray], torch.Tensor]:
        """The supports' cache key (their resized pixels and masks), resized pixels and (K, S, S) mask tensor."""
        pixels, mask_arrays = [], []
        for i, (support, mask) in enumerate(zip(supports, masks), start=1):
            image = load_rgb(support, f"support image {i}")
            pixels.append(self._resized(image))
            mask_arrays.append(load_mask(mask, image.size, f"support mask {i}"))
        mask_tensors = [self._mask_tensor(m) for m in mask_arrays]
        for i, (array, tensor) in enumerate(zip(mask_arrays, mask_tensors), start=1):
            if not tensor.any():  # the model would see an empty support: no object to look for
                raise InputError(f"support mask {i} marks only {int(array.sum())} pixel(s), which vanish when the support "
                                 f"is resized to {self.image_size}x{self.image_size}; mark a larger part of the object")
        digest = hashlib.sha256(f"{self.image_size}|{self.precision}".encode())
        for p, m in zip(pixels, mask_tensors):
            digest.update(p.tobytes())
            digest.update(m.to(torch.uint8).cpu().numpy().tobytes())
        return digest.hexdigest(), pixels, torch.stack(mask_tensors)

    def _cached(self, key: str) -> FeaturePyramid | None:
        with self._lock:
            pyramid = self._cache.get(key)
            if pyramid is not None:
                self._cache.move_to_end(key)
            return pyramid

    def _remember(self, key: str, pyramid: FeaturePyramid) -> None:
        """Keep ``pyramid``, dropping the oldest supports beyond ``cache_size`` images."""
        with self._lock:
            self._cache[key] = pyramid
            while sum(p.levels[0].shape[0] for p in self._cache.values()) > self.cache_size and len(self._cache) > 1:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        """Forget every cached support."""
        with self._lock:
            self._cache.clear()

    def predict(self, query: ImageLike, supports: Sequence[ImageLike] | ImageLike,
                support_masks: Sequence[ImageLike] | ImageLike, rule: str = "vote") -> Prediction:
        """Segment ``query`` given supports and their masks (one each; paths, PIL images or arrays).

        ``rule`` merges K > 1 shots: "vote" (the authors') or "mean-prob".
        """
        supports = list(supports) if isinstance(supports, (list, tuple)) else [supports]
        support_masks = list(support_masks) if isinstance(support_masks, (list, tuple)) else [support_masks]
        if not supports:
            raise InputError("no support image given; give at least one support image with its mask")
        if len(supports) != len(support_masks):
            raise InputError(f"{len(supports)} support images but {len(support_masks)} masks; give one mask per support image")
        if len(supports) > MAX_SHOTS:
            raise InputError(f"{len(supports)} supports given; use at most {MAX_SHOTS}")
        if rule not in K_SHOT_RULES:
            raise InputError(f"unknown k-shot rule {rule!r}; choose one of {', '.join(K_SHOT_RULES)}")
        timings: dict[str, float] = {}
        start = tick = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal tick
            self._sync()
            now = time.perf_counter()
            timings[stage] = now - tick
            tick = now

        query_image = load_rgb(query, "query image")
        query_tensor = self._normalize(self._resized(query_image))[None]
        key, support_pixels, mask_tensor = self._prepared_supports(supports, support_masks)
        support = self._cached(key)
        hit = support is not None
        lap("preprocess")
        shots = len(supports)
        width, height = query_image.size
        with self._autocast():
            if hit:
                query_pyramid = self.model.query_features(query_tensor)
            else:  # the query and the supports through the backbone as one batch
                support_images = torch.stack([self._normalize(p) for p in support_pixels])
                query_pyramid, support = self.model.episode_features(query_tensor, support_images, mask_tensor)
                self._remember(key, support)
            lap("backbone")
            corr = self.model.hypercorrelation(query_pyramid, support, shots)
            layer_maps = self._layer_maps(corr, shots)
            lap("correlation")
            logits = self.model.decode(corr, shots, (height, width)).float()
            del corr
            lap("learner")
            mask = combine_shots(logits, rule)[0].bool()
            probability = logits.softmax(dim=2)[0, :, 1].mean(dim=0)
            shot_masks = logits[0].argmax(dim=1).bool() if shots > 1 else None
        result = Prediction(
            mask=mask.cpu().numpy(),
            probability=probability.cpu().numpy(),
            shot_masks=list(shot_masks.cpu().numpy()) if shot_masks is not None else [],
            vote_map=shot_masks.float().mean(dim=0).cpu().numpy() if shot_masks is not None else None,
            layer_maps=layer_maps,
            timings=timings,
            device=str(self.device),
            support_cache_hit=hit,
            _query=query_pyramid,
            _support=support,
        )
        lap("postprocess")
        timings["total"] = time.perf_counter() - start
        return result

    def _layer_maps(self, corr: list[torch.Tensor], shots: int) -> list[LayerMap]:
        """For each layer, the best match of each query cell over the masked support, averaged over shots."""
        maps = []
        for level_corr, (level, names) in zip(corr, _layer_names(self.model)):
            best = level_corr.amax(dim=(-2, -1)).float()  # (B*K, L, Hq, Wq)
            best = best.view(-1, shots, *best.shape[1:]).mean(dim=1)[0].cpu().numpy()
            maps += [LayerMap(name, level, best[i]) for i, name in enumerate(names)]
        return maps

    def point_correlation(self, prediction: Prediction, x: float, y: float) -> list[list[LayerMap]]:
        """Correlation of the query point (x, y) (original pixels) with every support cell, per support and layer."""
        width, height = prediction.size
        if not (0 <= x < width and 0 <= y < height):
            raise InputError(f"point ({x:.0f}, {y:.0f}) is outside the {width}x{height} query")
        per_level = []
        with torch.inference_mode():
            for q, s in zip(prediction._query.levels, prediction._support.levels):
                hq, wq = q.shape[-2:]
                row, col = min(int(y * hq / height), hq - 1), min(int(x * wq / width), wq - 1)
                point = q[0, :, :, row, col].float()  # (L, C)
                per_level.append(torch.einsum("lc,klchw->klhw", point, s.float()).clamp_(min=0).cpu().numpy())
        shots = prediction._support.levels[0].shape[0]
        out: list[list[LayerMap]] = []
        for k in range(shots):
            maps = []
            for values, (level, names) in zip(per_level, _layer_names(self.model)):
                maps += [LayerMap(name, level, values[k, i]) for i, name in enumerate(names)]
            out.append(maps)
        return out
