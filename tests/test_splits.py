"""Every benchmark's evaluation datasets, every fold, built from the authors' real split lists.

A synthetic dataset layout is made once per session from the lists themselves, read here with plain
Python as the authors read them (text mode, so the CRLF ends of their ``fss/test.txt`` go; ``pickle``
for COCO), never with hsnet's reader: every image the lists name, as a tiny 8x8 file in the folders
each dataset ships with (``FSS-1000/abe's_flyingfish/1.jpg`` + ``1.png``), with a mask holding each
class the lists give it (PASCAL, COCO) or a foreground square (FSS-1000). Each evaluation dataset
must build, yield all its episodes, and every episode's query and supports must be in its list and
of its class.
"""
from __future__ import annotations

import io
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hsnet.data import build_dataset

# ../shared beside the checkout (or beside the folder of git worktrees the checkout is in)
AUTHORS_SPLITS = next((p for p in (Path(__file__).resolve().parents[i] / "shared" / "reference" / "authors-splits"
                                   for i in (2, 3)) if p.is_dir()), Path("../shared/reference/authors-splits"))
pytestmark = pytest.mark.skipif(not AUTHORS_SPLITS.is_dir(),
                                reason="the authors' split lists (../shared/reference/authors-splits) are not beside "
                                       "this checkout")
SIDE = 8
FOLDS = range(4)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((SIDE, SIDE, 3), 128, np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _mask(values: list[int]) -> Image.Image:
    """An 8x8 label image holding each of ``values`` (a class index, or 255) on its own pixels."""
    pixels = np.zeros(SIDE * SIDE, np.uint8)
    for i, value in enumerate(values):
        pixels[i * 2: i * 2 + 2] = value
    return Image.fromarray(pixels.reshape(SIDE, SIDE))


def _write(image: Path, label: Path, values: list[int], jpeg: bytes) -> None:
    image.parent.mkdir(parents=True, exist_ok=True)
    label.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(jpeg)
    _mask(values).save(label)


def authors_lines(relpath: str) -> list[str]:
    """A text split list read the way the authors' loaders read it: ``open(...).read().split('\\n')[:-1]``."""
    with open(AUTHORS_SPLITS / relpath, encoding="utf-8") as file:  # text mode: CRLF and CR become LF
        return file.read().split("\n")[:-1]


def pascal_lists() -> dict[int, list[tuple[str, int]]]:
    """Fold -> the (image name, class 1..20) pairs of its val list, as the authors' file says."""
    return {fold: [(line.split("__")[0], int(line.split("__")[1]))
                   for line in authors_lines(f"pascal/val/fold{fold}.txt")] for fold in FOLDS}


def coco_lists() -> dict[int, dict[int, list[str]]]:
    """Fold -> class index -> image names of its val pickle."""
    return {fold: pickle.loads((AUTHORS_SPLITS / f"coco/val/fold{fold}.pkl").read_bytes()) for fold in FOLDS}


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole layout every evaluation list names, written once."""
    root = tmp_path_factory.mktemp("authors-layout")
    jpeg = _jpeg()
    classes: dict[str, set[int]] = defaultdict(set)
    for pairs in pascal_lists().values():
        for name, cls in pairs:
            classes[name].add(cls)
    voc = root / "VOC2012"
    for name, found in classes.items():
        _write(voc / "JPEGImages" / f"{name}.jpg", voc / "SegmentationClassAug" / f"{name}.png",
               sorted(found) + [255], jpeg)
    coco_classes: dict[str, set[int]] = defaultdict(set)
    for classwise in coco_lists().values():
        for cls, names in classwise.items():
            for name in names:
                coco_classes[name].add(cls + 1)
    for name, found in coco_classes.items():
        _write(root / "COCO2014" / name, root / "COCO2014" / "annotations" / name.replace(".jpg", ".png"),
               sorted(found), jpeg)
    (root / "COCO2014" / "train2014").mkdir()
    (root / "COCO2014" / "annotations" / "train2014").mkdir()
    for split in ("val", "test"):
        for category in authors_lines(f"fss/{split}.txt"):
            for n in range(1, 11):
                folder = root / "FSS-1000" / category
                _write(folder / f"{n}.jpg", folder / f"{n}.png", [255] * 8, jpeg)
    return root


@pytest.mark.parametrize("fold", FOLDS)
def test_pascal_episodes_come_from_the_fold_list(layout: Path, fold: int) -> None:
    pairs = set(pascal_lists()[fold])
    ds = build_dataset("pascal", layout, fold, "test", 5, image_size=32, splits_dir=AUTHORS_SPLITS)
    assert len(ds) == 1000 and ds.class_ids == [fold * 5 + i for i in range(5)]
    for episode in ds.episodes:
        assert (episode.query, episode.class_id + 1) in pairs
        assert all((s, episode.class_id + 1) in pairs and s != episode.query for s in episode.supports)


@pytest.mark.parametrize("fold", FOLDS)
def test_coco_episodes_come_from_the_fold_list(layout: Path, fold: int) -> None:
    classwise = coco_lists()[fold]
    ds = build_dataset("coco", layout, fold, "test", 5, image_size=32, splits_dir=AUTHORS_SPLITS)
    assert len(ds) == 1000 and ds.class_ids == [fold + 4 * i for i in range(20)]
    for episode in ds.episodes:
        assert episode.class_id in ds.class_ids and episode.query in classwise[episode.class_id]
        assert all(s in classwise[episode.class_id] and s != episode.query for s in episode.supports)


@pytest.mark.parametrize("split", ["val", "test"])
def test_fss_episodes_cover_every_image_of_the_split_classes(layout: Path, split: str) -> None:
    categories = authors_lines(f"fss/{split}.txt")
    ds = build_dataset("fss", layout, 0, split, 5, image_size=32, splits_dir=AUTHORS_SPLITS)
    assert len(categories) == 240 and len(ds) == 2400
    assert sorted(e.query for e in ds.episodes) == sorted(f"{c}/{n}.jpg" for c in categories for n in range(1, 11))
    for episode in ds.episodes:
        category = episode.query.split("/")[0]
        assert ds.class_name(episode.class_id) == category
        assert all(s.split("/")[0] == category and s != episode.query for s in episode.supports)


@pytest.mark.slow
@pytest.mark.parametrize("benchmark,fold", [(b, f) for b in ("pascal", "coco") for f in FOLDS] + [("fss", 0)])
def test_every_episode_loads_with_its_class_in_every_mask(layout: Path, benchmark: str, fold: int) -> None:
    ds = build_dataset(benchmark, layout, fold, "test", 1, image_size=32, splits_dir=AUTHORS_SPLITS)
    for index in range(len(ds)):
        item = ds[index]
        assert item["query_mask"].any() and item["support_masks"].flatten(1).any(1).all()


def test_the_authors_fss_test_list_really_ends_its_lines_with_crlf() -> None:
    """The premise of the FSS-1000 layout above: their file is CRLF, and no class folder name holds a CR."""
    data = (AUTHORS_SPLITS / "fss" / "test.txt").read_bytes()
    assert data.count(b"\r\n") == 240 and "abe's_flyingfish" in authors_lines("fss/test.txt")


@pytest.mark.parametrize("split", ["trn", "val", "test"])
def test_fss_class_names_are_the_folder_names_as_shipped(layout: Path, split: str) -> None:
    """No class name carries a line ending, so each names its real folder (abe's_flyingfish, not abe's_flyingfish\\r)."""
    if split == "trn":
        for category in authors_lines("fss/trn.txt"):
            for n in range(1, 11):
                folder = layout / "FSS-1000" / category
                if not (folder / f"{n}.png").exists():
                    _write(folder / f"{n}.jpg", folder / f"{n}.png", [255] * 8, _jpeg())
    ds = build_dataset("fss", layout, 0, split, 1, image_size=32, splits_dir=AUTHORS_SPLITS)
    names = [ds.class_name(c) for c in ds.class_ids]
    assert names == sorted(authors_lines(f"fss/{split}.txt"))
    assert not any("\r" in name or "\n" in name for name in names)
    assert all((layout / "FSS-1000" / name).is_dir() for name in names)
