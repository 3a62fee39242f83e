"""The Predictor: encode supports once, segment many queries (through ``hsnet.runtime``'s one forward path); what
it returns; and the byte-bounded LRU cache that keeps encoded supports (and the app's probes)."""
from .cache import DEFAULT_CACHE_BYTES, ByteLRU, check_budget
from .predictor import MAX_SHOTS, Predictor
from .results import LayerMap, Prediction, QueryFeatures, SupportSet

__all__ = ["DEFAULT_CACHE_BYTES", "MAX_SHOTS", "ByteLRU", "LayerMap", "Prediction", "Predictor", "QueryFeatures",
           "SupportSet", "check_budget"]
