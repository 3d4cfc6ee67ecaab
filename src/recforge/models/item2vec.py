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
from ..interrupt import compiled
from .base import EMBEDDINGS, FOLD_IN, INCREMENTAL, RANKING, SIMILAR_ITEMS, Recommender, register
from .feedback import check_feedback_params
from .linear._common import check_int, check_positive, grow_maps, history_feedback
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
def sgns_update(syn0, syn1, inp, target, cum, negative, lr, state, work, fixed):
    """One SGNS step for the pair (input ``inp``, target ``target``): the positive target and
    ``negative`` items drawn from ``cum`` (a draw equal to the target is skipped, as in
    word2vec). ``work`` is a buffer of the vector size. Items where the boolean ``fixed`` is true
    (none when it is empty) are read but their rows of ``syn0`` and ``syn1`` not updated.
    Returns the generator's new state."""
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
        if fixed.size == 0 or not fixed[out]:
            for c in range(d):
                syn1[out, c] += g * syn0[inp, c]
    if fixed.size == 0 or not fixed[inp]:
        for c in range(d):
            syn0[inp, c] += work[c]
    return state


@njit(cache=True)
def _draw_token(state, meta_indptr, meta_indices, item):
    """The next state and one of ``item``'s metadata tokens drawn uniformly (-1: it has none)."""
    n = meta_indptr[item + 1] - meta_indptr[item]
    if n == 0:
        return state, -1
    state = _lcg(state)
    return state, meta_indices[meta_indptr[item] + np.int64((state >> np.uint64(16)) % np.uint64(n))]


@njit(cache=True)
def _pair_update(syn0, syn1, inp, target, cum, negative, lr, state, work, fixed,
                 meta_indptr, meta_indices, meta_weight, meta_cum):
    """The SGNS step of the pair (input item ``inp``, target item ``target``) and, with item
    metadata (``meta_indptr`` non-empty: item ``i``'s metadata tokens are
    ``meta_indices[meta_indptr[i]:meta_indptr[i+1]]``), the meta-prod2vec pairs it implies at
    learning rate ``meta_weight * lr``, each with one metadata token drawn uniformly per item
    (so that a pair costs four SGNS steps whatever the number of tokens): the target's token
    given the input item (M|I), the target item given the input's token (J|M) and the target's
    token given the input's (M|M); token targets draw their negatives from ``meta_cum``.
    Returns the new state."""
    state = sgns_update(syn0, syn1, inp, target, cum, negative, lr, state, work, fixed)
    if meta_indptr.size == 0:
        return state
    mlr = meta_weight * lr
    state, a = _draw_token(state, meta_indptr, meta_indices, target)
    if a >= 0:
        state = sgns_update(syn0, syn1, inp, a, meta_cum, negative, mlr, state, work, fixed)
    state, b = _draw_token(state, meta_indptr, meta_indices, inp)
    if b >= 0:
        state = sgns_update(syn0, syn1, b, target, cum, negative, mlr, state, work, fixed)
        if a >= 0:
            state = sgns_update(syn0, syn1, b, a, meta_cum, negative, mlr, state, work, fixed)
    return state


@njit(cache=True)
def train_sgns(items, offsets, keep_prob, syn0, syn1, cum, negative, window, epochs, alpha,
               min_alpha, seed, contexts, fixed, meta_indptr, meta_indices, meta_weight,
               meta_cum):
    """SGNS over the sequences ``items[offsets[s]:offsets[s+1]]`` for ``epochs`` passes.

    Each pass subsamples every sequence (``keep_prob`` per item), then each position's item is
    the target of inputs from the same sequence: with ``window > 0`` every position at most
    ``window`` away (prod2vec); with ``window <= 0`` (a set, item2vec) ``contexts`` positions
    drawn uniformly among the others (with replacement), or every other position when
    ``contexts <= 0``. The learning rate decays linearly with the share of occurrences
    processed, updated at each sequence. Items in ``fixed`` are not updated (see
    :func:`sgns_update`). With item metadata (meta-prod2vec, see :func:`_pair_update`) every
    item pair adds its metadata pairs, and every kept position the pairs of its item and one of
    its own metadata tokens, both ways (I|M and its mirror), all at ``meta_weight`` times the learning rate. Returns the generator's final
    state."""
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
                if meta_indptr.size:  # I|M: the item and one of its own tokens, both ways
                    state, b = _draw_token(state, meta_indptr, meta_indices, buf[pos])
                    if b >= 0:
                        state = sgns_update(syn0, syn1, b, buf[pos], cum, negative,
                                            meta_weight * lr, state, work, fixed)
                        state = sgns_update(syn0, syn1, buf[pos], b, meta_cum, negative,
                                            meta_weight * lr, state, work, fixed)
                if window <= 0 and contexts > 0:
                    if n < 2:
                        break
                    for _ in range(contexts):
                        state = _lcg(state)
                        q = (state >> np.uint64(16)) % np.uint64(n - 1)
                        q = np.int64(q)
                        if q >= pos:
                            q += 1
                        state = _pair_update(syn0, syn1, buf[q], buf[pos], cum, negative, lr,
                                             state, work, fixed, meta_indptr, meta_indices,
                                             meta_weight, meta_cum)
                    continue
                lo = 0 if window <= 0 else max(0, pos - window)
                hi = n if window <= 0 else min(n, pos + window + 1)
                for q in range(lo, hi):
                    if q != pos:
                        state = _pair_update(syn0, syn1, buf[q], buf[pos], cum, negative, lr,
                                             state, work, fixed, meta_indptr, meta_indices,
                                             meta_weight, meta_cum)
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


def sequences_with_values(inter: Interactions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``inter.user_sequences()`` (items in time order per user, int64) with each entry's value
    (float32)."""
    if inter.timestamps is None:
        order = np.lexsort((inter.items, inter.users))
    else:
        order = np.lexsort((inter.items, inter.timestamps, inter.users))
    offsets = np.zeros(inter.n_users + 1, dtype=np.int64)
    np.cumsum(inter.user_counts, out=offsets[1:])
    return (inter.items[order].astype(np.int64), offsets,
            np.asarray(inter.values, dtype=np.float32)[order])


def merge_sequences(items: np.ndarray, offsets: np.ndarray, values: np.ndarray,
                    add_users: np.ndarray, add_items: np.ndarray, add_values: np.ndarray,
                    n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user sequences (``items[offsets[u]:offsets[u+1]]``, with ``values``) extended to
    ``n_users`` users, each user's entries of ``add_*`` (in their given order) appended after
    its old ones. Returns the new (items, offsets, values)."""
    old_users = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    users = np.concatenate([old_users, np.asarray(add_users, dtype=np.int64)])
    order = np.argsort(users, kind="stable")
    out_offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=out_offsets[1:])
    return (np.concatenate([items, add_items]).astype(np.int64)[order], out_offsets,
            np.concatenate([values, add_values]).astype(np.float32)[order])


def _sequence_csr(items, offsets, values, n_items) -> sp.csr_matrix:
    m = sp.csr_matrix((values.astype(np.float32), items, offsets),
                      shape=(offsets.size - 1, n_items))
    m.sum_duplicates()
    return m


@register("item2vec")
class Item2Vec(Recommender):
    r"""item2vec / prod2vec (Barkan & Koenigstein 2016; Grbovic et al. 2015): SGNS item vectors.

    Hyperparameters are named as gensim's ``Word2Vec`` names them where it has them.

    Parameters
    ----------
    vector_size : int, default 64
    window : int, optional
        None (item2vec): contexts are drawn from the user's whole set (see ``contexts``). An int
        (prod2vec, sessions): contexts are the items at most ``window`` positions away in the
        user's time-ordered sequence (``Interactions.user_sequences``).
    contexts : int, optional, default 5
        With ``window=None``: the number of context items drawn at random (uniformly, with
        replacement) from the rest of the user's set for each occurrence of an item, the
        shuffled-set practice that keeps an epoch linear in the interactions. None: every other
        item of the set (all pairs, quadratic in the set size).
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
    scoring : {"context", "cosine"}, default "context"
        How a history scores an item. "context": :math:`\bar u \cdot v_j`, the mean input vector
        of the history against the item's output vector — the SGNS model's own (log-odds of)
        context probability, which carries popularity. "cosine": the cosine between the item's
        input vector and the mean of the history's unit input vectors.
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
    random_state : int, optional, default 0
        Seeds the initial vectors and the kernel's generator.

    Attributes
    ----------
    item_vectors_ : ndarray (n_items, vector_size), float32
        Unit input vectors (zero for items without a vector); similar items are their cosines.
    input_vectors_, output_vectors_ : ndarray (n_items, vector_size), float32
        The SGNS input and output (context) vectors.
    user_vectors_ : ndarray (n_users, vector_size), float32
        Training users' query vectors (for users queried without a history).
    item_counts_ : ndarray (n_items,), int64
        Training occurrences of each item (after ``threshold``), for ``partial_fit``.
    sequence_items_, sequence_offsets_, sequence_values_ : ndarray
        The training users' time-ordered items and values (user ``u``'s are
        ``[offsets[u]:offsets[u+1]]``), kept so that ``partial_fit`` can train on a user's whole
        sequence and recompute its query vector.
    feedback_dropped_ : int
        Training interactions dropped by ``threshold`` (or with a non-positive value).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN, INCREMENTAL,
                                                        SIMILAR_ITEMS, EMBEDDINGS})
    state = ("item_vectors_", "input_vectors_", "output_vectors_", "user_vectors_",
             "item_counts_", "sequence_items_", "sequence_offsets_", "sequence_values_",
             "feedback_dropped_")
    similarity: ClassVar[str] = "dot"  # query . item vector is the score (see item_vectors)

    def __init__(self, vector_size: int = 64, window: int | None = None,
                 contexts: int | None = 5, negative: int = 5, ns_exponent: float = 0.75,
                 sample: float = 0.0, epochs: int = 10, alpha: float = 0.025,
                 min_alpha: float = 1e-4, min_count: int = 1, scoring: str = "context",
                 recency_weight: float | None = None, threshold: float | None = None,
                 binarize: bool = True, random_state: int | None = 0):
        self.vector_size = vector_size
        self.window = window
        self.contexts = contexts
        self.negative = negative
        self.ns_exponent = ns_exponent
        self.sample = sample
        self.epochs = epochs
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.min_count = min_count
        self.scoring = scoring
        self.recency_weight = recency_weight
        self.threshold = threshold
        self.binarize = binarize
        self.random_state = random_state

    def _check_params(self) -> None:
        owner = "item2vec"
        check_feedback_params(self.threshold, self.binarize, owner)
        check_int(owner, "vector_size", self.vector_size)
        check_int(owner, "window", self.window, allow_none=True)
        check_int(owner, "contexts", self.contexts, allow_none=True)
        check_int(owner, "negative", self.negative, minimum=0)
        check_positive(owner, "ns_exponent", self.ns_exponent, allow_zero=True)
        check_positive(owner, "sample", self.sample, allow_zero=True)
        check_int(owner, "epochs", self.epochs, minimum=0)
        check_positive(owner, "alpha", self.alpha)
        check_positive(owner, "min_alpha", self.min_alpha, allow_zero=True)
        check_int(owner, "min_count", self.min_count)
        if self.scoring not in ("context", "cosine"):
            raise ValueError(f"item2vec: scoring must be 'context' or 'cosine', got {self.scoring!r}")
        if self.recency_weight is not None:
            r = check_positive(owner, "recency_weight", self.recency_weight)
            if r > 1:
                raise ValueError(f"item2vec: recency_weight must be in (0, 1] or None, "
                                 f"got {self.recency_weight!r}")

    def _kept(self, interactions: Interactions) -> tuple[Interactions, int]:
        """The interactions above the threshold (positive values) and the number dropped."""
        values = np.asarray(interactions.values, dtype=np.float64)
        keep = values > 0
        if self.threshold is not None:
            keep &= values >= float(self.threshold)
        return interactions.subset(keep), int(keep.size - keep.sum())

    def _train(self, syn0, syn1, users: np.ndarray | None, fixed: np.ndarray, epochs: int,
               alpha: float, seed: int) -> None:
        """SGNS over the stored sequences of ``users`` (None: all), items without a vector
        (``item_counts_ < min_count``) left out; items in ``fixed`` are not updated."""
        items, offsets = self.sequence_items_, self.sequence_offsets_
        if users is not None:
            lengths = np.diff(offsets)[users]
            starts = offsets[users]
            sel = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) \
                + np.arange(lengths.sum())
            items = items[sel]
            offsets = np.concatenate([[0], np.cumsum(lengths)])
        counts = np.where(self.item_counts_ >= int(self.min_count), self.item_counts_, 0)
        in_vocab = counts[items] > 0
        seq_of = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
        v_offsets = np.zeros(offsets.size, dtype=np.int64)
        np.cumsum(np.bincount(seq_of[in_vocab], minlength=offsets.size - 1), out=v_offsets[1:])
        v_items = items[in_vocab].astype(np.int64)
        if v_items.size and epochs > 0:
            keep = keep_probabilities(counts, float(self.sample))
            cum = negative_weights(counts, float(self.ns_exponent))
            with compiled():  # a Ctrl-C is raised after the kernel, not inside its boxing
                train_sgns(v_items, v_offsets, keep, syn0, syn1, cum,
                           int(self.negative), 0 if self.window is None else int(self.window),
                           int(epochs), float(alpha), float(self.min_alpha), seed,
                           0 if self.contexts is None else int(self.contexts), fixed,
                           *self._sgns_meta(counts))

    def _sgns_meta(self, counts: np.ndarray) -> tuple:
        """Item metadata for the kernel (meta-prod2vec): (meta_indptr, meta_indices,
        meta_weight, meta_cum); item2vec has none."""
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0.0, np.zeros(0, np.float64)

    def _finish(self, syn0, syn1, users: np.ndarray | None) -> None:
        """Store the vectors (items without one zeroed) and the query vectors of ``users``
        (None: all users) from their stored sequences."""
        vocab = self.item_counts_ >= int(self.min_count)
        syn0[~vocab] = 0.0
        syn1[~vocab] = 0.0
        self.input_vectors_ = syn0.astype(np.float32)
        self.output_vectors_ = syn1.astype(np.float32)
        self.item_vectors_ = _unit_rows(syn0).astype(np.float32)
        n_users = self.sequence_offsets_.size - 1
        if users is None:
            users = np.arange(n_users)
            self.user_vectors_ = np.zeros((n_users, syn0.shape[1]), np.float32)
        elif self.user_vectors_.shape[0] < n_users:
            grown = np.zeros((n_users, syn0.shape[1]), np.float32)
            grown[:self.user_vectors_.shape[0]] = self.user_vectors_
            self.user_vectors_ = grown
        if users.size:
            m = _sequence_csr(self.sequence_items_, self.sequence_offsets_,
                              self.sequence_values_, self.item_counts_.size)[users]
            items = [self.sequence_items_[self.sequence_offsets_[u]:self.sequence_offsets_[u + 1]]
                     for u in users] if self.recency_weight is not None else None
            if items is not None:
                lengths = np.array([x.size for x in items], dtype=np.int64)
                hist = History(m, np.concatenate([[0], np.cumsum(lengths)]),
                               np.concatenate(items + [np.zeros(0, np.int64)]).astype(np.int32))
            else:
                hist = History.from_csr(m)
            self.user_vectors_[users] = self._history_vectors(hist)[0].astype(np.float32)

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        self._check_params()
        kept, self.feedback_dropped_ = self._kept(train)
        items, offsets, values = sequences_with_values(kept)
        self.sequence_items_, self.sequence_offsets_, self.sequence_values_ = items, offsets, values
        self.item_counts_ = np.bincount(items, minlength=train.n_items).astype(np.int64)
        d = int(self.vector_size)
        rng = np.random.default_rng(self.random_state)
        syn0 = (rng.random((train.n_items, d)) - 0.5) / d
        syn1 = np.zeros((train.n_items, d))
        seed = int(rng.integers(1, 2**63 - 1))
        self._train(syn0, syn1, None, np.zeros(0, np.bool_), int(self.epochs),
                    float(self.alpha), seed)
        self._finish(syn0, syn1, None)

    def partial_fit(self, interactions: Interactions, epochs: int | None = None,
                    alpha: float | None = None, update_existing: bool = False) -> Item2Vec:
        """Absorb new interactions without a refit.

        New users and items extend the id maps and each user's new items are appended to its
        stored sequence. Items that gain a vector (new ones, or old ones reaching
        ``min_count``) get fresh random input vectors, then SGNS runs ``epochs`` (default: the
        model's) passes from ``alpha`` (default: the model's) over the whole sequences of the
        users the new interactions touch — new users, and every sequence holding a new item.
        The vectors the model already had are kept as they are unless ``update_existing``
        (they are read as fixed context, so the new items are placed in the existing space and
        the known users' query vectors and similar-item lists stay valid); the touched users'
        query vectors are recomputed (all users' with ``update_existing``)."""
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError(f"item2vec.partial_fit expects Interactions, got {type(interactions).__name__}")
        self._check_params()
        epochs = int(self.epochs) if epochs is None else check_int("item2vec", "epochs", epochs, 0)
        alpha = float(self.alpha) if alpha is None else check_positive("item2vec", "alpha", alpha)
        kept, dropped = self._kept(interactions)
        n_old_items = self.item_counts_.size
        had_vector = self.item_counts_ >= int(self.min_count)
        new_users, new_items = grow_maps(self, interactions)
        items, offsets, add_values = sequences_with_values(kept)
        add_users = np.repeat(new_users[np.arange(offsets.size - 1)], np.diff(offsets))
        add_items = new_items[items]
        self.sequence_items_, self.sequence_offsets_, self.sequence_values_ = merge_sequences(
            self.sequence_items_, self.sequence_offsets_, self.sequence_values_,
            add_users, add_items, add_values, self.n_users_)
        counts = np.zeros(self.n_items_, np.int64)
        counts[:n_old_items] = self.item_counts_
        self.item_counts_ = counts + np.bincount(add_items, minlength=self.n_items_)
        self.feedback_dropped_ = int(self.feedback_dropped_) + dropped

        d = self.input_vectors_.shape[1]
        syn0 = np.zeros((self.n_items_, d))
        syn1 = np.zeros((self.n_items_, d))
        syn0[:n_old_items] = self.input_vectors_
        syn1[:n_old_items] = self.output_vectors_
        fixed = np.zeros(self.n_items_, np.bool_)
        fixed[:n_old_items] = had_vector
        rng = np.random.default_rng(None if self.random_state is None
                                    else [int(self.random_state), self.n_items_, self.n_users_])
        fresh = ~fixed & (self.item_counts_ >= int(self.min_count))
        syn0[fresh] = (rng.random((int(fresh.sum()), d)) - 0.5) / d
        syn1[fresh] = 0.0
        touched = np.unique(add_users)
        self._train(syn0, syn1, touched, np.zeros(0, np.bool_) if update_existing else fixed,
                    epochs, alpha, int(rng.integers(1, 2**63 - 1)))
        self._finish(syn0, syn1, None if update_existing else touched)
        return self

    # ------------------------------------------------------------------ query side
    def _history_weights(self, history: History) -> sp.csr_matrix:
        """Each history row's weight on its items (value after threshold / binarization, times
        the recency weight), items without a vector left out."""
        h = history_feedback(history.matrix, self.threshold, bool(self.binarize))
        if self.recency_weight is not None:
            gamma = float(self.recency_weight)
            rows, cols, vals = [], [], []
            for r, seq in enumerate(history.sequences()):
                if seq.size == 0:
                    continue
                rev = seq[::-1]
                distinct, first = np.unique(rev, return_index=True)  # most recent occurrence
                order = distinct[np.argsort(first)]  # most recent first
                row = h.getrow(r).toarray().ravel()
                rows.append(np.full(order.size, r))
                cols.append(order)
                vals.append(row[order] * gamma ** np.arange(order.size))
            if rows:
                h = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                  shape=h.shape)
            else:
                h = sp.csr_matrix(h.shape)
        has_vector = np.any(self.input_vectors_ != 0, axis=1).astype(np.float64)
        h = sp.csr_matrix(h.multiply(has_vector[None, :]))
        h.eliminate_zeros()
        return h

    def _history_vectors(self, history: History) -> tuple[np.ndarray, np.ndarray]:
        """Query vectors of history rows and a mask of the rows that had none (no item above
        the threshold with a vector): the unit mean of the unit input vectors ("cosine"), or
        the weighted mean of the input vectors ("context")."""
        h = self._history_weights(history)
        none = np.diff(h.indptr) == 0
        if self.scoring == "cosine":
            q = _unit_rows(np.asarray(h @ self.item_vectors_.astype(np.float64)))
        else:
            total = np.asarray(h.sum(axis=1)).ravel()
            q = np.asarray(h @ self.input_vectors_.astype(np.float64))
            q /= np.where(total > 0, total, 1.0)[:, None]
        return q, none

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
        """Query vectors: from the row's history where it has one, else the known user's
        training vector (zero for an unknown row without history); their dot product with
        :meth:`item_vectors` is the score."""
        if history is not None and not isinstance(history, History):
            history = History.from_csr(history)
        return self._query(users, history)[0].astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """The vectors a query vector is scored against: the output vectors ("context") or
        the unit input vectors ("cosine")."""
        return self.output_vectors_ if self.scoring == "context" else self.item_vectors_

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        q, none = self._query(users, history)
        scores = q @ self.item_vectors().T.astype(np.float64)  # float64: batch-size independent
        if none.any():  # an unknown row none of whose items has a vector above the threshold
            fallbacks.mark("no usable history: popularity", none)
            scores[none] = self.item_popularity_
        return scores.astype(np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        return self.item_vectors_[np.asarray(items)] @ self.item_vectors_.T
