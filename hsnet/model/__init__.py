"""HSNet's modules: backbone taps, hypercorrelation, center-pivot 4D conv, learner, model."""
from .allocator import retain_freed_memory
from .backbone import BACKBONES, BackboneSpec
from .hsnet import FeaturePyramid, HSNet
from .runner import PRECISION_DTYPES, EpisodeRunner, Precision, SpeedOptions
from .vote import K_SHOT_RULES, combine_shots


def build_model(backbone: str = "resnet50", pretrained_backbone: bool = False) -> HSNet:
    """An HSNet with the given backbone; ImageNet V1 backbone weights only when asked (downloads)."""
    return HSNet(backbone, pretrained_backbone=pretrained_backbone)


__all__ = [
    "BACKBONES", "BackboneSpec", "EpisodeRunner", "FeaturePyramid", "HSNet", "K_SHOT_RULES", "PRECISION_DTYPES",
    "Precision", "SpeedOptions", "build_model", "combine_shots", "retain_freed_memory",
]
