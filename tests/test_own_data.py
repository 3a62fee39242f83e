"""One's own data: folders of class folders and COCO files as annotation tools and pycocotools write them.

The COCO files are made by the tools themselves where they are installed (pycocotools' encoder,
datumaro's exporter, which CVAT's "COCO 1.0" export is built on), or written in the exact shape a
tool exports (Label Studio); every mask hsnet reads is compared with pycocotools' own decoding.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from hsnet.data import build_dataset
from hsnet.errors import DatasetError, InputError
from synthetic_datasets import make_shapes, textured_shape

SIDE = 32


def photo(path: Path, width: int = 40, height: int = 30, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def box(width: int = 40, height: int = 30, top: int = 5, left: int = 8, size: int = 10) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[top:top + size, left:left + size] = True
    return mask


# ---------------------------------------------------------------------------------------------- folders


@pytest.mark.parametrize("layout,values,summary", [("beside", 255, "masks beside the photos"),
                                                   ("separate", 1, "separate folders")])
def test_both_folder_layouts_are_detected_and_said(tmp_path, layout, values, summary):
    stems = make_shapes(tmp_path, classes=4, per_class=4, side=SIDE, layout=layout, mask_values=values)
    ds = build_dataset("folder", tmp_path, split="all", shots=1, image_size=SIDE)
    assert summary in ds.summary() and ds.notes() == []
    assert [ds.class_name(c) for c in ds.class_ids] == sorted(stems)
    assert len(ds) == 16
    item = ds[0]
    expected = np.array(Image.open(ds.label_path(ds.episodes[0].query))) > 0
    assert item["query_mask"].numpy().astype(bool).tolist() == expected.tolist()


def test_palette_masks_mark_every_nonzero_index(tmp_path):
    make_shapes(tmp_path, classes=1, per_class=3, side=SIDE)
    for mask_file in sorted(tmp_path.rglob("*.png")):
        labels = (np.array(Image.open(mask_file)) > 0).astype(np.uint8) * 3  # index 3 of a palette
        paletted = Image.fromarray(labels, "P")
        paletted.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
        paletted.save(mask_file)
    ds = build_dataset("folder", tmp_path, split="all", shots=1, image_size=SIDE)
    assert len(ds) == 3 and all(ds[i]["query_mask"].sum() > 0 for i in range(3))


def test_one_class_is_split_by_images_into_disjoint_parts(tmp_path):
    make_shapes(tmp_path / "data", classes=1, per_class=10, side=SIDE)
    trn = build_dataset("folder", tmp_path / "data", split="trn", shots=1, image_size=SIDE)
    test = build_dataset("folder", tmp_path / "data", split="test", shots=1, image_size=SIDE)
    record = trn.partition()
    assert record["split_by"] == "images" and record == test.partition()
    train_names, val_names = set(record["train"]["square"]), set(record["val"]["square"])
    assert len(val_names) == 2 and len(train_names) == 8 and not train_names & val_names
    assert {e.query for e in test.episodes} == val_names
    assert {trn.episode(i).query for i in range(len(trn))} == train_names
    assert all(set(trn.episode(i).supports) <= train_names for i in range(len(trn)))


def test_classes_are_held_out_by_seed_or_by_name(tmp_path):
    make_shapes(tmp_path, classes=5, per_class=3, side=SIDE)
    first = build_dataset("folder", tmp_path, split="test", image_size=SIDE, seed=3).partition()
    assert first == build_dataset("folder", tmp_path, split="test", image_size=SIDE, seed=3).partition()
    assert first["split_by"] == "classes" and len(first["val"]) == 1 and not set(first["val"]) & set(first["train"])
    chosen = build_dataset("folder", tmp_path, split="test", image_size=SIDE, val_classes=["disc", "ring"])
    assert [chosen.class_name(c) for c in chosen.class_ids] == ["disc", "ring"]
    with pytest.raises(InputError, match="--val-classes hexagon not found"):
        build_dataset("folder", tmp_path, split="test", image_size=SIDE, val_classes=["hexagon"])


def test_a_recorded_split_is_used_even_when_the_seed_differs(tmp_path):
    make_shapes(tmp_path / "data", classes=5, per_class=3, side=SIDE)
    record = build_dataset("folder", tmp_path / "data", split="trn", image_size=SIDE, val_classes=["cross"]).partition()
    (tmp_path / "split.json").write_text(json.dumps(record))
    ds = build_dataset("folder", tmp_path / "data", split="test", image_size=SIDE, seed=9,
                       split_file=tmp_path / "split.json")
    assert [ds.class_name(c) for c in ds.class_ids] == ["cross"] and "split from" in ds.summary()


def test_bad_files_are_left_out_with_one_line_each(tmp_path):
    make_shapes(tmp_path, classes=2, per_class=7, side=SIDE)
    square = tmp_path / "square"
    Image.fromarray(np.zeros((SIDE, SIDE), np.uint8)).save(square / "square_000.png")  # empty mask
    Image.open(square / "square_001.png").resize((SIDE * 2, SIDE * 2)).save(square / "square_001.png")  # 2x: resized
    Image.open(square / "square_002.png").resize((SIDE, SIDE * 2)).save(square / "square_002.png")  # other aspect
    (square / "square_003.jpg").write_bytes(b"not a jpeg")  # unreadable photo
    (square / "square_004.png").unlink()  # a photo without its mask
    (tmp_path / "disc" / "stray.png").write_bytes((tmp_path / "disc" / "disc_000.png").read_bytes())  # mask, no photo
    ds = build_dataset("folder", tmp_path, split="all", shots=1, image_size=SIDE)
    notes = ds.notes()
    assert all("\n" not in n for n in notes) and len(notes) == 5
    for name, why in [("square_000", "marks no pixels"), ("square_002", f"is {SIDE}x{SIDE * 2}"),
                      ("square_003", "not an image"), ("square_004", "has no mask"), ("stray.png", "no photo")]:
        assert any(name in n and why in n for n in notes), (name, notes)
    used = sorted(e.query for e in ds.episodes if ds.class_name(e.class_id) == "square")
    assert used == ["square/square_001", "square/square_005", "square/square_006"]


def test_a_class_with_too_few_images_for_k_shots_is_named_and_left_out(tmp_path):
    make_shapes(tmp_path, classes=2, per_class=3, side=SIDE)
    for extra in range(3, 6):
        image, mask = textured_shape("disc", 1, SIDE, np.random.default_rng(extra))
        Image.fromarray(image).save(tmp_path / "disc" / f"more_{extra}.jpg")
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "disc" / f"more_{extra}.png")
    ds = build_dataset("folder", tmp_path, split="all", shots=3, image_size=SIDE)
    assert [ds.class_name(c) for c in ds.class_ids] == ["disc"]
    assert any("class square has 3 image(s)" in n and "fewer than 4" in n for n in ds.notes())


@pytest.mark.parametrize("make,message", [
    (lambda root: root.mkdir(), "holds no class folders"),
    (lambda root: (root / "a" / "images").mkdir(parents=True) or (root / "a" / "masks").mkdir() or
     (root / "b").mkdir(), "mixes layouts"),
    (lambda root: (root / "a").mkdir(parents=True) or photo(root / "a" / "x.jpg"), "nothing usable"),
])
def test_a_folder_with_nothing_usable_is_one_line(tmp_path, make, message):
    make(tmp_path / "data")
    with pytest.raises(DatasetError, match=message) as caught:
        build_dataset("folder", tmp_path / "data", split="trn", image_size=SIDE)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------------------- COCO files


def polygon(mask: np.ndarray) -> list[float]:
    """The corners of a box mask as one COCO polygon (x, y pairs), as annotation tools draw a rectangle."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def assert_reads_as_pycocotools(ds, document_path: Path) -> None:
    """Every (image, class) mask hsnet serves equals the union pycocotools decodes for it."""
    coco = COCO(str(document_path))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    checked = 0
    for image in coco.loadImgs(coco.getImgIds()):
        for cat_id, name in names.items():
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"], catIds=[cat_id]))
            if not anns:
                continue
            expected = np.any([coco.annToMask(a) > 0 for a in anns], axis=0)
            class_id = ds.categories.index(name)
            mask, _ = ds.read_label(image["file_name"], class_id)
            assert mask.numpy().astype(bool).tolist() == expected.tolist(), (image["file_name"], name)
            checked += 1
    assert checked >= 3


def pycocotools_document(folder: Path) -> Path:
    """Two categories over three photos; cats as compressed RLE (mask.encode), dogs as polygons, one photo with
    two cats merged into one mask and one crowd RLE."""
    images, annotations = [], []
    for i in range(3):
        photo(folder / f"p{i}.jpg", seed=i)
        images.append({"id": 10 + i, "file_name": f"p{i}.jpg", "width": 40, "height": 30})
        cats = [box(left=2 + i, size=8)] + ([box(top=18, left=25, size=6)] if i == 0 else [])
        for mask in cats:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append({"image_id": 10 + i, "category_id": 7, "iscrowd": int(i == 2),
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                                "area": float(mask_utils.area(rle)), "bbox": list(map(float, mask_utils.toBbox(rle)))})
        dog = box(top=12, left=20, size=9)
        annotations.append({"image_id": 10 + i, "category_id": 9, "iscrowd": 0, "segmentation": [polygon(dog)],
                            "area": float(dog.sum()), "bbox": [20.0, 12.0, 9.0, 9.0]})
    for n, ann in enumerate(annotations, 1):
        ann["id"] = n
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "dog"}]}))
    return path


def test_a_pycocotools_file_of_rle_and_polygons_reads_as_pycocotools_reads_it(tmp_path):
    path = pycocotools_document(tmp_path)
    ds = build_dataset("coco", path, split="all", shots=1, image_size=SIDE)
    assert ds.benchmark == "coco-file" and ds.notes() == []
    assert [ds.class_name(c) for c in ds.class_ids] == ["cat", "dog"] and len(ds) == 6
    assert_reads_as_pycocotools(ds, path)
    two_cats = ds.read_label("p0.jpg", ds.categories.index("cat"))[0]
    assert int(two_cats.sum()) == 64 + 36


@pytest.mark.parametrize("mode", ["polygons", "mask"])
def test_a_cvat_coco_export_made_by_datumaro_is_read(tmp_path, mode):
    """datumaro writes what CVAT exports as "COCO 1.0": annotations/instances_default.json beside
    images/default/; "mask" mode gives uncompressed RLE with iscrowd 1."""
    dm = pytest.importorskip("datumaro")
    from datumaro.components.annotation import Mask, Polygon
    from datumaro.components.dataset_base import DatasetItem
    from datumaro.components.media import Image as DmImage

    rng = np.random.default_rng(0)
    items = []
    for i in range(3):
        pixels = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
        items.append(DatasetItem(id=f"photo_{i}", subset="default", media=DmImage.from_numpy(pixels), annotations=[
            Mask(image=box(left=2 + i).astype(np.uint8), label=0),
            Polygon(polygon(box(top=15, left=22, size=8)), label=1)]))
    dm.Dataset.from_iterable(items, categories=["leaf", "stem"]).export(
        str(tmp_path / "cvat"), "coco_instances", save_media=True, segmentation_mode=mode)
    path = tmp_path / "cvat" / "annotations" / "instances_default.json"
    ds = build_dataset("coco", path, split="all", shots=1, image_size=SIDE)
    assert ds.notes() == [] and len(ds) == 6
    if mode == "mask":
        assert all(a["iscrowd"] == 1 and isinstance(a["segmentation"]["counts"], list)
                   for a in json.loads(path.read_text())["annotations"])
    assert_reads_as_pycocotools(ds, path)


def test_a_label_studio_coco_export_is_read(tmp_path):
    """Label Studio's COCO export: result.json beside images/, ids from 0, file_names 'images/<name>' or the
    older '/data/upload/<project>/<name>'."""
    folder = tmp_path / "project-1-at-2026"
    images, annotations = [], []
    for i, name in enumerate(["images/3f2a-leaf.jpg", "\\/data\\/upload\\/1\\/77aa-leaf.jpg".replace("\\/", "/"),
                              "images/9c1d-leaf.jpg"]):
        photo(folder / "images" / Path(name).name, seed=i)
        images.append({"width": 40, "height": 30, "id": i, "file_name": name})
        annotations.append({"id": i, "image_id": i, "category_id": 0, "segmentation": [polygon(box(left=4 + i))],
                            "bbox": [4.0 + i, 5.0, 10.0, 10.0], "ignore": 0, "iscrowd": 0, "area": 100.0})
    path = folder / "result.json"
    path.write_text(json.dumps({"images": images, "categories": [{"id": 0, "name": "leaf"}],
                                "annotations": annotations,
                                "info": {"year": 2026, "version": "1.0", "description": "", "contributor":
                                         "Label Studio", "url": "", "date_created": "2026-12-04 10:00:00.000000"}}))
    ds = build_dataset("coco", path, split="all", shots=1, image_size=SIDE)
    assert ds.notes() == [] and len(ds) == 3
    assert_reads_as_pycocotools(ds, path)
    for i, entry in enumerate(images):
        mask = ds.read_label(entry["file_name"], 0)[0].numpy().astype(bool)
        assert mask.tolist() == box(left=4 + i).tolist()


def hsnet_label_document(records: list[tuple[str, np.ndarray | None]]) -> dict:
    """A document in the shape `hsnet label` writes: one category (id 1), one image entry per photo, one
    annotation per non-empty mask as pycocotools RLE with iscrowd 0."""
    images, annotations = [], []
    for image_id, (name, mask) in enumerate(records, 1):
        images.append({"id": image_id, "file_name": name, "width": 40, "height": 30})
        if mask is not None:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                                "area": float(mask_utils.area(rle)), "bbox": list(map(float, mask_utils.toBbox(rle)))})
    return {"info": {"description": "leaf masks labelled by hsnet from a few examples"}, "licenses": [],
            "images": images, "annotations": annotations, "categories": [{"id": 1, "name": "leaf", "supercategory": ""}]}


def test_hsnet_labels_old_and_cvat_layouts_are_read(tmp_path):
    """What `hsnet label` writes: annotations.json whose names are relative to the photos' folder (--images), and
    CVAT's layout, images/ + annotations/instances_default.json with names relative to images/. A photo whose
    mask came out empty has an image entry and no annotation: it is named and left out."""
    names = ["a.jpg", "sub/b.jpg", "c.jpg", "empty.jpg"]
    for i, name in enumerate(names):
        photo(tmp_path / "photos" / name, seed=i)
        photo(tmp_path / "labels" / "images" / name, seed=i)
    document = hsnet_label_document([(n, box(left=3 + 2 * i)) for i, n in enumerate(names[:3])] + [(names[3], None)])
    old = tmp_path / "old" / "annotations.json"
    old.parent.mkdir()
    old.write_text(json.dumps(document))
    with pytest.raises(DatasetError, match="pass --images DIR"):
        build_dataset("coco", old, split="all", image_size=SIDE)
    ds = build_dataset("coco", old, split="all", shots=1, image_size=SIDE, images=tmp_path / "photos")
    assert len(ds) == 3 and len(ds.notes()) == 1 and "empty.jpg" in ds.notes()[0]
    new = tmp_path / "labels" / "annotations" / "instances_default.json"
    new.parent.mkdir(parents=True)
    new.write_text(json.dumps(document))
    ds = build_dataset("coco", new, split="all", shots=1, image_size=SIDE)
    assert len(ds) == 3 and "no annotations" in ds.notes()[0]
    assert_reads_as_pycocotools(ds, new)


def test_coco_problems_are_one_line_each_and_the_rest_is_used(tmp_path):
    path = pycocotools_document(tmp_path)
    document = json.loads(path.read_text())
    document["categories"].append({"id": 11, "name": "bird"})  # no annotations
    document["annotations"].append({"id": 99, "image_id": 404, "category_id": 7, "segmentation": [[1, 1, 5, 1, 5, 5]]})
    document["images"].append({"id": 13, "file_name": "gone.jpg", "width": 40, "height": 30})
    document["annotations"].append({"id": 100, "image_id": 13, "category_id": 9, "segmentation": [polygon(box())]})
    document["images"].append({"id": 14, "file_name": "wide.jpg", "width": 80, "height": 20})  # photo is 40x30
    photo(tmp_path / "wide.jpg")
    document["annotations"].append({"id": 101, "image_id": 14, "category_id": 9, "segmentation": [polygon(box())]})
    path.write_text(json.dumps(document))
    ds = build_dataset("coco", path, split="all", shots=1, image_size=SIDE)
    notes = ds.notes()
    assert len(notes) == 4 and all("\n" not in n for n in notes)
    for what in ["image id that is not in its images list (ids 99)", "category bird (id 11)", "gone.jpg (id 13)",
                 "is 80x20 but its image is 40x30"]:
        assert any(what in n for n in notes), (what, notes)
    assert len(ds) == 6


@pytest.mark.parametrize("content,message", [(b"{not json", "cannot be read"), (b'{"images": []}', "not a COCO"),
                                             (b'{"images": [], "annotations": [], "categories": []}', "nothing usable")])
def test_a_coco_file_that_is_not_usable_is_one_line(tmp_path, content, message):
    (tmp_path / "a.json").write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        build_dataset("coco", tmp_path / "a.json", split="trn", image_size=SIDE)


def test_coco_names_the_benchmark_for_a_folder_and_ones_own_file_for_a_json(tmp_path):
    with pytest.raises(DatasetError, match="COCO-20i not found"):
        build_dataset("coco", tmp_path, 0, "test", 1, splits_dir=tmp_path)
    with pytest.raises(DatasetError, match="COCO file .* does not exist"):
        build_dataset("coco", tmp_path / "mine.json", split="test")
    with pytest.raises(InputError, match="for one's own data"):
        build_dataset("pascal", tmp_path, 0, "test", 1, val_classes=["a"])
