"""The parts of whole-episode CUDA graphs that need no GPU: bucket choice, padding and slicing, the graph cache, and
the switch refusing the CPU. Replays equal to eager are checked on a GPU (tests/test_cuda.py)."""
from __future__ import annotations

import pytest
import torch

from hsnet.errors import InputError
from hsnet.runtime import InferenceContext
from hsnet.runtime.cuda_graphs import BUCKETS, EpisodeGraphs, GraphCache, bucket_of, chunks, fill_padded, shape_key, sliced


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
