"""The Hub folder format: config.json carries image_size and mask_support, loading sets them, bad values are refused."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import hsnet


@pytest.fixture(scope="module")
def folder(resnet50: hsnet.HSNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hsnet.save_pretrained(resnet50, tmp_path_factory.mktemp("saved"), benchmark="fss")


def with_config(folder: Path, tmp_path: Path, **changes) -> Path:
    """A copy of ``folder`` whose config.json has ``changes`` (None removes a key)."""
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").symlink_to(folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        config.pop(key) if value is None else config.__setitem__(key, value)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def test_config_carries_image_size_and_mask_support_and_loading_sets_them(folder: Path, tmp_path: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    assert (config["image_size"], config["mask_support"]) == (400, True)
    model = hsnet.from_pretrained(with_config(folder, tmp_path, image_size=320, mask_support=False))
    assert (model.image_size, model.mask_support) == (320, False)


def test_older_folders_without_the_fields_get_the_authors_defaults(folder: Path, tmp_path: Path) -> None:
    model = hsnet.from_pretrained(with_config(folder, tmp_path, image_size=None, mask_support=None))
    assert (model.image_size, model.mask_support) == (400, True)


def test_save_pretrained_keeps_the_models_own_settings(resnet50: hsnet.HSNet, tmp_path: Path) -> None:
    model = hsnet.build_model("resnet50", mask_support=False, image_size=480)
    model.load_state_dict(resnet50.state_dict())
    config = json.loads((hsnet.save_pretrained(model, tmp_path) / "config.json").read_text())
    assert (config["image_size"], config["mask_support"]) == (480, False)
    trained_large = hsnet.save_pretrained(model, tmp_path / "large", image_size=800)  # training takes any side
    assert hsnet.from_pretrained(trained_large).image_size == 800
    assert "Support feature masking: off" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("changes,says", [
    ({"image_size": 0}, "image_size 0; it must be a whole number of pixels from 32 to 4096"),
    ({"image_size": 16}, "image_size 16"),
    ({"image_size": "400"}, "image_size '400'"),
    ({"image_size": 400.5}, "image_size 400.5"),
    ({"image_size": True}, "image_size True"),
    ({"mask_support": "no"}, "mask_support 'no'; it must be true or false"),
    ({"mask_support": 0}, "mask_support 0"),
    ({"image_size": 10**30}, "image_size 1000000000000000000000000000000; it must be a whole number of pixels from 32 "
                             "to 4096"),
    ({"image_size": [400]}, "image_size [400]"),
    ({"backbone": "resnet18"}, "names no known backbone ('resnet18'"),
    ({"backbone": ["x"]}, "names no known backbone (['x']"),
    ({"backbone": {"name": "resnet50"}}, "names no known backbone ({'name': 'resnet50'}"),
    ({"backbone": 50}, "names no known backbone (50"),
    ({"backbone": None}, "names no known backbone (none"),  # None here removes the key
    ({"model_type": "bert"}, "is the config of a 'bert' model, not an HSNet"),
    ({"benchmark": ["x"]}, "benchmark ['x']; it must be one of pascal, coco, fss or null"),
    ({"benchmark": "imagenet"}, "benchmark 'imagenet'"),
    ({"fold": "x"}, "fold 'x'; it must be 0, 1, 2 or 3 with the pascal or coco benchmark, else null"),
    ({"fold": 7}, "fold 7"),
    ({"fold": True}, "fold True"),
    ({"fold": 0}, "fold 0"),  # the folder's benchmark is fss, which has no folds
    ({"fold": [0]}, "fold [0]"),
])
def test_bad_config_values_are_refused_in_one_line(folder: Path, tmp_path: Path, changes: dict, says: str) -> None:
    with pytest.raises(hsnet.CheckpointError, match=re.escape(says)) as info:
        hsnet.from_pretrained(with_config(folder, tmp_path, **changes))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text,says", [
    ("[1, 2]", "holds a JSON array, not an object of settings"),
    ('"resnet50"', "holds a JSON string"),
    ("null", "holds a JSON null"),
    ("400", "holds a JSON number"),
    ('{"backbone": "resnet50", "image_size": NaN}', "image_size nan"),
    ('{"backbone": "resnet50", "image_size": null}', "image_size None"),
    ('{"backbone": "resnet50", "mask_support": null}', "mask_support None"),
    ('{"backbone": null}', "names no known backbone (None"),
    ("{", "is not a readable JSON file"),
    ("[" * 100_000, "is not a readable JSON file (nested too deeply)"),
    (b"\xff\xfe{}", "is not a readable JSON file"),
    (b" " * (2 << 20), "far more than hsnet's config.json"),
])
def test_a_config_json_that_is_no_settings_object_is_refused_in_one_line(folder: Path, tmp_path: Path, text,
                                                                         says: str) -> None:
    copy = with_config(folder, tmp_path)
    (copy / "config.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(hsnet.CheckpointError, match=re.escape(says)) as info:
        hsnet.from_pretrained(copy)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
