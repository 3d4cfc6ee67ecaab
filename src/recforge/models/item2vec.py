r"""item2vec / prod2vec: skip-gram with negative sampling over users' items.

Barkan & Koenigstein (2016), "Item2Vec: neural item embedding for collaborative filtering",
IEEE MLSP: word2vec's skip-gram with negative sampling (SGNS; Mikolov et al. 2013,
"Distributed representations of words and phrases and their compositionality", NIPS) applied
to the set of items of each user, every other item of the set being a context. Grbovic et al.
(2015), "E-commerce in your inbox: product recommendations at scale", KDD (prod2vec): the same
over time-ordered sequences, with contexts the items at most ``window`` positions away.

For an (input item :math:`i`, target item :math:`j`) pair SGNS maximises

.. math:: \log \sigma(u_i^\top v_j) + \sum_{n=1}^{N} \log \sigma(-u_i^\top v_{k_n}),
          \qquad k_n \sim P(k) \propto c_k^{\,0.75},

(Mikolov et al. 2013, eq. 4) by SGD with a learning rate decaying linearly from ``alpha`` to
``min_alpha`` over the training, :math:`u` the input and :math:`v` the output vectors,
:math:`c_k` the item counts and :math:`N` = ``negative``. Frequent items are subsampled: an
occurrence of item :math:`k` is kept with probability :math:`(\sqrt{c_k / (s C)} + 1)\,
s C / c_k` (:math:`C` all occurrences, :math:`s` = ``sample``), the form of the word2vec code
and gensim. The kernel is our own Numba transcription of word2vec's update (its linear
congruential generator included, so a fit is reproducible from ``random_state``); it runs on one
thread, so that two fits give the same vectors.

Items are compared by the cosine of their input vectors (``similar_items``). A row is scored by
the cosine between every item and the (optionally recency-weighted) mean of the unit input
vectors of its history, so scoring a history needs no solve (``FOLD_IN``); ``item_vectors``
and ``query_vectors`` are those unit vectors, whose dot product is the score (``EMBEDDINGS``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from numba import njit

from ..data.interactions import Interactions
from .base import EMBEDDINGS, FOLD_IN, RANKING, SIMILAR_ITEMS, Recommender, register
from .feedback import check_feedback_params
from .linear._common import check_int, check_positive, history_feedback
from .query import FallbackLog, History

_LCG_MUL = np.uint64(25214903917)  # word2vec.c's generator: x <- x * 25214903917 + 11
_LCG_ADD = np.uint64(11)


@njit(cache=True)
def _lcg(state):
    return state * _LCG_MUL + _LCG_ADD


@njit(cache=True)
def _draw_negative(state, cum):
    """The next state and an item drawn from the cumulative weights ``cum`` (float64)."""
    state = _lcg(state)
    r = float(state >> np.uint64(16)) / 281474976710656.0 * cum[-1]  # 2**48
    return state, np.searchsorted(cum, r, side="right")


@njit(cache=True)
def sgns_update(syn0, syn1, inp, target, cum, negative, lr, state, work):
    """One SGNS step for the pair (input ``inp``, target ``target``): the positive target and
    ``negative`` items drawn from ``cum`` (a draw equal to the target is skipped, as in
    word2vec). ``work`` is a buffer of the vector size. Returns the generator's new state."""
    d = syn0.shape[1]
    for c in range(d):
        work[c] = 0.0
    for s in range(negative + 1):
        if s == 0:
            out = target
            label = 1.0
        else:
            state, out = _draw_negative(state, cum)
            if out == target:
                continue
            label = 0.0
        f = 0.0
        for c in range(d):
            f += syn0[inp, c] * syn1[out, c]
        g = (label - 1.0 / (1.0 + np.exp(-f))) * lr
        for c in range(d):
            work[c] += g * syn1[out, c]
        for c in range(d):
            syn1[out, c] += g * syn0[inp, c]
    for c in range(d):
        syn0[inp, c] += work[c]
    return state


@njit(cache=True)
def train_sgns(items, offsets, keep_prob, syn0, syn1, cum, negative, window, epochs, alpha,
               min_alpha, seed):
    """SGNS over the sequences ``items[offsets[s]:offsets[s+1]]`` for ``epochs`` passes.

    Each pass subsamples every sequence (``keep_prob`` per item), then for each position every
    other position of the sequence (``window <= 0``: the whole set, item2vec) or every position
    at most ``window`` away (prod2vec) is an input predicting the item at the position. The
    learning rate decays linearly with the share of occurrences processed, updated at each
    sequence. Returns the generator's final state."""
    state = np.uint64(seed)
    n_seq = offsets.size - 1
    total = items.size
    work = np.empty(syn0.shape[1])
    longest = 0
    for s in range(n_seq):
        longest = max(longest, offsets[s + 1] - offsets[s])
    buf = np.empty(longest, np.int64)
    for epoch in range(epochs):
        for s in range(n_seq):
            start, end = offsets[s], offsets[s + 1]
            progress = (epoch * total + start) / max(epochs * total, 1)
            lr = max(alpha - (alpha - min_alpha) * progress, min_alpha)
            n = 0
            for p in range(start, end):
                it = items[p]
                if keep_prob[it] < 1.0:
                    state = _lcg(state)
                    if keep_prob[it] < float(state & np.uint64(0xFFFF)) / 65536.0:
                        continue
                buf[n] = it
                n += 1
            for pos in range(n):
                lo = 0 if window <= 0 else max(0, pos - window)
                hi = n if window <= 0 else min(n, pos + window + 1)
                for q in range(lo, hi):
                    if q != pos:
                        state = sgns_update(syn0, syn1, buf[q], buf[pos], cum, negative, lr,
                                            state, work)
    return state


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Per item, the probability that one occurrence survives subsampling (1 when
    ``sample == 0``; word2vec's formula, see the module docstring)."""
    counts = np.asarray(counts, dtype=np.float64)
    keep = np.ones(counts.size)
    if sample > 0 and counts.sum() > 0:
        t = sample * counts.sum()
        seen = counts > 0
        keep[seen] = np.minimum(1.0, (np.sqrt(counts[seen] / t) + 1.0) * t / counts[seen])
    return keep


def negative_weights(counts: np.ndarray, ns_exponent: float) -> np.ndarray:
    """Cumulative negative-sampling weights :math:`c_k^{e}` (items never seen weigh 0)."""
    counts = np.asarray(counts, dtype=np.float64)
    w = np.where(counts > 0, np.power(np.maximum(counts, 1.0), ns_exponent), 0.0)
    return np.cumsum(w)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return m * inv[:, None]


@register("item2vec")
class Item2Vec(Recommender):
    """item2vec / prod2vec (Barkan & Koenigstein 2016; Grbovic et al. 2015): SGNS item vectors.

    Hyperparameters are named as gensim's ``Word2Vec`` names them.

    Parameters
    ----------
    vector_size : int, default 64
    window : int, optional
        None (item2vec): every pair of items of a user's set. An int (prod2vec, sessions):
        contexts are the items at most ``window`` positions away in the user's time-ordered
        sequence (``Interactions.user_sequences``).
    negative : int, default 5
        Negative samples per positive pair.
    ns_exponent : float, default 0.75
        Exponent of the item counts in the negative-sampling distribution.
    sample : float, default 1e-3
        Subsampling of frequent items (0 disables it).
    epochs : int, default 5
    alpha, min_alpha : float, default 0.025, 1e-4
        Learning rate at the start and at the end (linear decay).
    min_count : int, default 1
        Items seen fewer times in training get no vector (score 0, never similar).
    recency_weight : float, optional
        In (0, 1]: the k-th most recent distinct item of a history weighs ``recency_weight**k``
        in the query vector (order as given: sequences in a query, time order in training; an
        ``Interactions`` store or CSR history has no order, so its weights follow item index).
        None: a plain mean.
    threshold : float, optional
        Keep only interactions with a value at least this, in training and in scored histories.
    binarize : bool, default True
        Training uses presence only; with ``binarize=False`` a history's items are weighted by
        their values (e.g. play counts) in the query vector.
    random_state : int, optional
        Seeds the initial vectors and the kernel's generator.

    Attributes
    ----------
    item_vectors_ : ndarray (n_items, vector_size), float32
        Unit input vectors (zero for items without a vector).
    user_vectors_ : ndarray (n_users, vector_size), float32
        Training users' unit query vectors (for users queried without a history).
    output_vectors_ : ndarray (n_items, vector_size), float32
        The SGNS output (context) vectors, kept for inspection.
    feedback_dropped_ : int
        Training interactions dropped by ``threshold`` (or with a non-positive value).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN, SIMILAR_ITEMS, EMBEDDINGS})
    state = ("item_vectors_", "user_vectors_", "output_vectors_", "feedback_dropped_")
    similarity: ClassVar[str] = "dot"  # unit vectors: the dot product is the cosine

    def __init__(self, vector_size: int = 64, window: int | None = None, negative: int = 5,
                 ns_exponent: float = 0.75, sample: float = 1e-3, epochs: int = 5,
                 alpha: float = 0.025, min_alpha: float = 1e-4, min_count: int = 1,
                 recency_weight: float | None = None, threshold: float | None = None,
                 binarize: bool = True, random_state: int | None = 0):
        self.vector_size = vector_size
        self.window = window
        self.negative = negative
        self.ns_exponent = ns_exponent
        self.sample = sample
        self.epochs = epochs
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.min_count = min_count
        self.recency_weight = recency_weight
        self.threshold = threshold
        self.binarize = binarize
        self.random_state = random_state

    def _check_params(self) -> None:
        owner = "item2vec"
        check_feedback_params(self.threshold, self.binarize, owner)
        check_int(owner, "vector_size", self.vector_size)
        check_int(owner, "window", self.window, allow_none=True)
        check_int(owner, "negative", self.negative, minimum=0)
        check_positive(owner, "ns_exponent", self.ns_exponent, allow_zero=True)
        check_positive(owner, "sample", self.sample, allow_zero=True)
        check_int(owner, "epochs", self.epochs, minimum=0)
        check_positive(owner, "alpha", self.alpha)
        check_positive(owner, "min_alpha", self.min_alpha, allow_zero=True)
        check_int(owner, "min_count", self.min_count)
        if self.recency_weight is not None:
            r = check_positive(owner, "recency_weight", self.recency_weight)
            if r > 1:
                raise ValueError(f"item2vec: recency_weight must be in (0, 1] or None, "
                                 f"got {self.recency_weight!r}")

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        self._check_params()
        values = np.asarray(train.values, dtype=np.float64)
        keep = values > 0
        if self.threshold is not None:
            keep &= values >= float(self.threshold)
        self.feedback_dropped_ = int(keep.size - keep.sum())
        kept = train.subset(keep)
        items, offsets = kept.user_sequences()
        counts = np.bincount(items, minlength=train.n_items)
        vocab = counts >= int(self.min_count)
        in_vocab = vocab[items]
        seq_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
        v_offsets = np.zeros_like(offsets)
        np.cumsum(np.bincount(seq_of[in_vocab], minlength=offsets.size - 1), out=v_offsets[1:])
        v_items = items[in_vocab].astype(np.int64)
        v_counts = np.where(vocab, counts, 0)

        d = int(self.vector_size)
        rng = np.random.default_rng(self.random_state)
        syn0 = (rng.random((train.n_items, d)) - 0.5) / d
        syn1 = np.zeros((train.n_items, d))
        seed = int(rng.integers(1, 2**63 - 1))
        if v_items.size:
            train_sgns(v_items, v_offsets.astype(np.int64), keep_probabilities(v_counts, float(self.sample)),
                       syn0, syn1, negative_weights(v_counts, float(self.ns_exponent)),
                       int(self.negative), 0 if self.window is None else int(self.window),
                       int(self.epochs), float(self.alpha), float(self.min_alpha), seed)
        syn0[~vocab] = 0.0
        syn1[~vocab] = 0.0
        self.item_vectors_ = _unit_rows(syn0).astype(np.float32)
        self.output_vectors_ = syn1.astype(np.float32)
        hist = History(sp.csr_matrix(kept.csr, dtype=np.float32), offsets, items.astype(np.int32))
        self.user_vectors_ = self._history_vectors(hist)[0].astype(np.float32)

    # ------------------------------------------------------------------ query side
    def _history_vectors(self, history: History) -> tuple[np.ndarray, np.ndarray]:
        """Unit query vectors of history rows and a mask of the rows that had none (no item
        above the threshold with a vector)."""
        h = history_feedback(history.matrix, self.threshold, bool(self.binarize))
        if self.recency_weight is None:
            q = np.asarray(h @ self.item_vectors_.astype(np.float64))
        else:
            gamma = float(self.recency_weight)
            q = np.zeros((h.shape[0], self.item_vectors_.shape[1]))
            for r, seq in enumerate(history.sequences()):
                if seq.size == 0:
                    continue
                rev = seq[::-1]
                distinct, first = np.unique(rev, return_index=True)  # most recent occurrence
                order = distinct[np.argsort(first)]  # most recent first
                row = h.getrow(r).toarray().ravel()
                w = row[order] * gamma ** np.arange(order.size)
                q[r] = w @ self.item_vectors_[order]
        q = _unit_rows(q)
        return q, ~np.any(q != 0, axis=1)

    def _query(self, users: np.ndarray, history: History | None) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int64)
        q = np.zeros((users.size, self.item_vectors_.shape[1]))
        known = users >= 0
        q[known] = self.user_vectors_[users[known]]
        none = ~known
        if history is not None:
            hq, empty = self._history_vectors(history)
            q[~empty] = hq[~empty]
            none &= empty
        return q, none

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """Unit query vectors: from the row's history where it has one, else the known user's
        training vector (zero for an unknown row without history)."""
        if history is not None and not isinstance(history, History):
            history = History.from_csr(history)
        return self._query(users, history)[0].astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_vectors_

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        q, none = self._query(users, history)
        scores = q @ self.item_vectors_.T.astype(np.float64)  # float64: batch-size independent
        if none.any():  # an unknown row none of whose items has a vector above the threshold
            fallbacks.mark("no usable history: popularity", none)
            scores[none] = self.item_popularity_
        return scores.astype(np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        return self.item_vectors_[np.asarray(items)] @ self.item_vectors_.T
