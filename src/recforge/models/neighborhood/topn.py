r"""Top-N neighbourhood recommenders built the way the course builds them (ranking, not rating).

User-based (Herlocker et al. 1999 style): the candidates of user :math:`u` are the items rated
by its neighbourhood :math:`N(u)`, the ``k`` most similar users (or every user above
``sim_threshold``), scored by

.. math:: \mathrm{score}(u, i) = \sum_{v \in N(u),\, i \in I_v} s(u, v)\, \frac{r_{vi}}{r_{\max}}

Item-based (Sarwar et al. 2001; Deshpande & Karypis 2004): the seeds of :math:`u` are its
``k`` highest-rated items (or every item rated at least ``rating_threshold``), and

.. math:: \mathrm{score}(u, i) = \sum_{j \in \mathrm{seeds}(u)} s(j, i)\, \frac{r_{uj}}{r_{\max}}

Items the user has already seen are filtered by :meth:`~recforge.models.base.Recommender.recommend`
(``exclude_seen=True``). Both are sparse matrix products over the whole batch of users.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ...data.interactions import Interactions
from ...topk import topk_rows
from ..base import RANKING, SIMILAR_ITEMS, Recommender, register
from .similarities import check_similarity_name, similarity_matrix


def _keep_top_per_row(sim: np.ndarray, k: int | None, threshold: float | None) -> sp.csr_matrix:
    """Each row's ``k`` largest positive entries (or all >= ``threshold``), diagonal excluded."""
    s = np.array(sim, dtype=np.float64, copy=True)
    np.fill_diagonal(s, -np.inf)
    s[s <= 0] = -np.inf
    if threshold is not None:
        s[s < threshold] = -np.inf
        keep = np.isfinite(s)
        return sp.csr_matrix(np.where(keep, s, 0.0))
    idx, vals = topk_rows(s, int(k))
    keep = idx >= 0
    rows = np.repeat(np.arange(s.shape[0]), keep.sum(axis=1))
    return sp.csr_matrix((vals[keep], (rows, idx[keep])), shape=s.shape)


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
    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING})

    def __init__(self, k: int = 10, sim: str = "cosine", sim_threshold: float | None = None,
                 rating_threshold: float | None = None, min_support: int = 1):
        self.k = k
        self.sim = sim
        self.sim_threshold = sim_threshold
        self.rating_threshold = rating_threshold
        self.min_support = min_support

    def _normalised(self, train: Interactions) -> sp.csr_matrix:
        top = float(train.rating_scale[1]) if train.rating_scale else float(train.values.max())
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

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        name = check_similarity_name(self.sim)
        sim = similarity_matrix(train.csr, name, min_support=self.min_support)
        self.neighbours_ = _keep_top_per_row(sim, self.k, self.sim_threshold)
        ratings = self._normalised(train)
        if self.rating_threshold is not None:
            top = float(train.rating_scale[1]) if train.rating_scale else float(train.values.max())
            ratings.data[ratings.data * top < self.rating_threshold] = 0.0
            ratings.eliminate_zeros()
        self.ratings_ = ratings

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.neighbours_[users] @ self.ratings_).toarray(), dtype=np.float32)


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
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, SIMILAR_ITEMS})

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        name = check_similarity_name(self.sim)
        sim = similarity_matrix(train.item_csr, name, min_support=self.min_support)
        np.fill_diagonal(sim, 0.0)  # an item does not recommend itself
        if self.sim_threshold is not None:
            sim[sim < self.sim_threshold] = 0.0
        self.item_similarity_ = sim.astype(np.float32)
        seeds = _top_rated(train.csr, self.k, self.rating_threshold)
        top = float(train.rating_scale[1]) if train.rating_scale else float(train.values.max())
        seeds.data = seeds.data / top
        self.seeds_ = seeds

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.seeds_[users] @ self.item_similarity_, dtype=np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        return self.item_similarity_[np.asarray(items)]
