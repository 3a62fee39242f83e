"""Turn-taking between short requests and long work on one model (hsnet.serving.queues), with threads and events.

Nothing here is timed: the order of events is checked (a chunk of long work does not start while a
short call runs; a short call never waits for long work). The served app is checked under load in
tests/test_app_load.py.
"""
from __future__ import annotations

import threading

import pytest

from hsnet.serving.queues import LABEL_QUEUE, SEGMENT_QUEUE, Turns

WAIT = 30.0  # generous: only a broken implementation waits this long


def test_segment_and_label_many_have_queues_of_their_own() -> None:
    assert SEGMENT_QUEUE["concurrency_id"] != LABEL_QUEUE["concurrency_id"]
    assert SEGMENT_QUEUE["concurrency_limit"] >= 1 and LABEL_QUEUE["concurrency_limit"] >= 1


def test_a_chunk_of_long_work_waits_until_the_short_call_ends() -> None:
    turns = Turns(max_wait_s=WAIT)
    short_started, release_short, order = threading.Event(), threading.Event(), []

    @turns.first
    def segment() -> None:
        short_started.set()
        release_short.wait(WAIT)
        order.append("segment done")

    @turns.between
    def chunk() -> None:
        order.append("chunk")

    short = threading.Thread(target=segment)
    short.start()
    assert short_started.wait(WAIT)
    long = threading.Thread(target=chunk)
    long.start()
    long.join(0.3)
    assert order == []  # held back while the short call runs
    release_short.set()
    short.join(WAIT)
    long.join(WAIT)
    assert order == ["segment done", "chunk"]


def test_a_short_call_never_waits_for_long_work() -> None:
    turns = Turns(max_wait_s=WAIT)
    chunk_started, release_chunk = threading.Event(), threading.Event()

    @turns.between
    def chunk() -> None:
        chunk_started.set()
        release_chunk.wait(WAIT)

    @turns.first
    def segment() -> str:
        return "answered"

    long = threading.Thread(target=chunk)
    long.start()
    assert chunk_started.wait(WAIT)
    assert segment() == "answered"  # while the chunk is still running
    assert long.is_alive()
    release_chunk.set()
    long.join(WAIT)


def test_a_stream_of_short_calls_slows_long_work_without_stopping_it() -> None:
    turns = Turns(max_wait_s=0.2)
    short_started, release_short, done = threading.Event(), threading.Event(), threading.Event()

    @turns.first
    def segment() -> None:
        short_started.set()
        release_short.wait(WAIT)

    short = threading.Thread(target=segment)
    short.start()
    assert short_started.wait(WAIT)
    turns.between(done.set)()  # goes ahead after max_wait_s although the short call still runs
    assert done.is_set()
    release_short.set()
    short.join(WAIT)


def test_an_error_in_a_short_call_releases_its_turn() -> None:
    turns = Turns(max_wait_s=WAIT)

    @turns.first
    def failing() -> None:
        raise ValueError("bad photo")

    with pytest.raises(ValueError, match="bad photo"):
        failing()
    finished = threading.Event()
    worker = threading.Thread(target=turns.between(finished.set))
    worker.start()
    worker.join(WAIT)
    assert finished.is_set()
