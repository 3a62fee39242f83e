"""``hsnet label``: photos from folders and globs become a COCO dataset that datumaro, supervision and
pycocotools open as written; resumed, refused in one line when unusable, and never touching its inputs."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from hsnet.cli import main
from hsnet.errors import InputError
from hsnet.hub import save_pretrained
from hsnet.labeling import LabelFolder, LabelSummary, find_queries, label_each, locked
from hsnet.model import HSNet
from hsnet.predictor import Predictor

ANNOTATIONS = Path("annotations/instances_default.json")
# Photos of several sizes in two folders (one nested), with names that clash across them.
SIZES = {"photos/a.png": (60, 40), "photos/b.jpg": (50, 70), "photos/nested/deeper/c.png": (33, 45),
         "photos/nested/d.webp": (41, 41), "more/a.jpg": (36, 30), "more/e.jpg": (30, 36)}
# What each photo is called in OUT/images/ after `label photos more/*.jpg`: a.jpg clashes with a.png's mask.
NAMES = {"photos/a.png": "a.png", "photos/b.jpg": "b.jpg", "photos/nested/deeper/c.png": "nested/deeper/c.png",
         "photos/nested/d.webp": "nested/d.webp", "more/a.jpg": "a-2.jpg", "more/e.jpg": "e.jpg"}


def write_photos(root: Path) -> None:
    """The photos above, a broken one, and files that are not photos."""
    rng = np.random.default_rng(0)
    for name, (width, height) in SIZES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / name)
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (root / "photos" / "notes.txt").write_text("not a photo, not a query\n")
    (root / "photos" / ".thumbnail.png").write_bytes(b"hidden files are not queries")


def png_mask(path: Path) -> np.ndarray:
    with Image.open(path) as png:
        return np.asarray(png) > 127


def file_bytes(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, resnet50) -> Path:
    folder = tmp_path_factory.mktemp("label")
    write_photos(folder)
    write_support_and_weights(folder, resnet50, np.random.default_rng(1))
    return folder


def write_support_and_weights(folder: Path, model, rng: np.random.Generator) -> None:
    """support.png (64x48 noise), mask.png (a box in its middle) and the model's weights/ in ``folder``."""
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / "support.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[12:36, 16:48] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    save_pretrained(model, folder / "weights", benchmark="pascal", fold=0)


def label(workdir: Path, *queries: str, out: str = "out", extra: tuple[str, ...] = ()) -> int:
    return main(["label", *[str(workdir / q) for q in queries], "--support", str(workdir / "support.png"),
                 "--support-mask", str(workdir / "mask.png"), "--weights", str(workdir / "weights"),
                 "--out", str(workdir / out), "--image-size", "64", "--device", "cpu", "--no-progress", *extra])


@pytest.fixture(scope="module")
def labelled(workdir: Path) -> tuple[int, Path, dict[str, int], dict[Path, bytes]]:
    """One run over a folder and a glob: exit status, output folder, backbone calls, and the inputs' bytes before."""
    calls = {"support_features": 0, "query_features": 0}
    before = file_bytes(workdir / "photos") | file_bytes(workdir / "more")
    with pytest.MonkeyPatch.context() as patch:
        for name in calls:
            def counted(self, *args, _name=name, _original=getattr(HSNet, name)):
                calls[_name] += 1
                return _original(self, *args)
            patch.setattr(HSNet, name, counted)
        code = label(workdir, "photos", "more/*.jpg", extra=("--name", "blob", "--batch-size", "4"))
    return code, workdir / "out", calls, before


def test_the_output_is_a_coco_dataset_datumaro_detects_and_reads_pixel_for_pixel(labelled, workdir):
    import datumaro as dm
    from datumaro.components.environment import Environment

    code, out, calls, before = labelled
    assert code == 1  # the broken photo was skipped
    assert calls == {"support_features": 1, "query_features": 2}  # supports encoded once; 6 queries in batches of 4
    assert file_bytes(workdir / "photos") | file_bytes(workdir / "more") == before
    assert Environment().detect_dataset(str(out)) == ["coco_instances"]
    dataset = dm.Dataset.import_from(str(out), "coco_instances")
    assert [c.name for c in dataset.categories()[dm.AnnotationType.label]] == ["blob"]
    assert sorted(item.id for item in dataset) == sorted(str(Path(n).with_suffix("")) for n in NAMES.values())
    for source, name in NAMES.items():
        item = dataset.get(str(Path(name).with_suffix("")))
        assert Path(item.media.path).read_bytes() == (workdir / source).read_bytes()
        width, height = SIZES[source]
        png = png_mask(out / "masks" / Path(name).with_suffix(".png"))
        assert png.shape == (height, width) and Image.open(out / "overlays" / Path(name).with_suffix(".png")).size == (width, height)
        masks = [a for a in item.annotations if a.type == dm.AnnotationType.mask]
        assert len(masks) == int(png.any())
        if masks:
            assert np.array_equal(masks[0].image.astype(bool), png) and masks[0].attributes["is_crowd"] is False


def test_supervision_and_pycocotools_read_the_same_masks(labelled):
    import supervision as sv

    _, out, _, _ = labelled
    dataset = sv.DetectionDataset.from_coco(str(out / "images"), str(out / ANNOTATIONS), force_masks=True)
    assert dataset.classes == ["blob"] and len(dataset) == len(NAMES)
    for path, image, detections in dataset:
        name = Path(path).relative_to(out / "images")
        png = png_mask(out / "masks" / name.with_suffix(".png"))
        assert image.shape[:2] == png.shape
        assert np.array_equal(detections.mask.any(axis=0) if len(detections) else np.zeros_like(png), png)
    coco = COCO(str(out / ANNOTATIONS))
    for image in coco.loadImgs(coco.getImgIds()):
        assert (out / "images" / image["file_name"]).is_file()
        png = png_mask(out / "masks" / Path(image["file_name"]).with_suffix(".png"))
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            assert np.array_equal(coco.annToMask(annotation).astype(bool), png) and annotation["area"] == png.sum()
            assert annotation["iscrowd"] == 0


def bright(images: list[Image.Image]) -> list[np.ndarray]:
    """A stand-in segmenter: the pixels brighter than the image's mean; nothing in an all-black photo."""
    grey = [np.asarray(image.convert("L"), dtype=float) for image in images]
    return [g > max(g.mean(), 1) for g in grey]


def run_loop(queries, out: Path, segment=bright, **options) -> LabelSummary:
    out.mkdir(parents=True, exist_ok=True)
    summary = LabelSummary()
    with locked(out), closing(label_each(segment, queries, LabelFolder(out, "blob", **options))) as outcomes:
        for outcome in outcomes:
            summary.add(outcome)
    return summary


def test_a_photo_without_the_object_is_an_image_without_annotation(tmp_path):
    write_photos(tmp_path)
    Image.new("RGB", (20, 10)).save(tmp_path / "photos" / "black.png")
    summary = run_loop(find_queries([str(tmp_path / "photos")]).queries, tmp_path / "out")
    assert summary.empty == ["black.png"]
    coco = COCO(str(tmp_path / "out" / ANNOTATIONS))
    (black,) = [i for i in coco.loadImgs(coco.getImgIds()) if i["file_name"] == "black.png"]
    assert coco.getAnnIds(imgIds=black["id"]) == []
    detections = coco.loadRes([dict(a, score=1.0) for a in coco.loadAnns(coco.getAnnIds())])
    evaluation = COCOeval(coco, detections, "segm")
    evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)  # no fake object of area 0 drags the AP down


def ring(images: list[Image.Image]) -> list[np.ndarray]:
    """A disc with a hole, and an island inside the hole: what polygons cannot hold exactly."""
    masks = []
    for image in images:
        yy, xx = np.mgrid[: image.height, : image.width]
        radius = np.hypot(xx - image.width / 2, yy - image.height / 2)
        masks.append((radius < min(image.size) * 0.45) & ((radius > 6) | (radius < 2)))
    return masks


def test_polygons_redraw_every_pixel_but_the_holes_and_the_error_is_counted(tmp_path):
    import datumaro as dm

    write_photos(tmp_path)
    summary = run_loop(find_queries([str(tmp_path / "photos")]).queries, tmp_path / "out", segment=ring, polygons=True)
    coco = COCO(str(tmp_path / "out" / ANNOTATIONS))
    expected_error = 0
    for image in coco.loadImgs(coco.getImgIds()):
        (annotation,) = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert isinstance(annotation["segmentation"], list) and annotation["iscrowd"] == 0
        png = png_mask(tmp_path / "out" / "masks" / Path(image["file_name"]).with_suffix(".png"))
        drawn = coco.annToMask(annotation).astype(bool)
        yy, xx = np.mgrid[: png.shape[0], : png.shape[1]]
        hole = np.hypot(xx - png.shape[1] / 2, yy - png.shape[0] / 2) <= 6
        assert np.array_equal(drawn & ~hole, png & ~hole) and drawn[hole].all()
        expected_error += int((drawn != png).sum())
    assert summary.polygon_error == expected_error > 0
    # datumaro keeps them as polygons, object by object, through its own export and import
    dataset = dm.Dataset.import_from(str(tmp_path / "out"), "coco_instances")
    dataset.export(str(tmp_path / "again"), "coco_instances", save_media=False)

    def by_photo(document: dict) -> dict[str, tuple]:
        names = {image["id"]: image["file_name"] for image in document["images"]}
        return {names[a["image_id"]]: (a["segmentation"], a["iscrowd"]) for a in document["annotations"]}

    again = by_photo(json.loads((tmp_path / "again" / ANNOTATIONS).read_text()))
    assert again == by_photo(json.loads((tmp_path / "out" / ANNOTATIONS).read_text())) and len(again) == 4


def test_a_second_run_skips_what_is_done_and_redoes_what_is_missing(workdir, labelled, capsys):
    out = labelled[1]
    capsys.readouterr()
    copy = workdir / "again"
    shutil.copytree(out, copy)
    before = {p: p.stat().st_mtime_ns for p in (copy / "masks").rglob("*.png")}
    (copy / "masks" / "b.png").unlink()
    assert label(workdir, "more/*.jpg", "photos", out="again", extra=("--name", "blob")) == 1  # another order
    captured = capsys.readouterr()
    assert "1 labelled" in captured.out and f"{len(NAMES) - 1} done before" in captured.out
    assert captured.err.count("skipped") == 1 and "broken.jpg" in captured.err
    after = {p: p.stat().st_mtime_ns for p in (copy / "masks").rglob("*.png")}
    assert all(after[p] == t for p, t in before.items() if p.name != "b.png") and (copy / "masks" / "b.png").exists()
    document = json.loads((copy / ANNOTATIONS).read_text())
    assert sorted(i["file_name"] for i in document["images"]) == sorted(NAMES.values())

    assert label(workdir, "photos", "more/*.jpg", out="again", extra=("--name", "blob", "--overwrite")) == 1
    assert f"{len(NAMES)} labelled" in capsys.readouterr().out


def test_copies_stand_alone_and_links_share_the_photos_bytes(tmp_path):
    write_photos(tmp_path)
    queries = find_queries([str(tmp_path / "more")]).queries
    run_loop(queries, tmp_path / "linked")
    run_loop(queries, tmp_path / "copied", images="copy")
    for query in queries:
        linked, copied = tmp_path / "linked" / "images" / query.name, tmp_path / "copied" / "images" / query.name
        assert os.path.samefile(linked, query.path) and not os.path.samefile(copied, query.path)
        assert copied.read_bytes() == query.path.read_bytes() and not linked.is_symlink()


@pytest.mark.parametrize(("queries", "extra", "message"), [
    (("photos/nowhere.png",), (), "does not exist"),
    (("photos/*.tif",), (), "matches no image file"),
    (("photos", "photos/nested/deeper/c.png", "photos/a.png"), ("--out", "notes"), "is a file"),
    (("photos/a.png",), ("--name", " "), "--name"),
    (("photos/a.png",), ("--name", "cat\ndog"), "line break"),
    (("photos/a.png",), ("--name", "x" * 100_000), "at most 100"),
    (("photos/a.png",), ("--batch-size", "1000000000"), "from 1 to 256"),
    (("photos/a.png",), ("--images", "symlink"), "--images"),
    (("photos/a.png",), ("--support", "support.png"), "2 --support but"),
])
def test_unusable_arguments_exit_2_in_one_line(workdir, monkeypatch, capsys, queries, extra, message):
    monkeypatch.chdir(workdir)
    (workdir / "notes").write_text("a file where a folder should be\n")
    assert label(workdir, *queries, out="refused", extra=extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hsnet label: error: ") and message in err, err
    assert not (workdir / "refused").exists()


def test_labels_of_another_category_are_not_mixed(workdir, labelled, capsys):
    shutil.copytree(labelled[1], workdir / "other")
    assert label(workdir, "photos/a.png", out="other", extra=("--name", "dog")) == 2
    assert "holds labels of 'blob'" in capsys.readouterr().err


def test_a_second_run_on_the_same_folder_at_once_is_refused_in_one_line(workdir, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with locked(out):  # another run holds it
        assert label(workdir, "photos/a.png", out=str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "being written by another hsnet label run" in err
    assert label(workdir, "photos/a.png", out=str(out)) == 0  # free again


def test_a_full_disk_names_the_file_and_what_to_do(workdir, tmp_path, monkeypatch, capsys):
    import errno

    class Full:
        def __init__(self, path, mode):
            self.path = path
            Path(path).touch()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hsnet.whole_files.open", Full, raising=False)
    out = tmp_path / "full"
    assert label(workdir, "photos/a.png", out=str(out)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out / 'overlays' / 'a.png'} cannot be written" in err, err
    assert "No space left on device" in err and "free some space" in err
    assert not [p for p in out.rglob("*.partial")]  # no temporary file stays behind


def test_output_folders_of_earlier_runs_are_not_photos(tmp_path, capsys):
    write_photos(tmp_path)
    queries = find_queries([str(tmp_path / "photos")], out=tmp_path / "photos" / "labels").queries
    run_loop(queries, tmp_path / "photos" / "labels")
    (tmp_path / "photos" / "old").mkdir()  # the layout of hsnet 0.1
    for part in ("masks", "overlays"):
        (tmp_path / "photos" / "old" / part).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / "photos" / "old" / part / "a.png")
    (tmp_path / "photos" / "old" / "annotations.json").write_text("{}")
    for sources in ([str(tmp_path / "photos")], [str(tmp_path / "photos" / "**" / "*.png")]):
        found = find_queries(sources, out=tmp_path / "photos" / "labels2")
        assert {q.path.parent.name for q in found.queries} <= {"photos", "deeper", "nested"}
        assert {p.name for p in found.left_out} == {"labels", "old"}


def test_hostile_names_never_leave_the_output_folder_nor_touch_an_input(workdir, tmp_path):
    photos = tmp_path / "in" / "s1"
    photos.mkdir(parents=True)
    shutil.copy(workdir / "photos" / "a.png", photos / "m000.png")
    shutil.copy(workdir / "photos" / "b.jpg", photos / "back\\slash.jpg")
    shutil.copy(workdir / "photos" / "b.jpg", photos / "new\nline.jpg")
    os.symlink("loop.jpg", photos / "loop.jpg")  # a symlink loop among the queries
    depth = len(photos.resolve().parts) + 2
    climbing = f"{tmp_path}/in/s*/" + "../" * depth + str(photos.resolve() / "m000.png").lstrip("/")
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    os.symlink(photos, out / "masks" / "s1")  # a link planted in the output folder, pointing at the photos
    before, entries = file_bytes(tmp_path / "in"), sorted((tmp_path / "in").rglob("*"))
    found = find_queries([climbing, str(tmp_path / "in" / "s*"), str(photos / "m000.png")], out=out)
    assert {q.name.as_posix() for q in found.queries} == {"m000.png", "s1/back\\slash.jpg", "s1/new\nline.jpg",
                                                          "s1/loop.jpg"}
    outcomes = []
    with locked(out), closing(label_each(bright, found.queries, LabelFolder(out, "blob"))) as loop:
        with pytest.raises(InputError, match="is a link, which could lead outside"):
            outcomes.extend(loop)
    assert file_bytes(tmp_path / "in") == before and sorted((tmp_path / "in").rglob("*")) == entries
    (out / "masks" / "s1").unlink()
    summary = run_loop(found.queries, out)
    assert list(summary.skipped) == [str(photos / "loop.jpg")] and "symbolic link" in summary.skipped[str(photos / "loop.jpg")]
    assert len(summary.labelled) + len(summary.done_before) == 3
    assert file_bytes(tmp_path / "in") == before and sorted((tmp_path / "in").rglob("*")) == entries
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "in")]
    assert all(Path(os.path.realpath(p)).is_relative_to(out) or p.is_relative_to(out / "images") for p in written)


def test_an_interrupted_run_keeps_what_it_wrote_and_the_next_one_resumes(tmp_path):
    write_photos(tmp_path)
    queries = find_queries([str(tmp_path / "photos")]).queries
    calls = []

    def interrupted(images: list[Image.Image]) -> list[np.ndarray]:
        calls.append(len(images))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return bright(images)

    with pytest.raises(KeyboardInterrupt):
        run_loop(queries, tmp_path / "out", segment=interrupted)
    document = json.loads((tmp_path / "out" / ANNOTATIONS).read_text())
    assert [i["file_name"] for i in document["images"]] == ["a.png", "b.jpg"]
    summary = run_loop(queries, tmp_path / "out")
    assert summary.done_before == ["a.png", "b.jpg"] and len(summary.labelled) == 2
    assert list(summary.skipped) == [str(tmp_path / "photos" / "broken.jpg")]


def test_a_query_that_fails_in_a_batch_is_skipped_alone(tmp_path):
    write_photos(tmp_path)

    def refuses_squares(images: list[Image.Image]) -> list[np.ndarray]:
        if any(image.width == image.height for image in images):
            raise InputError("a square query")
        return bright(images)

    out = tmp_path / "out"
    out.mkdir()
    outcomes = list(label_each(refuses_squares, find_queries([str(tmp_path / "photos")]).queries,
                               LabelFolder(out, "blob"), batch_size=4))
    skipped = {o.name.as_posix(): o.skipped for o in outcomes if o.skipped}
    assert skipped["nested/d.webp"] == "a square query" and len(skipped) == 2
    assert {o.name.as_posix() for o in outcomes if o.record} == {"a.png", "b.jpg", "nested/deeper/c.png"}


def test_sigterm_stops_like_ctrl_c_and_leaves_valid_annotations(workdir, tmp_path, monkeypatch, capsys):
    calls = []
    original = Predictor.predict_many

    def terminated_on_the_second_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Predictor, "predict_many", terminated_on_the_second_batch)
    assert label(workdir, "photos", out=str(tmp_path / "out")) == 143
    captured = capsys.readouterr()
    assert "terminated" in captured.err and "run the same command again" in captured.err
    document = json.loads((tmp_path / "out" / ANNOTATIONS).read_text())
    assert 1 <= len(document["images"]) < len(NAMES)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


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


def test_ctrl_c_while_the_command_starts_is_one_line(monkeypatch, capsys):
    def loading(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C came while torch was being imported

    monkeypatch.setattr("hsnet.cli.build_parser", loading)
    assert main(["label", "photos", "--out", "x"]) == 130
    assert capsys.readouterr().err == "hsnet: interrupted\n"
    # and before main runs at all, importing the command imports nothing heavy to interrupt
    probe = "import sys, hsnet.cli; print('torch' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                          timeout=120).stdout.strip() == "False"
