r"""BPR: Bayesian personalised ranking of implicit feedback by matrix factorization.

Rendle, Freudenthaler, Gantner & Schmidt-Thieme (2009), *BPR: Bayesian personalized ranking
from implicit feedback*, UAI. For a user :math:`u`, an item :math:`i` the user interacted with
and an item :math:`j` the user did not, the model scores

.. math:: \hat x_{ui} = b_i + p_u^\top q_i, \qquad
          \hat x_{uij} = \hat x_{ui} - \hat x_{uj} = b_i - b_j + p_u^\top (q_i - q_j)

and BPR-Opt (section 4.1) maximises :math:`\sum_{(u,i,j)} \ln \sigma(\hat x_{uij}) - \lambda
\lVert \Theta \rVert^2` by stochastic gradient ascent on triples drawn with replacement
(LearnBPR, section 4.2): a positive pair :math:`(u, i)` uniformly among the training pairs,
a negative item :math:`j` uniformly among all items (``sampling="uniform"``) or with probability
:math:`\propto n_j^{\,e}` (``sampling="popularity"``, :math:`n_j` the item's training count,
:math:`e` = ``popularity_exponent``; :math:`e = 1` is what ``implicit`` samples). With
:math:`z = \sigma(-\hat x_{uij}) = 1 / (1 + e^{\hat x_{uij}})` one step is

.. math::
   p_u &\leftarrow p_u + \eta\,\bigl(z\,(q_i - q_j) - \lambda p_u\bigr) \\
   q_i &\leftarrow q_i + \eta\,\bigl(z\,p_u - \lambda q_i\bigr) \\
   q_j &\leftarrow q_j + \eta\,\bigl(-z\,p_u - \lambda q_j\bigr) \\
   b_i &\leftarrow b_i + \eta\,(z - \lambda b_i), \qquad
   b_j \leftarrow b_j + \eta\,(-z - \lambda b_j)

(all from the values before the step; :func:`bpr_step`). One epoch is as many steps as there
are training pairs. With ``verify_negative`` a negative that is one of the user's positives is
redrawn (up to 32 times; a user who has seen nearly every item may then skip the step, counted
in ``skipped_``). Factors start from :math:`U(-0.5, 0.5) / k`, biases from zero; items and
users without training pairs start at zero (as ``implicit``'s ``BayesianPersonalizedRanking``).

**Threads.** An epoch is cut into ``num_threads`` contiguous chunks of steps, each with its own
random stream (a SplitMix64 generator seeded from ``random_state``), run in parallel without
locks (Hogwild: Niu, Recht, Ré & Wright 2011, *Hogwild!: a lock-free approach to parallelizing
stochastic gradient descent*, NIPS): concurrent steps may overwrite each other's updates of a
shared item, which costs nothing measurable on sparse data. With ``num_threads=1`` the whole
training is a deterministic function of the seed.

**Fold-in.** An unknown or anonymous row is given a user vector by the same SGD with the items
fixed: :math:`p` starts at zero and takes ``fold_in_epochs`` :math:`\times |H|` steps on
triples drawn from its history :math:`H` and the same negative sampler, with a random stream
seeded by the fitted ``fold_in_seed_`` and the row's items, so the same history always gets the
same vector, whatever the batch.

**Incremental updates** (:meth:`BPR.partial_fit`) grow the id maps and start new users and items
as in ``fit``; the new users are folded in (``partial_fold_epochs`` epochs over their pairs,
every item fixed), then ``partial_epochs`` joint epochs run over the new pairs plus
``partial_replay`` times as many old pairs drawn at random. Every step runs in the epoch kernel
of ``fit`` (which holds rows fixed where asked), so one fit compiles everything an update
runs. The defaults (5 joint epochs, replay 1, 20 fold-in epochs) were chosen on MovieLens-100K
with 10 % new users and items: within 0.011 HR@10 of a refit over seven seeds (mean gap about
0), in about a twentieth of its time (``docs/models-implicit.md``).

The model uses presence only: every kept interaction is one positive pair, whatever its value.
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

SAMPLINGS = ("uniform", "popularity")
#: Draws of a negative item before a step is skipped (``verify_negative``).
MAX_NEGATIVE_DRAWS = 32
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0


# ---------------------------------------------------------------------- random streams
@numba.njit(cache=True, nogil=True, inline="always")
def _mix(z):  # pragma: no cover - compiled
    """SplitMix64's output function (Steele, Lea & Flood 2014, *Fast splittable pseudorandom
    number generators*, OOPSLA)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True, inline="always")
def _next(states, t):  # pragma: no cover - compiled
    """Next 64-bit output of stream ``t`` (``states[t]`` advances by the golden gamma)."""
    s = states[t] + _GOLDEN
    states[t] = s
    return _mix(s)


@numba.njit(cache=True, nogil=True, inline="always")
def _uniform_index(states, t, n):  # pragma: no cover - compiled
    """An index uniform on ``[0, n)``: the top 53 bits as a float in [0, 1), times ``n``."""
    u = np.float64(_next(states, t) >> np.uint64(11)) * _INV_2_53
    return min(np.int64(u * n), n - 1)


@numba.njit(cache=True, nogil=True)
def row_seed(seed, items):  # pragma: no cover - compiled
    """A stream seed that depends on ``seed`` and the items of one history row only."""
    h = _mix(np.uint64(seed) + _GOLDEN)
    for it in items:
        h = _mix(h ^ (np.uint64(it) + _GOLDEN))
    return h


def next_uint64(state: int) -> tuple[int, int]:
    """Python twin of the compiled stream: ``(new_state, output)`` (tests transcribe kernels
    with it)."""
    mask = (1 << 64) - 1
    s = (state + int(_GOLDEN)) & mask
    z = s
    z = ((z ^ (z >> 30)) * int(_MIX1)) & mask
    z = ((z ^ (z >> 27)) * int(_MIX2)) & mask
    return s, z ^ (z >> 31)


def uniform_index(state: int, n: int) -> tuple[int, int]:
    """Python twin of the compiled uniform index draw: ``(new_state, index)``."""
    s, z = next_uint64(state)
    return s, min(int(float(z >> 11) * _INV_2_53 * n), n - 1)


# ---------------------------------------------------------------------- sampling
@numba.njit(cache=True, nogil=True, inline="always")
def _draw_item(states, t, n_items, cdf):  # pragma: no cover - compiled
    """An item uniform on ``[0, n_items)`` (empty ``cdf``), else by the cumulative weights."""
    if cdf.size == 0:
        return _uniform_index(states, t, n_items)
    u = np.float64(_next(states, t) >> np.uint64(11)) * _INV_2_53
    j = np.searchsorted(cdf, u * cdf[-1], side="right")
    return min(j, n_items - 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _has(indices, start, stop, item):  # pragma: no cover - compiled
    """Whether sorted ``indices[start:stop]`` holds ``item``."""
    n = stop - start
    if n == 0:
        return False
    base = start
    while n > 1:  # branch-free lower bound (the comparison becomes a conditional move)
        half = n >> 1
        base = base + half if indices[base + half - 1] < item else base
        n -= half
    return indices[base] == item


@numba.njit(cache=True, nogil=True, inline="always")
def _draw_negative(states, t, n_items, cdf, indptr, indices, u, verify):  # pragma: no cover
    """A negative item for row ``u`` (redrawn while it is a positive, ``verify``); -1 when
    every draw was a positive."""
    for _ in range(MAX_NEGATIVE_DRAWS):
        j = _draw_item(states, t, n_items, cdf)
        if not verify or not _has(indices, indptr[u], indptr[u + 1], j):
            return j
    return -1


def negative_cdf(counts: np.ndarray, sampling: str, exponent: float) -> np.ndarray:
    """Cumulative negative-sampling weights :math:`n_j^{e}` (float64), or an empty array for
    uniform sampling."""
    if sampling == "uniform":
        return np.empty(0)
    w = np.power(np.asarray(counts, dtype=np.float64), float(exponent))
    w[np.asarray(counts) <= 0] = 0.0
    if not w.sum() > 0:
        return np.empty(0)
    return np.cumsum(w)


def pool_negative_cdf(cdf: np.ndarray, counts: np.ndarray, pool_items: np.ndarray) -> np.ndarray:
    r"""Cumulative negative weights for epochs over a pool that is part of the training pairs
    (:meth:`BPR.partial_fit`'s new pairs plus a replayed sample): the sampler's weights
    (``cdf``, empty for uniform) times :math:`p_j / n_j`, item :math:`j`'s pairs in the pool
    over its pairs in all. An item then comes up as a negative as often, relative to its
    positives, as in an epoch over everything — without it a new item, all of whose pairs are
    in the pool, would be a positive far more often than a negative, and its bias and norm
    would overshoot. Items without pairs keep the pool's overall share."""
    n = counts.size
    base = np.ones(n) if cdf.size == 0 else np.diff(np.concatenate([[0.0], cdf]))
    in_pool = np.bincount(pool_items, minlength=n).astype(np.float64)
    share = np.where(counts > 0, in_pool / np.maximum(counts, 1),
                     pool_items.size / max(int(counts.sum()), 1))
    w = base * share
    if not w.sum() > 0:
        return cdf
    return np.cumsum(w)


# ---------------------------------------------------------------------- kernels
@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _masked_step(U, V, u, i, j, lr, reg, item_bias, free_u, free_i, free_j):  # pragma: no cover
    """:func:`bpr_step` updating only the parameters marked free (the others held fixed); the
    one body of the step (``bpr_step`` is this with everything free)."""
    k = U.shape[1] - 1
    x = U[u, 0] * (V[i, 0] - V[j, 0])
    for f in range(1, k + 1):
        x += U[u, f] * (V[i, f] - V[j, f])
    z = U.dtype.type(1.0 / (1.0 + math.exp(x)))
    for f in range(k):
        pu = U[u, f]
        qi = V[i, f]
        qj = V[j, f]
        if free_u:
            U[u, f] = pu + lr * (z * (qi - qj) - reg * pu)
        if free_i:
            V[i, f] = qi + lr * (z * pu - reg * qi)
        if free_j:
            V[j, f] = qj + lr * (-z * pu - reg * qj)
    if item_bias:
        if free_i:
            V[i, k] += lr * (z - reg * V[i, k])
        if free_j:
            V[j, k] += lr * (-z - reg * V[j, k])
    return z


@numba.njit(cache=True, nogil=True, fastmath=True)
def bpr_step(U, V, u, i, j, lr, reg, item_bias):  # pragma: no cover - compiled
    r"""One LearnBPR step on (u, i, j), in place (module docstring).

    ``U`` is (n_users, k + 1) with a constant 1 in the last column, ``V`` (n_items, k + 1)
    with the item bias in the last column, so that :math:`\hat x_{uij}` is
    :math:`U_u^\top (V_i - V_j)`. Returns :math:`z = \sigma(-\hat x_{uij})`."""
    return _masked_step(U, V, u, i, j, lr, reg, item_bias, True, True, True)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def _bpr_epoch(pool_users, pool_items, indptr, indices, U, V, cdf, lr, reg, item_bias, verify,
               n_samples, states, stats, free_users, free_items):  # pragma: no cover - compiled
    """``n_samples`` LearnBPR steps, cut into ``states.size`` chunks run in parallel (Hogwild),
    chunk ``t`` drawing from stream ``states[t]``. Each step draws a positive pair uniformly
    from the pool, then a negative; ``stats[t]`` = (steps with x_uij > 0 before the update,
    skipped steps). ``free_users`` / ``free_items`` (bool; empty: all) mark the rows a step
    may change, the others held fixed (the fold-in phases of :meth:`BPR.partial_fit`)."""
    n_chunks = states.size
    n_pool = pool_users.size
    n_items = V.shape[0]
    all_free = free_users.size == 0
    for t in prange(n_chunks):
        start = n_samples * t // n_chunks
        stop = n_samples * (t + 1) // n_chunks
        correct = 0
        skipped = 0
        for _ in range(start, stop):
            s = _uniform_index(states, t, n_pool)
            u = pool_users[s]
            i = pool_items[s]
            j = _draw_negative(states, t, n_items, cdf, indptr, indices, u, verify)
            if j < 0:
                skipped += 1
                continue
            if all_free:
                z = bpr_step(U, V, u, i, j, lr, reg, item_bias)
            else:
                z = _masked_step(U, V, u, i, j, lr, reg, item_bias, free_users[u],
                                 free_items[i], free_items[j])
            if z < 0.5:
                correct += 1
        stats[t, 0] = correct
        stats[t, 1] = skipped


@numba.njit(cache=True, nogil=True, fastmath=True)
def _bpr_fold_in(indptr, indices, V, cdf, lr, reg, verify, epochs, seed, out):  # pragma: no cover
    """User vectors of history rows, items fixed (module docstring): ``out[r]`` (k + 1 with
    the constant 1 last) after ``epochs * |H_r|`` steps from zero."""
    k = V.shape[1] - 1
    n_items = V.shape[0]
    states = np.empty(1, dtype=np.uint64)
    p = np.empty(k + 1)
    for r in range(indptr.size - 1):
        s = indptr[r]
        e = indptr[r + 1]
        p[:] = 0.0
        p[k] = 1.0
        if e > s:
            states[0] = row_seed(seed, indices[s:e])
            for _ in range(epochs * (e - s)):
                i = indices[s + _uniform_index(states, 0, e - s)]
                j = -1
                for _d in range(MAX_NEGATIVE_DRAWS):
                    cand = _draw_item(states, 0, n_items, cdf)
                    if not verify or not _has(indices, s, e, cand):
                        j = cand
                        break
                if j < 0:
                    continue
                x = 0.0
                for f in range(k + 1):
                    x += p[f] * (V[i, f] - V[j, f])
                z = 1.0 / (1.0 + math.exp(x))
                for f in range(k):
                    p[f] += lr * (z * (V[i, f] - V[j, f]) - reg * p[f])
        out[r] = p


# ---------------------------------------------------------------------- helpers
def check_rate(value, name: str, owner: str, positive: bool = False) -> float:
    """A finite float >= 0 (> 0 with ``positive``), else a ``ValueError`` naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if isinstance(value, bool) or not np.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{owner}: {name} must be a finite number "
                         f"{'> 0' if positive else '>= 0'}, got {value!r}")
    return v


def history_positives(history: sp.spmatrix, threshold) -> sp.csr_matrix:
    """Canonical CSR (sorted, no duplicates) of the entries of history rows a model trains
    on: positive values, at least ``threshold`` where set."""
    h = sp.csr_matrix(history, dtype=np.float64, copy=True)
    h.sum_duplicates()
    keep = h.data > 0
    if threshold is not None:
        keep &= h.data >= float(threshold)
    h.data = np.where(keep, h.data, 0.0)
    h.eliminate_zeros()
    h.sort_indices()
    return h


def grow_positives(model, interactions: Interactions) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Grow ``model``'s id maps by ``interactions`` (``IdMap.grow``) and its bookkeeping
    (``n_users_``, ``n_items_``, ``user_counts_``, ``item_popularity_``); returns (old kept
    training matrix, new kept entries) in the grown index, both canonical CSR of values."""
    if not isinstance(interactions, Interactions):
        raise TypeError(f"{type(model).__name__}.partial_fit expects Interactions, got "
                        f"{type(interactions).__name__}")
    old_users, old_items = model.n_users_, model.n_items_
    model.user_map_, users = model.user_map_.grow(interactions.user_map.raw)
    model.item_map_, items = model.item_map_.grow(interactions.item_map.raw)
    model.n_users_, model.n_items_ = len(model.user_map_), len(model.item_map_)
    shape = (model.n_users_, model.n_items_)
    fb = implicit_feedback(interactions, threshold=model.threshold)
    coo = fb.matrix.tocoo()
    new = sp.csr_matrix((coo.data, (users[coo.row], items[coo.col])), shape=shape)
    new.sum_duplicates()
    new.sort_indices()
    old = getattr(model, "_positives", None)
    if old is None:
        old = sp.csr_matrix((old_users, old_items))
    old = sp.csr_matrix(old)
    old.resize(shape)
    counts = np.zeros(model.n_users_, dtype=np.int64)
    counts[:old_users] = model.user_counts_
    model.user_counts_ = counts + np.bincount(users[interactions.users], minlength=model.n_users_)
    pop = np.zeros(model.n_items_, dtype=np.float32)
    pop[:old_items] = model.item_popularity_
    model.item_popularity_ = pop + np.bincount(items[interactions.items],
                                               minlength=model.n_items_).astype(np.float32)
    model.feedback_dropped_ = int(getattr(model, "feedback_dropped_", 0)) + fb.dropped
    return old, new


# ---------------------------------------------------------------------- model
@register("BPR")
class BPR(FactorModel):
    r"""Bayesian personalised ranking (Rendle et al. 2009) by lock-free parallel SGD.

    Scores :math:`b_i + p_u^\top q_i` (the base's biased form with :math:`\mu = 0`,
    :math:`b_u = 0`); the training, sampling, threads and fold-in are described in the module
    docstring. Hyperparameters follow ``implicit``'s ``BayesianPersonalizedRanking``.

    Parameters
    ----------
    factors : int
        Number of latent factors (100).
    learning_rate : float
        SGD step :math:`\eta` (0.01).
    regularization : float
        L2 penalty :math:`\lambda` of every parameter (0.01).
    iterations : int
        Epochs; one epoch is as many sampled triples as training pairs (100).
    sampling : {"uniform", "popularity"}
        Negative items uniformly, or with probability :math:`\propto n_j^{e}` ("uniform").
    popularity_exponent : float
        :math:`e` of popularity sampling (1.0: proportional to the item's count).
    item_bias : bool
        Learn :math:`b_i` (True); else scores are :math:`p_u^\top q_i`.
    verify_negative : bool
        Redraw a negative that is one of the user's positives (True).
    threshold : float, optional
        Keep only interactions whose value is at least this (e.g. ratings >= 4).
    binarize : bool
        Recorded for the shared implicit-feedback contract (True); BPR uses presence only.
    fold_in_epochs : int, optional
        Epochs of the fold-in SGD per history row (None: ``iterations``).
    partial_epochs : int
        Joint epochs of :meth:`partial_fit` over the new pairs and the replayed old ones (5).
    partial_replay : float
        Old pairs replayed by :meth:`partial_fit`, as a multiple of the new pairs (1.0).
    partial_fold_epochs : int
        Epochs of :meth:`partial_fit`'s fold-in of the new users, items fixed (20).
    random_state : int, Generator or None, default 0
        Seeds the initial factors and the random streams.
    num_threads : int, optional
        Threads (and random streams) of the training; None: all cores. 1 is deterministic.

    Attributes
    ----------
    user_factors_, item_factors_, item_bias_
        :math:`P`, :math:`Q`, :math:`b` (float64); ``mu_`` is 0 and ``user_bias_`` zeros.
    positive_counts_ : ndarray of int
        Kept training pairs per item (the popularity of the negative sampler).
    fold_in_seed_ : int
        Seed of the fold-in streams.
    epoch_seconds_ : list of float
        Wall-clock seconds of each training epoch.
    train_auc_ : list of float
        Per epoch, the fraction of the steps whose triple was ranked right before the step.
    skipped_ : int
        Steps skipped because no negative was found (``verify_negative``).
    feedback_dropped_ : int
        Interactions left out by ``threshold`` (or non-positive values).

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 1, 2, 2, 3], [10, 20, 10, 30, 20])
    >>> m = BPR(factors=4, iterations=5, random_state=0, num_threads=1).fit(train)
    >>> m.item_factors_.shape
    (3, 4)
    """

    capabilities = frozenset({RANKING, SIMILAR_ITEMS, FOLD_IN, INCREMENTAL, EMBEDDINGS})
    state = ("fold_in_seed_", "positive_counts_")
    biased = True

    def __init__(self, factors: int = 100, learning_rate: float = 0.01,
                 regularization: float = 0.01, iterations: int = 100, sampling: str = "uniform",
                 popularity_exponent: float = 1.0, item_bias: bool = True,
                 verify_negative: bool = True, threshold: float | None = None,
                 binarize: bool = True, fold_in_epochs: int | None = None,
                 partial_epochs: int = 5, partial_replay: float = 1.0,
                 partial_fold_epochs: int = 20, random_state=0,
                 num_threads: int | None = None):
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.sampling = sampling
        self.popularity_exponent = popularity_exponent
        self.item_bias = item_bias
        self.verify_negative = verify_negative
        self.threshold = threshold
        self.binarize = binarize
        self.fold_in_epochs = fold_in_epochs
        self.partial_epochs = partial_epochs
        self.partial_replay = partial_replay
        self.partial_fold_epochs = partial_fold_epochs
        self.random_state = random_state
        self.num_threads = num_threads

    # ------------------------------------------------------------------ hyperparameters
    def _check_params(self) -> None:
        owner = type(self).__name__
        self.check_count("factors")
        self.check_count("iterations", minimum=0)
        if self.fold_in_epochs is not None:
            self.check_count("fold_in_epochs", minimum=0)
        self.check_count("partial_epochs", minimum=0)
        self.check_count("partial_fold_epochs", minimum=0)
        check_rate(self.partial_replay, "partial_replay", owner)
        check_rate(self.learning_rate, "learning_rate", owner)
        check_rate(self.regularization, "regularization", owner)
        check_rate(self.popularity_exponent, "popularity_exponent", owner)
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"{owner}: sampling must be one of {SAMPLINGS}, got "
                             f"{self.sampling!r}")
        for name in ("item_bias", "verify_negative"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{owner}: {name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        check_feedback_params(self.threshold, self.binarize, owner)

    def _cdf(self) -> np.ndarray:
        return negative_cdf(self.positive_counts_, self.sampling, self.popularity_exponent)

    def _initial(self, rng: np.random.Generator, n: int, has_rows: np.ndarray,
                 user_side: bool) -> np.ndarray:
        """(n, k + 1) float32 from U(-0.5, 0.5) / k (zero rows where ``has_rows`` is False);
        last column 1 on the user side, the zero item bias on the item side."""
        k = int(self.factors)
        x = ((rng.random((n, k + 1), dtype=np.float32) - np.float32(0.5)) / np.float32(k))
        x[~has_rows] = 0.0
        x[:, k] = 1.0 if user_side else 0.0
        return np.ascontiguousarray(x)

    # ------------------------------------------------------------------ fitting
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        fb = implicit_feedback(train, threshold=self.threshold, binarize=True)
        self.feedback_dropped_ = fb.dropped
        self._positives = fb.matrix
        rng = np.random.default_rng(self.random_state)
        m = fb.matrix
        U = self._initial(rng, m.shape[0], np.diff(m.indptr) > 0, user_side=True)
        V = self._initial(rng, m.shape[1], np.bincount(m.indices, minlength=m.shape[1]) > 0,
                          user_side=False)
        self.fold_in_seed_ = int(rng.integers(0, 2**62))
        pool_users = np.repeat(np.arange(m.shape[0], dtype=np.int32), np.diff(m.indptr))
        pool_items = m.indices.astype(np.int32)
        self.epoch_seconds_, self.train_auc_, self.skipped_ = [], [], 0
        self._train(U, V, m, pool_users, pool_items, int(self.iterations), rng)
        self._store(U, V)

    def _train(self, U, V, matrix, pool_users, pool_items, epochs, rng, *, free_users=None,
               free_items=None, learning_rate=None, pool_weighted=False) -> None:
        """``epochs`` epochs of ``pool_users.size`` steps each, appending to the statistics;
        only the users / items marked in ``free_users`` / ``free_items`` change (None: all),
        with ``learning_rate`` (None: the model's). ``pool_weighted``: negatives as
        :func:`pool_negative_cdf` draws them for a pool that is a part of ``matrix``."""
        indptr = matrix.indptr.astype(np.int64)
        indices = matrix.indices.astype(np.int32)
        self.positive_counts_ = np.bincount(matrix.indices, minlength=matrix.shape[1])
        cdf = self._cdf()
        if pool_weighted:
            cdf = pool_negative_cdf(cdf, self.positive_counts_, pool_items)
        lr = np.float32(self.learning_rate if learning_rate is None else learning_rate)
        reg = np.float32(self.regularization)
        none = np.empty(0, dtype=np.bool_)
        if free_users is None and free_items is None:
            free_users = free_items = none
        else:
            free_users = (np.ones(U.shape[0], np.bool_) if free_users is None
                          else np.ascontiguousarray(free_users, dtype=np.bool_))
            free_items = (np.ones(V.shape[0], np.bool_) if free_items is None
                          else np.ascontiguousarray(free_items, dtype=np.bool_))
        with numba_threads(self.num_threads, type(self).__name__) as n_chunks:
            states = rng.integers(0, 2**63, size=n_chunks, dtype=np.uint64)
            stats = np.zeros((n_chunks, 2), dtype=np.int64)
            n = pool_users.size
            # compile (or load from the cache) outside the timed epochs
            with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
                _bpr_epoch(pool_users, pool_items, indptr, indices, U, V, cdf, lr, reg,
                           bool(self.item_bias), bool(self.verify_negative), 0, states.copy(),
                           stats, free_users, free_items)
            for _ in range(epochs if n else 0):
                check()  # a stop comes within one epoch
                start = time.perf_counter()
                with compiled():
                    _bpr_epoch(pool_users, pool_items, indptr, indices, U, V, cdf, lr, reg,
                               bool(self.item_bias), bool(self.verify_negative), n, states,
                               stats, free_users, free_items)
                self.epoch_seconds_.append(time.perf_counter() - start)
                correct, skipped = stats.sum(axis=0)
                self.skipped_ += int(skipped)
                self.train_auc_.append(float(correct / max(n - skipped, 1)))
        if not (np.isfinite(U).all() and np.isfinite(V).all()):
            raise FloatingPointError(f"{type(self).__name__} SGD diverged (non-finite "
                                     "parameters); lower learning_rate")

    def _store(self, U: np.ndarray, V: np.ndarray) -> None:
        k = U.shape[1] - 1
        self.mu_ = 0.0
        self.user_factors_ = U[:, :k].astype(np.float64)
        self.item_factors_ = V[:, :k].astype(np.float64)
        self.item_bias_ = V[:, k].astype(np.float64)
        self.user_bias_ = np.zeros(U.shape[0])

    def _augmented(self) -> tuple[np.ndarray, np.ndarray]:
        """The training layout (float32, k + 1 columns) of the fitted state."""
        n_users = self.user_factors_.shape[0]
        U = np.hstack([self.user_factors_, np.ones((n_users, 1))]).astype(np.float32)
        V = np.hstack([self.item_factors_, self.item_bias_[:, None]]).astype(np.float32)
        return np.ascontiguousarray(U), np.ascontiguousarray(V)

    # ------------------------------------------------------------------ incremental
    def partial_fit(self, interactions: Interactions, epochs: int | None = None,
                    replay: float | None = None) -> BPR:
        """Absorb new interactions without a refit.

        The id maps grow (:meth:`IdMap.grow`); new users and items start as in ``fit``. The
        new users are first folded in: ``partial_fold_epochs`` epochs over their pairs with
        every item fixed (the new ones at their start). Then ``epochs`` (None:
        ``partial_epochs``) epochs run over a pool of the new pairs plus ``replay`` (None:
        ``partial_replay``) times as many old training pairs drawn at random (kept since
        ``fit`` in memory; a loaded model has none and trains on the new pairs alone),
        every parameter free, negatives drawn from all items and verified against old and new
        positives. Every epoch runs in the kernel ``fit`` runs."""
        self._check_fitted()
        self._check_params()
        owner = type(self).__name__
        epochs = int(self.partial_epochs if epochs is None else epochs)
        if epochs < 0:
            raise ValueError(f"{owner}.partial_fit: epochs must be >= 0, got {epochs}")
        replay = check_rate(self.partial_replay if replay is None else replay, "replay", owner)
        old_u, old_i = self.user_factors_.shape[0], self.item_factors_.shape[0]
        old, new = grow_positives(self, interactions)
        both = (old + new).tocsr()
        both.data[:] = 1.0
        both.sort_indices()
        self._positives = both
        rng = np.random.default_rng([self.fold_in_seed_, both.nnz, new.nnz])
        U0, V0 = self._augmented()
        U = self._initial(rng, self.n_users_, np.diff(both.indptr) > 0, user_side=True)
        V = self._initial(rng, self.n_items_, np.bincount(both.indices, minlength=self.n_items_) > 0,
                          user_side=False)
        U[:old_u], V[:old_i] = U0, V0
        new_rows = np.repeat(np.arange(new.shape[0], dtype=np.int32), np.diff(new.indptr))
        new_cols = new.indices.astype(np.int32)
        if not hasattr(self, "epoch_seconds_"):
            self.epoch_seconds_, self.train_auc_, self.skipped_ = [], [], 0
        # 1. the new users by SGD on their pairs with every item fixed (a fold-in on the grown
        # catalog). No such phase for the new items: with the users fixed an item is drawn as
        # a negative far less often than in training, and its bias and norm overshoot.
        new_user = np.arange(self.n_users_) >= old_u
        pick = new_user[new_rows]
        self._train(U, V, both, new_rows[pick], new_cols[pick], int(self.partial_fold_epochs),
                    rng, free_users=new_user, free_items=np.zeros(self.n_items_, np.bool_))
        # 2. joint epochs over the new pairs and a replayed sample of the old
        old_rows = np.repeat(np.arange(old.shape[0], dtype=np.int32), np.diff(old.indptr))
        take = rng.choice(old.nnz, size=min(old.nnz, int(round(replay * new.nnz))), replace=False)
        pool_users = np.concatenate([new_rows, old_rows[take]]).astype(np.int32)
        pool_items = np.concatenate([new_cols, old.indices[take]]).astype(np.int32)
        self._train(U, V, both, pool_users, pool_items, epochs, rng, pool_weighted=True)
        self._store(U, V)
        return self

    # ------------------------------------------------------------------ fold-in
    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """User factors of history rows by SGD with the items fixed (module docstring); the
        user bias is zero."""
        h = history_positives(history, self.threshold)
        _, V = self._augmented()
        k = V.shape[1] - 1
        out = np.zeros((h.shape[0], k + 1))
        epochs = int(self.iterations if self.fold_in_epochs is None else self.fold_in_epochs)
        cdf = self._cdf()
        with compiled():
            _bpr_fold_in(h.indptr.astype(np.int64), h.indices.astype(np.int32),
                         V.astype(np.float64), cdf, float(self.learning_rate),
                         float(self.regularization), bool(self.verify_negative), epochs,
                         np.uint64(self.fold_in_seed_), out)
        return out[:, :k], np.zeros(h.shape[0])
