"""``hsnet evaluate``: the protocol on synthetic data, one process against two (gloo via torchrun), CLI errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hsnet.cli import main
from hsnet.data import build_dataset
from hsnet.errors import InputError
from hsnet.evaluate import evaluate
from hsnet.hub import save_pretrained
from hsnet.metrics import IoUMeter
from synthetic_datasets import make_fss, make_pascal

pytestmark = pytest.mark.usefixtures("isolated_cache")  # a private cache and no download source

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pascal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pascal-eval")
    make_pascal(root / "data", root / "splits", per_class=2)
    return root / "data", root / "splits"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, resnet50) -> Path:
    """The seeded random model in the Hub format, as ``--weights`` takes it."""
    return save_pretrained(resnet50, tmp_path_factory.mktemp("weights") / "model", benchmark="pascal", fold=0)


@pytest.mark.slow
def test_batched_evaluation_equals_episode_by_episode(pascal, predictor_resnet50):
    model = predictor_resnet50  # evaluate() folds the BatchNorm of the model it is given, as Predictors do
    data, splits = pascal
    ds = build_dataset("pascal", data, 0, "test", 2, image_size=32, limit=5, splits_dir=splits)
    result = evaluate(model, ds, batch_size=4)
    meter = IoUMeter(ds.nclass, ds.class_ids)
    for i in range(len(ds)):
        item = ds[i]
        pred = model.predict_mask(item["query_img"][None], item["support_imgs"][None], item["support_masks"][None])
        meter.update(pred, item["query_mask"][None], [item["class_id"]], item["query_ignore"][None])
    assert result.episodes == 5 and result.shots == 2
    assert result.miou == pytest.approx(meter.miou()) and result.fb_iou == pytest.approx(meter.fb_iou())
    assert [c.iou for c in result.classes] == pytest.approx(list(meter.class_iou().values()))
    assert [c.name for c in result.classes] == ["aeroplane", "bicycle", "bird", "boat", "bottle"]


def test_original_size_mode_scores_at_the_query_size(pascal, predictor_resnet50):
    model = predictor_resnet50
    data, splits = pascal
    ds = build_dataset("pascal", data, 0, "test", 1, image_size=32, original_size=True, limit=3, splits_dir=splits)
    result = evaluate(model, ds)
    item = ds[0]
    size = tuple(item["query_size"].tolist())
    pred = model.predict_mask(item["query_img"][None], item["support_imgs"][None], item["support_masks"][None],
                              output_size=size)
    assert pred.shape[-2:] == item["query_mask"].shape == (36, 44)
    assert result.episodes == 3 and result.settings["original_size"] is True
    with pytest.raises(InputError, match="batch-size 1"):
        evaluate(model, ds, batch_size=2)


def _cli_args(data: Path, splits: Path, weights: Path, output: Path) -> list[str]:
    return ["evaluate", "--benchmark", "pascal", "--fold", "1", "--shots", "1", "--weights", str(weights),
            "--datapath", str(data), "--splits", str(splits), "--image-size", "32", "--limit", "6",
            "--batch-size", "2", "--no-progress", "--device", "cpu", "--output", str(output)]


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_numbers(pascal, weights, tmp_path, capsys):
    data, splits = pascal
    assert main(_cli_args(data, splits, weights, tmp_path / "one.json")) == 0
    printed = capsys.readouterr().out
    one = json.loads((tmp_path / "one.json").read_text())
    assert "mIoU" in printed and one["episodes"] == 6 and one["world_size"] == 1

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hsnet", *_cli_args(data, splits, weights, tmp_path / "two.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["world_size"] == 2 and two["episodes"] == 6
    assert (two["miou"], two["fb_iou"], two["classes"]) == (one["miou"], one["fb_iou"], one["classes"])
    assert proc.stdout.count("wrote ") == 1  # only rank 0 reports


def test_missing_dataset_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["evaluate", "--benchmark", "coco", "--weights", "nowhere", "--datapath", str(tmp_path / "none"),
                 "--splits", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "COCO-20i not found" in err and "images.cocodataset.org" in err


def test_fss_evaluation_runs_through_the_cli(tmp_path, weights, capsys):
    make_fss(tmp_path / "data", tmp_path / "splits", classes=1)
    code = main(["evaluate", "--benchmark", "fss", "--shots", "2", "--weights", str(weights), "--datapath",
                 str(tmp_path / "data"), "--splits", str(tmp_path / "splits"), "--image-size", "32", "--limit", "4",
                 "--no-progress",
                 "--output", str(tmp_path / "fss.json")])
    result = json.loads((tmp_path / "fss.json").read_text())
    assert code == 0 and result["episodes"] == 4 and result["fold"] is None
    assert [c["name"] for c in result["classes"]] == ["test_class_0"] and torch.isfinite(torch.tensor(result["miou"]))


def test_a_rerun_replaces_its_own_results_file_but_no_other_file(tmp_path, weights, capsys):
    make_fss(tmp_path / "data", tmp_path / "splits", classes=2)
    args = ["evaluate", "--benchmark", "fss", "--weights", str(weights), "--datapath", str(tmp_path / "data"),
            "--splits", str(tmp_path / "splits"), "--image-size", "32", "--limit", "2", "--no-progress"]
    output = tmp_path / "results.json"
    assert main([*args, "--output", str(output)]) == 0
    first = output.read_text()
    assert main([*args, "--output", str(output)]) == 0 and json.loads(output.read_text())["episodes"] == 2
    assert json.loads(first)["miou"] == json.loads(output.read_text())["miou"]
    capsys.readouterr()
    for other, content in (("notes.json", '{"mine": 1}'), ("notes.txt", "my notes")):
        (tmp_path / other).write_text(content)
        assert main([*args, "--output", str(tmp_path / other)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is not a results file of hsnet evaluate" in err
        assert (tmp_path / other).read_text() == content


def test_classes_without_an_episode_under_limit_are_left_out_of_the_miou_and_named(tmp_path, weights, capsys):
    make_fss(tmp_path / "data", tmp_path / "splits", classes=3)
    code = main(["evaluate", "--benchmark", "fss", "--weights", str(weights), "--datapath", str(tmp_path / "data"),
                 "--splits", str(tmp_path / "splits"), "--image-size", "32", "--limit", "3", "--no-progress",
                 "--output", str(tmp_path / "r.json")])
    result = json.loads((tmp_path / "r.json").read_text())
    scored = [c for c in result["classes"] if c["episodes"]]
    assert code == 0 and len(scored) == 1 and result["unscored"] == ["test_class_1", "test_class_2"]
    assert result["miou"] == pytest.approx(scored[0]["iou"])
    assert "left out of the mIoU: test_class_1, test_class_2" in capsys.readouterr().out
