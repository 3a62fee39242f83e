"""``hsnet train``: the loss falls on a learnable task; runs save Hub-format best checkpoints and resume exactly."""
from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

import hsnet
from hsnet.cli import main
from hsnet.data import build_dataset
from hsnet.hub import from_pretrained
from hsnet.errors import InputError
from hsnet.train import DivergedError, TrainConfig, check_finite_weights, cross_entropy, train, train_step
from synthetic_datasets import make_fss, make_shapes

pytestmark = pytest.mark.usefixtures("isolated_cache")  # a private cache and no download source


@pytest.fixture(scope="module")
def fss(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fss-train")
    make_fss(root / "data", root / "splits", classes=1)
    return root / "data", root / "splits"


@pytest.mark.slow
def test_a_few_adam_steps_lower_the_loss_on_a_learnable_task(fss):
    data, splits = fss
    ds = build_dataset("fss", data, 0, "trn", 1, image_size=32, limit=4, splits_dir=splits)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    torch.manual_seed(0)
    model = hsnet.build_model("resnet50").train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def loss_now() -> float:
        with torch.no_grad():
            logits = model(batch["query_img"], batch["support_imgs"][:, 0], batch["support_masks"][:, 0])
        return cross_entropy(logits, batch["query_mask"]).item()

    before = loss_now()
    losses = [train_step(model, batch, optimizer, device=torch.device("cpu"))[0] for _ in range(6)]
    after = loss_now()
    assert losses[0] == pytest.approx(before, rel=1e-4)  # train mode changes nothing: the backbone stays in eval
    assert after < before - 0.05, (before, losses, after)
    assert not model.backbone.training and all(not p.requires_grad for p in model.backbone.parameters())


def _train(data: Path, splits: Path, out: Path, epochs: int, *extra: str) -> int:
    return main(["train", "--benchmark", "fss", "--datapath", str(data), "--splits", str(splits), "--out", str(out),
                 "--epochs", str(epochs), "--batch-size", "2", "--limit-train", "4", "--limit-val", "2",
                 "--image-size", "32", "--backbone-weights", "none", "--workers", "0", "--device", "cpu",
                 "--no-progress", *extra])


@pytest.mark.slow
def test_training_saves_the_best_in_hub_format_and_resumes_exactly(fss, tmp_path, capsys):
    data, splits = fss
    assert _train(data, splits, tmp_path / "straight", 2) == 0
    assert _train(data, splits, tmp_path / "resumed", 1) == 0
    assert _train(data, splits, tmp_path / "resumed", 2, "--resume") == 0
    out = capsys.readouterr().out
    assert out.count("epoch 1: train loss") == 2 and "2 epoch(s) run" in out and "1 epoch(s) run" in out

    best = tmp_path / "resumed" / "best"
    assert {p.name for p in best.iterdir()} >= {"model.safetensors", "config.json", "README.md"}
    config = json.loads((best / "config.json").read_text())
    assert (config["benchmark"], config["fold"], config["image_size"], config["backbone"]) == ("fss", None, 32, "resnet50")
    assert isinstance(from_pretrained(best), hsnet.HSNet)
    assert list((tmp_path / "resumed" / "tensorboard").glob("events.out.tfevents.*"))

    trainer = json.loads((tmp_path / "resumed" / "last" / "trainer.json").read_text())
    assert trainer["epoch"] == 2 and trainer["config"]["benchmark"] == "fss"
    straight = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "last" / "model.safetensors"))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_run_folder_is_never_overwritten_or_resumed_with_other_settings(fss, tmp_path, capsys):
    data, splits = fss
    (tmp_path / "run" / "last").mkdir(parents=True)
    (tmp_path / "run" / "last" / "trainer.json").write_text(json.dumps({"config": {"benchmark": "fss"}}))
    assert _train(data, splits, tmp_path / "run", 1) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert _train(data, splits, tmp_path / "empty", 1, "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err


class _Exploit:
    def __reduce__(self):
        return (print, ("ran pickled code",))


def test_resume_state_with_pickled_objects_is_refused_without_running_them(fss, tmp_path, capsys):
    data, splits = fss
    last = tmp_path / "run" / "last"
    last.mkdir(parents=True)
    (last / "trainer.json").write_text(json.dumps({"epoch": 1, "config": {"benchmark": "fss"}}))
    save_file({"x": torch.zeros(1)}, str(last / "model.safetensors"))
    torch.save({"optimizer": _Exploit()}, last / "optimizer.pt")
    assert _train(data, splits, tmp_path / "run", 2, "--resume") == 2
    captured = capsys.readouterr()
    assert "holds more than tensors" in captured.err and "ran pickled code" not in captured.out


def test_training_offline_from_the_imagenet_backbone_is_one_line(fss, tmp_path, monkeypatch, capsys):
    data, splits = fss
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # nothing cached

    def offline(url: str, *args, **kwargs) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    assert _train(data, splits, tmp_path / "run", 1, "--backbone-weights", "imagenet") == 2
    err = capsys.readouterr().err  # the synthetic split lists also earn a warning line of their own
    errors = [line for line in err.splitlines() if not line.startswith("hsnet: warning:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "ImageNet weights of resnet50 could not be downloaded" in err and "--init" in err
    assert not (tmp_path / "run").exists()  # a failed run leaves nothing it created


def test_a_run_that_fails_on_a_missing_dataset_leaves_nothing_it_created(fss, tmp_path, capsys):
    _, splits = fss
    assert _train(tmp_path / "nowhere", splits, tmp_path / "new", 1) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    assert main(["train", "--data", str(tmp_path / "none"), "--init", "none", "--out", str(tmp_path / "mine")]) == 2
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert "--data" in capsys.readouterr().err


@pytest.mark.parametrize("change", [{"lr": float("nan")}, {"lr": float("inf")}, {"lr": 0.0}, {"workers": -1},
                                    {"epochs": 0}, {"batch_size": 0}])
def test_the_python_api_refuses_the_settings_the_cli_refuses(tmp_path, change):
    config = TrainConfig(benchmark="fss", datapath=str(tmp_path), out=str(tmp_path / "run"), **change)
    with pytest.raises(InputError, match="at least"):
        train(config)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory, vgg16) -> tuple[Path, Path]:
    """Five classes of textured shapes, and a random-weight VGG-16 HSNet saved as the checkpoint to start from."""
    root = tmp_path_factory.mktemp("own-data")
    make_shapes(root / "data", classes=5, per_class=4, side=40)
    return root / "data", hsnet.save_pretrained(vgg16, root / "init")


def _fine_tune(data: Path, init: Path, out: Path, epochs: int, *extra: str) -> int:
    return main(["train", "--data", str(data), "--init", str(init), "--backbone", "vgg16", "--out", str(out),
                 "--epochs", str(epochs), "--batch-size", "2", "--limit-train", "2", "--image-size", "32",
                 "--workers", "0", "--device", "cpu", "--no-progress", *extra])


@pytest.mark.slow
def test_fine_tuning_on_own_data_records_its_split_for_evaluate(shapes, tmp_path, capsys):
    data, init = shapes
    assert _fine_tune(data, init, tmp_path / "run", 1, "--val-classes", "disc,ring") == 0
    out = capsys.readouterr().out
    assert f"from {init}" in out and "masks beside the photos" in out and "held-out classes disc, ring" in out
    record = json.loads((tmp_path / "run" / "split.json").read_text())
    assert sorted(record["val"]) == ["disc", "ring"] and sorted(record["train"]) == ["cross", "square", "triangle"]
    assert json.loads((tmp_path / "run" / "best" / "split.json").read_text()) == record
    config = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert config["benchmark"] is None and config["backbone"] == "vgg16"
    code = main(["evaluate", "--data", str(data), "--weights", str(tmp_path / "run" / "best"), "--shots", "2",
                 "--image-size", "32", "--no-progress", "--output", str(tmp_path / "eval.json")])
    result = json.loads((tmp_path / "eval.json").read_text())
    assert code == 0 and [c["name"] for c in result["classes"]] == ["disc", "ring"] and result["episodes"] == 8
    assert f"split from {tmp_path / 'run' / 'best' / 'split.json'}" in capsys.readouterr().out
    code = main(["evaluate", "--data", str(data), "--weights", str(tmp_path / "run" / "best"), "--all",
                 "--image-size", "32", "--no-progress", "--output", str(tmp_path / "all.json")])
    assert code == 0 and json.loads((tmp_path / "all.json").read_text())["episodes"] == 20


@pytest.mark.slow
def test_ctrl_c_keeps_the_epochs_done_and_resume_continues(shapes, tmp_path, monkeypatch, capsys):
    data, init = shapes
    epochs_run = []
    real_epoch = hsnet.train.train_epoch

    def interrupted_second_epoch(*args, **kwargs):
        epochs_run.append(kwargs["desc"])
        if len(epochs_run) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(hsnet.train, "train_epoch", interrupted_second_epoch)
    assert _fine_tune(data, init, tmp_path / "run", 3) == 130
    assert "--resume" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["epoch"] == 1
    monkeypatch.setattr(hsnet.train, "train_epoch", real_epoch)
    assert _fine_tune(data, init, tmp_path / "run", 2, "--resume") == 0
    assert "epoch 1: train loss" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "last" / "trainer.json").read_text())["epoch"] == 2


def test_a_diverging_run_stops_at_the_first_non_finite_loss_and_saves_nothing(shapes, tmp_path, capsys):
    data, init = shapes
    code = _fine_tune(data, init, tmp_path / "run", 2, "--lr", "1e30", "--limit-train", "6", "--batch-size", "1")
    err = capsys.readouterr().err
    assert code == 2 and "not a finite number" in err and "lower --lr" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_weights_that_are_not_finite_are_never_saved(seeded):
    model = seeded("vgg16")
    check_finite_weights(model)
    with torch.no_grad():
        next(p for p in model.hpn_learner.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(DivergedError, match="not saved"):
        check_finite_weights(model)


def test_own_data_with_nothing_usable_exits_2_before_training(tmp_path, capsys):
    (tmp_path / "data" / "leaf").mkdir(parents=True)
    (tmp_path / "data" / "leaf" / "a.jpg").write_bytes(b"not a photo")
    (tmp_path / "data" / "leaf" / "a.png").write_bytes(b"not a mask")
    code = main(["train", "--data", str(tmp_path / "data"), "--init", "none", "--backbone-weights", "none",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing usable" in err and err.count("\n") == 1 and not (tmp_path / "run").exists()
