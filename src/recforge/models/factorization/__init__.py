"""Matrix factorization for ratings (and factor models for ranking) on one shared base."""

from .base import FactorModel, fold_in_least_squares
from .svd import PMF, SVD

__all__ = ["PMF", "SVD", "FactorModel", "fold_in_least_squares"]
