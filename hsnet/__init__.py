"""hsnet: few-shot segmentation with Hypercorrelation Squeeze Networks (Min, Kang & Cho, ICCV 2021)."""
from .checkpoint import load_weights
from .errors import CheckpointError, HSNetError, HubError, InputError, WeightsNotFoundError
from .hub import from_pretrained, save_pretrained
from .model import BACKBONES, HSNet
from .runtime import HSNetModel, build_model
from .predictor import LayerMap, Prediction, Predictor, QueryFeatures, SupportSet

__version__ = "0.1.0"

__all__ = [
    "BACKBONES", "CheckpointError", "HSNet", "HSNetError", "HSNetModel", "HubError", "InputError", "LayerMap", "Prediction",
    "Predictor", "QueryFeatures", "SupportSet", "WeightsNotFoundError", "build_model", "from_pretrained",
    "load_weights", "save_pretrained",
]
