"""Matrix factorization for ratings (and factor models for ranking) on one shared base."""

from .asymmetric import NSVD1
from .base import FactorModel, fold_in_least_squares
from .nmf import NMF

__all__ = ["NMF", "NSVD1", "FactorModel", "fold_in_least_squares"]
