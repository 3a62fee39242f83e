"""HSNet's mathematics: backbone taps, hypercorrelation, center-pivot 4D conv, learner, model, k-shot rules."""
from .backbone import BACKBONES, BackboneSpec, detect_backbone
from .correlation import correlate
from .hsnet import DEFAULT_IMAGE_SIDE, FeaturePyramid, HSNet
from .vote import K_SHOT_RULES, KShotRule, combine_shots, foreground_score


def build_model(backbone: str = "resnet50", pretrained_backbone: bool = False, *, mask_support: bool = True,
                image_size: int = DEFAULT_IMAGE_SIDE) -> HSNet:
    """An HSNet with the given backbone; ImageNet V1 backbone weights only when asked (downloads)."""
    return HSNet(backbone, mask_support=mask_support, image_size=image_size, pretrained_backbone=pretrained_backbone)


__all__ = [
    "BACKBONES", "BackboneSpec", "DEFAULT_IMAGE_SIDE", "FeaturePyramid", "HSNet", "KShotRule", "K_SHOT_RULES",
    "build_model", "combine_shots", "correlate", "detect_backbone", "foreground_score",
]


def __getattr__(name: str) -> object:
    """``retain_freed_memory`` moved to ``hsnet.runtime``; this forward keeps the commands working until they
    import it from there."""
    if name == "retain_freed_memory":
        from ..runtime import retain_freed_memory

        return retain_freed_memory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
