"""The Gradio app as a client sees it: app.py served on 127.0.0.1, driven through gradio_client."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from app_fixtures import Served, app_checkpoint, app_server, serve_app  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(300)

QUERY_SIZE = (333, 250)  # odd sizes: the mask must come back at exactly this size
SUPPORT_SIZE = (220, 160)
LEVEL_SIZES_RESNET50 = (3, 6, 4)  # layers in pyramid levels 4, 3, 2


@pytest.fixture(scope="module")
def client(app_server: Served, app_checkpoint: Path) -> Client:
    """A client of the served app; ``client.weights`` is the checkpoint the app was started with."""
    client = Client(app_server.url, verbose=False)
    client.weights = str(app_checkpoint)
    return client


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A query, a support, its mask as a brush layer and as an upload, an empty layer and a text file."""
    folder = tmp_path_factory.mktemp("app-inputs")
    rng = np.random.default_rng(0)
    paths = {name: folder / name for name in ("query.jpg", "support.png", "layer.png", "mask.png", "empty.png",
                                              "notes.png")}
    Image.fromarray(rng.integers(0, 256, (QUERY_SIZE[1], QUERY_SIZE[0], 3), dtype=np.uint8)).save(paths["query.jpg"])
    Image.fromarray(rng.integers(0, 256, (SUPPORT_SIZE[1], SUPPORT_SIZE[0], 3), dtype=np.uint8)).save(paths["support.png"])
    layer = np.zeros((SUPPORT_SIZE[1], SUPPORT_SIZE[0], 4), dtype=np.uint8)
    layer[40:120, 50:170] = (255, 64, 64, 180)  # a brush stroke: colour with alpha on a transparent layer
    Image.fromarray(layer).save(paths["layer.png"])
    Image.fromarray((layer[..., 3] > 0).astype(np.uint8) * 255).save(paths["mask.png"])
    Image.fromarray(np.zeros_like(layer)).save(paths["empty.png"])
    paths["notes.png"].write_text("this is a text file with an image's name\n")
    return {name.split(".")[0]: path for name, path in paths.items()}


def editor(background: Path, *layers: Path) -> dict:
    """An ImageEditor value as the browser sends it: a background and brush layers."""
    return {"background": handle_file(str(background)), "layers": [handle_file(str(p)) for p in layers],
            "composite": None}


def segment(client: Client, query: Path, support: dict, mask: Path | None = None) -> tuple:
    return client.predict(query=handle_file(str(query)), weights=client.weights, rule="vote",
                          support_1=support, mask_1=handle_file(str(mask)) if mask else None, api_name="/segment")


def test_segment_returns_the_mask_at_the_query_size_and_one_heatmap_per_layer(client: Client, files: dict) -> None:
    result = segment(client, files["query"], editor(files["support"], files["layer"]))
    overlay, probability, mask_file, summary, level4, level3, level2, shots, vote = result[:9]
    with Image.open(mask_file) as mask:
        assert mask.size == QUERY_SIZE
        assert set(np.unique(np.asarray(mask.convert("L")))) <= {0, 255}
    assert tuple(len(level) for level in (level4, level3, level2)) == LEVEL_SIZES_RESNET50
    assert sum(len(level) for level in (level4, level3, level2)) == 13
    assert [item["caption"] for item in level4] == ["layer4.0", "layer4.1", "layer4.2"]
    assert all(Path(item["image"]).is_file() for item in level4 + level3 + level2)
    assert Path(overlay).is_file() and Path(probability).is_file()
    assert "on cpu" in summary and "1-shot" in summary
    assert shots == [] and vote is None  # one support: no votes to show


def test_an_uploaded_mask_works_like_a_painted_one(client: Client, files: dict) -> None:
    result = segment(client, files["query"], editor(files["support"]), mask=files["mask"])
    with Image.open(result[2]) as mask:
        assert mask.size == QUERY_SIZE


def test_bad_uploads_get_a_readable_message_and_the_app_keeps_serving(client: Client, files: dict) -> None:
    cases = [  # (query, support 1, what the message says): a text file as query, as support, an empty brush
        # layer, no mask at all
        (files["notes"], editor(files["support"], files["layer"]), "query image: the file is not an image"),
        (files["query"], editor(files["notes"]), "support 1 image: the file is not an image"),
        (files["query"], editor(files["support"], files["empty"]), "marks no pixels"),
        (files["query"], editor(files["support"]), "support 1 has no mask"),
    ]
    for query, support, message in cases:
        with pytest.raises(AppError, match=message):
            segment(client, query, support)
    good = segment(client, files["query"], editor(files["support"], files["layer"]))
    with Image.open(good[2]) as mask:
        assert mask.size == QUERY_SIZE


def test_downloadable_masks_do_not_pile_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os
    import time

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # importing app lowers it
    import app

    monkeypatch.setattr(app, "MASK_DIR", tmp_path)
    first = app.save_mask_file(np.eye(5, 7, dtype=bool), "query_mask.png")
    assert first.name == "query_mask.png" and Image.open(first).size == (7, 5)
    expired = time.time() - app.MASK_FILE_LIFETIME_S - 1
    os.utime(first.parent, (expired, expired))
    second = app.save_mask_file(np.eye(5, 7, dtype=bool), "query_mask.png")
    assert second.exists() and not first.parent.exists()
    assert list(tmp_path.iterdir()) == [second.parent]


ZEROGPU_RUN = """
import pickle, sys, types
import numpy as np
from PIL import Image

durations = []

def GPU(duration=None):  # what ZeroGPU does: the call in another process, arguments and result pickled
    def wrap(fn):
        def in_worker(*args, **kwargs):
            durations.append(duration)
            args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
            return pickle.loads(pickle.dumps(fn(*args, **kwargs)))
        return in_worker
    return wrap

sys.modules["spaces"] = types.SimpleNamespace(GPU=GPU)
import app

rng = np.random.default_rng(0)
query = Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
support = Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8))
mask = np.zeros((80, 100), bool)
mask[20:60, 30:70] = True
app.STORE.get(sys.argv[1])
prediction = app.run_model(sys.argv[1], query, [support], [mask], "vote")
assert durations == [120], durations
assert prediction.mask.shape == (90, 120)
features = prediction.query_features.features.levels + prediction.supports.features.levels
assert all(x.device.type == "cpu" for x in features)
print("zerogpu ok")
"""


def test_the_gpu_step_runs_the_way_zerogpu_calls_it(app_checkpoint: Path) -> None:  # noqa: F811
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", ZEROGPU_RUN, str(app_checkpoint)], capture_output=True, text=True,
                          env=env, timeout=240)
    assert done.returncode == 0 and "zerogpu ok" in done.stdout, done.stderr[-3000:]


def test_a_stopped_app_leaves_no_mask_files(app_checkpoint: Path, files: dict, tmp_path: Path) -> None:  # noqa: F811
    with serve_app(app_checkpoint, tmp_path / "app.log") as served:
        client = Client(served.url, verbose=False)
        client.weights = str(app_checkpoint)
        segment(client, files["query"], editor(files["support"], files["layer"]))
        assert list(served.tmp.glob("hsnet-masks-*/*/*_mask.png")), "the mask was not written where expected"
    assert not list(served.tmp.glob("hsnet-masks-*")), served.log_text()[-2000:]
