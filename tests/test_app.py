"""The Gradio app: its pictures and page logic in-process, and app.py served on 127.0.0.1 through gradio_client."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from hsnet.errors import InputError
from hsnet.predictor import LayerMap
from hsnet.serving import LoadState, MaskFiles
from hsnet.app.banner import banner_html
from hsnet.app.panels import OUTPUTS, PANELS, SEGMENT_API, draw
from hsnet.app.probe_view import ALONE, OVER_PHOTO, PROBE_EMPTY, probe_html
from hsnet.app.view import DISPLAY_SIDE, MIN_DISPLAY_SIDE
from hsnet.app.weights_menu import WeightsMenu
from hsnet.visualize import ColourScale, colourbar, display_size, fit, heatmap, shared_scale, with_colourbar

pytest_plugins = ["app_fixtures"]
pytestmark = pytest.mark.timeout(300)

QUERY_SIZE = (333, 250)  # odd sizes: the mask must come back at exactly this size
SUPPORT_SIZE = (220, 160)
LEVEL_SIZES_RESNET50 = (3, 6, 4)  # layers in pyramid levels 4, 3, 2
ROOT = Path(__file__).resolve().parent.parent
RESNET50_LAYERS = [f"layer{stage}.{block}" for stage, blocks in ((4, 3), (3, 6), (2, 4)) for block in range(blocks)]


def fake_prediction(size: tuple[int, int], shots: int = 1, seed: int = 0) -> SimpleNamespace:
    """What the app reads of a Prediction: the full-size mask, the rest at model resolution."""
    rng = np.random.default_rng(seed)
    width, height = size
    mask = np.zeros((height, width), bool)
    mask[height // 4: height // 2, width // 4: width // 2] = True
    maps = [LayerMap(name, int(name[5]), rng.uniform(0.2, 0.7, (13, 13)).astype(np.float32))
            for name in RESNET50_LAYERS]
    return SimpleNamespace(mask=mask, shot_probabilities=rng.random((shots, 50, 50), dtype=np.float32),
                           layer_maps=maps, timings={"backbone": 0.1, "total": 0.2}, device="cpu",
                           support_cache_hit=False, size=size)


def exploration(query: Image.Image, shots: int, tmp_path: Path):
    """An Exploration of a fake prediction of ``query`` from ``shots`` supports."""
    from hsnet.app.forms import SegmentRequest
    from hsnet.app.view import Exploration

    support = Image.new("RGB", (64, 48), (90, 120, 30))
    request = SegmentRequest(query, "query", "weights", "weights", "vote", [support] * shots,
                             [np.ones((48, 64), bool)] * shots)
    mask_path = str(MaskFiles(tmp_path).save(fake_prediction(query.size, shots).mask, "query"))
    return Exploration.of(request, fake_prediction(query.size, shots), "session", mask_path, "summary")


# ------------------------------------------------------------------------------------------ pictures


@pytest.mark.parametrize("low,high", [(0.0, 1.0), (0.7, 0.99), (-0.2, 0.05), (3.0, 40.0)])
def test_one_scale_per_view_spans_the_values_shown_whatever_their_range(low: float, high: float) -> None:
    maps = [np.linspace(low, (low + high) / 2, 20).reshape(4, 5), np.full((3, 3), high, np.float32)]
    scale = shared_scale(maps, "correlation")
    assert (scale.vmin, scale.vmax) == pytest.approx((low, high))
    ends = np.asarray(scale.colorize(np.array([[low, high]])))
    assert ends[0, 0].sum() < ends[0, 1].sum()  # dark for the smallest value, bright for the largest
    assert f"{low:.2f} (dark)" in scale.range_text and f"{high:.2f} (bright)" in scale.range_text
    flat = shared_scale([np.full((2, 2), 0.5)], "flat")
    assert flat.vmax > flat.vmin  # a constant view still gets a usable scale


def test_a_colourbar_shows_its_label_and_is_as_wide_as_its_picture() -> None:
    scale = ColourScale(0.0, 1.0, "Foreground probability")
    bar = colourbar(scale, width=300)
    assert bar.width == 300 and 40 < bar.height < 100
    for width in (480, 1024):  # text at least 12 px high when the bar is shown 350 px wide on a phone
        wide = np.asarray(colourbar(scale, width=width).convert("L")) < 128
        rows = np.flatnonzero(wide[:, : width // 10].any(axis=1))  # the left end: the label and the first tick
        first_tick = rows[rows > rows.max() - width / 10]
        assert (first_tick.max() - first_tick.min() + 1) * 350 / width >= 8, width  # digit height (cap) >= 8 px
    assert colourbar(scale, width=1200).height > 2 * bar.height
    picture = with_colourbar(Image.new("RGB", (500, 200)), scale)
    assert picture.size == (500, 200 + colourbar(scale, width=500).height)


@pytest.mark.parametrize("size", [(20, 20), (125, 74), (333, 250), (4000, 3000), (6000, 600)])
def test_pictures_are_enlarged_when_small_and_reduced_when_large(size: tuple[int, int]) -> None:
    shown = display_size(size, 1024, 512)
    assert 512 <= max(shown) <= 1024
    assert abs(shown[0] / shown[1] - size[0] / size[1]) < 0.05 * size[0] / size[1] + 1 / min(shown)
    assert fit(Image.new("RGB", size), 1024, 512).size == shown


def test_a_heatmap_is_drawn_at_the_size_asked_alone_or_over_the_photo() -> None:
    scale = ColourScale(0.0, 1.0, "x")
    values = np.random.default_rng(0).random((13, 17), dtype=np.float32)
    photo = Image.new("RGB", (170, 130), (0, 255, 0))
    alone, over = heatmap(values, (170, 130), scale), heatmap(values, (170, 130), scale, photo)
    assert alone.size == over.size == (170, 130)
    assert np.asarray(over)[..., 1].mean() > np.asarray(alone)[..., 1].mean()  # the green photo shows through


# ------------------------------------------------------------------------------------------ page logic


@pytest.mark.parametrize("name", list(PANELS))
@pytest.mark.parametrize("shots", [1, 3])
def test_every_panel_draws_exactly_its_outputs(name: str, shots: int, tmp_path: Path) -> None:
    panel = PANELS[name]
    view = exploration(Image.new("RGB", (125, 74), (128, 64, 32)), shots, tmp_path)
    for mode in (OVER_PHOTO, ALONE):
        drawn = panel.draw(view, mode)
        assert set(drawn) == {o.name for o in panel.outputs}
        assert all(drawn[o.name] is not None or o.name == "vote_map" and shots == 1 for o in panel.outputs)
    assert panel.label and all(o.label and o.description for o in panel.outputs)


def test_the_segment_api_lists_every_panel_output_but_the_probe() -> None:
    assert set(SEGMENT_API) == set(OUTPUTS) - {"probe"} and len(SEGMENT_API) == len(set(SEGMENT_API)) == 10


@pytest.mark.parametrize("size,shots", [((20, 20), 1), ((125, 74), 2), ((640, 480), 5)])
def test_every_output_is_drawn_at_a_useful_size(size: tuple[int, int], shots: int, tmp_path: Path) -> None:
    view = exploration(Image.new("RGB", size, (128, 64, 32)), shots, tmp_path)
    drawn = draw(view, OVER_PHOTO)
    assert max(drawn["result"].size) >= MIN_DISPLAY_SIDE  # small queries enlarged for display and clicking
    assert view.scale == pytest.approx(drawn["result"].width / size[0])
    assert tuple(len(drawn[f"level_{level}"]) for level in (4, 3, 2)) == LEVEL_SIZES_RESNET50
    assert [c for level in (4, 3, 2) for _, c in drawn[f"level_{level}"]] == RESNET50_LAYERS
    with Image.open(drawn["mask_png"]) as mask:
        assert mask.size == size
    assert len(drawn["support_predictions"]) == (shots if shots > 1 else 0)
    assert (drawn["vote_map"] is None) == (shots == 1)
    assert all(caption.startswith(f"Support {i} alone: ") for i, (_, caption) in
               enumerate(drawn["support_predictions"], start=1))


def test_a_large_query_costs_little_beyond_the_model_work(tmp_path: Path) -> None:
    size = (4000, 3000)
    start = time.perf_counter()
    drawn = draw(exploration(Image.new("RGB", size, (128, 64, 32)), 1, tmp_path), OVER_PHOTO)
    drawing = time.perf_counter() - start
    assert max(drawn["result"].size) == DISPLAY_SIDE
    assert drawing < 2.5, f"drawing the pictures of a 12-megapixel query took {drawing:.1f} s"


def test_published_pictures_are_complete_files_with_no_partial_left(tmp_path: Path) -> None:
    from hsnet.app.pictures import published

    picture = Image.new("RGB", (300, 200), (10, 200, 30))
    values = published([(picture, "a"), (picture, "b")], tmp_path)
    assert [caption for _, caption in values] == ["a", "b"]
    for path, _ in values:
        with Image.open(path) as again:
            assert again.size == (300, 200)
    assert not list(tmp_path.glob("*.partial")) and len({p for p, _ in values}) == 2


def pictures_in(value) -> list:
    """Every picture value in a callback's answer (PIL images, arrays, paths of picture files), however nested."""
    if isinstance(value, dict):
        return [p for item in value.values() for p in pictures_in(item)]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in pictures_in(item)]
    if isinstance(value, (Image.Image, np.ndarray)) or isinstance(value, str) and value.endswith((".webp", ".png")):
        return [value]
    return []


def test_every_picture_an_event_returns_is_a_complete_file_of_its_own(tmp_path: Path, monkeypatch) -> None:
    """Gradio rewrites a picture it is given as a PIL image or array in place, under a name made from its bytes,
    so two answers with one identical picture (two visitors running one example, an unchanged colourbar) shared
    a file and a download in progress was cut short (docs/robustness.md). Every event that draws (Segment on the
    page and through /segment, the probe, the heatmap mode) must give each picture as a finished file of its own."""
    import gradio as gr

    from hsnet.app import callbacks

    view = exploration(Image.new("RGB", (125, 74), (128, 64, 32)), 3, tmp_path)
    probe = [[LayerMap(m.name, m.level, np.full((6, 8), 0.5, np.float32)) for m in view.layer_maps]
             for _ in range(3)]
    monkeypatch.setattr(callbacks, "segment_view", lambda *args: view)
    monkeypatch.setattr(callbacks, "PROBES", SimpleNamespace(get=lambda key: None))
    monkeypatch.setattr(callbacks, "probe_point", lambda *args: probe)
    masks = MaskFiles(tmp_path)
    page = callbacks.Page({name: gr.Textbox() for name in callbacks.FORM},
                          {name: output.component() for name, output in OUTPUTS.items()},
                          gr.HTML(), gr.State(), gr.Tabs(), gr.Number(), gr.Number())
    quiet = lambda *args, **kwargs: None  # noqa: E731 - the progress bar
    clicked, typed = callbacks.make_explore(page, masks)
    redraw = callbacks.make_redraw(page, masks)
    at = {page.state: view, page.form["mode"]: OVER_PHOTO, page.probe_x: 40, page.probe_y: 30}
    answers = {"segment page": callbacks.make_segment_page(page, SimpleNamespace(), masks)({}, None, quiet),
               "/segment": callbacks.make_segment_api(SimpleNamespace(default="w"), masks)(None, progress=quiet),
               "probe": typed(at), "mode alone": redraw({**at, page.form["mode"]: ALONE}),
               "mode over the photo": redraw(at), "mode over the photo again": redraw(at)}
    assert answers["segment page"][page.error] == "" and page.outputs["probe"] in answers["probe"]
    files = {}
    for event, answer in answers.items():
        pictures = pictures_in(answer)
        assert pictures and not [p for p in pictures if not isinstance(p, str)], f"{event} returned a picture object"
        for path in pictures:
            with Image.open(path) as picture:
                picture.load()  # whole
        files[event] = {p for p in pictures if p != view.mask_path}  # the mask file: one per Segment, kept
    assert not files["mode over the photo"] & files["mode over the photo again"]  # identical pictures, two files
    assert len(set().union(*files.values())) == sum(map(len, files.values()))


def test_the_probe_shows_every_layer_of_every_support_with_alt_text_and_one_scale(tmp_path: Path) -> None:
    size = (300, 200)
    view = exploration(Image.new("RGB", size), 3, tmp_path)
    assert probe_html(view, ALONE) == PROBE_EMPTY
    rng = np.random.default_rng(1)
    view.point = (150.0, 80.0)
    view.probe = [[LayerMap(m.name, m.level, rng.random((6, 8), dtype=np.float32)) for m in view.layer_maps]
                  for _ in range(3)]
    page = probe_html(view, OVER_PHOTO)
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert captions[:2] == ["The probed point", "Colour scale of every probe map"]
    assert captions[2:] == RESNET50_LAYERS * 3
    assert page.count("<img ") == 2 + 3 * 13 and len(re.findall(r"alt='[^']{10,}'", page)) == page.count("<img ")
    assert page.count("<details class='hs-enlarge'>") == 3 * 13  # every map can be opened larger, by keyboard too
    assert "(150, 80)" in page and page.count("Colour scale: ") == 1


def test_visitors_see_weight_names_never_server_paths(tmp_path: Path) -> None:
    local = str(tmp_path / "secret-folder" / "best_model.pt")
    menu = WeightsMenu.build(local)
    assert menu.default == "best_model.pt" and menu.source(menu.default) == local
    assert menu.shown(local) == menu.default  # the operator's own value is accepted by API clients too
    assert all("secret-folder" not in label and "secret-folder" not in name for label, name in menu.choices())
    with pytest.raises(InputError, match="unknown weights") as refused:
        menu.source("/etc/passwd")  # a visitor cannot make the server load a file of its choosing
    assert "/etc" not in str(refused.value)


def test_an_unknown_weights_value_is_refused_alike_whether_or_not_such_a_file_exists(tmp_path: Path) -> None:
    menu = WeightsMenu.build(str(tmp_path / "best_model.pt"))
    (tmp_path / "there.py").write_text("")
    messages = []
    for value in (str(tmp_path / "there.py"), str(tmp_path / "nothere.py"), "app.py", "nothere.py"):
        with pytest.raises(InputError) as refused:
            menu.source(value)
        messages.append(str(refused.value).replace("nothere", "there").replace("app.py", "there.py"))
    assert len(set(messages)) == 1 and "local" not in messages[0] and str(tmp_path) not in messages[0]
    for nothing in (None, "", 3):
        with pytest.raises(InputError, match="no weights given"):
            menu.source(nothing)


@pytest.mark.parametrize("state,css,words", [
    (LoadState("pascal-resnet50-fold0", "loading", "Loading weights pascal-resnet50-fold0: downloading (40%)", 0.4,
               0.0), "hs-wait", "value='0.40'"),
    (LoadState("pascal-resnet50-fold0", "loading", "Loading weights pascal-resnet50-fold0: starting"), "hs-wait",
     "<progress aria-label"),
    (LoadState("x", "ready", "Weights x are loaded."), "hs-ok", "Checkpoint x is loaded"),
    (LoadState("x", "failed", "Weights x could not be loaded; the next request tries again."), "hs-missing",
     "choose other weights"),
])
def test_the_banner_shows_loading_with_progress_ready_and_failed(state, css: str, words: str) -> None:
    banner = banner_html(state)
    assert css in banner and words in banner
    assert ("role='alert'" in banner) == (state.status == "failed")
    assert "the server's local weights" not in banner_html(LoadState("the server's local weights 'a.pt'", "ready",
                                                                     ""), "a.pt")


# ------------------------------------------------------------------------------------------ the served app


@pytest.fixture(scope="module")
def client(app_server, app_checkpoint: Path) -> Client:
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
    support = rng.integers(0, 256, (SUPPORT_SIZE[1], SUPPORT_SIZE[0], 3), dtype=np.uint8)
    Image.fromarray(support).save(paths["support.png"])
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


def segment(client: Client, query: Path, support: dict, mask: Path | None = None, **more) -> dict:
    """One /segment request; the answer by output name (docs/app.md)."""
    values = client.predict(query=handle_file(str(query)), weights=client.weights, rule="vote", support_1=support,
                            mask_1=handle_file(str(mask)) if mask else None, api_name="/segment", **more)
    return dict(zip(SEGMENT_API, values, strict=True))


@pytest.mark.slow
def test_the_segment_api_keeps_its_parameter_names_and_names_every_output(client: Client) -> None:
    endpoint = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/segment"]
    parameters = [p["parameter_name"] for p in endpoint["parameters"]]
    assert parameters == ["query", "weights", "rule", *(f"support_{i}" for i in range(1, 6)),
                          *(f"mask_{i}" for i in range(1, 6)), "mode"]
    assert all(p["python_type"]["description"] for p in endpoint["parameters"])
    assert [r["label"] for r in endpoint["returns"]] == list(SEGMENT_API)  # the documented names, in order
    assert all(r["python_type"]["description"] for r in endpoint["returns"])
    weights = endpoint["parameters"][1]
    assert weights["parameter_has_default"] and weights["parameter_default"] == Path(client.weights).name
    documented = (ROOT / "docs" / "app.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in documented for name in SEGMENT_API)
    printed = client.view_api(print_info=False, return_format="str")
    assert "result_click" not in printed and "mask_png" in printed


@pytest.mark.slow
def test_segment_returns_the_mask_at_the_query_size_and_one_heatmap_per_layer(client: Client, files: dict) -> None:
    answer = segment(client, files["query"], editor(files["support"], files["layer"]))
    with Image.open(answer["mask_png"]) as mask:
        assert mask.size == QUERY_SIZE
        assert set(np.unique(np.asarray(mask.convert("L")))) <= {0, 255}
    levels = [answer[f"level_{level}"] for level in (4, 3, 2)]
    assert tuple(len(level) for level in levels) == LEVEL_SIZES_RESNET50
    assert [item["caption"] for level in levels for item in level] == RESNET50_LAYERS
    assert all(Path(item["image"]).is_file() for level in levels for item in level)
    assert all(Path(answer[name]).is_file() for name in ("result", "probability", "layer_scale"))
    assert "on cpu" in answer["summary"] and "1-shot" in answer["summary"]
    assert answer["support_predictions"] == [] and answer["vote_map"] is None  # one support: no votes to show


@pytest.mark.slow
def test_identical_answers_come_as_files_of_their_own(client: Client, files: dict) -> None:
    """Two visitors asking the same: each answer's pictures are its own files, none rewritten by the other's."""
    first, second = (segment(client, files["query"], editor(files["support"], files["layer"])) for _ in range(2))
    pictures = [{p for p in pictures_in(answer) if p.endswith(".webp")} for answer in (first, second)]
    assert len(pictures[0]) == len(pictures[1]) == 3 + sum(LEVEL_SIZES_RESNET50)
    assert not pictures[0] & pictures[1]


@pytest.mark.slow
def test_two_supports_give_each_ones_prediction_and_the_vote_map(client: Client, files: dict) -> None:
    answer = segment(client, files["query"], editor(files["support"], files["layer"]),
                     support_2=editor(files["support"]), mask_2=handle_file(str(files["mask"])))
    assert [item["caption"].split(":")[0] for item in answer["support_predictions"]] == ["Support 1 alone",
                                                                                         "Support 2 alone"]
    assert Path(answer["vote_map"]).is_file() and "2-shot" in answer["summary"]


@pytest.mark.slow
def test_bad_inputs_get_a_readable_message_and_the_app_keeps_serving(client: Client, files: dict) -> None:
    cases = [  # (query, support 1, what the message says): a text file as query, as support, an empty brush
        # layer, no mask at all
        (files["notes"], editor(files["support"], files["layer"]), "query image.* not an image that can be read"),
        (files["query"], editor(files["notes"]), "support 1 image.* not an image that can be read"),
        (files["query"], editor(files["support"], files["empty"]), "marks no pixels"),
        (files["query"], editor(files["support"]), "support 1 has no mask"),
    ]
    for query, support, message in cases:
        with pytest.raises(AppError, match=message):
            segment(client, query, support)
    answers = []
    for weights in ("/etc/hostname", "app.py", "nothere.py", None):  # a file there or not: the same one line
        with pytest.raises(AppError) as refused:
            client.predict(query=handle_file(str(files["query"])), weights=weights, rule="vote",
                           support_1=editor(files["support"], files["layer"]), api_name="/segment")
        answers.append(str(refused.value))
    assert all("Something went wrong" not in a and "local" not in a and "\n" not in a for a in answers)
    assert answers[1].replace("app.py", "X") == answers[2].replace("nothere.py", "X")
    assert "/etc" not in answers[0]
    assert "no weights given" in answers[3]
    good = segment(client, files["query"], editor(files["support"], files["layer"]))
    with Image.open(good["mask_png"]) as mask:
        assert mask.size == QUERY_SIZE


@pytest.mark.slow
def test_a_client_may_leave_out_the_weights_or_name_the_servers_own_file(client: Client, files: dict) -> None:
    support = editor(files["support"], files["layer"])
    for weights in ({}, {"weights": Path(client.weights).name}):
        values = client.predict(query=handle_file(str(files["query"])), support_1=support, api_name="/segment",
                                **weights)
        assert Path(client.weights).name in values[SEGMENT_API.index("summary")]


@pytest.mark.slow
def test_an_uploaded_mask_works_like_a_painted_one(client: Client, files: dict) -> None:
    answer = segment(client, files["query"], editor(files["support"]), mask=files["mask"])
    with Image.open(answer["mask_png"]) as mask:
        assert mask.size == QUERY_SIZE


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
assert app.STORE.wait(sys.argv[1], timeout=120).status == "ready"
prediction = app.run_model(sys.argv[1], query, [support], [mask], "vote")
assert durations == [120], durations
assert prediction.mask.shape == (90, 120)
features = prediction.query_features.features.levels + prediction.supports.features.levels
assert all(x.device.type == "cpu" for x in features)
print("zerogpu ok")
"""


@pytest.mark.slow
def test_the_gpu_step_runs_the_way_zerogpu_calls_it(app_checkpoint: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", ZEROGPU_RUN, str(app_checkpoint)], capture_output=True, text=True,
                          env=env, timeout=240)
    assert done.returncode == 0 and "zerogpu ok" in done.stdout, done.stderr[-3000:]


@pytest.mark.slow
def test_a_stopped_app_leaves_no_mask_files(app_checkpoint: Path, files: dict, tmp_path: Path, launch_app) -> None:
    with launch_app(app_checkpoint, tmp_path / "app.log") as served:
        client = Client(served.url, verbose=False)
        client.weights = str(app_checkpoint)
        segment(client, files["query"], editor(files["support"], files["layer"]))
        assert list(served.tmp.glob("hsnet-app-*/hsnet-masks-*/*/*_mask.png")), "the mask is not where expected"
    assert not list(served.tmp.glob("hsnet-app-*")), served.log_text()[-2000:]  # masks and Gradio's cache gone


@pytest.mark.slow
def test_label_many_fills_a_gallery_and_gives_masks_and_coco_annotations(client: Client, files: dict,
                                                                        tmp_path: Path) -> None:
    import json
    import zipfile

    from pycocotools import mask as coco_mask

    sizes = {"a.png": (120, 90), "b.jpg": (64, 200), "c.png": (333, 250)}
    rng = np.random.default_rng(3)
    photos = []
    for name, (width, height) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(tmp_path / name)
        photos.append(handle_file(str(tmp_path / name)))
    gallery, progress, archive = client.predict(
        photos=[*photos, handle_file(str(files["notes"]))], weights=client.weights, rule="vote",
        support_1=editor(files["support"], files["layer"]), category="blob", api_name="/label_many")
    assert sorted(item["caption"] for item in gallery) == sorted(sizes)
    assert "3 of 4 photos labelled" in progress and progress.count("notes.png") == 1  # named once
    with zipfile.ZipFile(archive) as labels:
        document = json.loads(labels.read("annotations/instances_default.json"))
        assert [c["name"] for c in document["categories"]] == ["blob"]
        for record in document["annotations"]:
            image = next(i for i in document["images"] if i["id"] == record["image_id"])
            png = np.asarray(Image.open(labels.open(f"masks/{Path(image['file_name']).with_suffix('.png')}")))
            assert png.shape == (sizes[image["file_name"]][1], sizes[image["file_name"]][0])
            assert np.array_equal(coco_mask.decode(record["segmentation"]).astype(bool), png > 0)


@pytest.mark.slow
def test_label_many_refuses_more_photos_than_its_cap(client: Client, files: dict, tmp_path: Path) -> None:
    import zipfile

    from hsnet.serving import MAX_LABEL_QUERIES

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as many:
        for i in range(MAX_LABEL_QUERIES + 1):
            many.write(files["support"], f"photo-{i}.png")
    with pytest.raises(AppError, match=f"at most {MAX_LABEL_QUERIES} per request"):
        client.predict(photos=[handle_file(str(archive))], weights=client.weights, rule="vote",
                       support_1=editor(files["support"], files["layer"]), api_name="/label_many")
