r"""User- and item-based k-nearest-neighbour rating predictors (Surprise's four variants).

With :math:`N^k_i(u)` the (at most) ``k`` users most similar to :math:`u` among those who rated
:math:`i` (only positive similarities are aggregated), the user-based estimates are

* KNNBasic: :math:`\hat r_{ui} = \frac{\sum_{v \in N^k_i(u)} s(u, v)\, r_{vi}}{\sum_{v \in N^k_i(u)} s(u, v)}`
* KNNWithMeans: :math:`\hat r_{ui} = \mu_u + \frac{\sum_v s(u, v)\,(r_{vi} - \mu_v)}{\sum_v s(u, v)}`
* KNNWithZScore: :math:`\hat r_{ui} = \mu_u + \sigma_u \frac{\sum_v s(u, v)\,(r_{vi} - \mu_v)/\sigma_v}{\sum_v s(u, v)}`
* KNNBaseline (Koren 2010, eq. 3): :math:`\hat r_{ui} = b_{ui} + \frac{\sum_v s(u, v)\,(r_{vi} - b_{vi})}{\sum_v s(u, v)}`

and the item-based ones exchange the roles of users and items (Sarwar et al. 2001). When fewer
than ``min_k`` neighbours exist, KNNBasic cannot predict and returns the global mean; the other
three drop the neighbourhood term (user/item mean or baseline). Both cases are counted in
the call's fallbacks. Baselines :math:`b_{ui} = \mu + b_u + b_i` are fitted by Surprise's ALS
(Koren 2010, eq. 2; ``reg_i=10``, ``reg_u=15``, 10 epochs).

Ranking scores a query row from what it carries (``FOLD_IN``). Item-based: the row's history
*is* the set of rated neighbours :math:`j`, so a new or anonymous user is scored exactly as a
training user with the same ratings (its user bias, where the baseline needs one, folds in by
the closed-form ALS user step). User-based: a known user keeps its fitted neighbours; a new or
anonymous row gets its neighbours by the same similarity computed between its history and the
training users, and its own mean, spread and bias from its history.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data.interactions import Interactions
from ...interrupt import chunks, compiled
from ..base import FOLD_IN, RANKING, RATING, SIMILAR_ITEMS, Recommender, register
from ..baseline import baseline_als
from ..query import FallbackLog, History
from . import _kernels as K
from .similarities import (
    check_similarity_name,
    similarity_matrix,
    similarity_nbytes,
    similarity_rows,
)

logger = logging.getLogger(__name__)

#: Pairs per call of the compiled k-NN kernel (a few tenths of a second at most on two cores).
PAIR_CHUNK = 1 << 15


def als_baselines(train: Interactions, reg_items: float = 10.0, reg_users: float = 15.0,
                  n_epochs: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """User and item biases by ALS (Koren 2010, eq. 2): :func:`recforge.models.baseline.baseline_als`
    without the mean, as the k-NN formulas take it.

    Returns
    -------
    (user_bias, item_bias) : float64 arrays of shapes (n_users,), (n_items,)
    """
    _, bu, bi = baseline_als(train, reg_items, reg_users, n_epochs)
    return bu, bi


class _KNNBase(Recommender):
    r"""Shared fitting and prediction of the four k-NN variants (see the module docstring).

    Parameters
    ----------
    k : int, default 40
        Largest number of neighbours aggregated.
    min_k : int, default 1
        Fewest neighbours (with positive similarity) needed for the neighbourhood term.
    sim : str, default "msd"
        Similarity measure, one of :data:`~recforge.models.neighborhood.similarities.SIMILARITIES`.
    user_based : bool, default True
        Compare users (True) or items (False).
    min_support : int, default 1
        Common ratings needed for a non-zero similarity.
    shrinkage : float, default 100
        Shrinkage of ``pearson_baseline``.
    similarity_top_k : int, optional
        Keep only each row's ``similarity_top_k`` most similar rows (sparse CSR) instead of the
        dense matrix; for large catalogs. Memory is reported in ``similarity_nbytes_``.
    baseline_reg_items, baseline_reg_users : float, default 10, 15
        ALS regularisation of the baselines (used by ``pearson_baseline`` and KNNBaseline).
    baseline_epochs : int, default 10
    ranking_shrinkage : float, default 0
        Support damping of the *ranking* score (``recommend``; predictions are unchanged): an
        item's score is shrunk toward the global mean by its number of training ratings
        :math:`n_i`, :math:`s_{ui} = \mu + (\hat r_{ui} - \mu)\, n_i / (n_i + \lambda)`
        (the damping of Koren 2010, sec. 2.1, applied to the estimate). Ranked by the raw
        estimate, items rated once or twice by neighbours who loved them fill every top-10
        (HR@10 = 0 on ML-100K leave-one-out); with 5 / 25 / 100 KNNBaseline's HR@10 there is
        0.021 / 0.027 / 0.036 (docs/hardening.md). 0 keeps Surprise's estimates as scores.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, SIMILAR_ITEMS, FOLD_IN})
    state = ("ratings_y_", "user_bias_", "item_bias_", "means_", "sigmas_", "overall_sigma_",
             "sim_", "similarity_nbytes_")
    _mode: ClassVar[int] = K.BASIC

    @property
    def scores_from_history(self) -> bool:  # item-based: the history is the neighbourhood
        return not self.user_based

    def __init__(self, k: int = 40, min_k: int = 1, sim: str = "msd", user_based: bool = True,
                 min_support: int = 1, shrinkage: float = 100.0,
                 similarity_top_k: int | None = None, baseline_reg_items: float = 10.0,
                 baseline_reg_users: float = 15.0, baseline_epochs: int = 10,
                 ranking_shrinkage: float = 0.0):
        self.k = k
        self.min_k = min_k
        self.sim = sim
        self.user_based = user_based
        self.min_support = min_support
        self.shrinkage = shrinkage
        self.similarity_top_k = similarity_top_k
        self.baseline_reg_items = baseline_reg_items
        self.baseline_reg_users = baseline_reg_users
        self.baseline_epochs = baseline_epochs
        self.ranking_shrinkage = ranking_shrinkage

    # ------------------------------------------------------------------ fitting
    def _needs_baselines(self) -> bool:
        return self._mode == K.BASELINE or check_similarity_name(self.sim) == "pearson_baseline"

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        if int(self.k) < 1 or int(self.min_k) < 0:
            raise ValueError("k must be >= 1 and min_k >= 0")
        # the data's mean in double precision (Interactions.global_mean sums in float32)
        self.global_mean_ = float(np.mean(train.values, dtype=np.float64)) if train.nnz else 0.0
        name = check_similarity_name(self.sim)
        x_major = train.csr if self.user_based else train.item_csr
        y_major = train.item_csr if self.user_based else train.csr
        self.ratings_y_ = sp.csr_matrix(y_major, dtype=np.float64)
        self.ratings_y_.sort_indices()
        baselines = None
        self.user_bias_ = np.zeros(train.n_users)
        self.item_bias_ = np.zeros(train.n_items)
        if self._needs_baselines():
            self.user_bias_, self.item_bias_ = als_baselines(
                train, self.baseline_reg_items, self.baseline_reg_users, self.baseline_epochs)
            bx, by = self._switch(self.user_bias_, self.item_bias_)
            baselines = (self.global_mean_, bx, by)
        self._fit_moments(x_major)
        self.sim_ = similarity_matrix(x_major, name, min_support=self.min_support,
                                      shrinkage=self.shrinkage, baselines=baselines,
                                      top_k=self.similarity_top_k)
        self.similarity_nbytes_ = similarity_nbytes(self.sim_)
        logger.info("%s: %s %s similarity, %d x %d, %.1f MB", self.name,
                    "user" if self.user_based else "item", name, self.sim_.shape[0],
                    self.sim_.shape[1], self.similarity_nbytes_ / 1e6)

    def _fit_moments(self, x_major: sp.csr_matrix) -> None:
        """Per-row means (and standard deviations) of the compared side."""
        counts = np.diff(x_major.indptr)
        rows = np.repeat(np.arange(x_major.shape[0]), counts)
        data = x_major.data.astype(np.float64)
        sums = np.bincount(rows, weights=data, minlength=x_major.shape[0])
        self.means_ = np.divide(sums, counts, out=np.zeros(x_major.shape[0]), where=counts > 0)
        sq = np.bincount(rows, weights=(data - self.means_[rows]) ** 2, minlength=x_major.shape[0])
        sigma = np.sqrt(np.divide(sq, counts, out=np.zeros(x_major.shape[0]), where=counts > 0))
        overall = float(np.std(data)) if data.size else 1.0
        self.overall_sigma_ = overall
        # a constant row has no spread: Surprise uses the spread of all ratings instead
        self.sigmas_ = np.where(sigma == 0.0, overall, sigma)

    def _switch(self, user_thing, item_thing):
        return (user_thing, item_thing) if self.user_based else (item_thing, user_thing)

    # ------------------------------------------------------------------ prediction
    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        out = np.full(u.shape, self.global_mean_, dtype=np.float64)
        known = (self.user_counts_[u] > 0) & (self.item_popularity_[i] > 0)
        n_unknown = int((~known).sum())
        if n_unknown:
            if self._mode == K.BASELINE:
                # the baseline still applies to the side that is known (its bias is 0 otherwise)
                out[~known] = self.global_mean_ + self.user_bias_[u[~known]] + self.item_bias_[i[~known]]
                fallbacks.count("user or item without training ratings: baseline", n_unknown)
            else:
                fallbacks.count("user or item without training ratings: global mean", n_unknown)
        if not known.any():
            return out
        x, y = self._switch(u[known], i[known])
        bx, by = self._switch(self.user_bias_, self.item_bias_)
        est, actual_k = self._estimate(x, y, self.ratings_y_, by, self.means_, self.sigmas_, bx)
        out[known] = self._finish(est, actual_k, fallbacks)
        return out

    def _finish(self, est: np.ndarray, actual_k: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        """Count (and for KNNBasic fill) the estimates with fewer than ``min_k`` neighbours."""
        if self._mode == K.BASIC:
            impossible = np.isnan(est)
            est[impossible] = self.global_mean_
            fallbacks.count("fewer than min_k neighbours: global mean", int(impossible.sum()))
        else:
            what = "baseline" if self._mode == K.BASELINE else "mean"
            fallbacks.count(f"fewer than min_k neighbours: {what}",
                            int((actual_k < int(self.min_k)).sum()))
        return est

    def _sim_args(self, sim=None):
        sim = self.sim_ if sim is None else sim
        if not sp.issparse(sim):
            return sim, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1), True
        return (np.zeros((1, 1)), sim.indptr.astype(np.int64), sim.indices.astype(np.int64),
                sim.data.astype(np.float64), False)

    def _estimate(self, x, y, y_major, by, q_means, q_sigmas, q_bias, sim=None):
        """The compiled k-NN estimate for pairs (x, y) over the y-major ratings ``y_major``,
        in chunks of :data:`PAIR_CHUNK` pairs with a stop check between them (a Ctrl-C during
        a long scoring call stops within one chunk, see :mod:`recforge.interrupt`)."""
        y_major = sp.csr_matrix(y_major, dtype=np.float64)
        y_major.sort_indices()
        sim_dense, s_ptr, s_idx, s_val, dense = self._sim_args(sim)
        bx, _ = self._switch(self.user_bias_, self.item_bias_)
        x = np.asarray(x, np.int64)
        y = np.asarray(y, np.int64)
        args = (y_major.indptr.astype(np.int64), y_major.indices.astype(np.int64),
                y_major.data, sim_dense, s_ptr, s_idx, s_val, dense, int(self.k),
                int(self.min_k), self._mode, self.means_, self.sigmas_, bx,
                np.asarray(by, np.float64), float(self.global_mean_),
                np.asarray(q_means, np.float64), np.asarray(q_sigmas, np.float64),
                np.asarray(q_bias, np.float64))
        est = np.empty(x.size)
        actual = np.empty(x.size, np.int64)
        for lo, hi in chunks(x.size, PAIR_CHUNK):
            with compiled():
                est[lo:hi], actual[lo:hi] = K.knn_predict(x[lo:hi], y[lo:hi], *args)
        return est, actual

    def _fold_in_bias(self, h: sp.csr_matrix) -> np.ndarray:
        """User biases of history rows: the closed-form ALS user step (Koren 2010, eq. 2)."""
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        resid = h.data - self.global_mean_ - self.item_bias_[h.indices]
        return np.bincount(rows, weights=resid, minlength=h.shape[0]) / \
            (float(self.baseline_reg_users) + np.diff(h.indptr))

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        scores = self._estimate_rows(users, history, fallbacks)
        lam = float(self.ranking_shrinkage)
        if lam > 0:  # support damping toward the global mean (see ranking_shrinkage)
            n_i = self.item_popularity_.astype(np.float64)
            weight = (n_i / (n_i + lam)).astype(np.float32)
            mu = np.float32(self.global_mean_)
            scores = mu + (scores - mu) * weight[None, :]
        return scores

    def _estimate_rows(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        users = np.asarray(users, np.int64)
        n_rows, n = users.size, self.n_items_
        h = sp.csr_matrix(history.matrix, dtype=np.float64)
        h.sort_indices()
        needs_bias = self._needs_baselines()
        row_bias = np.zeros(n_rows)
        known_user = users >= 0
        row_bias[known_user] = self.user_bias_[users[known_user]]
        if needs_bias and (~known_user).any():
            row_bias[~known_user] = self._fold_in_bias(h[np.flatnonzero(~known_user)])
        items = np.flatnonzero(self.item_popularity_ > 0)
        out = np.empty((n_rows, n))
        # items nobody rated: the baseline (KNNBaseline) or the global mean
        fill = (self.global_mean_ + row_bias[:, None] + self.item_bias_[None, :]) \
            if self._mode == K.BASELINE else np.full((n_rows, n), self.global_mean_)
        out[:] = fill
        fallbacks.count("item without training ratings: "
                        + ("baseline" if self._mode == K.BASELINE else "global mean"),
                        n_rows * (n - items.size))
        if not self.user_based:
            x = np.tile(items, n_rows)
            y = np.repeat(np.arange(n_rows), items.size)
            est, actual_k = self._estimate(x, y, h, row_bias, self.means_, self.sigmas_,
                                           self.item_bias_)
            out[:, items] = self._finish(est, actual_k, fallbacks).reshape(n_rows, items.size)
            return out.astype(np.float32)
        trained = np.zeros(n_rows, bool)
        trained[known_user] = self.user_counts_[users[known_user]] > 0
        rows_known = np.flatnonzero(trained)
        blank = ~trained & (np.diff(h.indptr) == 0)
        fallbacks.mark("user without ratings: " + ("baseline" if self._mode == K.BASELINE
                                                    else "global mean"), blank)
        if rows_known.size:
            x = np.repeat(users[rows_known], items.size)
            y = np.tile(items, rows_known.size)
            est, actual_k = self._estimate(x, y, self.ratings_y_, self.item_bias_, self.means_,
                                           self.sigmas_, self.user_bias_)
            out[np.ix_(rows_known, items)] = self._finish(est, actual_k, fallbacks).reshape(
                rows_known.size, items.size)
        rows_new = np.flatnonzero(~trained & ~blank)
        if rows_new.size:
            hn = h[rows_new]
            sim_block, q_means, q_sigmas = self._fold_in_neighbourhood(hn, row_bias[rows_new])
            x = np.repeat(np.arange(rows_new.size), items.size)
            y = np.tile(items, rows_new.size)
            est, actual_k = self._estimate(x, y, self.ratings_y_, self.item_bias_, q_means,
                                           q_sigmas, row_bias[rows_new], sim=sim_block)
            out[np.ix_(rows_new, items)] = self._finish(est, actual_k, fallbacks).reshape(
                rows_new.size, items.size)
        return out.astype(np.float32)

    def _fold_in_neighbourhood(self, h: sp.csr_matrix, bias: np.ndarray):
        """User-based fold-in: similarities of history rows to every training user (the fitted
        measure, computed on the training ratings with the rows appended), and each row's mean
        and spread."""
        n_users = self.ratings_y_.shape[1]
        users_major = sp.csr_matrix(self.ratings_y_.T)
        stacked = sp.vstack([users_major, h]).tocsr()
        baselines = None
        if check_similarity_name(self.sim) == "pearson_baseline":
            baselines = (self.global_mean_, np.concatenate([self.user_bias_, bias]), self.item_bias_)
        block = similarity_rows(stacked, n_users + np.arange(h.shape[0]), self.sim,
                                min_support=self.min_support, shrinkage=self.shrinkage,
                                baselines=baselines)[:, :n_users]
        counts = np.diff(h.indptr)
        rows = np.repeat(np.arange(h.shape[0]), counts)
        sums = np.bincount(rows, weights=h.data, minlength=h.shape[0])
        means = np.divide(sums, counts, out=np.zeros(h.shape[0]), where=counts > 0)
        sq = np.bincount(rows, weights=(h.data - means[rows]) ** 2, minlength=h.shape[0])
        sigma = np.sqrt(np.divide(sq, counts, out=np.zeros(h.shape[0]), where=counts > 0))
        return np.ascontiguousarray(block), means, np.where(sigma == 0.0, self.overall_sigma_, sigma)

    def neighbors(self, x: int, k: int) -> np.ndarray:
        """Inner indices of the ``k`` rows most similar to inner row ``x`` (user or item,
        following ``user_based``), best first, ties to the lower index; ``x`` excluded."""
        self._check_fitted()
        row = self.sim_[x].toarray().ravel() if sp.issparse(self.sim_) else np.array(self.sim_[x])
        row[x] = -np.inf
        order = np.lexsort((np.arange(row.size), -row))
        return order[:k]

    def _similar(self, items: np.ndarray) -> np.ndarray:
        """Item-item similarity rows: the fitted matrix when item-based, else the same measure
        computed between items on the training ratings."""
        items = np.asarray(items, np.int64)
        if not self.user_based:
            if sp.issparse(self.sim_):
                return self.sim_[items].toarray()
            return self.sim_[items]
        item_major = self.ratings_y_  # user-based: y = items
        baselines = None
        if check_similarity_name(self.sim) == "pearson_baseline":
            baselines = (self.global_mean_, self.item_bias_, self.user_bias_)
        return similarity_rows(item_major, items, self.sim, min_support=self.min_support,
                               shrinkage=self.shrinkage, baselines=baselines)


@register("KNNBasic")
class KNNBasic(_KNNBase):
    __doc__ = "Similarity-weighted mean of the neighbours' ratings (Surprise's KNNBasic).\n" + \
        (_KNNBase.__doc__ or "").split("\n", 1)[1]
    _mode = K.BASIC


@register("KNNWithMeans")
class KNNWithMeans(_KNNBase):
    __doc__ = "Mean-centred k-NN: the row's mean plus the neighbours' weighted deviations.\n" + \
        (_KNNBase.__doc__ or "").split("\n", 1)[1]
    _mode = K.WITH_MEANS


@register("KNNWithZScore")
class KNNWithZScore(_KNNBase):
    __doc__ = "z-score k-NN: neighbours' standardised deviations, rescaled by the row's spread.\n" + \
        (_KNNBase.__doc__ or "").split("\n", 1)[1]
    _mode = K.WITH_ZSCORE


@register("KNNBaseline")
class KNNBaseline(_KNNBase):
    __doc__ = "Baseline k-NN (Koren 2010, eq. 3): baseline plus neighbours' weighted residuals.\n" + \
        (_KNNBase.__doc__ or "").split("\n", 1)[1]
    _mode = K.BASELINE
