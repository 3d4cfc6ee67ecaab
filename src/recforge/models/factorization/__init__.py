"""Matrix factorization for ratings (and factor models for ranking) on one shared base."""

from .base import FactorModel, fold_in_least_squares

__all__ = ["FactorModel", "fold_in_least_squares"]
