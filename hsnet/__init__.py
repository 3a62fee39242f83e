"""hsnet: few-shot segmentation with Hypercorrelation Squeeze Networks (Min, Kang & Cho, ICCV 2021)."""
from .checkpoint import load_weights
from .errors import CheckpointError, HSNetError, InputError
from .model import BACKBONES, HSNet, build_model

__version__ = "0.1.0"

__all__ = ["BACKBONES", "CheckpointError", "HSNet", "HSNetError", "InputError", "build_model", "load_weights"]
