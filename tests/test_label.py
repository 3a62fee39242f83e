"""``hsnet label``: a folder of photos labelled end to end, resumed, and refused when the arguments are unusable."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from hsnet.cli import main
from hsnet.hub import save_pretrained
from hsnet.model import HSNet
from hsnet.errors import InputError
from hsnet.labeling import FolderLabeler, coco_document, coco_record, find_queries, label_queries

SIZES = {"a.png": (60, 40), "b.jpg": (50, 70), "nested/deeper/c.png": (33, 45), "nested/d.webp": (41, 41)}


def write_photos(folder: Path) -> None:
    """Photos of several sizes (one in a nested folder), a broken one, and files that are not photos."""
    rng = np.random.default_rng(0)
    for name, (width, height) in SIZES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "notes.txt").write_text("not a photo, not a query\n")
    (folder / "a.txt").write_text("not a photo either\n")
    (folder / ".thumbnail.png").write_bytes(b"hidden files are not queries")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, resnet50) -> Path:
    folder = tmp_path_factory.mktemp("label")
    write_photos(folder / "photos")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / "support.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[12:36, 16:48] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    save_pretrained(resnet50, folder / "weights", benchmark="pascal", fold=0)
    return folder


def label(workdir: Path, *queries: str, out: str = "out", extra: tuple[str, ...] = ()) -> int:
    return main(["label", *[str(workdir / q) for q in queries], "--support", str(workdir / "support.png"),
                 "--support-mask", str(workdir / "mask.png"), "--weights", str(workdir / "weights"),
                 "--out", str(workdir / out), "--image-size", "64", "--device", "cpu", "--no-progress", *extra])


@pytest.fixture(scope="module")
def labelled(workdir: Path) -> tuple[int, Path, dict[str, int]]:
    """One run over the photo folder: its exit status, output folder and backbone calls per kind of image."""
    calls = {"support_features": 0, "query_features": 0}
    with pytest.MonkeyPatch.context() as patch:
        for name in calls:
            def counted(self, *args, _name=name, _original=getattr(HSNet, name)):
                calls[_name] += 1
                return _original(self, *args)
            patch.setattr(HSNet, name, counted)
        code = label(workdir, "photos", extra=("--name", "blob", "--batch-size", "3"))
    return code, workdir / "out", calls


def test_a_folder_is_labelled_with_masks_overlays_and_a_coco_file(labelled, capsys):
    code, out, calls = labelled
    assert code == 1  # the broken photo was skipped
    assert calls == {"support_features": 1, "query_features": 2}  # supports encoded once; 4 queries in batches of 3
    for name, (width, height) in SIZES.items():
        stem = Path(name).with_suffix(".png")
        mask = np.array(Image.open(out / "masks" / stem))
        assert mask.shape == (height, width) and set(np.unique(mask)) <= {0, 255}
        assert Image.open(out / "overlays" / stem).size == (width, height)
    assert not (out / "masks" / "broken.png").exists() and not (out / "masks" / "notes.png").exists()

    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["blob"]
    images = coco.loadImgs(coco.getImgIds())
    assert sorted(i["file_name"] for i in images) == sorted(SIZES)
    for image in images:
        (annotation,) = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        png = np.array(Image.open(out / "masks" / Path(image["file_name"]).with_suffix(".png"))) > 0
        decoded = coco.annToMask(annotation).astype(bool)
        assert (image["width"], image["height"]) == SIZES[image["file_name"]]
        assert np.array_equal(decoded, png) and annotation["area"] == png.sum()
        assert annotation["iscrowd"] == 0 and annotation["category_id"] == coco.getCatIds()[0]


def test_a_second_run_skips_what_is_done_and_redoes_what_is_missing(workdir, labelled, capsys):
    _, out, _ = labelled
    capsys.readouterr()
    copy = workdir / "again"
    shutil.copytree(out, copy)
    before = {p: p.stat().st_mtime_ns for p in (copy / "masks").rglob("*.png")}
    (copy / "masks" / "b.png").unlink()
    assert label(workdir, "photos", out="again", extra=("--name", "blob")) == 1
    captured = capsys.readouterr()
    assert "1 labelled" in captured.out and f"{len(SIZES) - 1} done before" in captured.out
    assert captured.err.count("skipped") == 1 and "broken.jpg" in captured.err
    after = {p: p.stat().st_mtime_ns for p in (copy / "masks").rglob("*.png")}
    assert all(after[p] == t for p, t in before.items() if p.name != "b.png") and (copy / "masks" / "b.png").exists()
    document = json.loads((copy / "annotations.json").read_text())
    assert len(document["images"]) == len(document["annotations"]) == len(SIZES)

    assert label(workdir, "photos", out="again", extra=("--name", "blob", "--overwrite")) == 1
    assert f"{len(SIZES)} labelled" in capsys.readouterr().out


def test_every_query_labelled_exits_0_and_globs_keep_their_folders(workdir, capsys):
    assert label(workdir, "photos/nested/**/*.png", "photos/a.*", out="glob") == 0  # a.* leaves notes.txt out
    document = json.loads((workdir / "glob" / "annotations.json").read_text())
    assert [i["file_name"] for i in document["images"]] == ["a.png", "deeper/c.png"]
    assert (workdir / "glob" / "masks" / "deeper" / "c.png").exists()
    assert "skipped" not in capsys.readouterr().err


@pytest.mark.parametrize(("queries", "extra", "message"), [
    (("photos/nowhere.png",), (), "does not exist"),
    (("photos/*.tif",), (), "matches no image file"),
    (("photos", "photos/nested/deeper/c.png", "photos/a.png"), ("--out", "notes"), "is a file"),
    (("photos/a.png",), ("--name", " "), "--name"),
    (("photos/a.png",), ("--support", "support.png"), "2 --support but"),
])
def test_unusable_arguments_exit_2_in_one_line(workdir, monkeypatch, capsys, queries, extra, message):
    monkeypatch.chdir(workdir)
    (workdir / "notes").write_text("a file where a folder should be\n")
    assert label(workdir, *queries, out="refused", extra=extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hsnet label: error: ") and message in err, err
    assert not (workdir / "refused").exists()


def test_two_photos_that_would_share_a_mask_name_are_refused(workdir, tmp_path, capsys):
    for name in ("cat.jpg", "cat.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    with pytest.raises(Exception, match="would both be written to masks/cat.png"):
        find_queries([str(tmp_path)])


def test_labels_of_another_category_are_not_mixed(workdir, labelled, capsys):
    shutil.copytree(labelled[1], workdir / "other")
    assert label(workdir, "photos/a.png", out="other", extra=("--name", "dog")) == 2
    assert "holds labels of 'blob'" in capsys.readouterr().err


def test_the_output_folder_inside_the_query_folder_is_not_searched(tmp_path):
    write_photos(tmp_path)
    (tmp_path / "labels" / "masks").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "labels" / "masks" / "a.png")
    names = [q.name.as_posix() for q in find_queries([str(tmp_path)], out=tmp_path / "labels")]
    assert names == sorted(["a.png", "b.jpg", "broken.jpg", "nested/d.webp", "nested/deeper/c.png"])


def test_coco_records_match_pycocotools_for_any_mask():
    rng = np.random.default_rng(3)
    masks = [rng.random((23, 31)) > 0.7, np.zeros((5, 9), bool), np.ones((4, 4), bool)]
    document = coco_document([coco_record(f"{i}.png", m) for i, m in enumerate(masks)], "thing")
    for mask, annotation in zip(masks, document["annotations"]):
        rle = dict(annotation["segmentation"], counts=annotation["segmentation"]["counts"].encode())
        assert np.array_equal(mask_utils.decode(rle).astype(bool), mask)
        assert annotation["area"] == mask.sum()
        ys, xs = np.nonzero(mask)
        expected = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1] if mask.any() else [0, 0, 0, 0]
        assert annotation["bbox"] == [float(v) for v in expected]


def bright(images: list[Image.Image]) -> list[np.ndarray]:
    """A stand-in segmenter for the loop's tests: the pixels brighter than the image's mean."""
    return [np.asarray(image.convert("L")) > np.asarray(image.convert("L")).mean() for image in images]


def test_an_interrupted_run_keeps_what_it_wrote_and_the_next_one_resumes(tmp_path):
    write_photos(tmp_path / "photos")
    queries = find_queries([str(tmp_path / "photos")])
    calls = []

    def interrupted(images: list[Image.Image]) -> list[np.ndarray]:
        calls.append(len(images))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return bright(images)

    with pytest.raises(KeyboardInterrupt):
        label_queries(interrupted, queries, FolderLabeler(tmp_path / "out", "blob"), progress=False)
    document = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert [i["file_name"] for i in document["images"]] == ["a.png", "b.jpg"]
    summary = label_queries(bright, queries, FolderLabeler(tmp_path / "out", "blob"), progress=False)
    assert summary.done_before == ["a.png", "b.jpg"] and len(summary.labelled) == len(SIZES) - 2
    assert list(summary.skipped) == [str(tmp_path / "photos" / "broken.jpg")]


def test_a_query_that_fails_in_a_batch_is_skipped_alone(tmp_path):
    write_photos(tmp_path / "photos")

    def refuses_squares(images: list[Image.Image]) -> list[np.ndarray]:
        if any(image.width == image.height for image in images):
            raise InputError("a square query")
        return bright(images)

    skipped = []
    summary = label_queries(refuses_squares, find_queries([str(tmp_path / "photos")]),
                            FolderLabeler(tmp_path / "out", "blob"), batch_size=4, progress=False,
                            on_skip=lambda query, reason: skipped.append((query.name.as_posix(), reason)))
    assert sorted(summary.labelled) == sorted(set(SIZES) - {"nested/d.webp"})
    assert skipped[-1] == ("nested/d.webp", "a square query") and len(summary.skipped) == 2


@pytest.mark.slow
def test_from_the_shell_a_skipped_file_is_one_stderr_line_and_status_1(workdir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(workdir / "photos" / "a.png", photos)
    shutil.copy(workdir / "photos" / "broken.jpg", photos)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(Path(__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "hsnet", "label", str(photos), "--support", str(workdir / "support.png"),
                           "--support-mask", str(workdir / "mask.png"), "--weights", str(workdir / "weights"),
                           "--out", str(tmp_path / "out"), "--image-size", "64", "--device", "cpu", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"hsnet label: skipped {photos / 'broken.jpg'}: ")
    assert "1 labelled" in proc.stdout and f"skipped: {photos / 'broken.jpg'}" in proc.stdout
