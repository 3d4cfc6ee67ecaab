"""Matrix factorization for ratings (and factor models for ranking) on one shared base."""

from .base import FactorModel, fold_in_least_squares
from .puresvd import PureSVD

__all__ = ["FactorModel", "PureSVD", "fold_in_least_squares"]
