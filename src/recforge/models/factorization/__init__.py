"""Matrix factorization for ratings (and factor models for ranking) on one shared base."""

from .base import FactorModel, fold_in_least_squares
from .svdpp import SVDpp, fold_in_svdpp

__all__ = ["FactorModel", "SVDpp", "fold_in_least_squares", "fold_in_svdpp"]
