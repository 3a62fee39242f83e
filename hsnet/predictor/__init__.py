"""The Predictor: encode supports once, segment many queries; and what it returns."""
from .cache import DEFAULT_CACHE_BYTES, SupportCache
from .predictor import MAX_SHOTS, Predictor
from .results import LayerMap, Prediction, QueryFeatures, SupportSet

__all__ = ["DEFAULT_CACHE_BYTES", "MAX_SHOTS", "LayerMap", "Prediction", "Predictor", "QueryFeatures", "SupportCache",
           "SupportSet"]
