r"""PureSVD: a truncated SVD of the zero-filled rating matrix, for top-N ranking.

Cremonesi, Koren & Turrin (2010), "Performance of recommender algorithms on top-N
recommendation tasks", RecSys, section 3.2. The user x item matrix :math:`R` with missing
entries set to zero is factored by a truncated SVD

.. math:: R \approx U \Sigma Q^\top, \qquad Q \in \mathbb{R}^{n_\text{items} \times k},

and a row :math:`r_u` (its ratings, zeros elsewhere) scores every item by

.. math:: \hat r_u = r_u Q Q^\top ,

the projection of the row onto the top-:math:`k` right singular subspace. The query vector
:math:`p_u = r_u Q` (:math:`= U_u \Sigma` for a training row) needs no solve, so an unknown or
anonymous row is folded in by the same projection of its history, and a known user queried
with a history is scored from that history (the evaluator passes the training row, for which
the two agree). The scores are not ratings (there is no bias and missing entries count as
zero); only the ranking is meaningful, so the model declares ``RANKING`` but not ``RATING``.

The SVD is computed by ARPACK (:func:`scipy.sparse.linalg.svds`) on the sparse matrix, seeded
by ``random_state``; the dense matrix is never formed.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from ..base import EMBEDDINGS, FOLD_IN, RANKING, SIMILAR_ITEMS, register
from ..query import FallbackLog, History
from .base import FactorModel

logger = logging.getLogger(__name__)


@register("PureSVD")
class PureSVD(FactorModel):
    """PureSVD (Cremonesi, Koren & Turrin 2010): scores :math:`r_u Q Q^\\top`.

    Parameters
    ----------
    n_factors : int, default 50
        Rank :math:`k` of the truncated SVD. It must be below ``min(n_users, n_items)``; a
        larger value is lowered to that bound (with a logged warning).
    random_state : int, optional, default 0
        Seeds the solver's starting vector, so that two fits give the same factors.

    Attributes
    ----------
    item_factors_ : ndarray (n_items, k)
        :math:`Q`, the right singular vectors (orthonormal columns).
    user_factors_ : ndarray (n_users, k)
        :math:`R Q = U \\Sigma`, the training rows' projections.
    singular_values_ : ndarray (k,)
        :math:`\\Sigma`, in decreasing order.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN, EMBEDDINGS,
                                                       SIMILAR_ITEMS})
    state = ("singular_values_",)
    biased = False
    projects_history = True  # p = r Q for every row with a history

    def __init__(self, n_factors: int = 50, random_state: int | None = 0):
        self.n_factors = n_factors
        self.random_state = random_state

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self.check_count("n_factors")
        r = sp.csr_matrix(train.csr, dtype=np.float64)
        n_users, n_items = r.shape
        k = int(self.n_factors)
        bound = min(n_users, n_items) - 1
        if bound < 1:
            raise ValueError(f"PureSVD needs at least 2 users and 2 items, got {r.shape}")
        if k > bound:
            logger.warning("PureSVD: n_factors=%d lowered to %d (min(n_users, n_items) - 1)",
                           k, bound)
            k = bound
        rng = np.random.default_rng(self.random_state)
        v0 = rng.uniform(-1.0, 1.0, size=min(n_users, n_items))
        _, s, vt = svds(r, k=k, v0=v0)
        order = np.argsort(-s, kind="stable")
        self.singular_values_ = s[order]
        self.item_factors_ = np.ascontiguousarray(vt[order].T)
        self.user_factors_ = np.asarray(r @ self.item_factors_)
        self.mu_ = 0.0
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)

    # ------------------------------------------------------------------ user side
    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Query vectors of history rows: the projection :math:`r_u Q` (no solve), zero biases."""
        h = sp.csr_matrix(history, dtype=np.float64)
        return np.asarray(h @ self.item_factors_), np.zeros(h.shape[0])

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        factors, _ = self.user_vectors(users, history)
        return (factors @ self.item_factors_.T).astype(np.float32)
