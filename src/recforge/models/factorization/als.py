r"""ALS / WRMF: weighted matrix factorization of implicit feedback by alternating least squares.

Hu, Koren & Volinsky (2008), *Collaborative filtering for implicit feedback datasets*, ICDM,
section 4. From the implicit-feedback matrix :math:`R` (users x items,
:func:`~recforge.models.feedback.implicit_feedback`, optionally weighted by BM25 or TF-IDF)
every pair gets a preference and a confidence

.. math:: p_{ui} = [r_{ui} > 0], \qquad
          c_{ui} = 1 + \alpha r_{ui} \ \text{(linear)} \quad\text{or}\quad
          c_{ui} = 1 + \alpha \log(1 + r_{ui}) \ \text{(log)}

(:func:`~recforge.models.feedback.confidence`; an unobserved pair has :math:`p = 0, c = 1`),
and the factors minimise, over *all* user x item pairs,

.. math:: \sum_{u, i} c_{ui} \bigl(p_{ui} - x_u^\top y_i\bigr)^2
          + \lambda \Bigl(\sum_u \lVert x_u \rVert^2 + \sum_i \lVert y_i \rVert^2\Bigr).

With the items fixed, each user's problem is a ridge regression with the closed form (eq. 4)

.. math:: x_u = \bigl(Y^\top C^u Y + \lambda I\bigr)^{-1} Y^\top C^u p(u), \qquad
          Y^\top C^u Y = Y^\top Y + Y^\top (C^u - I) Y,

where :math:`Y^\top Y` is computed once per half-step and :math:`Y^\top (C^u - I) Y` and
:math:`Y^\top C^u p(u) = \sum_{i \in R(u)} c_{ui} y_i` only touch the user's :math:`n_u`
observed items — the paper's trick that makes a half-step
:math:`O(k^2 \,\mathrm{nnz} + k^3 n_\text{users})` instead of quadratic in the catalog. The
item half-step is the same with the roles swapped; one iteration is a user half-step followed
by an item half-step.

Two solvers of the per-row system :math:`A x = b`:

* ``"cholesky"`` forms :math:`A` and solves it exactly (:math:`O(k^2 n_u + k^3)` per row), so
  the objective never increases from one iteration to the next (exact block coordinate
  descent);
* ``"cg"`` (default) runs ``cg_steps`` steps of the conjugate gradient method on the same
  system, warm-started from the row's current factors and never forming :math:`A`: the product
  :math:`A p = (Y^\top Y + \lambda I) p + \sum_{i \in R(u)} (c_{ui} - 1)(y_i^\top p)\, y_i` costs
  :math:`O(k^2 + k n_u)`. Takács, Pilászy & Tikk (2011), *Applications of the conjugate
  gradient method for implicit feedback collaborative filtering*, RecSys, section 3: a few
  steps per half-step reach the accuracy of the exact solve at a fraction of its cost, since
  the previous factors are already close to the solution.

Both run in compiled Numba kernels, parallel over the rows (``num_threads``), in float32 (the
factor matrices; the exact solves accumulate in float64), as ``implicit`` does. Factors start
uniform in :math:`[0, 0.01)`, seeded by ``random_state`` (``implicit``'s initialisation).

**Fold-in.** An unknown or anonymous row is folded in by the exact user solve above with the
items fixed, from its history transformed as the training matrix was (threshold, binarize,
weighting with the *training* statistics, confidence): the factors one more ALS user half-step
would give it. A trained user's own history so reproduces (to rounding) the factors an exact
half-step gives that user.

**Incremental updates.** :meth:`ALS.partial_fit` adds new interactions to the kept feedback
matrix (a pair seen again adds up, as play counts do; ``binarize`` keeps it at 1) and grows the
id maps. Items are updated first, with the users fixed: every new item is solved exactly (its
users are mostly known ones with trained factors), every known item with new interactions
takes ``partial_cg_steps`` conjugate-gradient steps warm-started from its factors (the exact
solve with ``solver="cholesky"``); then the users the same way against every item, the new
ones included; then ``partial_iterations`` more sweeps over the touched rows only.
``partial_share`` leaves out the known rows whose new interactions are a small share of their
data. The untouched rows keep their factors, and every solve runs in the kernel ``fit`` runs
(one fit compiles everything an update needs), so an update costs time in proportion to the
rows it touches, not to the whole matrix: on MovieLens-100K with 10 % new users and items,
about a fourteenth of a refit's time, 0.003 HR@10 below it (``docs/models-implicit.md``).

The scores :math:`x_u^\top y_i` estimate preferences, not ratings; the model ranks (no
``RATING`` capability).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numba
import numpy as np
import scipy.sparse as sp

from ...data import Interactions
from ...interrupt import check, compiled
from .._threads import numba_threads
from ..base import EMBEDDINGS, FOLD_IN, INCREMENTAL, RANKING, SIMILAR_ITEMS, register
from ..feedback import (
    SCALINGS,
    WEIGHTINGS,
    check_feedback_params,
    confidence,
    implicit_feedback,
    weight,
    weighting_stats,
)
from .base import FactorModel

#: dtype of the factor matrices (see the module docstring).
FACTOR_DTYPE = np.float32
SOLVERS = ("cg", "cholesky")


# ---------------------------------------------------------------------- kernels
@numba.njit(cache=True, fastmath=True, inline="always")
def _dot(a, b):
    acc = a.dtype.type(0)  # accumulate in the factors' type: float32 stays float32 (as BLAS sdot)
    for j in range(a.shape[0]):
        acc += a[j] * b[j]
    return acc


@numba.njit(cache=True, fastmath=True, inline="always")
def _gram_times(a0, v, out):
    """out = a0 @ v for a dense symmetric (k, k) matrix."""
    k = v.shape[0]
    for r in range(k):
        acc = v.dtype.type(0)
        for c in range(k):
            acc += a0[r, c] * v[c]
        out[r] = acc


@numba.njit(cache=True, fastmath=True, inline="always")
def _cg_row(indptr, indices, conf, xu, y, a0, u, cg_steps, r, p, ap):
    """``cg_steps`` conjugate-gradient steps on :math:`A_u x_u = b_u`, in place, from the
    current ``xu`` (Takács, Pilászy & Tikk 2011, Alg. 2):
    :math:`A_u = a_0 + \\sum (c - 1) y_i y_i^\\top`, :math:`b_u = \\sum c\\, y_i`,
    ``a0`` = :math:`Y^\\top Y + \\lambda I`; ``r``, ``p``, ``ap`` are scratch vectors."""
    k = xu.shape[0]
    # r = b - A x
    _gram_times(a0, xu, r)
    for a in range(k):
        r[a] = -r[a]
    for idx in range(indptr[u], indptr[u + 1]):
        yi = y[indices[idx]]
        c = conf[idx]
        w = c - (c - 1.0) * _dot(yi, xu)
        for a in range(k):
            r[a] += w * yi[a]
    for a in range(k):
        p[a] = r[a]
    rs_old = _dot(r, r)
    for _ in range(cg_steps):
        if rs_old < 1e-20:
            break
        _gram_times(a0, p, ap)
        for idx in range(indptr[u], indptr[u + 1]):
            yi = y[indices[idx]]
            w = (conf[idx] - 1.0) * _dot(yi, p)
            for a in range(k):
                ap[a] += w * yi[a]
        pap = _dot(p, ap)
        if pap <= 0.0:
            break
        step = rs_old / pap
        for a in range(k):
            xu[a] += step * p[a]
            r[a] -= step * ap[a]
        rs_new = _dot(r, r)
        beta = rs_new / rs_old
        for a in range(k):
            p[a] = r[a] + beta * p[a]
        rs_old = rs_new


@numba.njit(cache=True, fastmath=True)
def _exact_row(indptr, indices, conf, y, a0, u, out):
    """Solve :math:`A_u x = b_u` exactly (Cholesky, float64) into ``out``."""
    k = y.shape[1]
    start = indptr[u]
    n = indptr[u + 1] - start
    a = a0.copy()
    b = np.zeros(k)
    # a += Y_u^T (C^u - I) Y_u (lower triangle, all the Cholesky below reads), b = Y_u^T c;
    # four entries per pass over a, so that each a[r, q] is loaded and stored a quarter as often
    yb = np.empty((4, k))
    wb = np.empty(4)
    for first in range(start, start + n, 4):
        m = min(4, start + n - first)
        for t in range(4):
            if t < m:
                row = y[indices[first + t]]
                c = conf[first + t]
                wb[t] = c - 1.0
                for r in range(k):
                    yb[t, r] = row[r]
                    b[r] += c * row[r]
            else:
                wb[t] = 0.0
                yb[t, :] = 0.0
        for r in range(k):
            w0 = wb[0] * yb[0, r]
            w1 = wb[1] * yb[1, r]
            w2 = wb[2] * yb[2, r]
            w3 = wb[3] * yb[3, r]
            for q in range(r + 1):
                a[r, q] += w0 * yb[0, q] + w1 * yb[1, q] + w2 * yb[2, q] + w3 * yb[3, q]
    # Cholesky a = L L^T in the lower triangle
    for col in range(k):
        d = a[col, col]
        for q in range(col):
            d -= a[col, q] * a[col, q]
        if d <= 0.0:
            d = 1e-300
        d = np.sqrt(d)
        a[col, col] = d
        for r in range(col + 1, k):
            s = a[r, col]
            for q in range(col):
                s -= a[r, q] * a[col, q]
            a[r, col] = s / d
    # L z = b, then L^T x = z
    for r in range(k):
        s = b[r]
        for q in range(r):
            s -= a[r, q] * b[q]
        b[r] = s / a[r, r]
    for r in range(k - 1, -1, -1):
        s = b[r]
        for q in range(r + 1, k):
            s -= a[q, r] * b[q]
        b[r] = s / a[r, r]
    for r in range(k):
        out[r] = b[r]


@numba.njit(cache=True, fastmath=True, parallel=True)
def _solve_rows(indptr, indices, conf, x, y, a0, rows, exact, cg_steps, n_threads):
    """Update ``x[rows[j]]`` in place with ``y`` fixed, in parallel over the rows: the exact
    solve (:func:`_exact_row`) where ``exact[j]``, else ``cg_steps`` conjugate-gradient steps
    from the current factors (:func:`_cg_row`). ``a0`` = :math:`Y^\\top Y + \\lambda I` in
    float64. The one kernel of :meth:`ALS.fit` and :meth:`ALS.partial_fit` (both solvers, new
    and known rows), so that one fit compiles everything an update runs.

    The rows are cut into ``n_threads`` contiguous chunks, one per thread (the layout
    :func:`balanced_order` prepares), each with its own CG scratch vectors, allocated once per
    chunk rather than once per row (the thread count comes in as an argument: reading it here
    would keep the kernel out of Numba's cache)."""
    k = x.shape[1]
    a0_cg = a0.astype(x.dtype)
    n = rows.shape[0]
    n_chunks = max(1, min(n_threads, n))
    for t in numba.prange(n_chunks):
        r = np.empty(k, dtype=x.dtype)
        p = np.empty(k, dtype=x.dtype)
        ap = np.empty(k, dtype=x.dtype)
        for j in range(t * n // n_chunks, (t + 1) * n // n_chunks):
            u = rows[j]
            if exact[j]:
                _exact_row(indptr, indices, conf, y, a0, u, x[u])
            else:
                _cg_row(indptr, indices, conf, x[u], y, a0_cg, u, cg_steps, r, p, ap)


@numba.njit(cache=True, fastmath=True, parallel=True)
def _observed_loss(indptr, indices, conf, x, y):
    """:math:`\\sum_{(u,i) \\in R} c_{ui}(1 - s)^2 - s^2` with :math:`s = x_u^\\top y_i`: the
    observed entries' correction to the all-pairs term :math:`\\sum s^2`."""
    n = indptr.shape[0] - 1
    total = 0.0
    for u in numba.prange(n):
        acc = 0.0
        for idx in range(indptr[u], indptr[u + 1]):
            s = 0.0
            yi = y[indices[idx]]
            for a in range(x.shape[1]):
                s += x[u, a] * yi[a]
            acc += conf[idx] * (1.0 - s) ** 2 - s * s
        total += acc
    return total


def balanced_order(row_nnz: np.ndarray, n_threads: int) -> np.ndarray:
    """An order of the rows under which the parallel loop's equal contiguous chunks (one per
    thread, Numba's static schedule) carry equal work: rows by decreasing entry count, dealt
    to the threads in a snake (0, 1, …, T-1, T-1, …, 0, …), each thread's rows then laid out
    contiguously. Without it the item half-step is lopsided wherever item index follows
    popularity (MovieLens numbers its most-rated films first)."""
    n = row_nnz.size
    if n_threads <= 1 or n < 2 * n_threads:
        return np.arange(n)
    by_cost = np.argsort(-row_nnz, kind="stable")
    pos = np.arange(n)
    lane = pos % n_threads
    thread = np.where((pos // n_threads) % 2 == 0, lane, n_threads - 1 - lane)
    return by_cost[np.argsort(thread, kind="stable")]


def als_objective(conf: sp.csr_matrix, user_factors: np.ndarray, item_factors: np.ndarray,
                  regularization: float) -> float:
    r"""The objective of Hu, Koren & Volinsky (2008), eq. 3, over all user x item pairs:
    :math:`\sum_{u,i} c_{ui}(p_{ui} - x_u^\top y_i)^2 + \lambda(\lVert X \rVert^2 +
    \lVert Y \rVert^2)`, with ``conf`` holding :math:`c_{ui}` on the observed pairs
    (:math:`p = 1` there, :math:`c = 1, p = 0` elsewhere). Computed as
    :math:`\mathrm{tr}(X^\top X\, Y^\top Y)` plus the observed entries' correction, never
    forming the dense matrix."""
    x = np.asarray(user_factors, dtype=np.float64)
    y = np.asarray(item_factors, dtype=np.float64)
    c = sp.csr_matrix(conf)
    dense_part = float(np.sum((x.T @ x) * (y.T @ y)))
    observed = float(_observed_loss(c.indptr.astype(np.int64), c.indices.astype(np.int32),
                                    c.data.astype(np.float64), x, y))
    return dense_part + observed + float(regularization) * (float(np.sum(x * x)) + float(np.sum(y * y)))


# ---------------------------------------------------------------------- helpers
def _kernel_csr(conf: sp.csr_matrix, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (conf.indptr.astype(np.int64), conf.indices.astype(np.int32),
            conf.data.astype(dtype))


def _regularised_gram(factors: np.ndarray, regularization: float, dtype) -> np.ndarray:
    f = np.asarray(factors, dtype=np.float64)
    gram = f.T @ f
    gram[np.diag_indices_from(gram)] += regularization
    return np.ascontiguousarray(gram, dtype=dtype)


# ---------------------------------------------------------------------- the model
@register("ALS")
class ALS(FactorModel):
    """Weighted matrix factorization of implicit feedback by alternating least squares
    (Hu, Koren & Volinsky 2008; conjugate-gradient solver of Takács, Pilászy & Tikk 2011).
    See the module docstring for the objective and the solvers.

    Parameters
    ----------
    factors : int, default 100
        Number of latent factors :math:`k`.
    regularization : float, default 0.01
        :math:`\\lambda`, the ridge penalty on every user and item factor vector.
    alpha : float, default 1.0
        Confidence slope: :math:`c_{ui} = 1 + \\alpha r_{ui}` (``scaling="linear"``) or
        :math:`1 + \\alpha \\log(1 + r_{ui})` (``"log"``).
    iterations : int, default 15
        ALS iterations (a user half-step then an item half-step each).
    solver : {"cg", "cholesky"}, default "cg"
        Conjugate gradient warm-started from the current factors, or the exact solve.
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-step (``solver="cg"``).
    weighting : {"none", "bm25", "tfidf"}, default "none"
        Weighting of the feedback values before the confidence
        (:func:`~recforge.models.feedback.bm25_weight`, ``tfidf_weight``).
    scaling : {"linear", "log"}, default "linear"
        Confidence scaling (:func:`~recforge.models.feedback.confidence`).
    threshold : float, optional
        Keep only interactions with a value at least this (e.g. ratings >= 4).
    binarize : bool, default False
        Every kept interaction counts as 1 (else its value, e.g. a play count).
    partial_share : float, default 0.0
        :meth:`partial_fit` updates a known user or item when its new interactions are at
        least this share of all its interactions (0: every touched one; 1: only those whose
        interactions are all new); new users and items are always solved, exactly.
    partial_cg_steps : int, default 1
        Conjugate-gradient steps of :meth:`partial_fit`'s update of a known user or item,
        warm-started from its factors (``solver="cg"``; ``"cholesky"`` solves exactly).
    partial_iterations : int, default 0
        Sweeps over the touched users and items after :meth:`partial_fit` has solved them once
        (0: solve once only).
    random_state : int, Generator or None, default 0
        Seeds the initial factors.
    num_threads : int, optional
        Threads of the parallel kernels (None: all of Numba's).

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray (n, k), float32
        :math:`X` and :math:`Y`.
    feedback_ : csr_matrix (n_users, n_items)
        The kept implicit feedback (after ``threshold`` / ``binarize``, before weighting),
        persisted so that :meth:`partial_fit` works on a loaded model too.
    item_idf_, mean_row_length_ :
        Weighting statistics of the feedback (item idf, mean user row length), applied to
        folded-in rows.
    feedback_dropped_ : int
        Interactions left out by ``threshold`` or for a non-positive value.
    iteration_seconds_ : ndarray (iterations,)
        Wall-clock seconds of each iteration of the last :meth:`fit`.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, SIMILAR_ITEMS, FOLD_IN,
                                                       INCREMENTAL, EMBEDDINGS})
    state = ("feedback_", "item_idf_", "mean_row_length_", "feedback_dropped_",
             "iteration_seconds_")
    biased = False

    def __init__(self, factors: int = 100, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, solver: str = "cg", cg_steps: int = 3,
                 weighting: str = "none", scaling: str = "linear", threshold: float | None = None,
                 binarize: bool = False, partial_share: float = 0.0, partial_cg_steps: int = 1,
                 partial_iterations: int = 0, random_state=0,
                 num_threads: int | None = None):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.solver = solver
        self.cg_steps = cg_steps
        self.weighting = weighting
        self.scaling = scaling
        self.threshold = threshold
        self.binarize = binarize
        self.partial_share = partial_share
        self.partial_cg_steps = partial_cg_steps
        self.partial_iterations = partial_iterations
        self.random_state = random_state
        self.num_threads = num_threads

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        name = type(self).__name__
        self.check_count("factors")
        self.check_count("iterations", minimum=0)
        self.check_count("cg_steps")
        self.check_count("partial_iterations", minimum=0)
        self.check_count("partial_cg_steps")
        share = self.partial_share
        try:
            bad = isinstance(share, bool) or not 0.0 <= float(share) <= 1.0  # NaN fails too
        except (TypeError, ValueError):
            bad = True
        if bad:
            raise ValueError(f"{name}: partial_share must be a number in [0, 1], got {share!r}")
        if self.num_threads is not None:
            self.check_count("num_threads")
        for param in ("regularization", "alpha"):
            value = getattr(self, param)
            if isinstance(value, bool) or not np.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"{name}: {param} must be a finite number >= 0, got {value!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"{name}: solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"{name}: weighting must be one of {WEIGHTINGS}, "
                             f"got {self.weighting!r}")
        if self.scaling not in SCALINGS:
            raise ValueError(f"{name}: scaling must be one of {SCALINGS}, got {self.scaling!r}")
        check_feedback_params(self.threshold, self.binarize, name)

    # ------------------------------------------------------------------ feedback -> confidence
    def confidence_matrix(self, feedback: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """:math:`c_{ui}` on the observed pairs of ``feedback`` (default: the kept training
        feedback): weighting with the stored training statistics, then the confidence."""
        fb = self.feedback_ if feedback is None else feedback
        weighted = weight(fb, self.weighting, type(self).__name__,
                          stats=(self.item_idf_, self.mean_row_length_))
        weighted.eliminate_zeros()
        return confidence(weighted, float(self.alpha), self.scaling)

    def _history_feedback(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """Query rows' values turned into feedback as training did (threshold, binarize)."""
        h = sp.csr_matrix(history, dtype=np.float64, copy=True)
        h.sum_duplicates()
        keep = h.data > 0
        if self.threshold is not None:
            keep &= h.data >= float(self.threshold)
        h.data = np.where(keep, 1.0 if self.binarize else h.data, 0.0)
        h.eliminate_zeros()
        h.sort_indices()
        return h

    # ------------------------------------------------------------------ training
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        fb = implicit_feedback(train, self.threshold, bool(self.binarize))
        self.feedback_dropped_ = int(fb.dropped)
        self.feedback_ = fb.matrix
        self.item_idf_, self.mean_row_length_ = weighting_stats(fb.matrix)
        n_users, n_items = fb.matrix.shape
        k = int(self.factors)
        rng = np.random.default_rng(self.random_state)
        self.user_factors_ = (rng.random((n_users, k)) * 0.01).astype(FACTOR_DTYPE)
        self.item_factors_ = (rng.random((n_items, k)) * 0.01).astype(FACTOR_DTYPE)
        self.mu_ = 0.0
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)
        conf = self.confidence_matrix()
        user_side = _kernel_csr(conf, FACTOR_DTYPE)
        item_side = _kernel_csr(conf.T.tocsr(), FACTOR_DTYPE)
        all_users = np.arange(n_users, dtype=np.int64)
        all_items = np.arange(n_items, dtype=np.int64)
        seconds = []
        with numba_threads(self.num_threads, type(self).__name__):
            for _ in range(int(self.iterations)):
                check()  # a stop comes within one iteration
                start = time.perf_counter()
                self._half_step(user_side, self.user_factors_, self.item_factors_, all_users)
                self._half_step(item_side, self.item_factors_, self.user_factors_, all_items)
                seconds.append(time.perf_counter() - start)
        self.iteration_seconds_ = np.asarray(seconds, dtype=np.float64)

    def _half_step(self, csr, x: np.ndarray, y: np.ndarray, rows: np.ndarray,
                   exact=False, cg_steps: int | None = None) -> None:
        """Update ``x[rows]`` in place with ``y`` fixed: the exact solve where ``exact`` (a
        bool, or one per row) or with ``solver="cholesky"``, else ``cg_steps`` (default: the
        model's) conjugate-gradient steps."""
        if rows.size == 0:
            return
        indptr, indices, data = csr
        flags = np.empty(rows.size, dtype=np.bool_)
        flags[:] = True if self.solver == "cholesky" else exact
        a0 = _regularised_gram(y, float(self.regularization), np.float64)
        steps = int(self.cg_steps if cg_steps is None else cg_steps)
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        n_threads = numba.get_num_threads()
        order = balanced_order(np.diff(indptr)[rows], n_threads)
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            _solve_rows(indptr, indices, data, x, y, a0, rows[order], flags[order], steps,
                        n_threads)

    def training_loss(self) -> float:
        """The objective (:func:`als_objective`) of the current factors on the kept feedback."""
        self._check_fitted()
        return als_objective(self.confidence_matrix(), self.user_factors_, self.item_factors_,
                             float(self.regularization))

    # ------------------------------------------------------------------ fold-in
    def solve_rows(self, confidence_rows: sp.csr_matrix, fixed: np.ndarray) -> np.ndarray:
        """Exact least-squares factors (float64) of rows given by their confidences
        :math:`c_{ui}` (CSR, columns = the rows of ``fixed``), the other side ``fixed``: the
        solve of one ALS half-step (module docstring). Rows without entries get zeros."""
        c = sp.csr_matrix(confidence_rows)
        out = np.zeros((c.shape[0], fixed.shape[1]), dtype=np.float64)
        a0 = _regularised_gram(fixed, float(self.regularization), np.float64)
        indptr, indices, data = _kernel_csr(c, np.float64)
        with numba_threads(self.num_threads, type(self).__name__):
            with compiled():
                _solve_rows(indptr, indices, data, out, fixed, a0,
                            np.arange(c.shape[0], dtype=np.int64), np.ones(c.shape[0], np.bool_),
                            int(self.cg_steps), numba.get_num_threads())
        return out

    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Factors of unknown or anonymous rows from their histories, items fixed: the exact
        user half-step (see the module docstring); zero biases."""
        h = sp.csr_matrix(history)
        conf = self.confidence_matrix(self._history_feedback(h))
        return self.solve_rows(conf, self.item_factors_), np.zeros(h.shape[0])

    # ------------------------------------------------------------------ incremental updates
    def partial_fit(self, interactions: Interactions) -> ALS:
        """Absorb new interactions (new users and items grow the id maps); see the module
        docstring. Returns ``self``."""
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError(f"{type(self).__name__}.partial_fit expects Interactions, "
                            f"got {type(interactions).__name__}")
        self._check_params()
        old_users, old_items = self.feedback_.shape
        self.user_map_, user_idx = self.user_map_.grow(interactions.user_map.raw)
        self.item_map_, item_idx = self.item_map_.grow(interactions.item_map.raw)
        n_users, n_items = len(self.user_map_), len(self.item_map_)
        new = implicit_feedback(interactions, self.threshold, bool(self.binarize))
        self.feedback_dropped_ += int(new.dropped)
        coo = new.matrix.tocoo()
        rows, cols = user_idx[coo.row], item_idx[coo.col]
        old = self.feedback_.tocoo()
        merged = sp.csr_matrix((np.concatenate([old.data, coo.data]),
                                (np.concatenate([old.row, rows]), np.concatenate([old.col, cols]))),
                               shape=(n_users, n_items), dtype=np.float64)
        merged.sum_duplicates()  # a pair seen again adds up; canonical (sorted) CSR
        if self.binarize:
            merged.data[:] = 1.0
        self.feedback_ = merged
        self.item_idf_, self.mean_row_length_ = weighting_stats(merged)
        self._grow_state(n_users, n_items, user_idx[interactions.users],
                         item_idx[interactions.items], interactions)

        # the rows to solve: every new one (exactly), the known ones whose new interactions
        # are at least ``partial_share`` of their data (the model's solver, warm-started)
        conf = self.confidence_matrix()
        conf_t = conf.T.tocsr()
        user_rows = self._update_rows(rows, np.diff(conf.indptr), old_users)
        item_rows = self._update_rows(cols, np.diff(conf_t.indptr), old_items)
        user_side = _kernel_csr(conf, FACTOR_DTYPE)
        item_side = _kernel_csr(conf_t, FACTOR_DTYPE)
        x, y = self.user_factors_, self.item_factors_
        with numba_threads(self.num_threads, type(self).__name__):
            # items first: a new item's users are mostly known ones with trained factors, and
            # the new users are then solved against every item, the new ones included
            steps = int(self.partial_cg_steps)
            self._half_step(item_side, y, x, item_rows, exact=item_rows >= old_items,
                            cg_steps=steps)
            self._half_step(user_side, x, y, user_rows, exact=user_rows >= old_users,
                            cg_steps=steps)
            touched_users, touched_items = np.unique(rows), np.unique(cols)
            for _ in range(int(self.partial_iterations)):
                check()
                self._half_step(item_side, y, x, touched_items)
                self._half_step(user_side, x, y, touched_users)
        return self

    def _update_rows(self, new_rows: np.ndarray, lengths: np.ndarray, n_old: int) -> np.ndarray:
        """Rows :meth:`partial_fit` solves on one side: those at ``n_old`` or beyond (new), and
        the known ones whose entries in ``new_rows`` are at least ``partial_share`` of their
        ``lengths`` (all their entries after the update). Sorted int64."""
        added = np.bincount(new_rows, minlength=lengths.size)
        share = added / np.maximum(lengths, 1)
        pick = (added > 0) & (share >= float(self.partial_share))
        pick[n_old:] = lengths[n_old:] > 0
        return np.flatnonzero(pick).astype(np.int64)

    def _grow_state(self, n_users: int, n_items: int, users: np.ndarray, items: np.ndarray,
                    interactions: Interactions) -> None:
        """Grow the factor, bias, count and popularity arrays (new rows zero) and the default
        query history to the grown maps."""
        k = self.item_factors_.shape[1]

        def grow(a: np.ndarray, n: int) -> np.ndarray:
            out = np.zeros((n,) + a.shape[1:], dtype=a.dtype)
            out[:a.shape[0]] = a
            return out

        self.user_factors_ = grow(self.user_factors_, n_users)
        self.item_factors_ = grow(self.item_factors_, n_items)
        assert self.item_factors_.shape[1] == k
        self.user_bias_ = np.zeros(n_users)
        self.item_bias_ = np.zeros(n_items)
        self.user_counts_ = grow(np.asarray(self.user_counts_), n_users) \
            + np.bincount(users, minlength=n_users)
        self.item_popularity_ = (grow(np.asarray(self.item_popularity_, np.float64), n_items)
                                 + np.bincount(items, minlength=n_items)).astype(np.float32)
        self.n_users_, self.n_items_ = n_users, n_items
        store = getattr(self, "_train_history", None)
        if store is not None:
            old = sp.csr_matrix((store.values.astype(np.float64), (store.users, store.items)),
                                shape=(n_users, n_items))
            new = sp.csr_matrix((interactions.values.astype(np.float64), (users, items)),
                                shape=(n_users, n_items))
            both = old.maximum(new)  # masking only: which items each user has seen
            both.sort_indices()
            both = both.tocoo()  # canonical: sorted by (user, item), as Interactions keeps
            self._train_history = Interactions(both.row, both.col, both.data,
                                               user_map=self.user_map_, item_map=self.item_map_,
                                               kind=store.kind, rating_scale=store.rating_scale,
                                               name=store.name, _sorted=True)
