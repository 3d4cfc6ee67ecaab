r"""Slope One (Lemire & Maclachlan 2005), the weighted-free variant of Surprise.

The mean deviation of item :math:`i` from item :math:`j` over their common raters
:math:`U_{ij}` is :math:`\mathrm{dev}(i, j) = \frac{1}{|U_{ij}|}\sum_{u \in U_{ij}} (r_{ui} - r_{uj})`,
and the estimate is

.. math:: \hat r_{ui} = \mu_u + \frac{1}{|R_i(u)|} \sum_{j \in R_i(u)} \mathrm{dev}(i, j)

with :math:`R_i(u)` the items rated by :math:`u` that share at least one rater with :math:`i`
(eq. 2 of the paper, with the user's mean as the anchor). When :math:`R_i(u)` is empty the
estimate is the user's mean (a counted fallback).

Ranking scores a query row from its history alone (``FOLD_IN``): :math:`\mu_u` and
:math:`R_i(u)` come from the ratings the row carries, so a new or anonymous user is scored
exactly as a training user with the same ratings.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data.interactions import Interactions
from ...interrupt import compiled
from ..base import FOLD_IN, RANKING, RATING, Recommender, register
from ..query import FallbackLog, History
from . import _kernels as K


@register("SlopeOne")
class SlopeOne(Recommender):
    """Slope One rating predictor (Lemire & Maclachlan 2005), no hyperparameters.

    Memory: two dense n_items x n_items arrays (deviations and co-rating counts).

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> data = Interactions.from_arrays([1, 1, 2, 2, 3], [10, 20, 10, 20, 10],
    ...                                 [5.0, 3.0, 3.0, 4.0, 2.0])
    >>> model = SlopeOne().fit(data)
    >>> float(model.predict([3], [20])[0])  # 2 + dev(20, 10) = 2 + ((3-5) + (4-3)) / 2
    1.5
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, FOLD_IN})
    state = ("dev_", "freq_", "user_means_", "rated_")
    scores_from_history = True

    def __init__(self):
        pass

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        # the data's mean in double precision (Interactions.global_mean sums in float32)
        self.global_mean_ = float(np.mean(train.values, dtype=np.float64)) if train.nnz else 0.0
        item_major = sp.csr_matrix(train.item_csr, dtype=np.float64)
        user_major = sp.csr_matrix(train.csr, dtype=np.float64)
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            self.dev_, self.freq_ = K.slope_one_deviations(
                item_major.indptr.astype(np.int64), item_major.indices.astype(np.int64),
                item_major.data, user_major.indptr.astype(np.int64),
                user_major.indices.astype(np.int64), user_major.data)
        counts = np.diff(user_major.indptr)
        sums = np.bincount(np.repeat(np.arange(train.n_users), counts), weights=user_major.data,
                           minlength=train.n_users)
        self.user_means_ = np.divide(sums, counts, out=np.zeros(train.n_users), where=counts > 0)
        self.rated_ = sp.csr_matrix((np.ones(user_major.nnz, np.int8), user_major.indices,
                                     user_major.indptr), shape=user_major.shape)

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        out = np.full(u.shape, self.global_mean_)
        known = (self.user_counts_[u] > 0) & (self.item_popularity_[i] > 0)
        fallbacks.count("user or item without training ratings: global mean", int((~known).sum()))
        if known.any():
            with compiled():
                est, support = K.slope_one_predict(
                    u[known], i[known], self.rated_.indptr.astype(np.int64),
                    self.rated_.indices.astype(np.int64), self.dev_, self.freq_, self.user_means_)
            fallbacks.count("no co-rated item: user mean", int((support == 0).sum()))
            out[known] = est
        return out

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        h = history.matrix
        n_rows, n = h.shape[0], self.n_items_
        counts = np.diff(h.indptr)
        sums = np.bincount(np.repeat(np.arange(n_rows), counts), weights=h.data.astype(np.float64),
                           minlength=n_rows)
        means = np.divide(sums, counts, out=np.zeros(n_rows), where=counts > 0)
        uu = np.repeat(np.arange(n_rows, dtype=np.int64), n)
        ii = np.tile(np.arange(n, dtype=np.int64), n_rows)
        with compiled():
            est, support = K.slope_one_predict(uu, ii, h.indptr.astype(np.int64),
                                               h.indices.astype(np.int64), self.dev_, self.freq_,
                                               means)
        unrated = self.item_popularity_[ii] == 0
        est[unrated] = self.global_mean_
        fallbacks.count("no co-rated item: user mean", int(((support == 0) & ~unrated).sum()))
        return est.astype(np.float32).reshape(n_rows, n)
