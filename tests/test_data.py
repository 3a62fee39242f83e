"""Episodic datasets in the authors' layouts: episodes, masks, split-list fetching and errors."""
from __future__ import annotations

import http.server
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest

from hsnet.data import build_dataset, splits
from hsnet.errors import DatasetError, InputError
from synthetic_datasets import make_coco, make_fss, make_pascal

pytestmark = pytest.mark.usefixtures("isolated_cache")  # a private cache and no download source


@pytest.fixture(scope="module")
def pascal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("pascal")
    return root / "data", root / "splits", make_pascal(root / "data", root / "splits")


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("coco")
    return root / "data", root / "splits", make_coco(root / "data", root / "splits")


@pytest.fixture(scope="module")
def fss(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("fss")
    return root / "data", root / "splits", make_fss(root / "data", root / "splits")


def authors_pascal_episodes(lines: list[str], shots: int, count: int) -> list[tuple[str, tuple[str, ...], int]]:
    """The protocol restated: global numpy seeded 0, query i mod n, supports redrawn while equal to the query."""
    meta = [(line.split("__")[0], int(line.split("__")[1]) - 1) for line in lines]
    classwise: dict[int, list[str]] = {}
    for name, cls in meta:
        classwise.setdefault(cls, []).append(name)
    np.random.seed(0)
    out = []
    for idx in range(count):
        query, cls = meta[idx % len(meta)]
        supports: list[str] = []
        while len(supports) < shots:
            pick = np.random.choice(classwise[cls], 1, replace=False)[0]
            if pick != query:
                supports.append(str(pick))
        out.append((query, tuple(supports), cls))
    return out


@pytest.mark.parametrize("fold,shots", [(0, 1), (2, 5)])
def test_pascal_test_episodes_follow_the_authors_sampling(pascal, fold, shots):
    data, split_dir, lines = pascal
    ds = build_dataset("pascal", data, fold, "test", shots, image_size=32, splits_dir=split_dir)
    assert len(ds) == 1000
    assert ds.class_ids == [fold * 5 + i for i in range(5)]
    expected = authors_pascal_episodes(lines[f"pascal/val/fold{fold}.txt"], shots, 1000)
    assert [(e.query, e.supports, e.class_id) for e in ds.episodes] == expected


def test_coco_test_episodes_follow_the_authors_sampling(coco):
    data, split_dir, lists = coco
    ds = build_dataset("coco", data, 1, "val", 2, image_size=32, splits_dir=split_dir)
    classwise = lists["coco/val/fold1.pkl"]
    assert ds.class_ids == [1 + 4 * v for v in range(20)]
    np.random.seed(0)
    for episode in ds.episodes:
        cls = np.random.choice(ds.class_ids, 1, replace=False)[0]
        query = np.random.choice(classwise[cls], 1, replace=False)[0]
        supports = []
        while len(supports) < 2:
            pick = np.random.choice(classwise[cls], 1, replace=False)[0]
            if pick != query:
                supports.append(pick)
        assert (episode.class_id, episode.query, list(episode.supports)) == (cls, query, supports)


def test_fss_test_has_one_episode_per_image_in_sorted_class_order(fss):
    data, split_dir, lists = fss
    ds = build_dataset("fss", data, 0, "test", 1, image_size=32, splits_dir=split_dir)
    classes = sorted(lists["test"])
    assert len(ds) == 10 * len(classes)
    assert ds.class_ids == [760, 761]
    assert [e.query for e in ds.episodes[:3]] == [f"{classes[0]}/{n}.jpg" for n in ("1", "10", "2")]
    np.random.seed(0)
    for episode in ds.episodes:
        number = int(episode.query.split("/")[1].split(".")[0])
        while True:
            pick = np.random.choice(range(1, 11), 1, replace=False)[0]
            if pick != number:
                break
        assert episode.supports == (f"{episode.query.split('/')[0]}/{pick}.jpg",)
        assert ds.class_name(episode.class_id) == episode.query.split("/")[0]


def test_pascal_item_masks_class_and_ignores_boundaries(pascal):
    data, split_dir, _ = pascal
    ds = build_dataset("pascal", data, 0, "test", 2, image_size=32, splits_dir=split_dir)
    item = ds[0]
    assert item["query_img"].shape == (3, 32, 32) and item["support_imgs"].shape == (2, 3, 32, 32)
    assert item["support_masks"].shape == (2, 32, 32)
    assert set(item["query_mask"].unique().tolist()) == {0.0, 1.0}
    assert item["query_ignore"].any() and not (item["query_ignore"] & (item["query_mask"] == 1)).any()
    assert item["query_size"].tolist() == [36, 44]
    original = build_dataset("pascal", data, 0, "test", 1, image_size=32, original_size=True, splits_dir=split_dir)[0]
    assert original["query_mask"].shape == (36, 44) and original["query_img"].shape == (3, 32, 32)


def test_coco_and_fss_items_have_binary_masks_and_no_ignore(coco, fss):
    for (data, split_dir, _), bench in ((coco, "coco"), (fss, "fss")):
        item = build_dataset(bench, data, 0, "test", 1, image_size=32, splits_dir=split_dir)[3]
        assert item["query_mask"].sum() > 0 and set(item["query_mask"].unique().tolist()) == {0.0, 1.0}
        assert not item["query_ignore"].any()


def test_training_episodes_differ_by_epoch_and_repeat_on_request(pascal):
    data, split_dir, _ = pascal
    ds = build_dataset("pascal", data, 0, "trn", 1, image_size=32, splits_dir=split_dir)
    assert len(ds) == 45 and set(ds.class_ids) == set(range(5, 20))
    first = [ds.episode(i) for i in range(len(ds))]
    ds.set_epoch(1)
    second = [ds.episode(i) for i in range(len(ds))]
    assert first != second and [e.query for e in first] == [e.query for e in second]
    ds.set_epoch(0)
    assert [ds.episode(i) for i in range(len(ds))] == first


def test_missing_dataset_says_where_to_get_it_and_where_to_put_it(tmp_path, pascal):
    _, split_dir, _ = pascal
    with pytest.raises(DatasetError) as err:
        build_dataset("pascal", tmp_path, 0, "test", 1, splits_dir=split_dir)
    message = str(err.value)
    assert "\n" not in message and "VOC2012/JPEGImages" in message and "SegmentationClassAug" in message
    with pytest.raises(DatasetError, match="COCO2014/annotations"):
        build_dataset("coco", tmp_path, 0, "test", 1, splits_dir=split_dir)
    with pytest.raises(DatasetError, match="FSS-1000"):
        build_dataset("fss", tmp_path, 0, "test", 1, splits_dir=split_dir)
    with pytest.raises(InputError, match="folds 0..3"):
        build_dataset("pascal", tmp_path, 4, "test", 1)


AUTHORS_SPLITS = next((p for p in (Path(__file__).resolve().parents[i] / "shared" / "reference" / "authors-splits"
                                   for i in (2, 3)) if p.is_dir()), Path("../shared/reference/authors-splits"))
needs_authors_splits = pytest.mark.skipif(not AUTHORS_SPLITS.is_dir(),
                                          reason="the authors' split lists (../shared/reference) are not beside this checkout")


class _SplitServer(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


def serve(directory: Path, monkeypatch) -> http.server.ThreadingHTTPServer:
    """``directory`` served over HTTP on 127.0.0.1 as raw.githubusercontent.com would serve the split lists."""
    _SplitServer.requests = []
    handler = lambda *a, **k: _SplitServer(*a, directory=str(directory), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HSNET_SPLITS_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    return server


@pytest.fixture
def split_server(pascal, monkeypatch):
    """The synthetic split lists (not the authors') served over HTTP."""
    server = serve(pascal[1], monkeypatch)
    yield _SplitServer.requests
    server.shutdown()


@needs_authors_splits
def test_authors_split_lists_are_fetched_once_then_read_from_the_cache(isolated_cache, monkeypatch, capsys):
    server = serve(AUTHORS_SPLITS, monkeypatch)
    try:
        lines = splits.read_split_lines("pascal/val/fold0.txt")
        assert _SplitServer.requests == ["/pascal/val/fold0.txt"]
        assert "sha256 matches the pinned digest" in capsys.readouterr().err
        assert splits.read_split_lines("pascal/val/fold0.txt") == lines
        assert _SplitServer.requests == ["/pascal/val/fold0.txt"]
    finally:
        server.shutdown()
    cached = next(isolated_cache.rglob("fold0.txt"))
    cached.write_text(cached.read_text().replace("__01", "__02"))
    with pytest.raises(DatasetError, match="is not the authors' file"):
        splits.read_split_lines("pascal/val/fold0.txt")


@needs_authors_splits
def test_every_pinned_digest_is_the_authors_file():
    pinned = {rel: splits._digest((AUTHORS_SPLITS / rel).read_bytes()) for rel in splits.PINNED_SHA256}
    assert pinned == splits.PINNED_SHA256
    listed = (AUTHORS_SPLITS.parent / "authors-splits.sha256").read_text().split()
    assert dict(zip(listed[1::2], listed[::2])) == splits.PINNED_SHA256


def test_a_download_that_is_not_the_authors_file_is_refused_and_not_cached(pascal, split_server):
    data, _, _ = pascal
    with pytest.raises(DatasetError, match="is not the authors' file"):
        build_dataset("pascal", data, 1, "test", 1, image_size=32)
    assert not list(Path(os.environ["HSNET_CACHE_DIR"]).rglob("fold1.txt"))


def test_a_local_splits_folder_of_ones_own_lists_is_used_with_a_warning(pascal, capsys):
    data, split_dir, _ = pascal
    build_dataset("pascal", data, 1, "test", 1, image_size=32, splits_dir=split_dir)
    assert "is not the authors' pascal/val/fold1.txt" in capsys.readouterr().err


def test_unreachable_source_explains_the_offline_alternative(pascal):
    data, _, _ = pascal
    with pytest.raises(DatasetError, match="HSNET_SPLITS_DIR"):
        build_dataset("pascal", data, 3, "test", 1, image_size=32)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_coco_pickles_build_only_plain_dicts_lists_ints_and_strs():
    data = {4: ["val2014/a.jpg", "val2014/b.jpg"], 8: ["val2014/c.jpg"]}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        assert splits.parse_classwise_pickle(pickle.dumps(data, protocol), "coco/val/fold0.pkl") == data
    with pytest.raises(DatasetError, match="posix.system|os.system|nt.system"):
        splits.parse_classwise_pickle(pickle.dumps({0: [_Exploit()]}), "coco/val/fold0.pkl")
    with pytest.raises(DatasetError, match="numpy"):  # numpy is data, but not what the authors' files hold
        splits.parse_classwise_pickle(pickle.dumps({np.int64(8): ["val2014/c.jpg"]}), "coco/val/fold0.pkl")
    for odd in (["x"], {0: ("a.jpg",)}, {"0": ["a.jpg"]}, {0: [b"a.jpg"]}, {0: "a.jpg"}):
        with pytest.raises(DatasetError, match="not a dict of class index -> list of image names"):
            splits.parse_classwise_pickle(pickle.dumps(odd), "coco/val/fold0.pkl")
    for damaged in (b"", b"\x80\x02}q\x00", b"not a pickle"):
        with pytest.raises(DatasetError, match="refused or is damaged"):
            splits.parse_classwise_pickle(damaged, "coco/val/fold0.pkl")


@pytest.mark.parametrize("line", ["2007_000033_01", "2007_000033", "2007_000033__", "__01", "2007_000033__x1",
                                  "2007_000033__21", "2007_000033__00"])
def test_a_pascal_split_line_that_is_not_name__class_is_named(pascal, tmp_path, line):
    data, split_dir, lines = pascal
    mine = tmp_path / "splits" / "pascal" / "val"
    mine.mkdir(parents=True)
    good = lines["pascal/val/fold0.txt"]
    (mine / "fold0.txt").write_text("\n".join([*good[:2], line, *good[2:]]) + "\n")
    with pytest.raises(DatasetError, match="pascal/val/fold0.txt line 3 .* is not <image name>__<class 1..20>") as err:
        build_dataset("pascal", data, 0, "test", 1, image_size=32, splits_dir=tmp_path / "splits")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"2007_000033__01\n\xff\xfe__02\n", b"\xe9t\xe9\n"])
def test_a_split_list_that_is_not_utf8_is_named(tmp_path, content):
    (tmp_path / "fss").mkdir()
    (tmp_path / "fss" / "test.txt").write_bytes(content)
    with pytest.raises(DatasetError, match="fss/test.txt is not UTF-8 text \\(line 1|fss/test.txt is not UTF-8 text \\(line 2"):
        splits.read_split_lines("fss/test.txt", tmp_path)


def test_an_fss_class_folder_without_images_is_refused_by_name(tmp_path):
    make_fss(tmp_path / "data", tmp_path / "splits", classes=2)
    folder = tmp_path / "data" / "FSS-1000" / "test_class_1"
    for image in folder.glob("*.jpg"):
        image.unlink()
    with pytest.raises(DatasetError, match="test_class_1 holds no .jpg images"):
        build_dataset("fss", tmp_path / "data", 0, "test", 1, image_size=32, splits_dir=tmp_path / "splits")


@pytest.mark.parametrize("which", ["query", "support"])
def test_a_label_whose_size_differs_from_its_photo_is_refused_by_name(tmp_path, which):
    from PIL import Image

    make_fss(tmp_path / "data", tmp_path / "splits", classes=1)
    ds = build_dataset("fss", tmp_path / "data", 0, "test", 1, image_size=32, splits_dir=tmp_path / "splits")
    episode = ds.episodes[0]
    name = episode.query if which == "query" else episode.supports[0]
    label = ds.label_path(name)
    Image.new("L", (20, 12)).save(label)
    with pytest.raises(DatasetError, match=f"label {label} is 20x12 but its photo {ds.image_path(name)} is 32x32"):
        ds[0]


def test_split_text_is_read_as_the_authors_read_it(tmp_path):
    (tmp_path / "fss").mkdir()
    (tmp_path / "fss" / "test.txt").write_text("a\nb\nc")
    assert splits.read_split_lines("fss/test.txt", tmp_path) == ["a", "b"]
    (tmp_path / "fss" / "test.txt").write_bytes(b"abe's_flyingfish\r\nb\rc\r\n")  # text mode, as their loader opens it
    assert splits.read_split_lines("fss/test.txt", tmp_path) == ["abe's_flyingfish", "b", "c"]
