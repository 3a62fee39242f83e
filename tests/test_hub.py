"""Pretrained weights through the real huggingface_hub client, against a local fake Hub (no internet).

Every test gets its own empty Hugging Face cache, no token, online mode, and
HF_ENDPOINT pointing at a FakeHub on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import pickle
import socket
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors import safe_open

import hsnet
from hsnet import hub
from hsnet.weights import hub as weights_hub
from hsnet.weights.cache import file_sha256
from hsnet.weights.catalog import registry_data
from hsnet.cli import main as cli
from hsnet.errors import CheckpointError, HubError, WeightsNotFoundError

from fake_hub import FakeHub

ORG = "test-org"
NAME = "pascal-resnet50-fold0"
REPO = f"{ORG}/hsnet-{NAME}"
TOKEN = "hf_testtoken_do_not_print_0123456789"


@pytest.fixture(scope="module")
def fake_hub() -> FakeHub:
    server = FakeHub().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def hub_env(fake_hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """A fresh cache and a clean fake Hub per test; huggingface_hub's import-time settings patched to match."""
    fake_hub.commits.clear()
    fake_hub.branches.clear()
    fake_hub.corrupt.clear()
    fake_hub.private.clear()
    fake_hub.requests.clear()
    fake_hub.tokens_seen.clear()
    home = tmp_path / "hf-home"
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv(hub.HUB_ORG_ENV, ORG)
    monkeypatch.setenv("HSNET_CACHE_DIR", str(tmp_path / "hsnet-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    return fake_hub


@pytest.fixture(scope="module")
def hub_folder(resnet50: hsnet.HSNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Hub folder of a real (random-weight) ResNet-50 HSNet, written once."""
    return hsnet.save_pretrained(resnet50, tmp_path_factory.mktemp("converted"), benchmark="pascal", fold=0)


def cache_files(root: Path) -> list[str]:
    """Every file name (blobs and snapshot links) in a Hugging Face cache."""
    return sorted(p.name for p in root.rglob("*") if p.is_file() or p.is_symlink())


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_registry_lists_every_released_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = hub.registry()
    expected = {f"pascal-{b}-fold{f}" for b in ("vgg16", "resnet50", "resnet101") for f in range(4)}
    expected |= {f"coco-{b}-fold{f}" for b in ("resnet50", "resnet101") for f in range(4)}
    expected |= {f"fss-{b}" for b in ("vgg16", "resnet50", "resnet101")}
    expected |= {f"pascal-resnet101-fold{f}-nomask" for f in range(4)}
    assert set(entries) == expected
    assert hub.DEFAULT_WEIGHTS in entries
    e = entries["pascal-resnet101-fold0"]
    assert (e.backbone, e.benchmark, e.fold, e.mask_support) == ("resnet101", "pascal", 0, True)
    assert e.hub_repo() == (f"{ORG}/hsnet-pascal-resnet101-fold0", None)
    assert e.hub_repo("someone") == ("someone/hsnet-pascal-resnet101-fold0", None)
    monkeypatch.delenv(hub.HUB_ORG_ENV)
    assert e.hub_repo() is None  # no default organisation: nobody here controls one
    assert all(entry.hub is None for entry in entries.values())  # nobody has published with the authors' permission
    assert e.source == "https://drive.google.com/drive/folders/1z4KgjgOu--k6YuIj3qWrGg264GRcMis2"
    assert entries["coco-resnet50-fold1"].source.endswith("/1WpwmCQzxTWhJD5aLQhsgJASaoxxqmFUk")
    assert entries["fss-vgg16"].source.endswith("/1JOaaJknGwsrSEPoLF3x6_lDiy4XfAe99")
    nomask = entries["pascal-resnet101-fold3-nomask"]
    assert (nomask.backbone, nomask.fold, nomask.mask_support) == ("resnet101", 3, False)
    assert nomask.source.endswith("/18YWMCePIrza194pZvVMqQBuYqhwBmJwd")
    assert entries["fss-resnet50"].fold is None
    assert entries["coco-resnet50-fold2"].miou_mean_over_folds == {"1-shot": 39.2, "5-shot": 46.9}
    assert entries["coco-resnet50-fold2"].miou == {"1-shot": 38.7, "5-shot": 48.2}
    assert entries["fss-vgg16"].miou == {"1-shot": 82.3, "5-shot": 85.8}
    # weights/registry.json (source checkout) is the very file shipped in the package.
    checkout_copy = Path(__file__).resolve().parents[1] / "weights" / "registry.json"
    assert json.loads(checkout_copy.read_text()) == registry_data()
    assert "hsnet-community" not in checkout_copy.read_text()


def test_first_download_then_a_second_call_makes_no_request(hub_env: FakeHub, hub_folder: Path,
                                                            resnet50: hsnet.HSNet) -> None:
    hub_env.commit_folder(REPO, hub_folder)
    model = hsnet.from_pretrained(NAME)
    assert not model.training
    assert_same_weights(model, resnet50)
    downloads = [m for m, path in hub_env.requests if "/resolve/" in path]
    assert downloads == ["HEAD", "GET", "HEAD", "GET"]  # config.json, model.safetensors
    hub_env.requests.clear()
    assert_same_weights(hsnet.from_pretrained(NAME), resnet50)
    assert hub_env.requests == []


def test_offline_mode_uses_the_cache_and_says_when_nothing_is_cached(hub_env: FakeHub, hub_folder: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    hub_env.commit_folder(REPO, hub_folder)
    hsnet.from_pretrained(REPO)
    hub_env.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hsnet.from_pretrained(REPO).backbone_name == "resnet50"
    with pytest.raises(WeightsNotFoundError, match="HF_HUB_OFFLINE") as info:
        hsnet.from_pretrained("fss-resnet50")
    assert "\n" not in str(info.value)
    assert hub_env.requests == []


def test_private_repository_needs_hf_token(hub_env: FakeHub, hub_folder: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hub_env.commit_folder(REPO, hub_folder)
    hub_env.private.add(REPO)
    with pytest.raises(WeightsNotFoundError, match="if it is private, set HF_TOKEN"):
        hsnet.from_pretrained(NAME)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert hsnet.from_pretrained(NAME).backbone_name == "resnet50"
    assert hub_env.tokens_seen[-1] == f"Bearer {TOKEN}"


def test_revision_pins_a_commit(hub_env: FakeHub, hub_folder: Path, resnet50: hsnet.HSNet) -> None:
    first = hub_env.commit_folder(REPO, hub_folder)
    files = dict(hub_env.files(REPO))
    files["config.json"] = files["config.json"].replace(b'"resnet50"', b'"resnet101"')  # a broken later upload
    hub_env.commit(REPO, files)
    assert_same_weights(hsnet.from_pretrained(NAME, revision=first), resnet50)
    with pytest.raises(WeightsNotFoundError, match="revision 'v9' does not exist"):
        hsnet.from_pretrained(NAME, revision="v9")


def test_missing_repository_says_where_the_originals_are(hub_env: FakeHub) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        hsnet.from_pretrained("coco-resnet101-fold2")
    message = str(info.value)
    assert "\n" not in message
    assert f"{ORG}/hsnet-coco-resnet101-fold2 was not found" in message
    assert hub.registry()["coco-resnet101-fold2"].source in message
    assert "hsnet convert best_model.pt --backbone resnet101 --benchmark coco --fold 2" in message
    assert f"hsnet push coco-resnet101-fold2 --repo-id {ORG}/hsnet-coco-resnet101-fold2" in message


def test_missing_file_is_reported(hub_env: FakeHub, hub_folder: Path) -> None:
    hub_env.commit(REPO, {"config.json": (hub_folder / "config.json").read_bytes()})
    with pytest.raises(WeightsNotFoundError, match="has no model.safetensors.*hsnet convert"):
        hsnet.from_pretrained(NAME)


def test_unknown_name_lists_close_ones() -> None:
    with pytest.raises(WeightsNotFoundError, match="did you mean pascal-resnet50-fold"):
        hsnet.from_pretrained("pascal-resnet50-fold7")


def test_corrupt_download_is_refused_and_not_kept(hub_env: FakeHub, hub_folder: Path, resnet50: hsnet.HSNet) -> None:
    hub_env.commit_folder(REPO, hub_folder)
    hub_env.corrupt.add((REPO, "model.safetensors"))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        hsnet.from_pretrained(NAME)
    cached = cache_files(Path(constants.HF_HUB_CACHE))
    assert "model.safetensors" not in cached and not any(name.endswith(".incomplete") for name in cached)
    hub_env.corrupt.clear()
    assert_same_weights(hsnet.from_pretrained(NAME), resnet50)  # the next call downloads it again


def test_a_file_that_does_not_load_is_refused_and_not_kept(hub_env: FakeHub, hub_folder: Path) -> None:
    hub_env.commit(REPO, {"config.json": (hub_folder / "config.json").read_bytes(),
                          "model.safetensors": b"not a safetensors file at all"})
    with pytest.raises(CheckpointError, match="removed from the cache"):
        hsnet.from_pretrained(NAME)
    assert cache_files(Path(constants.HF_HUB_CACHE)).count("model.safetensors") == 0


def test_config_backbone_must_match_the_weights(hub_env: FakeHub, hub_folder: Path) -> None:
    config = json.loads((hub_folder / "config.json").read_text())
    config["backbone"] = "resnet101"
    hub_env.commit(REPO, {"config.json": json.dumps(config).encode(),
                          "model.safetensors": (hub_folder / "model.safetensors").read_bytes()})
    with pytest.raises(CheckpointError, match="config.json says backbone resnet101 but the weights are a resnet50"):
        hsnet.from_pretrained(NAME)


def test_pickled_code_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "best_model.pt"
    with path.open("wb") as f:
        pickle.dump({"module.hpn_learner.x": Exploit()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="refused without running"):
        hsnet.from_pretrained(path)
    with pytest.raises(CheckpointError, match="refused without running"):
        hsnet.from_pretrained(tmp_path)  # a folder holding best_model.pt
    assert not marker.exists()


def test_convert_then_load_gives_the_original_outputs(resnet50: hsnet.HSNet, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # The authors' format: DataParallel's "module." prefix, the unused ImageNet head included.
    authors = {f"module.{k}": v for k, v in resnet50.state_dict().items()}
    authors["module.backbone.fc.weight"] = torch.zeros(1000, 2048)
    authors["module.backbone.fc.bias"] = torch.zeros(1000)
    torch.save(authors, tmp_path / "best_model.pt")
    out = tmp_path / NAME
    assert cli(["convert", str(tmp_path / "best_model.pt"), "--backbone", "resnet50", "--benchmark", "pascal",
                "--fold", "0", "--out", str(out), "--repo-id", f"{ORG}/hsnet-{NAME}"]) == 0
    assert f"hsnet push {out} --repo-id {ORG}/hsnet-{NAME}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert (config["backbone"], config["benchmark"], config["fold"], config["image_size"], config["mask_support"]) \
        == ("resnet50", "pascal", 0, 400, True)
    # A file hsnet did not download from the authors is no more than that, whatever it is declared to be.
    digest = file_sha256(tmp_path / "best_model.pt")
    assert config["source"] == f"converted by hsnet from a local file best_model.pt (sha256 {digest})"
    assert config["metrics"] == {} and config["provenance"]["kind"] == "local file"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert not any(k.startswith(("backbone.fc.", "module.")) for k in f.keys())
    card = (out / "README.md").read_text()
    assert "arxiv.org/abs/2104.01538" in card and f'from_pretrained("{ORG}/hsnet-{NAME}")' in card

    loaded = hsnet.from_pretrained(out)
    assert_same_weights(loaded, resnet50)
    # A fresh model of the original weights: the shared fixture may have been set up for faster inference elsewhere.
    original = hsnet.load_weights(hsnet.build_model("resnet50"), resnet50.state_dict()).eval()
    torch.manual_seed(1)
    query, support, mask = torch.randn(1, 3, 96, 96), torch.randn(1, 3, 96, 96), torch.rand(1, 96, 96).round()
    with torch.no_grad():
        assert torch.equal(loaded(query, support, mask), original(query, support, mask))


def test_convert_refuses_a_checkpoint_of_another_backbone(resnet50: hsnet.HSNet, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(resnet50.state_dict(), tmp_path / "best_model.pt")
    code = cli(["convert", str(tmp_path / "best_model.pt"), "--backbone", "vgg16", "--benchmark", "fss",
                "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "holds a resnet50 model, not vgg16; pass --backbone resnet50" in err
    assert err.count("\n") == 1


def test_push_uploads_the_folder_and_never_prints_the_token(hub_env: FakeHub, hub_folder: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    code = cli(["push", str(hub_folder), "--repo-id", "someone/my-hsnet"])
    assert code == 0
    output = capsys.readouterr()
    assert TOKEN not in output.out + output.err and "someone/my-hsnet" in output.out
    assert f"Bearer {TOKEN}" in hub_env.tokens_seen
    uploaded = hub_env.files("someone/my-hsnet")
    assert sorted(uploaded) == ["README.md", "config.json", "model.safetensors"]
    assert all(uploaded[name] == (hub_folder / name).read_bytes() for name in ("config.json", "model.safetensors"))
    # hsnet's own card is uploaded with its usage example loading the repository it now lives in.
    assert b'hsnet.from_pretrained("someone/my-hsnet")' in uploaded["README.md"]
    assert b'from_pretrained("someone/my-hsnet")' not in (hub_folder / "README.md").read_bytes()


def test_push_without_a_token_says_how_to_get_one(hub_env: FakeHub, hub_folder: Path) -> None:
    with pytest.raises(HubError, match="HF_TOKEN"):
        hub.push_to_hub(hub_folder, "someone/my-hsnet")
    assert hub_env.requests == []


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_push_without_a_network_is_one_line_naming_the_hub(hub_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(weights_hub, "_unreachable", {})
    before = {p.name: p.read_bytes() for p in hub_folder.iterdir()}
    assert cli(["push", str(hub_folder), "--repo-id", "someone/my-hsnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and TOKEN not in err
    assert f"could not reach the Hugging Face Hub at {url}" in err and "run the push again" in err
    # The connection breaking after the probe answered: the HTTP client's own error, also one line.
    monkeypatch.setattr(weights_hub, "check_reachable", lambda advice: None)
    assert cli(["push", str(hub_folder), "--repo-id", "someone/my-hsnet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"uploading to someone/my-hsnet on {url} failed: the connection broke" in err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set, which forbids uploads"):
        hub.push_to_hub(hub_folder, "someone/my-hsnet")
    assert {p.name: p.read_bytes() for p in hub_folder.iterdir()} == before


def test_an_edited_card_is_uploaded_as_it_is(hub_env: FakeHub, hub_folder: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    edited = tmp_path / "edited"
    edited.mkdir()
    for name in ("model.safetensors", "config.json"):
        (edited / name).symlink_to(hub_folder / name)
    (edited / "README.md").write_text((hub_folder / "README.md").read_text() + "\nMy own notes.\n")
    hub.push_to_hub(edited, "someone/edited")
    assert hub_env.files("someone/edited")["README.md"] == (edited / "README.md").read_bytes()
    (edited / "README.md").unlink()  # no card at all: hsnet writes one for the repository
    hub.push_to_hub(edited, "someone/edited")
    assert b'hsnet.from_pretrained("someone/edited")' in hub_env.files("someone/edited")["README.md"]


def test_weights_command_lists_and_downloads(hub_env: FakeHub, hub_folder: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["weights", "--hub-org", "elsewhere"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in hub.registry())
    assert "hub elsewhere/hsnet-fss-resnet101" in listing and f"{hub.DEFAULT_WEIGHTS} " in listing
    hub_env.commit_folder(REPO, hub_folder)
    assert cli(["weights", "--download", NAME]) == 0
    snapshot = Path(capsys.readouterr().out.split(": ", 1)[1].strip())
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.safetensors"]


def test_a_repo_pinned_in_the_registry_is_used_at_its_revision(hub_env: FakeHub, hub_folder: Path,
                                                               resnet50: hsnet.HSNet,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = hub_env.commit_folder("publisher/hsnet-pascal-resnet50-fold0", hub_folder)
    files = dict(hub_env.files("publisher/hsnet-pascal-resnet50-fold0"))
    files["model.safetensors"] = b"a later upload nobody checked"
    hub_env.commit("publisher/hsnet-pascal-resnet50-fold0", files)
    data = json.loads(json.dumps(registry_data()))
    data["weights"][NAME]["hub"] = {"repo_id": "publisher/hsnet-pascal-resnet50-fold0", "revision": pinned}
    monkeypatch.setattr("hsnet.weights.catalog.registry_data", lambda: data)
    monkeypatch.delenv(hub.HUB_ORG_ENV)
    assert_same_weights(hsnet.from_pretrained(NAME), resnet50)
    assert all(pinned in path for _, path in hub_env.requests if "/resolve/" in path)


def test_hsnets_own_cache_comes_before_a_configured_hub(hub_env: FakeHub, hub_folder: Path, resnet50: hsnet.HSNet,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from hsnet.weights import cache

    def write(folder: Path) -> dict:
        hsnet.save_pretrained(resnet50, folder, benchmark="pascal", fold=0)
        return {"name": NAME}

    cache.store(NAME, write)
    hub_env.commit_folder(REPO, hub_folder)
    assert_same_weights(hsnet.from_pretrained(NAME), resnet50)
    assert hub_env.requests == []
