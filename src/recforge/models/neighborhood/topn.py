r"""Top-N neighbourhood recommenders built the way the course builds them (ranking, not rating).

User-based (Herlocker et al. 1999 style): the candidates of user :math:`u` are the items rated
by its neighbourhood :math:`N(u)`, the ``k`` most similar users (or every user above
``sim_threshold``), scored by

.. math:: \mathrm{score}(u, i) = \sum_{v \in N(u),\, i \in I_v} s(u, v)\, \frac{r_{vi}}{r_{\max}}

Item-based (Sarwar et al. 2001; Deshpande & Karypis 2004): the seeds of :math:`u` are its
``k`` highest-rated items (or every item rated at least ``rating_threshold``), and

.. math:: \mathrm{score}(u, i) = \sum_{j \in \mathrm{seeds}(u)} s(j, i)\, \frac{r_{uj}}{r_{\max}}

Both score a query row from its history alone (``FOLD_IN``), so a new or anonymous user with
the same ratings as a training user gets exactly that user's list. User-based: the row's
similarity to every training user is computed from its history with the fitted measure, and
only users with something to add (an item outside the row's history) can be neighbours — which
also keeps a training user from being its own neighbour. Items of the history are excluded by
:meth:`~recforge.models.base.Recommender.recommend` (``exclude_seen=True``). Both are sparse
matrix products over the whole batch of rows.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data.interactions import Interactions
from ...topk import topk_rows
from ..base import FOLD_IN, RANKING, SIMILAR_ITEMS, Recommender, register
from ..query import FallbackLog, History
from .similarities import check_similarity_name, similarity_matrix, similarity_rows


def _top_rated(ratings: sp.csr_matrix, k: int | None, threshold: float | None) -> sp.csr_matrix:
    """Each user's ``k`` highest ratings (ties to the lower item index), or all >= ``threshold``."""
    m = ratings.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    if threshold is not None:
        keep = m.data >= threshold
    else:
        order = np.lexsort((m.indices, -m.data, rows))
        rank = np.empty(m.nnz, np.int64)
        rank[order] = np.arange(m.nnz) - m.indptr[rows[order]]
        keep = rank < int(k)
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


class _TopNBase(Recommender):
    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN})
    state = ("rating_top_",)
    scores_from_history = True

    def __init__(self, k: int = 10, sim: str = "cosine", sim_threshold: float | None = None,
                 rating_threshold: float | None = None, min_support: int = 1):
        self.k = k
        self.sim = sim
        self.sim_threshold = sim_threshold
        self.rating_threshold = rating_threshold
        self.min_support = min_support

    def _normalised(self, train: Interactions) -> sp.csr_matrix:
        top = float(train.rating_scale[1]) if train.rating_scale else float(train.values.max())
        self.rating_top_ = top
        m = sp.csr_matrix(train.csr, dtype=np.float64)
        m.data /= top
        return m


@register("UserKNNTopN")
class UserKNNTopN(_TopNBase):
    """User-based top-N: candidates from the most similar users, scored by similarity x rating.

    Parameters
    ----------
    k : int, default 10
        Neighbours per user (ignored when ``sim_threshold`` is set).
    sim : str, default "cosine"
        User-user similarity (see ``similarities.SIMILARITIES``).
    sim_threshold : float, optional
        Use every user with similarity at least this instead of the top ``k``.
    rating_threshold : float, optional
        Only neighbours' ratings at least this generate candidates.
    min_support : int, default 1
    """

    state = ("user_ratings_", "ratings_")

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        check_similarity_name(self.sim)
        ratings = self._normalised(train)
        if self.rating_threshold is not None:
            ratings.data[ratings.data * self.rating_top_ < self.rating_threshold] = 0.0
            ratings.eliminate_zeros()
        self.ratings_ = ratings
        self.user_ratings_ = sp.csr_matrix(train.csr, dtype=np.float64)

    def neighbours(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Each history row's neighbours among the training users, with their similarities:
        the ``k`` most similar (or all above ``sim_threshold``) with positive similarity and
        at least one candidate item outside the row's history."""
        h = sp.csr_matrix(history, dtype=np.float64)
        n_users = self.user_ratings_.shape[0]
        stacked = sp.vstack([self.user_ratings_, h]).tocsr()
        sim = similarity_rows(stacked, n_users + np.arange(h.shape[0]), self.sim,
                              min_support=self.min_support)[:, :n_users]
        offers = self.ratings_.astype(bool).astype(np.float64)
        overlap = np.asarray((h.astype(bool).astype(np.float64) @ offers.T).todense())
        has_new = np.asarray(offers.sum(axis=1)).ravel()[None, :] > overlap
        sim[~has_new | (sim <= 0)] = -np.inf
        if self.sim_threshold is not None:
            sim[sim < self.sim_threshold] = -np.inf
            keep = np.isfinite(sim)
            return sp.csr_matrix(np.where(keep, sim, 0.0))
        idx, vals = topk_rows(sim, int(self.k))
        keep = idx >= 0
        rows = np.repeat(np.arange(sim.shape[0]), keep.sum(axis=1))
        return sp.csr_matrix((vals[keep], (rows, idx[keep])), shape=sim.shape)

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        return np.asarray((self.neighbours(history.matrix) @ self.ratings_).toarray(), dtype=np.float32)


@register("ItemKNNTopN")
class ItemKNNTopN(_TopNBase):
    """Item-based top-N: items similar to the user's best-rated ones, scored by similarity x rating.

    Parameters
    ----------
    k : int, default 10
        Seed items per user: the user's ``k`` highest-rated (ignored with ``rating_threshold``).
    sim : str, default "cosine"
        Item-item similarity.
    sim_threshold : float, optional
        Drop item-item similarities below this.
    rating_threshold : float, optional
        Seeds are all items the user rated at least this.
    min_support : int, default 1
    neighbors : int, optional
        Keep only each item's ``neighbors`` most similar items (its non-zero similarities, ties
        to the lower item index), stored as a sparse matrix: the model's memory becomes
        ``n_items * neighbors`` instead of ``n_items ** 2``, the form the distributed
        similarity (:func:`recforge.scale.spark.similarity.item_knn_model`) produces.
        Default: keep all.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, SIMILAR_ITEMS, FOLD_IN})
    state = ("item_similarity_",)

    def __init__(self, k: int = 10, sim: str = "cosine", sim_threshold: float | None = None,
                 rating_threshold: float | None = None, min_support: int = 1,
                 neighbors: int | None = None):
        super().__init__(k=k, sim=sim, sim_threshold=sim_threshold,
                         rating_threshold=rating_threshold, min_support=min_support)
        self.neighbors = neighbors

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        name = check_similarity_name(self.sim)
        n = self.neighbors
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise ValueError(f"ItemKNNTopN: neighbors must be an integer >= 1 or None, got {n!r}")
        sim = similarity_matrix(train.item_csr, name, min_support=self.min_support)
        np.fill_diagonal(sim, 0.0)  # an item does not recommend itself
        if self.sim_threshold is not None:
            sim[sim < self.sim_threshold] = 0.0
        self.item_similarity_ = sim.astype(np.float32) if n is None else top_neighbors(sim, int(n))
        self.rating_top_ = float(train.rating_scale[1]) if train.rating_scale else float(train.values.max())

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        seeds = _top_rated(history.matrix, self.k, self.rating_threshold)
        seeds.data = seeds.data / self.rating_top_
        scores = seeds @ self.item_similarity_
        return np.asarray(scores.toarray() if sp.issparse(scores) else scores, dtype=np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        rows = self.item_similarity_[np.asarray(items)]
        return rows.toarray() if sp.issparse(rows) else rows


def top_neighbors(sim: np.ndarray, n: int) -> sp.csr_matrix:
    """Each row's ``n`` largest non-zero entries (ties to the lower column) as a float32 CSR;
    a zero similarity is no neighbour, so it never displaces a negative one."""
    s = np.where(sim != 0, sim, -np.inf)
    idx, vals = topk_rows(s, n)
    keep = (idx >= 0) & np.isfinite(vals)
    rows = np.repeat(np.arange(sim.shape[0]), keep.sum(axis=1))
    m = sp.csr_matrix((sim[rows, idx[keep]].astype(np.float32), (rows, idx[keep])),
                      shape=sim.shape)
    m.sort_indices()
    return m
