"""The model card (README.md) written next to a converted checkpoint on the Hugging Face Hub.

A card says what the weights are, where they came from, what the authors measured
with them and how to use them with hsnet, so a repository is useful on its own.
"""
from __future__ import annotations

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


def _metrics_table(metrics: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table with one row per metric group (e.g. this fold, mean over folds) and one column per shot."""
    shots = sorted({shot for values in metrics.values() for shot in values})
    lines = ["| mIoU (%) | " + " | ".join(shots) + " |", "|---|" + "---|" * len(shots)]
    for label, values in metrics.items():
        lines.append(f"| {label} | " + " | ".join(f"{values[s]:.1f}" if s in values else "-" for s in shots) + " |")
    return "\n".join(lines)


def render_model_card(config: Mapping[str, object], repo_id: str | None = None) -> str:
    """The README.md text for a Hub folder whose ``config.json`` holds ``config``."""
    backbone = str(config["backbone"])
    benchmark = config.get("benchmark")
    fold = config.get("fold")
    bench_title = BENCHMARK_TITLES.get(str(benchmark), str(benchmark)) if benchmark else None
    trained_on = "" if bench_title is None else f" trained on {bench_title}" + ("" if fold is None else f" fold {fold}")
    title = f"HSNet ({BACKBONE_TITLES.get(backbone, backbone)}){trained_on}"
    tags = ["few-shot-segmentation", "hsnet", "image-segmentation", backbone] + ([str(benchmark)] if benchmark else [])
    front = ModelCardData(library_name="hsnet", pipeline_tag="image-segmentation", tags=tags).to_yaml()
    name = repo_id or "<this folder or repo id>"
    metrics = config.get("metrics") or {}
    facts = [
        f"- Paper: Juhong Min, Dahyun Kang and Minsu Cho, *Hypercorrelation Squeeze for Few-Shot Segmentation*, "
        f"ICCV 2021 ([arXiv:2104.01538]({PAPER_URL})); authors' code: {AUTHORS_CODE_URL}.",
        f"- Backbone: {BACKBONE_TITLES.get(backbone, backbone)} (frozen, ImageNet); input size "
        f"{config.get('image_size', 400)}x{config.get('image_size', 400)}.",
    ]
    if config.get("mask_support") is False:
        facts.append("- Support feature masking: off (the authors' variant without it, Table 1, marked with a dagger); "
                     "hsnet reads `mask_support: false` from config.json and builds the model that way.")
    if bench_title:
        facts.append(f"- Benchmark: {bench_title}" + ("" if fold is None else f", fold {fold} (its test classes were "
                                                            "held out of training)") + ".")
    facts.append(f"- Source: {config.get('source', 'unknown')}.")
    parts = [
        f"---\n{front}\n---",
        f"# {title}",
        "Hypercorrelation Squeeze Network (HSNet) weights for one-shot and few-shot segmentation: given one or "
        "more support images with masks of an object class, it segments that class in a query image, including "
        "classes it never saw in training.",
        "\n".join(facts),
    ]
    if metrics:
        parts += ["## Results", _metrics_table(metrics)]
    parts += [
        "## Use it with hsnet",
        f"```python\nimport hsnet\nmodel = hsnet.from_pretrained(\"{name}\")  # downloads once, then loads from the cache\n"
        "result = hsnet.Predictor(model).predict(\"query.jpg\", [\"support.jpg\"], [\"support_mask.png\"])\n"
        "result.mask  # (H, W) bool at the query's size\n```",
        "The files are `model.safetensors` (the state dict, without the unused ImageNet classifier head) and "
        "`config.json` (backbone, benchmark, fold, image size, support masking, source); nothing in them is executable.",
        "## Citation",
        f"```bibtex\n{CITATION}\n```",
    ]
    return "\n\n".join(parts) + "\n"
