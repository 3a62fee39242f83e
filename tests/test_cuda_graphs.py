"""The parts of whole-episode CUDA graphs that need no GPU: bucket choice, padding and slicing, the graph cache, the
switch refusing the CPU, and the wiring: with ``cuda_graphs`` on, ``episode_logits`` and the Predictor route through
``EpisodeGraphs`` (here a CPU stand-in keeping its contract) and give the eager outputs. Replays of real graphs equal
to eager are checked on a GPU (tests/test_cuda.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import hsnet.runtime.episode
from hsnet import Predictor
from hsnet.errors import InputError
from hsnet.runtime import InferenceContext, episode_logits
from hsnet.runtime.cuda_graphs import (BUCKETS, EpisodeGraphs, GraphCache, Outputs, bucket_of, chunks, fill_padded,
                                       shape_key, sliced)


@pytest.mark.parametrize("batch,bucket", [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (9, 16), (17, 32), (32, 32),
                                          (33, 32), (100, 32)])
def test_batch_rounds_up_to_the_smallest_bucket_holding_it(batch: int, bucket: int) -> None:
    assert bucket_of(batch) == bucket


def test_a_batch_of_nothing_has_no_bucket() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        bucket_of(0)


@pytest.mark.parametrize("batch", [1, 31, 32, 33, 64, 70])
def test_batches_past_the_largest_bucket_run_in_chunks_that_cover_them_once(batch: int) -> None:
    parts = chunks(batch)
    covered = [i for part in parts for i in range(batch)[part]]
    assert covered == list(range(batch))
    assert all(part.stop - part.start <= BUCKETS[-1] for part in parts)


def test_padding_repeats_the_last_real_row_and_slicing_returns_copies() -> None:
    items = torch.arange(6.0).view(3, 2)
    buffer = torch.full((4, 2), float("nan"))
    fill_padded(buffer, items)
    assert torch.equal(buffer, torch.tensor([[0.0, 1], [2, 3], [4, 5], [4, 5]]))
    out = sliced(buffer, 3)
    assert torch.equal(out, items)
    buffer.zero_()  # the next replay overwrites the graph's outputs; a sliced result keeps its values
    assert torch.equal(out, items)
    first, second = sliced((buffer, buffer + 1), 2)
    assert first.shape == second.shape == (2, 2)


def test_graphs_are_kept_per_bucket_and_shape_and_the_least_recent_goes_first() -> None:
    made: list[tuple] = []
    cache: GraphCache[int] = GraphCache(limit=2)

    def get(batch: int, side: int, dtype: torch.dtype = torch.float32) -> int:
        inputs = (torch.zeros(batch, 3, side, side, dtype=dtype), torch.zeros(batch, 1, side, side))
        key = shape_key(inputs, bucket_of(batch))
        return cache.get(key, lambda: made.append(key) or len(made))

    assert get(3, 8) == get(4, 8) == 1  # batches 3 and 4 share the bucket of 4
    assert get(1, 8) == 2  # another bucket
    assert get(4, 8) == 1 and len(cache) == 2  # found again: now the most recent
    assert get(4, 16) == 3  # another side; bucket 1 at side 8 is dropped
    assert get(1, 8) == 4 and len(made) == 4
    assert get(4, 8, torch.float16) == 5  # another dtype


def test_the_switch_refuses_the_cpu_in_one_line() -> None:
    with pytest.raises(InputError) as error:
        EpisodeGraphs(lambda x: x, InferenceContext.create("cpu"))
    assert "CUDA graphs need a CUDA device" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(InputError, match="CUDA graphs need a CUDA device"):
        InferenceContext.create("cpu", cuda_graphs=True)


# ---- the wiring, with a stand-in for EpisodeGraphs -----------------------------------------------------------------

class StandInGraphs:
    """EpisodeGraphs' contract on the CPU: ``fn`` on inputs padded to their bucket, outputs sliced; it records the
    shape keys it would capture and the calls it would replay."""

    made: list["StandInGraphs"] = []

    def __init__(self, fn, context: InferenceContext):
        self.fn, self.keys, self.calls = fn, set(), 0
        StandInGraphs.made.append(self)

    def run(self, *inputs: torch.Tensor, shared: tuple[torch.Tensor, ...] = ()) -> Outputs:
        bucket = bucket_of(len(inputs[0]))
        padded = tuple(torch.empty((bucket, *x.shape[1:]), dtype=x.dtype) for x in inputs)
        for buffer, x in zip(padded, inputs):
            fill_padded(buffer, x)
        self.keys.add(shape_key(padded, bucket, shared))
        self.calls += 1
        return sliced(self.fn(*padded, *shared), len(inputs[0]))


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> type[StandInGraphs]:
    StandInGraphs.made = []
    monkeypatch.setattr(hsnet.runtime.episode, "EpisodeGraphs", StandInGraphs)
    return StandInGraphs


def graphs_on(precision: str = "fp32", max_pass_bytes: int | None = None) -> InferenceContext:
    """A CPU context with the switch on (``create`` refuses it on the CPU; the fields are taken as given)."""
    return InferenceContext(torch.device("cpu"), precision, cuda_graphs=True, max_pass_bytes=max_pass_bytes)


def episode(batch: int, shots: int = 2, side: int = 64, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    masks = torch.zeros(batch, shots, side, side)
    masks[..., side // 4: side // 2, side // 3:] = 1
    return (torch.randn(batch, 3, side, side, generator=generator),
            torch.randn(batch, shots, 3, side, side, generator=generator), masks)


def test_episode_logits_route_through_the_graphs_and_equal_eager(resnet50, stand_in) -> None:
    context, eager = graphs_on(), InferenceContext.create("cpu")
    for batch, seed in ((3, 0), (1, 1), (4, 2)):  # 3 and 4 share bucket 4: one graph, replayed
        inputs = episode(batch, seed=seed)
        torch.testing.assert_close(episode_logits(resnet50, context, *inputs), episode_logits(resnet50, eager, *inputs),
                                   rtol=1e-4, atol=1e-4)
    (graphs,) = stand_in.made
    assert graphs.calls == 3 and len(graphs.keys) == 2


def test_an_episode_past_one_pass_runs_eagerly(resnet50, stand_in) -> None:
    inputs = episode(2)
    logits = episode_logits(resnet50, graphs_on(max_pass_bytes=2**20), *inputs)  # a pair alone is more than 1 MiB
    torch.testing.assert_close(logits, episode_logits(resnet50, InferenceContext.create("cpu"), *inputs))
    assert not stand_in.made


def test_predictor_routes_through_the_graphs_and_equals_eager(predictor_resnet50, stand_in, photo, blob) -> None:
    eager = Predictor(predictor_resnet50, device="cpu", image_size=96)
    graphed = Predictor(predictor_resnet50, device="cpu", image_size=96)
    graphed.context = graphs_on()
    supports, masks = [photo(120, 90, 1), photo(90, 120, 2)], [blob(120, 90), blob(90, 120)]
    query = photo(100, 80, 3)
    expected, got = eager.predict(query, supports, masks), graphed.predict(query, supports, masks)
    (graphs,) = stand_in.made
    assert graphs.calls == 1 and "episode (CUDA graph)" in got.timings
    assert np.array_equal(got.mask, expected.mask)
    np.testing.assert_allclose(got.shot_probabilities, expected.shot_probabilities, atol=1e-4)
    for mine, theirs in zip(got.layer_maps, expected.layer_maps):
        np.testing.assert_allclose(mine.values, theirs.values, atol=1e-4)
    for mine, theirs in zip(got.query_features.features.levels, expected.query_features.features.levels):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)
    queries = [photo(100, 80, seed) for seed in (4, 5, 6)]
    handle = graphed.set_supports(supports, masks)
    many = list(graphed.predict_many(queries, handle, batch_size=3))  # bucket 4, padded
    assert graphs.calls == 2 and len(graphs.keys) == 2
    for mine, theirs in zip(many, eager.predict_many(queries, eager.set_supports(supports, masks), batch_size=3)):
        assert np.array_equal(mine.mask, theirs.mask)
        np.testing.assert_allclose(mine.shot_probabilities, theirs.shot_probabilities, atol=1e-4)


def test_fp16_replays_that_overflow_are_computed_again_eagerly(resnet50, stand_in, monkeypatch) -> None:
    monkeypatch.setattr(StandInGraphs, "run", lambda self, *inputs, shared=(): self.fn(*inputs, *shared) * np.nan)
    with pytest.warns(RuntimeWarning, match="fp16 overflowed in the replayed episode"):
        logits = episode_logits(resnet50, graphs_on("fp16"), *episode(1))
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, episode_logits(resnet50, InferenceContext.create("cpu", "bf16"), *episode(1)))



def test_predictor_fp16_replays_that_overflow_are_computed_again(predictor_resnet50, stand_in, monkeypatch, photo,
                                                                 blob) -> None:
    monkeypatch.setattr(StandInGraphs, "run", lambda self, *inputs, shared=(): tuple(
        x * np.nan for x in self.fn(*inputs, *shared)))
    predictor = Predictor(predictor_resnet50, device="cpu", image_size=64)
    predictor.context = graphs_on("fp16")
    with pytest.warns(RuntimeWarning, match="fp16 overflowed in the replayed episode"):
        result = predictor.predict(photo(80, 60, 1), photo(80, 60, 2), blob(80, 60))
    assert result.precision == "fp16->bf16" and np.isfinite(result.shot_probabilities).all()
    assert all(np.isfinite(m.values).all() for m in result.layer_maps)
    assert all(torch.isfinite(x).all() for x in result.query_features.features.levels)

def test_the_default_is_one_constant_and_never_turns_graphs_on_off_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import hsnet.runtime.context

    assert InferenceContext.create("cpu").cuda_graphs is False
    monkeypatch.setattr(hsnet.runtime.context, "CUDA_GRAPHS_DEFAULT", True)
    assert InferenceContext.create("cpu").cuda_graphs is False  # None: the default applies on CUDA only
