"""HSNet's mathematics: backbone taps, hypercorrelation, center-pivot 4D conv, learner, the network's parameters
and steps, k-shot rules. Nothing here knows devices, precisions or memory budgets: ``hsnet.runtime`` runs it."""
from .backbone import BACKBONES, BackboneSpec, detect_backbone
from .correlation import correlate
from .hsnet import DEFAULT_IMAGE_SIDE, FeaturePyramid, HSNet
from .ops import FORMULAS, Ops
from .vote import K_SHOT_RULES, KShotRule, combine_shots, foreground_score

__all__ = [
    "BACKBONES", "BackboneSpec", "DEFAULT_IMAGE_SIDE", "FORMULAS", "FeaturePyramid", "HSNet", "KShotRule",
    "K_SHOT_RULES", "Ops", "combine_shots", "correlate", "detect_backbone", "foreground_score",
]
