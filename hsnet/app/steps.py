"""The app's model steps and the stores they read, one of each per process at module level.

On a ZeroGPU Space each step decorated with ``on_gpu`` runs in a worker process that
sees this module's globals; so a step receives the weights' NAME (never a Predictor)
and returns CPU data only.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from .. import hub
from ..errors import InputError
from ..limits import check_image_size
from ..predictor import LayerMap, Prediction
from ..serving import ModelStore, Probe, ProbeStore, point_maps
from ..serving.queues import TURNS

try:  # present on Hugging Face Spaces; on ZeroGPU hardware its decorator lends a GPU per call
    import spaces
except ImportError:
    spaces = None

WEIGHTS_ENV = "HSNET_WEIGHTS"
IMAGE_SIZE_ENV = "HSNET_IMAGE_SIZE"
GPU_SECONDS = 120  # what a ZeroGPU call may hold the GPU for
F = TypeVar("F", bound=Callable[..., Any])


def on_gpu(fn: F) -> F:
    """``fn`` wrapped the way ZeroGPU expects when the ``spaces`` package is there; ``fn`` itself otherwise."""
    return spaces.GPU(duration=GPU_SECONDS)(fn) if spaces is not None else fn


def image_size_setting() -> int | None:
    """$HSNET_IMAGE_SIZE, the model's input side for every visitor (unset: the weights' own, 400 for the authors')."""
    text = os.environ.get(IMAGE_SIZE_ENV, "").strip()
    if not text:
        return None
    try:
        return check_image_size(int(text))
    except (ValueError, InputError) as exc:
        raise SystemExit(f"{IMAGE_SIZE_ENV}={text!r} is not usable ({exc}); give a side from 32 to 640") from None


STORE = ModelStore(os.environ.get(WEIGHTS_ENV) or hub.DEFAULT_WEIGHTS, image_size=image_size_setting())
PROBES = ProbeStore()


@on_gpu
def run_model(source: str, query: Image.Image, images: list[Image.Image], masks: list[np.ndarray],
              rule: str) -> Prediction:
    """The Segment step: the prediction of weights ``source``, with its features moved to the CPU."""
    return STORE.predictor(source).predict(query, images, masks, rule=rule).to("cpu")


@on_gpu
def probe_point(probe: Probe, x: float, y: float) -> list[list[LayerMap]]:
    """The query point (x, y) (original pixels) against every support cell, per support and layer, from ``probe``."""
    return point_maps(STORE.predictor(probe.weights), probe, x, y)


@TURNS.between
@on_gpu
def label_batch(source: str, images: list[Image.Image], masks: list[np.ndarray], rule: str,
                queries: list[Image.Image]) -> list[np.ndarray]:
    """The "Label many" step: masks of a batch of queries (the supports' features come from the cache)."""
    predictor = STORE.predictor(source)
    supports = predictor.set_supports(images, masks)
    return [p.mask for p in predictor.predict_many(queries, supports, batch_size=len(queries), rule=rule)]
