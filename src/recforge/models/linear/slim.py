r"""SLIM: sparse, non-negative item x item weights learned by elastic-net regression.

Ning & Karypis (2011), "SLIM: Sparse linear methods for top-N recommender systems", ICDM,
section III. With :math:`X` the users x items implicit-feedback matrix, each column
:math:`w_j` of the item x item matrix :math:`W` solves

.. math:: \min_{w_j} \tfrac12 \lVert x_j - X w_j \rVert_2^2 + \tfrac{\beta}{2} \lVert w_j \rVert_2^2
          + \lambda \lVert w_j \rVert_1 \quad \text{s.t.}\ w_j \ge 0,\ w_{jj} = 0

(eq. 3 of the paper, one independent problem per item), and a row :math:`x_u` scores every
item by :math:`x_u W`. The penalties are given the way scikit-learn's ``ElasticNet`` names
them, whose objective is the one above divided by the number of rows :math:`m` (users):

.. math:: \lambda = m \cdot \alpha \cdot \rho, \qquad \beta = m \cdot \alpha \cdot (1 - \rho),
          \qquad \rho = \texttt{l1\_ratio},

so ``SLIM(alpha, l1_ratio)`` learns what ``ElasticNet(alpha=alpha, l1_ratio=l1_ratio,
positive=True, fit_intercept=False)`` learns on each column.

Solver: cyclic coordinate descent (Friedman, Hastie & Tibshirani 2010, "Regularization paths
for generalized linear models via coordinate descent", J. Stat. Softw. 33(1), eq. 5) with the
non-negativity constraint, on the residual :math:`r = x_j - X w_j`:

.. math:: w_k \leftarrow \frac{\max(0,\ x_k^\top r + \lVert x_k \rVert^2 w_k - \lambda)}
          {\lVert x_k \rVert^2 + \beta},

each coordinate costing the number of users of item :math:`k`. After one full sweep only the
non-zero weights are swept until they settle, then a full sweep checks the rest (the active-set
strategy of the same paper); an item is done when a full sweep moves no weight by more than
``tol`` times the largest weight. Items are solved in parallel (Numba ``prange``), a block of
columns at a time so that memory stays :math:`O(\text{nnz}(X) + n \cdot \text{block})`; the
weights are kept as a sparse matrix (``topk`` keeps the largest per column).
"""

from __future__ import annotations

from typing import ClassVar

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from ...data.interactions import Interactions
from ..base import FOLD_IN, RANKING, Recommender, register
from ..feedback import check_feedback_params, implicit_feedback
from ..query import FallbackLog, History
from ._common import check_int, check_positive, history_feedback

#: Dense entries (n_items x columns) of one block of columns solved at once.
_BLOCK_ENTRIES = 1 << 24


@njit(cache=True)
def _solve_column(j, indptr, indices, data, sq_norms, l1, l2, max_iter, tol, r, w):
    """Coordinate descent for column ``j`` (see the module docstring). ``r`` (n_users) and
    ``w`` (n_items) are work arrays, overwritten: on return ``w`` holds :math:`w_j`.
    Returns the number of sweeps."""
    n_items = indptr.size - 1
    r[:] = 0.0
    w[:] = 0.0
    for p in range(indptr[j], indptr[j + 1]):
        r[indices[p]] = data[p]
    full = True
    sweeps = 0
    for _ in range(max_iter):
        sweeps += 1
        max_dw = 0.0
        max_w = 0.0
        for k in range(n_items):
            if k == j or (not full and w[k] == 0.0):
                continue
            denom = sq_norms[k] + l2
            if denom <= 0.0:
                continue
            old = w[k]
            rho = sq_norms[k] * old
            for p in range(indptr[k], indptr[k + 1]):
                rho += data[p] * r[indices[p]]
            new = (rho - l1) / denom if rho > l1 else 0.0
            if new != old:
                d = new - old
                for p in range(indptr[k], indptr[k + 1]):
                    r[indices[p]] -= d * data[p]
                w[k] = new
                if abs(d) > max_dw:
                    max_dw = abs(d)
            if new > max_w:
                max_w = new
        settled = max_dw <= tol * max_w
        if full and settled:
            break
        full = settled  # active sweeps until they settle, then a full sweep to check the rest
    return sweeps


@njit(cache=True, parallel=True)
def _solve_block(targets, indptr, indices, data, sq_norms, l1, l2, max_iter, tol, n_users, out):
    """Columns ``targets`` solved in parallel into ``out`` (n_items x len(targets))."""
    n_items = indptr.size - 1
    for t in prange(targets.size):
        r = np.empty(n_users)
        w = np.empty(n_items)
        _solve_column(targets[t], indptr, indices, data, sq_norms, l1, l2, max_iter, tol, r, w)
        out[:, t] = w


def slim_weights(x: sp.spmatrix, alpha: float, l1_ratio: float, max_iter: int = 100,
                 tol: float = 1e-4, topk: int | None = None) -> sp.csc_matrix:
    """The SLIM weight matrix :math:`W` (n_items x n_items, CSC, float64) of the feedback
    matrix ``x`` (users x items); column ``j`` is item ``j``'s :math:`w_j`. Runs on the current
    Numba thread count."""
    xc = sp.csc_matrix(x, dtype=np.float64)
    xc.sort_indices()
    n_users, n_items = xc.shape
    l1 = n_users * alpha * l1_ratio
    l2 = n_users * alpha * (1.0 - l1_ratio)
    sq_norms = np.asarray(xc.multiply(xc).sum(axis=0), dtype=np.float64).ravel()
    indptr = xc.indptr.astype(np.int64)
    indices = xc.indices.astype(np.int64)
    block = int(max(1, min(n_items, _BLOCK_ENTRIES // max(n_items, 1))))
    parts = []
    for start in range(0, n_items, block):
        targets = np.arange(start, min(start + block, n_items), dtype=np.int64)
        out = np.zeros((n_items, targets.size))
        _solve_block(targets, indptr, indices, xc.data, sq_norms, float(l1), float(l2),
                     int(max_iter), float(tol), n_users, out)
        if topk is not None and topk < n_items:
            # keep the topk largest per column (ties to the lower item index)
            order = np.argsort(-out, axis=0, kind="stable")
            out[order[topk:], np.arange(targets.size)[None, :]] = 0.0
        parts.append(sp.csc_matrix(out))
    w = sp.hstack(parts, format="csc") if parts else sp.csc_matrix((n_items, n_items))
    w.eliminate_zeros()
    w.sort_indices()
    return w


@register("SLIM")
class SLIM(Recommender):
    """SLIM (Ning & Karypis 2011): scores :math:`x_u W` with sparse non-negative weights.

    Parameters
    ----------
    alpha : float, default 1e-4
        Overall penalty, as scikit-learn's ``ElasticNet`` (see the module docstring for
        :math:`\\lambda` and :math:`\\beta`). Must be positive.
    l1_ratio : float, default 0.1
        Share of the penalty on the L1 norm, in [0, 1].
    max_iter : int, default 100
        Most coordinate-descent sweeps per item.
    tol : float, default 1e-4
        An item is done when a full sweep moves no weight by more than ``tol`` times its
        largest weight.
    topk : int, optional
        Keep only the ``topk`` largest weights of each column (an item's ``topk`` strongest
        predictors); None keeps all.
    threshold : float, optional
        Keep only interactions with a value at least this, in training and in scored histories.
    binarize : bool, default True
        Every kept interaction counts 1; else its value is used.
    num_threads : int, optional
        Threads solving items in parallel; None uses every core Numba sees.

    Attributes
    ----------
    weights_ : csr_matrix (n_items, n_items)
        :math:`W`; row ``k`` holds how much item ``k`` in a history adds to every item.
    feedback_dropped_ : int
        Training interactions dropped by ``threshold`` (or with a non-positive value).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN})
    state = ("weights_", "feedback_dropped_")
    scores_from_history = True

    def __init__(self, alpha: float = 1e-4, l1_ratio: float = 0.1, max_iter: int = 100,
                 tol: float = 1e-4, topk: int | None = None, threshold: float | None = None,
                 binarize: bool = True, num_threads: int | None = None):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter
        self.tol = tol
        self.topk = topk
        self.threshold = threshold
        self.binarize = binarize
        self.num_threads = num_threads

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        check_feedback_params(self.threshold, self.binarize, "SLIM")
        alpha = check_positive("SLIM", "alpha", self.alpha)
        l1_ratio = check_positive("SLIM", "l1_ratio", self.l1_ratio, allow_zero=True)
        if l1_ratio > 1:
            raise ValueError(f"SLIM: l1_ratio must be in [0, 1], got {self.l1_ratio!r}")
        max_iter = check_int("SLIM", "max_iter", self.max_iter)
        tol = check_positive("SLIM", "tol", self.tol, allow_zero=True)
        topk = check_int("SLIM", "topk", self.topk, allow_none=True)
        threads = check_int("SLIM", "num_threads", self.num_threads, allow_none=True)
        fb = implicit_feedback(train, self.threshold, bool(self.binarize))
        self.feedback_dropped_ = fb.dropped
        previous = numba.get_num_threads()
        try:
            if threads is not None:
                numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            w = slim_weights(fb.matrix, alpha, l1_ratio, max_iter, tol, topk)
        finally:
            numba.set_num_threads(previous)
        self.weights_ = sp.csr_matrix(w, dtype=np.float32)
        self.weights_.sort_indices()

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        h = history_feedback(history.matrix, self.threshold, bool(self.binarize))
        scores = np.asarray((h.astype(np.float32) @ self.weights_).toarray(), dtype=np.float32)
        empty = np.diff(h.indptr) == 0
        if empty.any():  # every interaction of the row was below the threshold
            fallbacks.mark("no history above threshold: popularity", empty)
            scores[empty] = self.item_popularity_
        return scores
