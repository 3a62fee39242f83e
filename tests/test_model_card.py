"""What a converted folder's model card claims, read back with huggingface_hub's own card reader.

Only weights hsnet downloaded from the authors' Google Drive folder (Drive stood in for at gdown's two
calls), or a file whose sha256 it recorded then, carry the authors' name and mIoU; any other file is
"converted from a local file", whatever backbone, benchmark and fold it is declared to be.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard, metadata_load
from PIL import Image

import hsnet
from hsnet.cli import main as cli
from hsnet.weights import cache, registry

from fake_drive import drive, pascal_folder, resnet50_best  # noqa: F401 - drive and resnet50_best are fixtures

DRIVE_WORDS = ("Google Drive", "drive.google.com", "authors' released", "the authors report")


def authors_numbers(name: str) -> set[str]:
    """Every mIoU the registry holds for ``name``, as a card would print it."""
    entry = registry()[name]
    return {f"{v:.1f}" for values in (entry.miou or {}, entry.miou_mean_over_folds or {}) for v in values.values()}


def convert(best: Path, out: Path | str, *flags: str) -> tuple[int, str, str]:
    """``hsnet convert`` of ``best`` into ``out``: (exit code, stdout, stderr)."""
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli(["convert", str(best), "--out", str(out), *flags])
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An hsnet cache with no download recorded in it."""
    monkeypatch.setenv("HSNET_CACHE_DIR", str(tmp_path / "hsnet-cache"))
    return tmp_path / "hsnet-cache"


@pytest.mark.parametrize("name,flags", [
    ("pascal-resnet50-fold0", ["--benchmark", "pascal", "--fold", "0"]),
    ("coco-resnet50-fold2", ["--benchmark", "coco", "--fold", "2"]),
    ("fss-resnet50", ["--benchmark", "fss"]),
])
def test_a_file_hsnet_did_not_download_gets_no_authors_name_or_numbers(resnet50_best: Path, empty_cache: Path,
                                                                       tmp_path: Path, name: str, flags: list) -> None:
    # Random weights in the authors' layout, declared as an entry the authors released.
    code, out, err = convert(resnet50_best, tmp_path / "out", "--backbone", "resnet50", *flags)
    assert code == 0, err
    digest = cache.file_sha256(resnet50_best)
    text = (tmp_path / "out" / "README.md").read_text()
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.license == "unknown" and card.data.pipeline_tag == "image-segmentation"
    assert card.data.library_name is None and "hsnet" in card.data.tags
    assert metadata_load(tmp_path / "out" / "README.md")["license"] == "unknown"
    assert f"converted these weights from a local file, `best_model.pt` (sha256 `{digest}`)" in text
    assert "this card states no results" in text and "## Results" not in text
    assert not [word for word in DRIVE_WORDS if word in text]
    assert not [number for number in authors_numbers(name) if number in text]
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["metrics"] == {} and config["provenance"] == {"kind": "local file", "file": "best_model.pt",
                                                                "sha256": digest}
    assert "local file" in out and "Google Drive" not in out


def test_the_authors_file_downloaded_by_hsnet_carries_their_name_and_numbers(
        drive, resnet50_best: Path, tmp_path: Path) -> None:
    pascal_folder(drive, resnet50_best)
    hsnet.from_pretrained("pascal-resnet50-fold0")  # downloads, records the sha256, converts into the cache
    digest = cache.file_sha256(resnet50_best)
    entry = registry()["pascal-resnet50-fold0"]

    def check(folder: Path) -> None:
        card = ModelCard.load(folder / "README.md")
        assert card.data.license == "unknown" and card.data.library_name is None
        assert f"hsnet downloaded `res50_pas/res50_pas_fold0/best_model.pt` from their Google Drive folder " \
               f"{entry.source} (sha256 `{digest}`)" in card.text
        assert authors_numbers("pascal-resnet50-fold0") <= set(re.findall(r"\d+\.\d", card.text))
        assert "| authors, fold 0 | 64.3 | 70.3 |" in card.text
        assert "states no licence for its code or for these weights" in card.text

    check(cache.weights_folder("pascal-resnet50-fold0"))
    assert 'hsnet.from_pretrained("pascal-resnet50-fold0")' in \
        (cache.weights_folder("pascal-resnet50-fold0") / "README.md").read_text()

    # The same bytes downloaded by hand: hsnet recorded their sha256 when it downloaded them itself.
    code, out, err = convert(resnet50_best, tmp_path / "by-hand", "--backbone", "resnet50", "--benchmark", "pascal",
                             "--fold", "0")
    assert code == 0, err
    check(tmp_path / "by-hand")
    assert "the authors'" in out
    # Declared as another fold, the recorded file is refused rather than described as that fold.
    code, out, err = convert(resnet50_best, tmp_path / "wrong", "--backbone", "resnet50", "--benchmark", "pascal",
                             "--fold", "1")
    assert code == 2 and err.count("\n") == 1 and "is the authors' pascal-resnet50-fold0" in err
    assert "pass --backbone resnet50 --benchmark pascal --fold 0" in err and not (tmp_path / "wrong").exists()
    # One byte changed: a local file again.
    changed = tmp_path / "changed" / "best_model.pt"
    changed.parent.mkdir()
    changed.write_bytes(resnet50_best.read_bytes() + b"\0")
    assert convert(changed, tmp_path / "other", "--backbone", "resnet50", "--benchmark", "pascal",
                   "--fold", "0")[0] == 0
    assert "## Results" not in (tmp_path / "other" / "README.md").read_text()


def test_the_cards_usage_example_runs(resnet50_best: Path, empty_cache: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert convert(resnet50_best, Path("weights"), "--backbone", "resnet50", "--benchmark", "fss")[0] == 0
    snippet = re.search(r"```python\n(.*?)```", (tmp_path / "weights" / "README.md").read_text(), re.S).group(1)
    assert 'hsnet.from_pretrained("weights")' in snippet
    rng = np.random.default_rng(0)
    for name in ("query.jpg", "support.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(name)
    mask = np.zeros((40, 56), np.uint8)
    mask[8:30, 10:40] = 255
    Image.fromarray(mask).save("support_mask.png")
    namespace: dict = {}
    exec(compile(snippet.replace("Predictor(model)", "Predictor(model, device='cpu', image_size=64)"), "card", "exec"),
         namespace)
    assert namespace["result"].mask.shape == (40, 56) and namespace["result"].mask.dtype == bool


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_every_file_gets_the_mode_of_a_new_file(resnet50: hsnet.HSNet, tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        folder = hsnet.save_pretrained(resnet50, tmp_path / "out")
        (tmp_path / "plain").write_text("a file written the usual way")
    finally:
        os.umask(previous)
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == \
        {name: expected for name in ("README.md", "config.json", "model.safetensors")}


def test_a_license_can_be_stated_and_a_malformed_one_is_refused(resnet50_best: Path, empty_cache: Path,
                                                                tmp_path: Path) -> None:
    assert convert(resnet50_best, tmp_path / "mit", "--backbone", "resnet50", "--benchmark", "fss",
                   "--license", "mit")[0] == 0
    assert ModelCard.load(tmp_path / "mit" / "README.md").data.license == "mit"
    code, _, err = convert(resnet50_best, tmp_path / "bad", "--backbone", "resnet50", "--benchmark", "fss",
                           "--license", "MIT License")
    assert code == 2 and err.count("\n") == 1 and "is not a Hub license identifier" in err
    assert not (tmp_path / "bad").exists()


def test_saved_weights_state_what_they_were_given(resnet50: hsnet.HSNet, tmp_path: Path) -> None:
    folder = hsnet.save_pretrained(resnet50, tmp_path / "run", benchmark="pascal", fold=1,
                                   source="trained with hsnet train (epoch 3)",
                                   metrics={"fold 1 validation": {"1-shot": 12.5}}, license="apache-2.0")
    card = ModelCard.load(folder / "README.md")
    assert card.data.license == "apache-2.0"
    assert "trained with hsnet train (epoch 3)" in card.text and "| fold 1 validation | 12.5 |" in card.text
    assert not [word for word in DRIVE_WORDS if word in card.text]
    for bad, says in (({"fold 1": {"1-shot": "high"}}, "is 'high', not a finite number"),
                      ({"fold 1": {"1-shot": float("nan")}}, "not a finite number"),
                      ({"fold 1": 12.5}, "is a float, not a dict"), ([1], "metrics is a list")):
        with pytest.raises(hsnet.InputError, match=re.escape(says)):
            hsnet.save_pretrained(resnet50, tmp_path / "bad", metrics=bad)
    assert not (tmp_path / "bad").exists()


# --- hsnet convert --out never overwrites what hsnet did not write (issue 23) ---

def refused_out(best: Path, out: Path | str, says: str, *flags: str) -> None:
    code, _, err = convert(best, out, "--backbone", "resnet50", "--benchmark", "fss", *flags)
    assert code == 2 and err.count("\n") == 1 and says in err, err


def test_an_empty_out_never_means_the_current_folder(resnet50_best: Path, empty_cache: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("my project")
    for out in ("", " "):
        code, _, err = convert(resnet50_best, out, "--backbone", "resnet50", "--benchmark", "fss")
        assert code == 2 and err.count("\n") == 1 and "the output folder is empty" in err
    refused_out(resnet50_best, ".", "it would replace README.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    assert (tmp_path / "README.md").read_text() == "my project"


def test_a_folder_of_other_files_is_refused_unless_forced_and_then_only_three_files_change(
        resnet50_best: Path, empty_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (tmp_path / "elsewhere.md").write_text("not to be written through")
    (out / "README.md").symlink_to(tmp_path / "elsewhere.md")
    refused_out(resnet50_best, str(out), "already holds 2 file(s) (README.md, notes.txt) and is not an earlier "
                                         "hsnet export: it would replace README.md")
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "notes.txt"]
    assert convert(resnet50_best, out, "--backbone", "resnet50", "--benchmark", "fss", "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine" and not (out / "README.md").is_symlink()
    assert (tmp_path / "elsewhere.md").read_text() == "not to be written through"
    # Now an earlier hsnet export: converting into it again needs no --force.
    assert convert(resnet50_best, out, "--backbone", "resnet50", "--benchmark", "fss")[0] == 0
    # A folder of unrelated files, none of them one hsnet writes, is refused too (they would be mixed).
    other = tmp_path / "photos"
    other.mkdir()
    (other / "a.jpg").write_bytes(b"jpeg")
    refused_out(resnet50_best, str(other), "its files would be mixed with the weights")


def test_a_failed_convert_leaves_nothing_behind(tmp_path: Path, empty_cache: Path) -> None:
    damaged = tmp_path / "best_model.pt"
    damaged.write_bytes(b"PK\x03\x04 not really a checkpoint")
    code, _, err = convert(damaged, tmp_path / "new" / "deeper", "--backbone", "resnet50", "--benchmark", "fss")
    assert code == 2 and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_model.pt"]


def test_save_pretrained_never_replaces_a_file_it_did_not_write(resnet50: hsnet.HSNet, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my project")
    with pytest.raises(hsnet.InputError, match=r"it would replace README.md; .*overwrite=True"):
        hsnet.save_pretrained(resnet50, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    hsnet.save_pretrained(resnet50, tmp_path, overwrite=True)
    assert (tmp_path / "README.md").read_text().startswith("---\nlicense: unknown")
    hsnet.save_pretrained(resnet50, tmp_path)  # an earlier export: written again without asking
