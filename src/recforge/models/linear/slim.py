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

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from ...data.interactions import Interactions
from ...interrupt import check, compiled
from .._threads import numba_threads
from ..base import FOLD_IN, INCREMENTAL, RANKING, Recommender, register
from ..feedback import check_feedback_params, implicit_feedback
from ..query import FallbackLog, History
from ._common import check_int, check_positive, grow_feedback, grow_maps, history_feedback

#: Dense entries (n_items x columns) of one block of columns solved at once.
_BLOCK_ENTRIES = 1 << 24


@njit(cache=True)
def _solve_column(j, indptr, indices, data, sq_norms, l1, l2, max_iter, tol, r, w, warm=False):
    """Coordinate descent for column ``j`` (see the module docstring). ``r`` (n_users) and
    ``w`` (n_items) are work arrays, overwritten: on return ``w`` holds :math:`w_j`. With
    ``warm`` the descent starts from the ``w`` given (its entry ``j`` ignored), else from 0.
    Returns the number of sweeps."""
    n_items = indptr.size - 1
    r[:] = 0.0
    if not warm:
        w[:] = 0.0
    w[j] = 0.0
    for p in range(indptr[j], indptr[j + 1]):
        r[indices[p]] = data[p]
    if warm:
        for k in range(n_items):
            if w[k] != 0.0:
                for p in range(indptr[k], indptr[k + 1]):
                    r[indices[p]] -= w[k] * data[p]
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
def _solve_block(targets, indptr, indices, data, sq_norms, l1, l2, max_iter, tol, n_users, out,
                 warm):
    """Columns ``targets`` solved in parallel into ``out`` (n_items x len(targets)); with
    ``warm`` each starts from the column of ``out`` given."""
    n_items = indptr.size - 1
    for t in prange(targets.size):
        r = np.empty(n_users)
        w = np.empty(n_items)
        if warm:
            w[:] = out[:, t]
        _solve_column(targets[t], indptr, indices, data, sq_norms, l1, l2, max_iter, tol, r, w,
                      warm)
        out[:, t] = w


def slim_weights(x: sp.spmatrix, alpha: float, l1_ratio: float, max_iter: int = 100,
                 tol: float = 1e-4, topk: int | None = None, columns: np.ndarray | None = None,
                 start: sp.spmatrix | None = None) -> sp.csc_matrix:
    """The SLIM weight matrix :math:`W` (n_items x n_items, CSC, float64) of the feedback
    matrix ``x`` (users x items); column ``j`` is item ``j``'s :math:`w_j`. Runs on the current
    Numba thread count.

    ``columns`` (item indices): solve only these, the result's other columns are zero. ``start``
    (n_items x n_items): warm start, each column's descent begins from its column of ``start``
    (the optimum is the same, strictly convex for ``l1_ratio < 1``; fewer sweeps when the start
    is close)."""
    xc = sp.csc_matrix(x, dtype=np.float64)
    xc.sort_indices()
    n_users, n_items = xc.shape
    l1 = n_users * alpha * l1_ratio
    l2 = n_users * alpha * (1.0 - l1_ratio)
    sq_norms = np.asarray(xc.multiply(xc).sum(axis=0), dtype=np.float64).ravel()
    indptr = xc.indptr.astype(np.int64)
    indices = xc.indices.astype(np.int64)
    block = int(max(1, min(n_items, _BLOCK_ENTRIES // max(n_items, 1))))
    cols = np.arange(n_items, dtype=np.int64) if columns is None else \
        np.unique(np.asarray(columns, dtype=np.int64))
    init = None if start is None else sp.csc_matrix(start, dtype=np.float64)
    rows, col_idx, vals = [], [], []
    for first in range(0, cols.size, block):
        check()  # a stop comes within one block
        targets = cols[first:first + block]
        out = np.zeros((n_items, targets.size)) if init is None else init[:, targets].toarray()
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            _solve_block(targets, indptr, indices, xc.data, sq_norms, float(l1), float(l2),
                         int(max_iter), float(tol), n_users, out, init is not None)
        if topk is not None and topk < n_items:
            # keep the topk largest per column (ties to the lower item index)
            order = np.argsort(-out, axis=0, kind="stable")
            out[order[topk:], np.arange(targets.size)[None, :]] = 0.0
        r, c = np.nonzero(out)
        rows.append(r)
        col_idx.append(targets[c])
        vals.append(out[r, c])
    w = sp.csc_matrix((np.concatenate(vals) if vals else np.zeros(0),
                       (np.concatenate(rows) if rows else np.zeros(0, np.int64),
                        np.concatenate(col_idx) if col_idx else np.zeros(0, np.int64))),
                      shape=(n_items, n_items))
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
    feedback_ : csr_matrix (n_users, n_items)
        The training feedback :math:`X`, kept so that ``partial_fit`` can grow it.
    resolved_columns_ : int
        After ``partial_fit``: how many columns it solved (not saved).
    feedback_dropped_ : int
        Training interactions dropped by ``threshold`` (or with a non-positive value).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN, INCREMENTAL})
    state = ("weights_", "feedback_", "feedback_dropped_")
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

    def _check_params(self) -> tuple:
        check_feedback_params(self.threshold, self.binarize, "SLIM")
        alpha = check_positive("SLIM", "alpha", self.alpha)
        l1_ratio = check_positive("SLIM", "l1_ratio", self.l1_ratio, allow_zero=True)
        if l1_ratio > 1:
            raise ValueError(f"SLIM: l1_ratio must be in [0, 1], got {self.l1_ratio!r}")
        max_iter = check_int("SLIM", "max_iter", self.max_iter)
        tol = check_positive("SLIM", "tol", self.tol, allow_zero=True)
        topk = check_int("SLIM", "topk", self.topk, allow_none=True)
        threads = check_int("SLIM", "num_threads", self.num_threads, allow_none=True)
        return alpha, l1_ratio, max_iter, tol, topk, threads

    def _solve(self, columns=None, start=None) -> sp.csc_matrix:
        alpha, l1_ratio, max_iter, tol, topk, threads = self._check_params()
        with numba_threads(threads, "SLIM"):
            return slim_weights(self.feedback_, alpha, l1_ratio, max_iter, tol, topk,
                                columns=columns, start=start)

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        self._check_params()
        fb = implicit_feedback(train, self.threshold, bool(self.binarize))
        self.feedback_ = fb.matrix
        self.feedback_dropped_ = fb.dropped
        self._set_weights(self._solve())

    def _set_weights(self, w: sp.spmatrix) -> None:
        self.weights_ = sp.csr_matrix(w, dtype=np.float32)
        self.weights_.eliminate_zeros()
        self.weights_.sort_indices()

    def partial_fit(self, interactions: Interactions, resolve: str = "new") -> SLIM:
        """Absorb new interactions without solving every column again.

        New users and items extend the id maps and the stored feedback :math:`X` grows (a
        repeated pair adds its value; binary stays 1). New users need nothing else: rows are
        scored from their history. The columns re-solved, each warm-started from its current
        weights, are those whose problem the new interactions change: new items' columns, the
        columns of items with new interactions (their target :math:`x_j` changed), and every
        column in which such an item has a weight (the residual on the rows that gained it
        changed). Any other column :math:`j` sees the same residual as before (zero on the new
        rows, where neither :math:`x_j` nor its predictors have entries) and keeps its weights;
        they are what a refit gives except that the penalties :math:`\\lambda, \\beta` scale with
        the number of users, which grew. Costs the re-solved columns' sweeps, usually a few
        since the warm start is close. ``resolve="new"`` solves the new items' columns only
        (cheapest; the old columns keep their weights, which ignore the new rows)."""
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError(f"SLIM.partial_fit expects Interactions, got {type(interactions).__name__}")
        self._check_params()
        if resolve not in ("touched", "new"):
            raise ValueError(f"SLIM.partial_fit: resolve must be 'touched' or 'new', got {resolve!r}")
        fb = implicit_feedback(interactions, self.threshold, bool(self.binarize))
        n_old_items = self.n_items_
        new_users, new_items = grow_maps(self, interactions)
        self.feedback_ = grow_feedback(self.feedback_, fb.matrix, new_users, new_items,
                                       (self.n_users_, self.n_items_), bool(self.binarize))
        self.feedback_dropped_ = int(self.feedback_dropped_) + fb.dropped
        shape = (self.n_items_, self.n_items_)
        old = self.weights_.tocoo()
        start = sp.csr_matrix((old.data.astype(np.float64), (old.row, old.col)), shape=shape)
        touched = np.unique(new_items[fb.matrix.tocoo().col])
        mask = np.zeros(self.n_items_, dtype=bool)
        mask[n_old_items:] = True
        if resolve == "touched":
            mask[touched] = True
            mask[np.unique(start[touched].indices)] = True  # columns where a touched item weighs
        columns = np.flatnonzero(mask)
        solved = self._solve(columns=columns, start=start)
        keep = start @ sp.diags((~mask).astype(np.float64))  # the columns not re-solved
        self._set_weights(keep + solved)
        self.resolved_columns_ = int(columns.size)
        return self

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        h = history_feedback(history.matrix, self.threshold, bool(self.binarize))
        scores = np.asarray((h.astype(np.float32) @ self.weights_).toarray(), dtype=np.float32)
        empty = np.diff(h.indptr) == 0
        if empty.any():  # every interaction of the row was below the threshold
            fallbacks.mark("no history above threshold: popularity", empty)
            scores[empty] = self.item_popularity_
        return scores
