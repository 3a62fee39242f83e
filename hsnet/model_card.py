"""The model card (README.md) written next to converted or saved weights, for the Hugging Face Hub or a folder.

A card says what the weights are, where they came from as far as hsnet knows (``config["provenance"]``,
decided in ``hsnet.weights.provenance``), their licence as far as it is known, the results that may be
stated with them, and how to use them with hsnet, so that a repository is useful on its own.
"""
from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping

from huggingface_hub import ModelCardData

PAPER_URL = "https://arxiv.org/abs/2104.01538"
AUTHORS_CODE_URL = "https://github.com/juhongm999/hsnet"
BENCHMARK_TITLES = {"pascal": "PASCAL-5i", "coco": "COCO-20i", "fss": "FSS-1000"}
BACKBONE_TITLES = {"vgg16": "VGG-16", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
CITATION = """@inproceedings{min2021hypercorrelation,
  title={Hypercorrelation Squeeze for Few-Shot Segmentation},
  author={Min, Juhong and Kang, Dahyun and Cho, Minsu},
  booktitle={Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year={2021}
}"""
USAGE = re.compile(r'hsnet\.from_pretrained\(("(?:[^"\\]|\\.)*")\)')  # the name the usage example loads


def _metrics_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table with one row per metric group (e.g. this fold, mean over folds) and one column per shot."""
    shots = sorted({shot for values in metrics.values() for shot in values})
    lines = ["| mIoU (%) | " + " | ".join(shots) + " |", "|---|" + "---|" * len(shots)]
    for label, values in metrics.items():
        lines.append(f"| {label} | " + " | ".join(f"{values[s]:.1f}" if s in values else "-" for s in shots) + " |")
    return "\n".join(lines)


def _provenance(config: Mapping[str, object]) -> Mapping[str, object]:
    """config.json's record of where the weights came from ({} for folders written before it existed)."""
    origin = config.get("provenance")
    return origin if isinstance(origin, Mapping) else {}


def _kind(config: Mapping[str, object]) -> object:
    return _provenance(config).get("kind")


def _origin(config: Mapping[str, object]) -> str:
    """The "where these weights come from" paragraph: only what hsnet recorded, nothing it cannot know."""
    origin = _provenance(config)
    kind = origin.get("kind")
    if kind == "authors":
        return (f"These are the authors' released weights: hsnet downloaded `{origin.get('drive_path')}` from their "
                f"Google Drive folder {origin.get('drive_folder')} (sha256 `{origin.get('sha256')}`) and converted it "
                "without changing any weight (the unused ImageNet classifier head is left out). The results below are "
                "the ones the authors report for this checkpoint; hsnet did not measure them.")
    if kind == "local file":
        return (f"hsnet converted these weights from a local file, `{origin.get('file')}` (sha256 "
                f"`{origin.get('sha256')}`). It did not download that file from the authors' folder, so it cannot "
                "tell who trained these weights or how well they do: this card states no results (measure them with "
                "`hsnet evaluate`), and the backbone, benchmark and fold above are as declared when converting.")
    return f"{config.get('source', 'Not recorded')}; any results below are as given when the weights were saved."


def _license(config: Mapping[str, object]) -> str:
    """The licence paragraph: what is known, and who can say more."""
    license = config.get("license", "unknown")
    if _kind(config) == "authors" and license == "unknown":
        return (f"`license: unknown`. The authors' repository ({AUTHORS_CODE_URL}) states no licence for its code or "
                "for these weights, which stay theirs: ask them before redistributing them. hsnet's own code is "
                "MIT-licensed; that does not extend to these weights.")
    if license == "unknown":
        return ("`license: unknown`: no licence was given when these weights were written. Whoever holds the rights "
                "to them should state it (`hsnet convert --license ...`, or edit this card).")
    return f"`license: {license}`, as stated by whoever converted or saved these weights."


def render_model_card(config: Mapping[str, object], repo_id: str | None = None) -> str:
    """The README.md text for a Hub folder whose ``config.json`` holds ``config``; ``repo_id`` (a Hub repo id,
    registry name or folder) is what the usage example loads."""
    backbone = str(config["backbone"])
    backbone_title = BACKBONE_TITLES.get(backbone, backbone)
    benchmark = config.get("benchmark")
    fold = config.get("fold")
    bench_title = BENCHMARK_TITLES.get(str(benchmark), str(benchmark)) if benchmark else None
    trained_on = "" if bench_title is None else f", {bench_title}" + ("" if fold is None else f" fold {fold}")
    tags = ["hsnet", "few-shot-segmentation", "image-segmentation", "pytorch", "safetensors", backbone]
    tags += [str(benchmark)] if benchmark else []
    # No library_name: hsnet is not a library the Hub knows, so the usage section below says how to load it.
    front = ModelCardData(license=str(config.get("license", "unknown")), pipeline_tag="image-segmentation",
                          tags=tags).to_yaml()
    size = config.get("image_size", 400)
    facts = [
        f"- Model: HSNet from Juhong Min, Dahyun Kang and Minsu Cho, *Hypercorrelation Squeeze for Few-Shot "
        f"Segmentation*, ICCV 2021 ([arXiv:2104.01538]({PAPER_URL}); reference code {AUTHORS_CODE_URL}).",
        f"- Backbone: {backbone_title} (frozen, ImageNet); input size {size}x{size}.",
    ]
    if config.get("mask_support") is False:
        facts.append("- Support feature masking: off (the authors' variant without it, Table 1, marked with a dagger); "
                     "hsnet reads `mask_support: false` from config.json and builds the model that way.")
    if bench_title:
        declared = _kind(config) == "local file"
        facts.append(f"- Benchmark{' (as declared when converting)' if declared else ''}: {bench_title}"
                     + ("" if fold is None else f", fold {fold} (its test classes are held out of training)") + ".")
    name = repo_id or "path/to/this/folder"
    literal = json.dumps(name)  # also a valid Python string literal, whatever the name holds
    parts = [
        f"---\n{front}\n---",
        f"# HSNet ({backbone_title}){trained_on}",
        "Hypercorrelation Squeeze Network (HSNet) weights for one-shot and few-shot segmentation: given one or "
        "more support images with masks of an object class, it segments that class in a query image, including "
        "classes it never saw in training.",
        "\n".join(facts),
        "## Where these weights come from",
        _origin(config),
    ]
    metrics = config.get("metrics") or {}
    if metrics:
        parts += ["## Results", _metrics_table(metrics)]
    parts += [
        "## Use it with hsnet",
        "These weights are read by hsnet (a Python package with a command line and an app), not by a library the "
        "Hub knows, so the Hub shows no snippet of its own. With hsnet installed:",
        f"```python\nimport hsnet\n\n"
        f"model = hsnet.from_pretrained({literal})  # fetched once if remote, then cached\n"
        "predictor = hsnet.Predictor(model)\n"
        "result = predictor.predict(\"query.jpg\", [\"support.jpg\"], [\"support_mask.png\"])\n"
        "result.mask  # (H, W) bool at the query's size: True where the support's object is\n```",
        f"or `hsnet predict --weights {shlex.quote(name)} --query query.jpg --support support.jpg "
        "--support-mask support_mask.png --out result/`.",
        "The files are `model.safetensors` (the state dict, without the unused ImageNet classifier head) and "
        "`config.json` (backbone, benchmark, fold, image size, support masking, licence and provenance); nothing in "
        "them is executable.",
        "## License",
        _license(config),
        "## Citation",
        f"```bibtex\n{CITATION}\n```",
    ]
    return "\n\n".join(parts) + "\n"


def retarget(card: str, config: Mapping[str, object], repo_id: str) -> str | None:
    """``card`` with its usage example loading ``repo_id``, when it is the card hsnet rendered from ``config`` and
    nobody edited it; None otherwise (an edited card is the owner's, to upload as it is)."""
    found = USAGE.search(card)
    if found is None:
        return None
    try:
        name = json.loads(found.group(1))
    except ValueError:
        return None
    return render_model_card(config, repo_id) if render_model_card(config, name) == card else None
