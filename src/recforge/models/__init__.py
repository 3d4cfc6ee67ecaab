"""Recommender models: one module (or subpackage) per family, all on :mod:`recforge.models.base`."""

from .base import (
    ITEM_FEATURES,
    RANKING,
    RATING,
    SESSION,
    SIMILAR_ITEMS,
    Recommendations,
    Recommender,
    SessionRecommender,
    available_models,
    check_random_state,
    clone,
    get_model_class,
    register,
)

__all__ = [
    "ITEM_FEATURES", "RANKING", "RATING", "SESSION", "SIMILAR_ITEMS", "Recommendations",
    "Recommender", "SessionRecommender", "available_models", "check_random_state", "clone",
    "get_model_class", "register",
]
