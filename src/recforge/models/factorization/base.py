r"""The shared base of the factor models: ratings, full ranking, item/query vectors, fold-in.

Every model of the family predicts

.. math:: \hat r_{ui} = \mu + b_u + b_i + q_i^\top p_u

(``biased=False``: :math:`\hat r_{ui} = q_i^\top p_u`), with :math:`p_u` the user's factors —
or, for models such as SVD++ or NSVD1, the user's *query vector* built from the factors and
the items the user rated. A subclass fits ``mu_``, ``user_bias_``, ``item_bias_``,
``user_factors_`` and ``item_factors_`` (float64) in ``_fit`` and, where the query vector is
more than :math:`p_u`, overrides :meth:`FactorModel.user_vectors`.

Shared here, written once:

* ``_predict`` and ``_score`` (one matrix product per batch of rows);
* ``item_vectors`` / ``query_vectors`` (``EMBEDDINGS``): :math:`[q_i, b_i, 1]` and
  :math:`[p_u, 1, \mu + b_u]`, whose dot product is the score, so an ANN index or a distributed
  scorer serves any factor model without knowing its class;
* fold-in (``FOLD_IN``) of an unknown or anonymous row from its ratings :math:`H`, item factors
  fixed: the regularised least-squares problem

  .. math:: \min_{p, b} \sum_{i \in H} (r_i - \mu - b_i - b - q_i^\top p)^2
            + \lambda_p \lVert p \rVert^2 + \lambda_b b^2

  solved exactly per row (:func:`fold_in_least_squares`); models whose user side is a
  projection (NSVD1, PureSVD) or needs its own solve (SVD++) override :meth:`fold_in`;
* similar items by the cosine of the item factors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..base import EMBEDDINGS, FOLD_IN, RANKING, RATING, SIMILAR_ITEMS, Recommender
from ..query import FallbackLog, History


def padded_width(k: int, dtype) -> int:
    """``k`` rounded up to a whole 64-byte SIMD register of ``dtype`` (16 float32, 8 float64):
    kernels whose zero factor columns stay zero run on the padded width, without a remainder
    loop, and the caller keeps the first ``k`` columns."""
    lanes = 64 // np.dtype(dtype).itemsize
    return -(-int(k) // lanes) * lanes


def aligned_zeros(shape: tuple[int, int], dtype, align: int = 64) -> np.ndarray:
    """A C-contiguous zero array whose data starts on an ``align``-byte boundary.

    NumPy's allocator only guarantees 16 bytes; with rows of :func:`padded_width` columns on a
    64-byte base every row starts on a cache line, so no SIMD load or store of a row straddles
    two lines (a split access costs two L1 accesses)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    buf = np.zeros(n + align, dtype=np.uint8)
    start = (-buf.ctypes.data) % align
    return buf[start:start + n].view(dtype).reshape(shape)


def fold_in_least_squares(history: sp.csr_matrix, item_factors: np.ndarray, item_bias: np.ndarray,
                          mu: float, reg_factors: float, reg_bias: float,
                          biased: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """User factors and biases of history rows with the item side fixed (see the module
    docstring): for each row, :math:`(X^\\top X + \\Lambda) w = X^\\top y` with
    :math:`X = [Q_H, 1]`, :math:`y = r - \\mu - b_i` and :math:`\\Lambda = \\mathrm{diag}
    (\\lambda_p, \\dots, \\lambda_p, \\lambda_b)` (``biased=False``: :math:`X = Q_H`, :math:`y = r`).
    Rows without ratings get zeros. Returns ``(factors (n, k), biases (n,))``."""
    h = sp.csr_matrix(history, dtype=np.float64)
    n_rows, k = h.shape[0], item_factors.shape[1]
    factors = np.zeros((n_rows, k))
    biases = np.zeros(n_rows)
    lam = np.full(k + 1 if biased else k, float(reg_factors))
    if biased:
        lam[-1] = float(reg_bias)
    for r in range(n_rows):
        s, e = h.indptr[r], h.indptr[r + 1]
        if s == e:
            continue
        items = h.indices[s:e]
        q = item_factors[items]
        if biased:
            x = np.hstack([q, np.ones((items.size, 1))])
            y = h.data[s:e] - mu - item_bias[items]
        else:
            x, y = q, h.data[s:e]
        w = np.linalg.solve(x.T @ x + np.diag(lam), x.T @ y)
        factors[r] = w[:k]
        if biased:
            biases[r] = w[k]
    return factors, biases


class FactorModel(Recommender):
    """Base class of the factor models (see the module docstring).

    Subclasses set ``biased`` (a hyperparameter or a class attribute), fit the five state
    arrays in ``_fit``, and give the regularisation of the fold-in solve by
    :meth:`fold_in_regularisation`.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, SIMILAR_ITEMS, FOLD_IN,
                                                       EMBEDDINGS})
    state = ("mu_", "user_bias_", "item_bias_", "user_factors_", "item_factors_")
    similarity: ClassVar[str] = "dot"
    biased: bool = True
    #: True when the user side is a function of the history alone (NSVD1, PureSVD): every row
    #: that carries a history is folded in, a known user too; else only unknown rows are.
    projects_history: ClassVar[bool] = False

    # ------------------------------------------------------------------ hyperparameters
    def rate(self, name: str) -> float:
        """The learning rate (``lr_*``) or regularisation (``reg_*``) in effect for one
        parameter: its own hyperparameter where set, else ``lr_all`` / ``reg_all`` (Surprise's
        convention). A ``ValueError`` names it unless it is a finite number >= 0."""
        value = getattr(self, name)
        if value is None:
            value = getattr(self, "lr_all" if name.startswith("lr_") else "reg_all")
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: {name} (or {name.split('_')[0]}_all) must be "
                             f"a finite number >= 0, got {value!r}")
        return value

    def check_count(self, name: str, minimum: int = 1) -> int:
        """The integer hyperparameter ``name``; a ``ValueError`` names it unless it is an
        integer >= ``minimum``."""
        value = getattr(self, name)
        if isinstance(value, bool) or not np.isfinite(float(value)) or int(value) != value \
                or value < minimum:
            raise ValueError(f"{type(self).__name__}: {name} must be an integer >= {minimum}, "
                             f"got {value!r}")
        return int(value)

    # ------------------------------------------------------------------ user side
    def fold_in_regularisation(self) -> tuple[float, float]:
        """(lambda_p, lambda_b) of the fold-in solve; by default the model's ``reg_pu`` /
        ``reg_bu`` or ``reg_all`` hyperparameters when it has them, else 0.02."""
        default = float(getattr(self, "reg_all", 0.02) or 0.02)
        reg_p = getattr(self, "reg_pu", None)
        reg_b = getattr(self, "reg_bu", None)
        return (default if reg_p is None else float(reg_p),
                default if reg_b is None else float(reg_b))

    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Query factors and user biases of unknown rows from their ratings (item side fixed)."""
        reg_p, reg_b = self.fold_in_regularisation()
        return fold_in_least_squares(history, self.item_factors_, self.item_bias_, self.mu_,
                                     reg_p, reg_b, biased=bool(self.biased))

    def user_vectors(self, users: np.ndarray, history: History | sp.csr_matrix | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """(factors, biases) of query rows: known users' fitted ones (:meth:`known_vectors`), the
        others folded in from their history (with ``projects_history``, every row that has
        one)."""
        users = np.asarray(users, dtype=np.int64)
        k = self.item_factors_.shape[1]
        factors = np.zeros((users.size, k))
        biases = np.zeros(users.size)
        known = users >= 0
        factors[known], biases[known] = self.known_vectors(users[known])
        if history is not None:
            h = history.matrix if isinstance(history, History) else sp.csr_matrix(history)
            fold = (np.diff(h.indptr) > 0) if self.projects_history else ~known
            rows = np.flatnonzero(fold)
            if rows.size:
                factors[rows], biases[rows] = self.fold_in(h[rows])
        return factors, biases

    def known_vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(factors, biases) of known inner users as fitted (SVD++ adds its implicit term)."""
        return self.user_factors_[users], self.user_bias_[users]

    # ------------------------------------------------------------------ vectors
    def item_vectors(self) -> np.ndarray:
        """:math:`[q_i, b_i, 1]` per item (float32)."""
        n = self.item_factors_.shape[0]
        bias = self.item_bias_ if self.biased else np.zeros(n)
        return np.hstack([self.item_factors_, bias[:, None], np.ones((n, 1))]).astype(np.float32)

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """:math:`[p_u, 1, \\mu + b_u]` per query row (float32); the dot product with
        :meth:`item_vectors` is the predicted rating."""
        factors, biases = self.user_vectors(users, history)
        offset = (self.mu_ + biases) if self.biased else np.zeros(len(biases))
        ones = np.ones((len(biases), 1)) if self.biased else np.zeros((len(biases), 1))
        return np.hstack([factors, ones, offset[:, None]]).astype(np.float32)

    # ------------------------------------------------------------------ scoring
    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        factors, biases = self.user_vectors(np.unique(u), None)
        rows = np.searchsorted(np.unique(u), u)
        dot = np.einsum("ij,ij->i", factors[rows], self.item_factors_[i])
        if not self.biased:
            return dot
        return self.mu_ + biases[rows] + self.item_bias_[i] + dot

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        factors, biases = self.user_vectors(users, history)
        scores = factors @ self.item_factors_.T
        if self.biased:
            scores += (self.mu_ + biases)[:, None] + self.item_bias_[None, :]
        return scores.astype(np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        q = self.item_factors_
        norms = np.linalg.norm(q, axis=1)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (q[np.asarray(items)] * inv[np.asarray(items), None]) @ (q * inv[:, None]).T
