"""label_many: photos or a zip labelled against the supports, bounded per request; the archive is the dataset
``hsnet label`` writes, read here by datumaro; every file handed out is complete."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hsnet
from hsnet.errors import InputError
from hsnet.serving.label_many import MAX_LABEL_BYTES, MAX_LABEL_QUERIES, label_many

SIZES = [(96, 64), (50, 70), (64, 64)]


def photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def segment(predictor_resnet50: hsnet.HSNet):
    """The real model at a 64-pixel side, one support with a marked square."""
    predictor = hsnet.Predictor(predictor_resnet50, device="cpu", image_size=64)
    support = Image.fromarray(np.random.default_rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    return lambda images: [predictor.predict(image, [support], [mask]).mask for image in images]


def test_photos_and_a_zip_are_labelled_and_the_archive_is_a_coco_dataset(segment, tmp_path: Path) -> None:
    import datumaro as dm

    files = [photo(tmp_path / "in" / f"p{i}.png", size, i) for i, size in enumerate(SIZES)]
    broken = tmp_path / "in" / "broken.png"
    broken.write_text("not an image")
    nested = photo(tmp_path / "zip" / "nested" / "deep.jpg", (40, 30), 7)
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        archive.write(nested, "nested/deep.jpg")
        archive.writestr("../../escape.png", (tmp_path / "in" / "p0.png").read_bytes())
        archive.writestr("p0.jpg", nested.read_bytes())  # shares its stem with p0.png
        archive.writestr("notes.txt", "ignored: not an image name")
    work = tmp_path / "work"
    work.mkdir()
    updates = list(label_many(segment, [*files, broken, tmp_path / "more.zip"], work, category="thing", batch_size=2))
    finished = [u for u in updates if u.name]
    assert [u.done for u in finished] == [1, 2, 3, 4, 5, 6] and all(u.total == 7 for u in updates)
    assert {u.name for u in finished} == {"p0.png", "p1.png", "p2.png", "nested/deep.jpg", "escape.png", "p0-2.jpg"}
    for update in finished:  # each thumbnail is a complete picture when its path is handed out
        with Image.open(update.overlay) as thumbnail:
            thumbnail.load()
            assert max(thumbnail.size) <= 384
    last = updates[-1]
    assert list(last.skipped) == ["broken.png"] and "\n" not in last.skipped["broken.png"]
    assert last.archive == work / "labels.zip" and sorted(p.name for p in work.iterdir()) == ["labels.zip", "thumbnails"]
    with zipfile.ZipFile(last.archive) as archive:
        names = set(archive.namelist())
        assert {n for n in names if n.startswith("masks/")} == {
            "masks/p0.png", "masks/p1.png", "masks/p2.png", "masks/nested/deep.png", "masks/escape.png", "masks/p0-2.png"}
        assert "annotations/instances_default.json" in names and "images/p0-2.jpg" in names
        archive.extractall(tmp_path / "out")
    out = tmp_path / "out"
    expected_sizes = {"p0": SIZES[0], "p1": SIZES[1], "p2": SIZES[2], "nested/deep": (40, 30), "escape": SIZES[0],
                      "p0-2": (40, 30)}
    dataset = dm.Dataset.import_from(str(out), "coco_instances")
    assert dataset.categories()[dm.AnnotationType.label][0].name == "thing"
    assert sorted(item.id for item in dataset) == sorted(expected_sizes)
    for item in dataset:
        with Image.open(out / "masks" / f"{item.id}.png") as saved:
            png = np.asarray(saved) > 127
        assert saved.size == expected_sizes[item.id] == item.media.size[::-1]
        masks = [a.image.astype(bool) for a in item.annotations if a.type == dm.AnnotationType.mask]
        assert np.array_equal(masks[0] if masks else np.zeros_like(png), png)


def test_too_many_photos_are_refused_before_any_is_read(tmp_path: Path) -> None:
    files = [tmp_path / f"{i}.png" for i in range(MAX_LABEL_QUERIES + 1)]
    for file in files:
        file.write_text("never read")
    with pytest.raises(InputError, match=f"{MAX_LABEL_QUERIES + 1} photos to label; at most {MAX_LABEL_QUERIES}"):
        next(label_many(lambda images: [], files, tmp_path))


def test_a_zip_with_too_many_members_is_refused_from_its_directory(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "many.zip", "w") as archive:
        for i in range(MAX_LABEL_QUERIES + 10):
            archive.writestr(f"{i}.png", b"never read")
    with pytest.raises(InputError, match="60 photos to label"):
        next(label_many(lambda images: [], [tmp_path / "many.zip"], tmp_path))


def test_too_many_bytes_are_refused_before_any_is_read(tmp_path: Path) -> None:
    files = []
    for i in range(MAX_LABEL_BYTES // (20 * 2**20) + 1):
        with (tmp_path / f"{i}.png").open("wb") as file:
            file.truncate(20 * 2**20)  # sparse: costs no disk
        files.append(tmp_path / f"{i}.png")
    with pytest.raises(InputError, match=f"over the {MAX_LABEL_BYTES // 2**20} MB limit per request"):
        next(label_many(lambda images: [], files, tmp_path))


def test_a_zip_member_declaring_more_than_an_upload_is_skipped(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.png", bytes(30 * 2**20))  # 30 MB of zeros compress to a few KB
    updates = list(label_many(lambda images: [], [tmp_path / "bomb.zip"], tmp_path))
    assert "zeros.png is 30 MB, over the 20 MB limit per photo" in updates[-1].skipped["zeros.png"]


def test_a_failing_query_skips_only_itself(tmp_path: Path) -> None:
    files = [photo(tmp_path / f"p{i}.png", (32 + i, 32), i) for i in range(4)]

    def segment(images: list[Image.Image]) -> list[np.ndarray]:
        if any(image.width == 34 for image in images):
            raise InputError("support mask vanishes")
        return [np.ones((image.height, image.width), bool) for image in images]

    updates = list(label_many(segment, files, tmp_path, batch_size=4))
    assert [u.name for u in updates if u.name] == ["p0.png", "p1.png", "p3.png"]
    assert updates[-1].skipped == {"p2.png": "support mask vanishes"}


def test_a_request_stopped_early_leaves_no_archive(tmp_path: Path) -> None:
    files = [photo(tmp_path / f"p{i}.png", (16, 16), i) for i in range(3)]
    work = tmp_path / "work"
    work.mkdir()
    updates = label_many(lambda images: [np.ones((16, 16), bool) for _ in images], files, work, batch_size=1)
    next(updates)
    updates.close()  # the visitor left
    assert list(work.iterdir()) == []  # no half archive, no photos, no thumbnails


def test_annotations_hold_one_category_and_one_annotation_per_photo(tmp_path: Path) -> None:
    files = [photo(tmp_path / f"p{i}.png", (16, 16), i) for i in range(2)]
    *_, last = label_many(lambda images: [np.eye(16, dtype=bool) for _ in images], files, tmp_path, category="cat")
    with zipfile.ZipFile(last.archive) as archive:
        document = json.loads(archive.read("annotations/instances_default.json"))
    assert [c["name"] for c in document["categories"]] == ["cat"]
    assert len(document["images"]) == len(document["annotations"]) == 2


def test_the_predictor_segmenter_labels_in_batches_like_single_predictions(
        predictor_resnet50: hsnet.HSNet, tmp_path: Path) -> None:
    from hsnet.serving import predictor_segmenter

    predictor = hsnet.Predictor(predictor_resnet50, device="cpu", image_size=64)
    support = Image.fromarray(np.random.default_rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    supports = predictor.set_supports([support], [mask])
    files = [photo(tmp_path / f"p{i}.png", size, i) for i, size in enumerate(SIZES)]
    updates = list(label_many(predictor_segmenter(predictor, supports), files, tmp_path, batch_size=3))
    with zipfile.ZipFile(updates[-1].archive) as archive:
        for file in files:
            with Image.open(io.BytesIO(archive.read(f"masks/{file.name}"))) as saved:
                alone = predictor.predict(Image.open(file), supports).mask
                assert np.array_equal(np.asarray(saved) > 127, alone)
