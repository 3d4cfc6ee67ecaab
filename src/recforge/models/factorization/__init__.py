"""Matrix factorization for ratings (and factor models for ranking) on one shared base."""

from .als import ALS
from .asymmetric import NSVD1
from .base import FactorModel, fold_in_least_squares
from .bpr import BPR
from .lmf import LMF
from .nmf import NMF
from .puresvd import PureSVD
from .svd import PMF, SVD
from .svdpp import SVDpp, fold_in_svdpp
from .time_svdpp import TimeSVDpp

__all__ = ["ALS", "BPR", "LMF", "NMF", "NSVD1", "PMF", "SVD", "FactorModel", "PureSVD", "SVDpp",
           "TimeSVDpp",
           "fold_in_least_squares", "fold_in_svdpp"]
