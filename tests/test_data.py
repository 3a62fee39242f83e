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
from synthetic_datasets import isolated_cache, make_coco, make_fss, make_pascal  # noqa: F401 (fixture)


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


class _SplitServer(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def split_server(pascal, monkeypatch):
    """The synthetic split lists served over HTTP on 127.0.0.1, as raw.githubusercontent.com would serve them."""
    _, split_dir, _ = pascal
    _SplitServer.requests = []
    handler = lambda *a, **k: _SplitServer(*a, directory=str(split_dir), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HSNET_SPLITS_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    yield _SplitServer.requests
    server.shutdown()


def test_split_lists_are_fetched_once_then_read_from_the_cache(pascal, split_server, isolated_cache, capsys):
    data, _, lines = pascal
    ds = build_dataset("pascal", data, 0, "test", 1, image_size=32)
    assert split_server == ["/pascal/val/fold0.txt"]
    notice = capsys.readouterr().err
    assert "fetched split list pascal/val/fold0.txt" in notice and "not pinned" in notice
    cached = next(isolated_cache.rglob("fold0.txt"))
    assert (cached.parent / "fold0.txt.sha256").is_file()
    again = build_dataset("pascal", data, 0, "test", 1, image_size=32)
    assert split_server == ["/pascal/val/fold0.txt"] and again.episodes == ds.episodes
    cached.write_text(cached.read_text().replace("__01", "__02"))
    with pytest.raises(DatasetError, match="changed since it was fetched"):
        build_dataset("pascal", data, 0, "test", 1, image_size=32)


def test_a_pinned_digest_refuses_a_different_file(pascal, split_server, monkeypatch):
    data, _, _ = pascal
    monkeypatch.setitem(splits.PINNED_SHA256, "pascal/val/fold1.txt", "0" * 64)
    with pytest.raises(DatasetError, match="expected 0000"):
        build_dataset("pascal", data, 1, "test", 1, image_size=32)
    assert not list(Path(os.environ["HSNET_CACHE_DIR"]).rglob("fold1.txt"))


def test_unreachable_source_explains_the_offline_alternative(pascal):
    data, _, _ = pascal
    with pytest.raises(DatasetError, match="HSNET_SPLITS_DIR"):
        build_dataset("pascal", data, 3, "test", 1, image_size=32)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_coco_pickles_are_read_without_running_code():
    data = {4: ["val2014/a.jpg", "val2014/b.jpg"], np.int64(8): np.array(["val2014/c.jpg", "val2014/d.jpg"])}
    parsed = splits.parse_classwise_pickle(pickle.dumps(data), "coco/val/fold0.pkl")
    assert parsed == {4: ["val2014/a.jpg", "val2014/b.jpg"], 8: ["val2014/c.jpg", "val2014/d.jpg"]}
    with pytest.raises(DatasetError, match="posix.system|os.system|nt.system"):
        splits.parse_classwise_pickle(pickle.dumps({0: [_Exploit()]}), "coco/val/fold0.pkl")
    with pytest.raises(DatasetError, match="not a dict"):
        splits.parse_classwise_pickle(pickle.dumps(["x"]), "coco/val/fold0.pkl")


def test_split_text_is_read_as_the_authors_read_it(tmp_path):
    (tmp_path / "fss").mkdir()
    (tmp_path / "fss" / "test.txt").write_text("a\nb\nc")
    assert splits.read_split_lines("fss/test.txt", tmp_path) == ["a", "b"]
