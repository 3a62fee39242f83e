"""hsnet on a CUDA GPU (issue 21): skipped where none is visible (conftest.py), run by ``pytest -m cuda`` and by
benchmarks/gpu.sh.

What is checked against what: fp32 on the GPU against the authors' outputs (tests/reference/*.npz) within what
float32 without TF32 keeps; bf16 and fp16 against that fp32 on the same inputs; the fp16 guard on the ResNet-101
reference weights, whose level-3 and level-4 features overflow float16; whole-episode CUDA graphs against the eager
episode (``EpisodeGraphs`` alone, and through the Predictor and ``episode_logits`` with ``cuda_graphs=True``);
peak GPU memory of the cases issue 21 measured; and ``hsnet predict``/``hsnet label`` with ``--device cuda``
against the same commands on the CPU.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hsnet
from hsnet.cli import main
from hsnet.model import combine_shots
from hsnet.runtime import InferenceContext, episode_logits
from hsnet.runtime.cuda_graphs import EpisodeGraphs
from measure import peak_gpu_bytes
from test_label import write_support_and_weights
from test_reference import CASES, REFERENCE, reference_inputs, reference_weights

pytestmark = pytest.mark.cuda
GIB = 2**30
IMAGENET_MEAN, IMAGENET_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def reference_model(case: str) -> hsnet.HSNet:
    backbone, _, _, _, seed = CASES[case]
    return hsnet.load_weights(hsnet.build_model(backbone), reference_weights(backbone, seed)).eval()


@functools.lru_cache(maxsize=None)
def logits_on(case: str, precision: str) -> torch.Tensor:
    """(B, K, 2, H, W) float32 logits of the reference case on the GPU in ``precision``, on the CPU."""
    _, batch, shots, side, seed = CASES[case]
    context = InferenceContext.create("cuda", precision)
    model = context.prepare(reference_model(case))
    return episode_logits(model, context, *reference_inputs(batch, shots, side, seed)).cpu()


def foreground(logits: torch.Tensor) -> torch.Tensor:
    """The mask of (B, K, 2, H, W) logits: the argmax for one shot, the authors' vote for more."""
    return combine_shots(logits, "vote").bool()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


# ---- precision --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_fp32_on_the_gpu_is_float32_and_matches_the_authors(case: str) -> None:
    """TF32 moves logits by about 2e-3 of their scale; float32 keeps them within 1e-4 (issue 21 measured 3e-6)."""
    want = np.load(REFERENCE / f"expected-{case}.npz")["out"]
    got = logits_on(case, "fp32")
    if CASES[case][2] == 1:
        error = float(np.abs(got[:, 0].numpy() - want).max()) / max(1.0, float(np.abs(want).max()))
        assert error <= 1e-4, f"fp32 on the GPU is {error:.1e} of scale from the authors' float32 (TF32 left on?)"
    else:
        assert float((foreground(got).float().numpy() == want).mean()) >= 0.999


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("case", list(CASES))
def test_half_precisions_agree_with_fp32(case: str, precision: str) -> None:
    """Finite logits (the fp16 guard recomputes a pass that overflowed) whose masks agree with fp32's."""
    exact, half = logits_on(case, "fp32"), logits_on(case, precision)
    assert torch.isfinite(half).all(), f"{precision} returned non-finite logits"
    agreement = float((foreground(half) == foreground(exact)).float().mean())
    assert agreement >= 0.98, f"{precision} masks agree with fp32 on {agreement:.3f} of the pixels"


def reference_photos(case: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The reference case's (normalized) images as uint8 photos and its masks as booleans, for the Predictor."""
    _, batch, shots, side, seed = CASES[case]
    query, supports, masks = reference_inputs(batch, shots, side, seed)
    images = torch.cat([query[:1], supports[0]]).permute(0, 2, 3, 1).numpy()
    photos = np.clip((images * IMAGENET_STD + IMAGENET_MEAN) * 255, 0, 255).round().astype(np.uint8)
    return list(photos), [m.numpy() > 0.5 for m in masks[0]]


def test_fp16_guard_never_returns_a_mask_from_non_finite_values() -> None:
    """The ResNet-101 reference weights overflow float16 (issue 21: NaN correlation, an empty mask, no warning).
    The Predictor's fp16 result is finite, agrees with fp32, and says which precision produced it."""
    case, side = "resnet101-1shot", CASES["resnet101-1shot"][3]
    photos, masks = reference_photos(case)
    query, supports = photos[0], photos[1:]
    model = hsnet.load_weights(hsnet.build_model("resnet101"), reference_weights("resnet101", CASES[case][4])).eval()
    model.to("cuda")
    with torch.inference_mode(), torch.autocast("cuda", torch.float16):  # the unguarded pass, for the record
        features = model.query_features(model.preprocess(torch.from_numpy(query).permute(2, 0, 1)[None].cuda()))
        overflowed = not all(torch.isfinite(level).all() for level in features.levels)
    exact = hsnet.Predictor(reference_model(case), device="cuda", precision="fp32", image_size=side).predict(
        query, supports, masks)
    guarded = hsnet.Predictor(model, device="cuda", precision="fp16", image_size=side).predict(query, supports, masks)
    assert exact.precision == "fp32"
    assert np.isfinite(guarded.shot_probabilities).all()
    assert guarded.precision in ("fp16", "fp16->bf16", "fp16->fp32")
    if overflowed:
        assert guarded.precision != "fp16", "fp16 overflowed, yet the result says fp16 alone produced it"
    assert iou(guarded.mask, exact.mask) >= 0.95, f"guarded fp16 ({guarded.precision}) mask against fp32's"


# ---- whole-episode CUDA graphs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_graph_replays_equal_the_eager_episode(seeded, precision: str) -> None:
    context = InferenceContext.create("cuda", precision)
    model = context.prepare(seeded("resnet50", 3))
    graphs = EpisodeGraphs(lambda q, s, m: episode_logits(model, context, q, s, m), context)
    tolerance = 1e-3 if precision == "fp32" else 5e-2  # padded batches may pick other kernels; stale buffers miss
    for batch, seed in ((1, 0), (3, 1), (1, 2), (3, 3)):  # batch 3 pads to bucket 4; the repeats replay
        inputs = tuple(x.cuda() for x in reference_inputs(batch, 2, 128, seed))
        eager = episode_logits(model, context, *inputs)
        replayed = graphs.run(*inputs)
        assert replayed.shape == eager.shape
        scale = float(eager.abs().max())
        assert float((replayed - eager).abs().max()) <= tolerance * max(1.0, scale)
    assert len(graphs) == 2  # buckets 1 and 4 at one shape


def test_graphs_run_batches_past_the_largest_bucket_in_chunks(seeded) -> None:
    context = InferenceContext.create("cuda", "fp32")
    model = context.prepare(seeded("resnet50", 4))
    graphs = EpisodeGraphs(lambda q, s, m: episode_logits(model, context, q, s, m), context, buckets=(1, 2))
    inputs = tuple(x.cuda() for x in reference_inputs(5, 1, 64, 5))
    torch.testing.assert_close(graphs.run(*inputs), episode_logits(model, context, *inputs), rtol=1e-4, atol=1e-4)


def captured(context: InferenceContext) -> int:
    """Graphs the front ends captured under ``context`` (``cuda_graphs=True``)."""
    return sum(len(kept) for _, kept in context.graphs.values() if isinstance(kept, EpisodeGraphs))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_predictor_with_cuda_graphs_equals_eager_and_replays(seeded, photo, blob, precision: str) -> None:
    model = seeded("resnet50", 6)
    eager = hsnet.Predictor(model, device="cuda", precision=precision, image_size=128)
    graphed = hsnet.Predictor(model, device="cuda", precision=precision, image_size=128, cuda_graphs=True)
    supports, masks = [photo(160, 120, 1), photo(120, 160, 2)], [blob(160, 120), blob(120, 160)]
    tolerance = 1e-3 if precision == "fp32" else 5e-2
    for seed in (3, 4):  # the second call replays the first call's graph
        query = photo(150, 100, seed)
        expected, got = eager.predict(query, supports, masks), graphed.predict(query, supports, masks)
        assert "episode (CUDA graph)" in got.timings and captured(graphed.context) == 1
        np.testing.assert_allclose(got.shot_probabilities, expected.shot_probabilities, atol=tolerance)
        assert iou(got.mask, expected.mask) >= 0.99
    handle = graphed.set_supports(supports, masks)
    queries = [photo(150, 100, seed) for seed in (5, 6, 7)]
    many = list(graphed.predict_many(queries, handle, batch_size=3))  # bucket 4: one more graph
    assert captured(graphed.context) == 2
    for mine, theirs in zip(many, eager.predict_many(queries, eager.set_supports(supports, masks), batch_size=3)):
        np.testing.assert_allclose(mine.shot_probabilities, theirs.shot_probabilities, atol=tolerance)


def test_episode_logits_with_cuda_graphs_equal_eager_and_replay(seeded) -> None:
    model = seeded("resnet50", 7)
    eager, graphed = InferenceContext.create("cuda", "fp32"), InferenceContext.create("cuda", "fp32", cuda_graphs=True)
    model = eager.prepare(model)
    for seed in (0, 1):  # the second call replays
        inputs = tuple(x.cuda() for x in reference_inputs(2, 2, 128, seed))
        torch.testing.assert_close(episode_logits(model, graphed, *inputs), episode_logits(model, eager, *inputs),
                                   rtol=1e-3, atol=1e-3)
        assert captured(graphed) == 1


# ---- memory -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision,budget_gib", [("fp32", 6.5), ("bf16", 4.5)])
def test_sixteen_supports_at_640_px_stay_within_the_pass_budget(seeded, photo, blob, precision: str,
                                                                 budget_gib: float) -> None:
    """Issue 21 measured 5.2 GiB fp32 and 3.4 GiB bf16 over the model; the passes bound it, not K."""
    predictor = hsnet.Predictor(seeded("resnet50", 0), device="cuda", precision=precision, image_size=640)
    supports = [photo(800, 600, i) for i in range(16)]
    predictor.predict(photo(800, 600, 99), supports[:1], [blob(800, 600)])  # cuDNN's workspaces, once
    peak = peak_gpu_bytes(lambda: predictor.predict(photo(800, 600, 98), supports, [blob(800, 600)] * 16))
    assert peak <= budget_gib * GIB, f"{peak / GIB:.2f} GiB"


def test_a_40_megapixel_query_is_worked_at_model_resolution(seeded, blob) -> None:
    """Issue 21 measured 1.6 GiB with 5 supports: the full-size query never goes to the GPU whole."""
    predictor = hsnet.Predictor(seeded("resnet50", 0), device="cuda", precision="fp32")
    rng = np.random.default_rng(0)
    query = rng.integers(0, 256, (5480, 7300, 3), dtype=np.uint8)
    supports = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(5)]
    peak = peak_gpu_bytes(lambda: predictor.predict(query, supports, [blob(640, 480)] * 5))
    assert peak <= 2 * GIB, f"{peak / GIB:.2f} GiB"


# ---- the commands -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory: pytest.TempPathFactory, resnet50: hsnet.HSNet) -> Path:
    folder = tmp_path_factory.mktemp("cuda-cli")
    rng = np.random.default_rng(0)
    (folder / "photos").mkdir()
    for i, (width, height) in enumerate([(64, 48), (50, 70), (80, 80)]):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / "photos" / f"{i}.png")
    write_support_and_weights(folder, resnet50, rng)
    return folder


def masks_in(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(Image.open(p)) > 127 for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("command", ["predict", "label"])
def test_commands_on_cuda_give_the_cpu_s_masks(cli_inputs: Path, command: str, capsys) -> None:
    common = ["--support", str(cli_inputs / "support.png"), "--support-mask", str(cli_inputs / "mask.png"),
              "--weights", str(cli_inputs / "weights"), "--image-size", "64", "--precision", "fp32"]
    if command == "predict":
        common += ["--query", str(cli_inputs / "photos" / "0.png")]
    else:
        common = [str(cli_inputs / "photos"), *common, "--no-progress"]
    results = {}
    for device in ("cpu", "cuda"):
        out = cli_inputs / f"{command}-{device}"
        assert main([command, *common, "--out", str(out), "--device", device]) == 0, capsys.readouterr().err
        results[device] = masks_in(out / "masks" if command == "label" else out)
    assert "cuda" in capsys.readouterr().out
    assert results["cuda"].keys() == results["cpu"].keys() and results["cpu"]
    for name, mask in results["cpu"].items():
        if name.startswith("overlay"):
            continue
        assert float((results["cuda"][name] == mask).mean()) >= 0.99, name
