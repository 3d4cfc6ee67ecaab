"""Recommender models: one module (or subpackage) per family, all on :mod:`recforge.models.base`.

Nothing here imports a model family: :func:`get_model_class` and :func:`load_model` import
the one family they need (loading a k-NN model never imports torch).
"""

from .base import (
    CLICK,
    EMBEDDINGS,
    FOLD_IN,
    INCREMENTAL,
    ITEM_FEATURES,
    RANKING,
    RATING,
    SESSION,
    SIMILAR_ITEMS,
    ModelFileError,
    Recommendations,
    Recommender,
    SessionRecommender,
    available_models,
    check_random_state,
    clone,
    get_model_class,
    register,
)
from .query import FallbackLog, History


def load_model(path) -> Recommender:
    """Load any saved recforge model (the one entry point; see :meth:`Recommender.load`)."""
    return Recommender.load(path)


__all__ = [
    "CLICK", "EMBEDDINGS", "FOLD_IN", "INCREMENTAL", "ITEM_FEATURES", "RANKING", "RATING", "SESSION",
    "SIMILAR_ITEMS", "FallbackLog", "History", "ModelFileError", "Recommendations", "Recommender",
    "SessionRecommender", "available_models", "check_random_state", "clone", "get_model_class",
    "load_model", "register",
]
