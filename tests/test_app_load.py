"""The app under concurrent clients and hostile uploads: every answer right, memory flat, still serving.

A small version of ``benchmarks/load_test.py`` (both run on ``benchmarks/loadkit.py``): app.py on 127.0.0.1 with
the model's input at 64x64 so that a request costs a fraction of a second on a CPU; 8
gradio_client clients; each is answered once as a warm-up, then 16 more requests are
checked, and so are 16 identical requests at once (every picture must arrive whole);
uploads over the limit, unreadable uploads and empty masks get a message and the app
goes on answering. A Segment sent while another client's Label many of 50 photos runs is
answered in its turn (counted in photos labelled meanwhile). The soak tests send every request
from a new session with a large query photo, then hostile requests (40 brush layers, a 25 MB
data: URL, a data: URL bomb), and hold the server's memory, in use and resident, to a stated
budget. No timings are asserted here; the benchmark measures them.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

import loadkit
from crafted_files import png_claiming

pytest_plugins = ["app_fixtures"]
APP_FILE = Path(__file__).resolve().parent.parent / "app.py"

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # each module serves the app for real

CLIENTS = 8
REQUESTS = 16
IMAGE_SIZE = 64
# Memory in use (resident after the server returns its freed heap) may grow this much from the end
# of the warm-up to the end of the run; keeping one result per request would cost ~3 MiB a request.
RSS_TOLERANCE_MB = 64.0
UPLOAD_LIMIT = 20 * 1024 * 1024  # hsnet.serving.MAX_UPLOAD_BYTES, for an image
# Soak: new sessions with 6000x6000 queries. Keeping each session's whole prediction (full-size probability,
# masks and images) cost about 55 MiB a session at 2400x2400; what a click needs is kept within hsnet.serving's
# probe budget, a few KiB a session at this model side. Resident memory, as the system sees it, grew by 602 MiB
# over 20 such sessions while memory in use did not (glibc kept the freed heap); the app now returns it.
SOAK_SESSIONS = 10
SOAK_QUERY = (6000, 6000)
SOAK_BUDGET_MB = 150.0  # on memory in use and on resident memory alike
# Fairness: a Segment sent while another visitor's Label many runs is served in its turn, not after the labelling.
FAIRNESS_PHOTOS = 50  # the page's limit, and issue 22's case (a Segment waited 96.5 s behind it)
FAIRNESS_SEGMENTS = 3
# Photos labelled while one Segment is served: the photo in progress, and those labelled while the Segment's files
# travel and its pictures are encoded (outside its turn). At 64 px a photo costs about a quarter of a Segment.
PHOTOS_PER_SEGMENT = 20
HOSTILE_PEAK_BUDGET_MB = 400.0  # 40 decoded 1500x1500 RGBA layers would take 360 MiB at least
HOSTILE_LAYER_SIDE = 1500


@pytest.fixture(scope="module")
def server(app_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """The app on the CPU also where a GPU is visible: the memory budgets below are of its resident memory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUDA_VISIBLE_DEVICES", "")
        with loadkit.app_server(APP_FILE, app_checkpoint, IMAGE_SIZE, tmp_path_factory.mktemp("load-app")) as served:
            yield served


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> loadkit.Inputs:
    """A distinct query photo per request, as when visitors try the example's support on their own photos."""
    return loadkit.make_inputs(tmp_path_factory.mktemp("load-inputs"), CLIENTS + REQUESTS)


@pytest.fixture
def client(server: loadkit.Server, tmp_path: Path):
    return loadkit.connect(server.url, tmp_path)


def assert_still_serving(client, inputs: loadkit.Inputs, weights: Path) -> None:
    query, size = inputs.queries[0]
    assert loadkit.check_answer(loadkit.segment(client, query, inputs.support, inputs.mask, str(weights)), size) is None


def test_concurrent_clients_are_all_answered_correctly(server, inputs, app_checkpoint: Path, tmp_path: Path) -> None:
    report = loadkit.run_load(server, inputs, str(app_checkpoint), CLIENTS, REQUESTS, max_seconds=240,
                                downloads=tmp_path, rss_tolerance_mb=RSS_TOLERANCE_MB, image_size=IMAGE_SIZE)
    assert report.failed == 0 and report.wrong == 0, report.errors
    assert report.answered == REQUESTS
    assert report.rss_mb["in_use_growth"] <= RSS_TOLERANCE_MB, report.rss_mb
    print(f"\n{report.rss_mb}")


def test_identical_requests_at_once_are_all_answered_whole(server, app_checkpoint: Path, tmp_path: Path) -> None:
    """Visitors running the same example at once get identical pictures; each must arrive whole (docs/robustness.md:
    Gradio rewrote a picture given as an image in place, and cut short a download of it in progress)."""
    same = loadkit.make_inputs(tmp_path, distinct_queries=1)
    report = loadkit.run_load(server, same, str(app_checkpoint), CLIENTS, REQUESTS, max_seconds=240,
                              downloads=tmp_path / "downloads", rss_tolerance_mb=RSS_TOLERANCE_MB,
                              image_size=IMAGE_SIZE)
    assert report.failed == 0 and report.wrong == 0, report.errors
    assert report.answered == REQUESTS


def test_an_image_over_the_limit_is_refused(server, client, inputs, app_checkpoint: Path, tmp_path: Path) -> None:
    big = tmp_path / "huge.png"  # the upload route takes it (a zip of photos to label may be larger); the image box not
    big.write_bytes(png_claiming(4000, 3000) + bytes(UPLOAD_LIMIT))
    with pytest.raises(AppError, match="query image is over the 20 MB upload limit"):
        loadkit.segment(client, big, inputs.support, inputs.mask, str(app_checkpoint))
    assert_still_serving(client, inputs, app_checkpoint)


@pytest.mark.parametrize("name,content,expected", [
    ("notes.png", b"a text file with an image's name\n", "query image is not an image that can be read"),
    ("bomb.png", png_claiming(100_000, 100_000), "query image declares"),  # refused from the header
], ids=["text file", "bomb header"])
def test_a_bad_query_upload_gets_a_message_and_the_app_keeps_serving(
        client, inputs, app_checkpoint: Path, tmp_path: Path, name: str, content: bytes, expected: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(AppError, match=expected):
        loadkit.segment(client, tmp_path / name, inputs.support, inputs.mask, str(app_checkpoint))
    assert_still_serving(client, inputs, app_checkpoint)


def test_an_empty_mask_gets_a_message_and_the_app_keeps_serving(client, inputs, app_checkpoint: Path, tmp_path: Path) -> None:
    Image.new("L", (32, 24)).save(tmp_path / "empty.png")
    query, _ = inputs.queries[1]
    with pytest.raises(AppError, match="marks no pixels"):
        loadkit.segment(client, query, inputs.support, tmp_path / "empty.png", str(app_checkpoint))
    assert_still_serving(client, inputs, app_checkpoint)


def test_label_many_does_not_hold_up_another_visitors_segment(server, app_checkpoint: Path, tmp_path: Path) -> None:
    inputs = loadkit.make_inputs(tmp_path, 2 * FAIRNESS_SEGMENTS)
    report = loadkit.run_fairness(server, inputs, str(app_checkpoint), tmp_path, FAIRNESS_PHOTOS, FAIRNESS_SEGMENTS)
    print(f"\n{report}")
    assert report["labelled"] == FAIRNESS_PHOTOS, report
    # Counted in photos, not seconds: with one queue for both, the first Segment waited for every photo left.
    assert min(report["photos_left_after"]) > 0, report
    assert max(report["photos_meanwhile"]) <= PHOTOS_PER_SEGMENT, report


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_new_sessions_with_large_queries_stay_within_the_memory_budget(server, app_checkpoint: Path,
                                                                        tmp_path: Path) -> None:
    inputs = loadkit.make_inputs(tmp_path, 2 + SOAK_SESSIONS, large_size=SOAK_QUERY)
    report = loadkit.run_load(server, inputs, str(app_checkpoint), 2, SOAK_SESSIONS, max_seconds=480,
                                downloads=tmp_path / "downloads", rss_tolerance_mb=SOAK_BUDGET_MB,
                                image_size=IMAGE_SIZE, new_sessions=True)
    assert report.failed == 0 and report.wrong == 0, report.errors
    assert report.answered == SOAK_SESSIONS
    assert report.rss_mb["in_use_growth"] <= SOAK_BUDGET_MB, report.rss_mb
    assert report.rss_mb["growth"] <= SOAK_BUDGET_MB, report.rss_mb  # resident, read after the app's own trim
    print(f"\n{report.rss_mb}")


@pytest.mark.slow
def test_hostile_requests_are_refused_without_a_memory_spike(server, inputs, app_checkpoint: Path,
                                                              tmp_path: Path) -> None:
    cases = loadkit.run_hostile(server, inputs, str(app_checkpoint), tmp_path / "downloads", tmp_path,
                                  HOSTILE_LAYER_SIDE, HOSTILE_PEAK_BUDGET_MB)
    assert [c["case"] for c in cases if not c["passed"]] == [], cases


@pytest.mark.slow
def test_nothing_a_visitor_sent_outlives_the_app(app_checkpoint: Path, launch_app, tmp_path: Path) -> None:
    inputs = loadkit.make_inputs(tmp_path, 1)
    with launch_app(app_checkpoint, tmp_path / "app.log") as served:
        client = loadkit.connect(served.url, tmp_path / "downloads")
        query, size = inputs.queries[0]
        assert loadkit.check_answer(loadkit.segment(client, query, inputs.support, inputs.mask,
                                                        str(app_checkpoint)), size) is None
        kept = [p.name for p in served.tmp.rglob("*") if p.is_file()]
        assert query.name in kept and "support.png" in kept  # the uploads live in the process's folder meanwhile
    # Stopped (SIGTERM): uploads, results and masks are gone. (Gradio makes an empty gradio/vibe_edit_history
    # folder under the system's temporary folder when it is imported, before the app can choose its own.)
    assert [p for p in served.tmp.rglob("*") if p.is_file()] == []
