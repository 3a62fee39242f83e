"""HSNet's modules: backbone taps, hypercorrelation, center-pivot 4D conv, learner, model."""
from .backbone import BACKBONES, BackboneSpec
from .hsnet import FeaturePyramid, HSNet
from .vote import K_SHOT_RULES, combine_shots


def build_model(backbone: str = "resnet50", pretrained_backbone: bool = False) -> HSNet:
    """An HSNet with the given backbone; ImageNet V1 backbone weights only when asked (downloads)."""
    return HSNet(backbone, pretrained_backbone=pretrained_backbone)


__all__ = ["BACKBONES", "BackboneSpec", "FeaturePyramid", "HSNet", "K_SHOT_RULES", "build_model", "combine_shots"]
