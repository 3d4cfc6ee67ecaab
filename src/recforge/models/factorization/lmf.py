r"""LMF: logistic matrix factorization of implicit feedback, fitted by AdaGrad.

Johnson (2014), *Logistic matrix factorization for implicit feedback data*, NIPS workshop on
distributed machine learning and matrix computations. The probability that user :math:`u`
prefers item :math:`i` is

.. math:: p(l_{ui} \mid x_u, y_i, \beta_u, \beta_i) = \sigma(s_{ui}), \qquad
          s_{ui} = x_u^\top y_i + \beta_u + \beta_i

and each observation :math:`r_{ui}` counts as :math:`c_{ui} = \alpha r_{ui}` positive
observations (eq. 2; ``implicit`` takes :math:`r_{ui}` itself, i.e. :math:`\alpha = 1`, so
ratings 1..5 weigh 1..5 unless ``binarize``), every pair also as one negative, so the log posterior is

.. math:: \log p(X, Y, \beta \mid R) = \sum_{u,i} c_{ui}\bigl(s_{ui} - \log(1 + e^{s_{ui}})\bigr)
          - \log(1 + e^{s_{ui}}) - \tfrac{\lambda}{2}\lVert x_u\rVert^2
          - \tfrac{\lambda}{2}\lVert y_i\rVert^2

(eq. 3); the prior covers the factors only, not the biases. Its gradient in :math:`x_u`
(eq. 4) is :math:`\sum_i c_{ui} y_i - (1 + c_{ui}) \sigma(s_{ui}) y_i - \lambda x_u`, in
:math:`\beta_u` (eq. 5) the same without the prior and with 1 for :math:`y_i`. The sum of the
:math:`-\sigma(s_{ui}) y_i` terms over all items is replaced, as the paper proposes for sparse
data, by a sum over :math:`n_u = \min(\text{neg\_prop} \cdot |P_u|, \text{max\_negatives})`
items drawn at random (with probability :math:`\propto` the item's training count by default,
``sampling="popularity"``, or uniformly), giving per row the estimate

.. math:: g_u = \sum_{i \in P_u} c_{ui} \bigl(1 - \sigma(s_{ui})\bigr) y_i
          - \sum_{j \in S_u} \sigma(s_{uj})\, y_j - \lambda x_u

(:func:`lmf_gradient`, the exact gradient of :func:`lmf_log_likelihood` for the drawn
:math:`S_u`). The drawn terms are not scaled up to the full sum: as in the paper, sampling the
negatives lowers their total weight against the positives, which the paper balances through
:math:`\alpha`. The cap matters: ``neg_prop`` :math:`\times |P_u|` alone (30 per pair) nearly
covers every item on ML-100K and ranks poorly (HR@10 0.036 against 0.108 with the cap, see
``docs/models-implicit.md``); ``implicit``'s ``LogisticMatrixFactorization`` draws
:math:`\min(\text{neg\_prop} \cdot |P_u|, k + 2)`, its vectors' width standing where the item
count was meant, i.e. 32 at its defaults, which ``max_negatives=32`` reproduces for any
:math:`k`. The paper's alternating AdaGrad (Duchi, Hazan & Singer 2011) then updates every
user with the items fixed, then every item with the users fixed:
:math:`G_u \leftarrow G_u + g_u^2`, :math:`x_u \leftarrow x_u + \eta\, g_u / \sqrt{10^{-6} +
G_u}` (per coordinate; the biases are coordinates of the augmented vectors
:math:`[x_u, \beta_u, 1]` and :math:`[y_i, 1, \beta_i]`, as in ``implicit``, which however also
shrinks the biases by :math:`\lambda`). Factors start from :math:`\mathcal N(0, 1)` as in
``implicit`` (the paper does not say; zero for rows without training pairs).

Every row of every pass draws from its own SplitMix64 stream, seeded by the fit's seed, the
epoch, the pass and the row, so the fit is the same for any ``num_threads``.

**Fold-in**: the user pass alone, items fixed, ``fold_in_epochs`` AdaGrad steps from zero with
the same sampler, seeded by ``fold_in_seed_`` and the row's items. **Incremental updates**
(:meth:`LMF.partial_fit`): id maps grow, new rows start as in ``fit``, then epochs of both passes
over the rows the new interactions touch (their gradients use all their old and new pairs),
continuing the AdaGrad sums.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
import scipy.sparse as sp
from numba import prange

from ...data import Interactions
from ...interrupt import check, compiled
from .._threads import numba_threads
from ..base import EMBEDDINGS, FOLD_IN, INCREMENTAL, RANKING, SIMILAR_ITEMS, register
from ..feedback import check_feedback_params, implicit_feedback
from .base import FactorModel
from .bpr import (
    SAMPLINGS,
    _draw_item,
    _mix,
    check_rate,
    grow_positives,
    history_positives,
    negative_cdf,
    row_seed,
)

#: Floating-point freedoms of the inner loops: reassociated sums and fused multiply-adds let
#: the dot products and row updates vectorise (about twice as fast); no finite-math
#: assumption, so an overflow still shows as a non-finite parameter.
_FAST = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, inline="always")
def _sigmoid(x):  # pragma: no cover - compiled
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@numba.njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _dot(a, b):  # pragma: no cover - compiled
    """A plain loop (the library dot of short vectors calls BLAS, whose per-call cost would
    dominate here)."""
    out = 0.0
    for f in range(a.size):
        out += a[f] * b[f]
    return out


@numba.njit(cache=True, nogil=True)
def _log1pexp(x):  # pragma: no cover - compiled
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


@numba.njit(cache=True, nogil=True)
def lmf_log_likelihood(x, Y, pos, conf, neg, reg, n_reg):  # pragma: no cover - compiled
    r"""The row objective whose gradient :func:`lmf_gradient` is (module docstring):
    :math:`\sum_{i \in P} c_i (s_i - \log(1 + e^{s_i})) - \sum_{j \in S} \log(1 + e^{s_j})
    - \tfrac{\lambda}{2} \lVert x_{:n_{reg}} \rVert^2`, with :math:`s = Y x` (the augmented
    vectors; the prior on the first ``n_reg`` coordinates, the factors)."""
    out = 0.0
    for a in range(pos.size):
        s = _dot(Y[pos[a]], x)
        out += conf[a] * (s - _log1pexp(s))
    for b in range(neg.size):
        out -= _log1pexp(_dot(Y[neg[b]], x))
    return out - 0.5 * reg * _dot(x[:n_reg], x[:n_reg])


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def lmf_gradient(x, Y, pos, conf, neg, reg, n_reg, out):  # pragma: no cover - compiled
    r""":math:`g = \sum_{i \in P} c_i (1 - \sigma(s_i)) y_i - \sum_{j \in S} \sigma(s_j) y_j
    - \lambda x` into ``out`` (module docstring), the prior on the first ``n_reg`` coordinates
    only (the factors; the bias and the constant 1 have none)."""
    d = x.size
    for f in range(d):
        out[f] = -reg * x[f] if f < n_reg else 0.0
    for a in range(pos.size):
        y = Y[pos[a]]
        w = conf[a] * (1.0 - _sigmoid(_dot(y, x)))
        for f in range(d):
            out[f] += w * y[f]
    for b in range(neg.size):
        y = Y[neg[b]]
        w = _sigmoid(_dot(y, x))
        for f in range(d):
            out[f] -= w * y[f]


@numba.njit(cache=True, nogil=True, inline="always")
def _negative_count(neg_prop, max_neg, n_pos):  # pragma: no cover - compiled
    """Negatives of one row's step: ``neg_prop`` per positive pair, at most ``max_neg``
    (negative: no cap)."""
    n = neg_prop * n_pos
    return n if max_neg < 0 else min(n, max_neg)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _row_update(x, G, Y, pos, conf, n_neg, cdf, states, lr, reg, const, neg, grad):  # pragma: no cover
    """One AdaGrad step of one row (fresh negatives from ``states``); ``x[const]`` stays 1."""
    n_cols = Y.shape[0]
    for b in range(n_neg):
        neg[b] = _draw_item(states, 0, n_cols, cdf)
    lmf_gradient(x, Y, pos, conf, neg[:n_neg], reg, x.size - 2, grad)  # biases: no prior
    for f in range(x.size):
        G[f] += grad[f] * grad[f]
        x[f] += lr / math.sqrt(1e-6 + G[f]) * grad[f]
    x[const] = 1.0


@numba.njit(cache=True, nogil=True, parallel=True)
def _lmf_pass(rows, indptr, indices, conf, X, Y, G, cdf, lr, reg, neg_prop, max_neg, seed,
              const):  # pragma: no cover - compiled
    """One AdaGrad step of each row in ``rows`` of ``X`` with ``Y`` fixed, in parallel (rows
    are independent); row ``r`` draws from a stream seeded by ``seed`` and ``r``."""
    d = X.shape[1]
    for a in prange(rows.size):
        r = rows[a]
        s = indptr[r]
        e = indptr[r + 1]
        if e == s:
            continue
        states = np.empty(1, dtype=np.uint64)
        states[0] = _mix(seed ^ (np.uint64(r) + np.uint64(0x9E3779B97F4A7C15)))
        n_neg = _negative_count(neg_prop, max_neg, e - s)
        neg = np.empty(n_neg, dtype=np.int64)
        grad = np.empty(d)
        _row_update(X[r], G[r], Y, indices[s:e], conf[s:e], n_neg, cdf, states, lr, reg,
                    const, neg, grad)


@numba.njit(cache=True, nogil=True)
def _lmf_fold_in(indptr, indices, conf, Y, cdf, lr, reg, neg_prop, max_neg, epochs, seed,
                 out):  # pragma: no cover - compiled
    """Augmented user vectors ``[x, beta, 1]`` of history rows, items fixed (module
    docstring)."""
    d = Y.shape[1]
    states = np.empty(1, dtype=np.uint64)
    G = np.empty(d)
    grad = np.empty(d)
    for r in range(indptr.size - 1):
        s = indptr[r]
        e = indptr[r + 1]
        x = out[r]
        x[:] = 0.0
        x[d - 1] = 1.0
        if e == s:
            continue
        G[:] = 0.0
        states[0] = row_seed(seed, indices[s:e])
        n_neg = _negative_count(neg_prop, max_neg, e - s)
        neg = np.empty(n_neg, dtype=np.int64)
        for _ in range(epochs):
            _row_update(x, G, Y, indices[s:e], conf[s:e], n_neg, cdf, states, lr, reg, d - 1,
                        neg, grad)


@register("LMF")
class LMF(FactorModel):
    r"""Logistic matrix factorization (Johnson 2014) by alternating AdaGrad.

    Scores :math:`s_{ui} = x_u^\top y_i + \beta_u + \beta_i` (the base's biased form with
    :math:`\mu = 0`); the model, the sampled gradient and the updates are in the module
    docstring. Hyperparameters follow ``implicit``'s ``LogisticMatrixFactorization``.

    Parameters
    ----------
    factors : int
        Number of latent factors (30).
    learning_rate : float
        AdaGrad step :math:`\eta` (1.0).
    regularization : float
        :math:`\lambda` (0.6).
    iterations : int
        Epochs; one epoch updates every user, then every item (30).
    neg_prop : int
        Negative samples per positive pair of a row (30), up to ``max_negatives``.
    max_negatives : int or None
        Most negatives of one row's step (32: ``implicit``'s effective count at its defaults;
        None: ``neg_prop`` :math:`\times |P_u|`, which ranks far worse; module docstring).
    alpha : float
        Confidence scale: :math:`c_{ui} = \alpha r_{ui}` (1.0).
    sampling : {"popularity", "uniform"}
        Negatives with probability :math:`\propto` training count (as ``implicit``) or uniformly.
    threshold : float, optional
        Keep only interactions whose value is at least this.
    binarize : bool
        Set every kept value to 1 before the confidence (False: counts and ratings weigh).
    fold_in_epochs : int, optional
        AdaGrad steps of the fold-in per history row (None: ``iterations``).
    random_state : int, Generator or None, default 0
        Seeds the initial factors and the random streams.
    num_threads : int, optional
        Threads of the training (None: all cores); the result does not depend on it.

    Attributes
    ----------
    user_factors_, item_factors_, user_bias_, item_bias_
        :math:`X`, :math:`Y`, :math:`\beta_u`, :math:`\beta_i` (float64); ``mu_`` is 0.
    positive_counts_ : ndarray of int
        Kept training pairs per item (the popularity of the negative sampler).
    fold_in_seed_ : int
        Seed of the fold-in streams.
    user_adagrad_, item_adagrad_
        AdaGrad's sums of squared gradients (continued by ``partial_fit``).
    epoch_seconds_ : list of float
        Wall-clock seconds of each epoch.
    feedback_dropped_ : int
        Interactions left out by ``threshold`` (or non-positive values).
    """

    capabilities = frozenset({RANKING, SIMILAR_ITEMS, FOLD_IN, INCREMENTAL, EMBEDDINGS})
    state = ("fold_in_seed_", "positive_counts_", "user_adagrad_", "item_adagrad_")
    biased = True

    def __init__(self, factors: int = 30, learning_rate: float = 1.0,
                 regularization: float = 0.6, iterations: int = 30, neg_prop: int = 30,
                 max_negatives: int | None = 32, alpha: float = 1.0, sampling: str = "popularity",
                 threshold: float | None = None, binarize: bool = False,
                 fold_in_epochs: int | None = None, random_state=0,
                 num_threads: int | None = None):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.neg_prop = neg_prop
        self.max_negatives = max_negatives
        self.alpha = alpha
        self.sampling = sampling
        self.threshold = threshold
        self.binarize = binarize
        self.fold_in_epochs = fold_in_epochs
        self.random_state = random_state
        self.num_threads = num_threads

    # ------------------------------------------------------------------ hyperparameters
    def _check_params(self) -> None:
        owner = type(self).__name__
        self.check_count("factors")
        self.check_count("iterations", minimum=0)
        self.check_count("neg_prop", minimum=0)
        if self.max_negatives is not None:
            self.check_count("max_negatives", minimum=0)
        if self.fold_in_epochs is not None:
            self.check_count("fold_in_epochs", minimum=0)
        check_rate(self.learning_rate, "learning_rate", owner)
        check_rate(self.regularization, "regularization", owner)
        check_rate(self.alpha, "alpha", owner, positive=True)
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"{owner}: sampling must be one of {SAMPLINGS}, got "
                             f"{self.sampling!r}")
        check_feedback_params(self.threshold, self.binarize, owner)

    def _max_negatives(self) -> int:
        """The kernels' cap on the negatives of a row's step (-1: none)."""
        return -1 if self.max_negatives is None else int(self.max_negatives)

    def _confidence(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        if self.binarize:
            m.data[:] = 1.0
        m.data *= float(self.alpha)
        return m

    def _initial(self, rng, n: int, has_rows: np.ndarray, user_side: bool) -> np.ndarray:
        """(n, k + 2) from N(0, 1), zero rows without pairs; the constant column is 1 (column
        k + 1 for users, k for items)."""
        k = int(self.factors)
        x = rng.normal(size=(n, k + 2))
        x[~has_rows] = 0.0
        x[:, k + 1 if user_side else k] = 1.0
        return x

    # ------------------------------------------------------------------ fitting
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        fb = implicit_feedback(train, threshold=self.threshold, binarize=bool(self.binarize))
        self.feedback_dropped_ = fb.dropped
        self._positives = fb.matrix
        m = self._confidence(fb.matrix)
        rng = np.random.default_rng(self.random_state)
        X = self._initial(rng, m.shape[0], np.diff(m.indptr) > 0, user_side=True)
        Y = self._initial(rng, m.shape[1], np.bincount(m.indices, minlength=m.shape[1]) > 0,
                          user_side=False)
        self.fold_in_seed_ = int(rng.integers(0, 2**62))
        self.user_adagrad_ = np.zeros_like(X)
        self.item_adagrad_ = np.zeros_like(Y)
        self.epoch_seconds_ = []
        self._train(X, Y, m, np.arange(m.shape[0]), np.arange(m.shape[1]),
                    int(self.iterations), int(rng.integers(0, 2**62)))
        self._store(X, Y)

    def _train(self, X, Y, m, user_rows, item_rows, epochs: int, seed: int) -> None:
        k = int(self.factors)
        mt = m.T.tocsr()
        mt.sort_indices()
        self.positive_counts_ = np.diff(mt.indptr).astype(np.int64)
        user_cdf = negative_cdf(self.positive_counts_, self.sampling, 1.0)
        item_cdf = negative_cdf(np.diff(m.indptr), self.sampling, 1.0)
        lr, reg, neg = float(self.learning_rate), float(self.regularization), int(self.neg_prop)
        mx = self._max_negatives()
        args_u = (np.asarray(user_rows, np.int64), m.indptr.astype(np.int64),
                  m.indices.astype(np.int64), m.data)
        args_i = (np.asarray(item_rows, np.int64), mt.indptr.astype(np.int64),
                  mt.indices.astype(np.int64), mt.data)
        with numba_threads(self.num_threads, type(self).__name__):
            with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
                _lmf_pass(args_u[0][:0], *args_u[1:], X, Y, self.user_adagrad_, user_cdf, lr,
                          reg, neg, mx, np.uint64(0), k + 1)  # compile outside the timed epochs
            for epoch in range(epochs):
                check()  # a stop comes within one epoch
                start = time.perf_counter()
                base = _seed_of(seed, epoch)
                with compiled():
                    _lmf_pass(*args_u, X, Y, self.user_adagrad_, user_cdf, lr, reg, neg, mx,
                              np.uint64(base), k + 1)
                with compiled():
                    _lmf_pass(*args_i, Y, X, self.item_adagrad_, item_cdf, lr, reg, neg, mx,
                              np.uint64(base ^ 0x5BD1E995), k)
                self.epoch_seconds_.append(time.perf_counter() - start)
        if not (np.isfinite(X).all() and np.isfinite(Y).all()):
            raise FloatingPointError(f"{type(self).__name__} diverged (non-finite parameters); "
                                     "lower learning_rate")

    def _store(self, X: np.ndarray, Y: np.ndarray) -> None:
        k = int(self.factors)
        self.mu_ = 0.0
        self.user_factors_ = np.ascontiguousarray(X[:, :k])
        self.user_bias_ = X[:, k].copy()
        self.item_factors_ = np.ascontiguousarray(Y[:, :k])
        self.item_bias_ = Y[:, k + 1].copy()

    def _augmented(self) -> tuple[np.ndarray, np.ndarray]:
        """``[x_u, beta_u, 1]`` and ``[y_i, 1, beta_i]`` of the fitted state."""
        n_u, n_i = self.user_factors_.shape[0], self.item_factors_.shape[0]
        X = np.hstack([self.user_factors_, self.user_bias_[:, None], np.ones((n_u, 1))])
        Y = np.hstack([self.item_factors_, np.ones((n_i, 1)), self.item_bias_[:, None]])
        return np.ascontiguousarray(X), np.ascontiguousarray(Y)

    # ------------------------------------------------------------------ incremental
    def partial_fit(self, interactions: Interactions, epochs: int | None = None) -> LMF:
        """Absorb new interactions without a refit: grow the id maps, start new users and
        items as in ``fit``, then run ``epochs`` (None: ``iterations``) epochs of both passes
        over the users and items the new interactions touch (module docstring). Old pairs
        are kept in memory since ``fit``; a loaded model knows only the new ones."""
        self._check_fitted()
        self._check_params()
        epochs = int(self.iterations if epochs is None else epochs)
        old_u, old_i = self.user_factors_.shape[0], self.item_factors_.shape[0]
        old, new = grow_positives(self, interactions)
        if self.binarize:
            both = ((old + new) > 0).astype(np.float64).tocsr()
        else:
            both = (old + new).tocsr()
        both.sort_indices()
        self._positives = both
        rng = np.random.default_rng([self.fold_in_seed_, both.nnz, new.nnz])
        X0, Y0 = self._augmented()
        X = self._initial(rng, self.n_users_, np.diff(both.indptr) > 0, user_side=True)
        Y = self._initial(rng, self.n_items_, np.bincount(both.indices, minlength=self.n_items_) > 0,
                          user_side=False)
        X[:old_u], Y[:old_i] = X0, Y0
        GX = np.zeros_like(X)
        GY = np.zeros_like(Y)
        GX[:old_u], GY[:old_i] = self.user_adagrad_, self.item_adagrad_
        self.user_adagrad_, self.item_adagrad_ = GX, GY
        coo = new.tocoo()
        if not hasattr(self, "epoch_seconds_"):
            self.epoch_seconds_ = []
        self._train(X, Y, self._confidence(both), np.unique(coo.row), np.unique(coo.col),
                    epochs, int(rng.integers(0, 2**62)))
        self._store(X, Y)
        return self

    # ------------------------------------------------------------------ fold-in
    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """User factors and biases of history rows, items fixed (module docstring)."""
        h = self._confidence(history_positives(history, self.threshold))
        _, Y = self._augmented()
        k = int(self.factors)
        out = np.zeros((h.shape[0], k + 2))
        epochs = int(self.iterations if self.fold_in_epochs is None else self.fold_in_epochs)
        cdf = negative_cdf(self.positive_counts_, self.sampling, 1.0)
        with compiled():
            _lmf_fold_in(h.indptr.astype(np.int64), h.indices.astype(np.int64), h.data, Y, cdf,
                         float(self.learning_rate), float(self.regularization),
                         int(self.neg_prop), self._max_negatives(), epochs,
                         np.uint64(self.fold_in_seed_), out)
        return out[:, :k], out[:, k]


def _seed_of(seed: int, epoch: int) -> int:
    """The pass seed of one epoch (a fixed function of the fit's seed)."""
    return int(np.random.default_rng([seed, epoch]).integers(0, 2**63))
