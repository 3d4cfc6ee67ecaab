"""Non-neural session-based baselines: S-POP, item-kNN, SKNN, V-SKNN and a first-order Markov chain.

These are the comparison points of Hidasi et al. (2016), "Session-based recommendations with
recurrent neural networks" (ICLR), section 4, and of Ludewig & Jannach (2018), "Evaluation of
session-based recommendation algorithms" (User Modeling and User-Adapted Interaction 28),
section 3. All of them are trained on :class:`~recforge.data.SessionEvents` and score every
item as the next event of a batch of in-progress sessions. Everything is built with sparse
matrix products; the per-session neighbour selection of SKNN / V-SKNN is a compiled kernel.

A session whose score row is all zero (its items have no neighbours or no observed successor)
gets the normalised training popularity instead; such rows are counted in the fallbacks the call returns.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
import scipy.sparse as sp

from ...data.sessions import SessionEvents
from ...interrupt import compiled
from ..base import SessionRecommender, register

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- shared helpers
def session_item_matrix(train: SessionEvents, binary: bool = True) -> sp.csr_matrix:
    """Sessions x items matrix, float32 CSR: 1 where the session contains the item
    (``binary=True``), else the number of the session's events on the item."""
    rows = train.session_of_event
    x = sp.csr_matrix((np.ones(train.n_events, dtype=np.float32), (rows, train.items)),
                      shape=(train.n_sessions, train.n_items))
    x.sum_duplicates()
    if binary:
        x.data[:] = 1.0
    return x


def _flatten(sessions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row of each event, its item, and its 1-based position, for a list of item sequences."""
    lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64, count=len(sessions))
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions]) if len(sessions) else \
        np.empty(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(sessions), dtype=np.int64), lengths)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    position = np.arange(items.size, dtype=np.int64) - np.repeat(starts, lengths) + 1
    return rows, items, position


def _last_items(sessions: list[np.ndarray]) -> np.ndarray:
    return np.fromiter((s[-1] for s in sessions), dtype=np.int64, count=len(sessions))


def _top_n_per_row(m: sp.csr_matrix, n: int | None) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row (ties to the lower column), CSR with sorted rows."""
    m = m.tocsr()
    m.sort_indices()
    if n is None:
        return m
    row = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, row))
    rank = np.arange(order.size) - m.indptr[row[order]]
    keep = np.sort(order[rank < n])
    out = sp.csr_matrix((m.data[keep], m.indices[keep], np.concatenate(
        ([0], np.cumsum(np.bincount(row[keep], minlength=m.shape[0]))))), shape=m.shape)
    out.sort_indices()
    return out


class _PopularityFallback:
    """Mixin: replace all-zero score rows by the normalised training popularity (marked in the
    call's fallback log)."""

    def _score(self, users, history, fallbacks):
        return self._score_next(history.sequences(), fallbacks)

    def _fill_empty_rows(self, scores: np.ndarray, reason: str, fallbacks=None) -> np.ndarray:
        empty = ~scores.any(axis=1)
        if empty.any():
            if fallbacks is not None:
                fallbacks.mark(reason, empty)
            scores[empty] = self.item_popularity_ / max(float(self.item_popularity_.max()), 1.0)
        return scores


# ---------------------------------------------------------------------- S-POP
@register("SPop")
class SPop(SessionRecommender):
    """Session popularity: the items clicked most often in the current session.

    Ludewig & Jannach (2018), section 3.1 ("S-POP"): an item's score is its number of events in
    the current session; ties (in particular among the items not in the session) are broken by
    global training popularity, which is added as

    .. math:: \\mathrm{score}(i \\mid s) = n_s(i) + \\frac{\\mathrm{pop}(i)}{1 + \\max_j \\mathrm{pop}(j)}

    so it can never outweigh one session event. Scores are float32, which resolves the
    tie-breaker exactly while ``max pop`` times the longest session stays below :math:`2^{24}`.

    Examples
    --------
    >>> import pandas as pd
    >>> from recforge.data import SessionEvents
    >>> df = pd.DataFrame({"session": [1, 1, 2, 2], "item": [5, 6, 6, 7], "timestamp": [0, 1, 2, 3]})
    >>> model = SPop().fit(SessionEvents.from_dataframe(df))
    >>> model.recommend_next([[7, 5, 7]], k=3).items.tolist()
    [[7, 5, 6]]
    """

    state = ("tiebreak_",)

    def __init__(self):
        pass

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        pop = np.asarray(self.item_popularity_, dtype=np.float64)
        self.tiebreak_ = (pop / (1.0 + pop.max(initial=0.0))).astype(np.float32)

    def _score_next(self, sessions: list[np.ndarray], fallbacks=None) -> np.ndarray:
        rows, items, _ = _flatten(sessions)
        scores = np.tile(self.tiebreak_, (len(sessions), 1))
        np.add.at(scores, (rows, items), 1.0)
        return scores

    def init_state(self, n_slots: int) -> np.ndarray:
        """Per-slot item counts of the current session, (n_slots, n_items) float32."""
        return np.zeros((n_slots, self.n_items_), dtype=np.float32)

    def advance(self, state: np.ndarray, items: np.ndarray, reset: np.ndarray) -> np.ndarray:
        state[np.asarray(reset, dtype=bool)] = 0.0
        state[np.arange(len(items)), np.asarray(items, dtype=np.int64)] += 1.0
        return state + self.tiebreak_


# ---------------------------------------------------------------------- last-item models
class _LastItemModel(_PopularityFallback, SessionRecommender):
    """A session model whose scores depend on the session's last item only: its streaming state
    is one item per slot. Subclasses implement ``_score_last(last_items)``."""

    def _score_last(self, last: np.ndarray, fallbacks=None) -> np.ndarray:
        raise NotImplementedError

    def _score_next(self, sessions: list[np.ndarray], fallbacks=None) -> np.ndarray:
        return self._score_last(_last_items(sessions), fallbacks)

    def init_state(self, n_slots: int) -> np.ndarray:
        """The last item of each slot's session."""
        return np.zeros(n_slots, dtype=np.int64)

    def advance(self, state: np.ndarray, items: np.ndarray, reset: np.ndarray) -> np.ndarray:
        state[:] = items
        return self._score_last(state)


# ---------------------------------------------------------------------- Markov chain
@register("MarkovChain")
class MarkovChain(_LastItemModel):
    """First-order Markov chain on item transitions.

    Scores the next item by the maximum-likelihood transition probability from the session's
    last item, estimated from consecutive event pairs of the training sessions:

    .. math:: P(j \\mid i) = \\frac{c(i \\to j)}{\\sum_{j'} c(i \\to j')}

    (the "simple Markov" baseline family of Ludewig & Jannach 2018, section 3.1). Only the last
    item matters, so the streaming state is just that item. An item never followed by anything
    in training falls back to popularity (counted).

    Examples
    --------
    >>> import pandas as pd
    >>> from recforge.data import SessionEvents
    >>> df = pd.DataFrame({"session": [1, 1, 1, 2, 2], "item": [5, 6, 7, 5, 7],
    ...                    "timestamp": [0, 1, 2, 3, 4]})
    >>> model = MarkovChain().fit(SessionEvents.from_dataframe(df))
    >>> model._score_next([np.array([0])]).tolist()  # after item 5: 6 and 7 half each
    [[0.0, 0.5, 0.5]]
    """

    state = ("transitions_",)

    def __init__(self):
        pass

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        session = train.session_of_event
        same = session[:-1] == session[1:]
        src, dst = train.items[:-1][same], train.items[1:][same]
        counts = sp.csr_matrix((np.ones(src.size, dtype=np.float64), (src, dst)),
                               shape=(train.n_items, train.n_items))
        counts.sum_duplicates()
        out_degree = np.asarray(counts.sum(axis=1)).ravel()
        inv = np.divide(1.0, out_degree, out=np.zeros_like(out_degree), where=out_degree > 0)
        self.transitions_ = sp.csr_matrix(sp.diags(inv) @ counts, dtype=np.float32)
        self.transitions_.sort_indices()

    def _score_last(self, last: np.ndarray, fallbacks=None) -> np.ndarray:
        scores = self.transitions_[last].toarray()
        return self._fill_empty_rows(scores, "no observed successor: popularity", fallbacks)



# ---------------------------------------------------------------------- item-kNN
@register("ItemKNNSession")
class ItemKNNSession(_LastItemModel):
    """Item-to-item kNN on session co-occurrence, the strongest baseline of Hidasi et al. (2016).

    Hidasi et al. (2016), section 4.1 ("Item-KNN"): the next item is scored by its similarity to
    the **last** item of the session, the similarity being the cosine of the items' session
    occurrence vectors with a regularisation against rare items. With :math:`S_i` the set of
    training sessions containing item :math:`i`,

    .. math::

        \\mathrm{sim}(i, j) = \\frac{|S_i \\cap S_j|}
                                    {(|S_i| + \\lambda)^{\\alpha} (|S_j| + \\lambda)^{1-\\alpha}}

    which is the plain cosine for :math:`\\lambda = 0, \\alpha = 0.5`; the defaults
    (:math:`\\lambda = 20, \\alpha = 0.5`, 100 neighbours) are those of the paper's baseline
    code. An item is not its own neighbour (its self-similarity is 0). Built as
    :math:`X^\\top X` of the sessions x items matrix, then scaled and pruned to the
    ``n_neighbors`` most similar items per item.

    With ``binary=True`` (default) :math:`X` is binary, as the paper's text defines the
    similarity. With ``binary=False`` :math:`X` holds event counts, so an item clicked twice in
    a session counts twice in both the co-occurrence and the support: this is what the
    paper's baseline code computes, and differs only where items repeat within a session.

    Parameters
    ----------
    n_neighbors : int or None, default 100
        Similar items kept per item (``None``: all).
    lmbd : float, default 20.0
        Regularisation :math:`\\lambda` added to the session counts.
    alpha : float, default 0.5
        Exponent balance :math:`\\alpha` between the query item and the candidate.
    binary : bool, default True
        Count sessions (True) or events (False); see above.
    """

    state = ("similarity_",)

    def __init__(self, n_neighbors: int | None = 100, lmbd: float = 20.0, alpha: float = 0.5,
                 binary: bool = True):
        self.n_neighbors = n_neighbors
        self.lmbd = lmbd
        self.alpha = alpha
        self.binary = binary

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        if self.lmbd < 0 or not 0.0 <= self.alpha <= 1.0:
            raise ValueError("ItemKNNSession needs lmbd >= 0 and 0 <= alpha <= 1")
        if self.n_neighbors is not None and self.n_neighbors < 1:
            raise ValueError("n_neighbors must be >= 1 or None")
        x = session_item_matrix(train, binary=self.binary).astype(np.float64)
        support = np.asarray(x.sum(axis=0)).ravel()  # sessions (or events) of each item
        co = (x.T @ x).tocoo()
        off_diagonal = co.row != co.col
        row, col, n_both = co.row[off_diagonal], co.col[off_diagonal], co.data[off_diagonal]
        sim = n_both / ((support[row] + self.lmbd) ** self.alpha
                        * (support[col] + self.lmbd) ** (1.0 - self.alpha))
        full = sp.csr_matrix((sim, (row, col)), shape=(train.n_items, train.n_items))
        self.similarity_ = _top_n_per_row(full, self.n_neighbors).astype(np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        return self.similarity_[np.asarray(items)].toarray()

    def _score_last(self, last: np.ndarray, fallbacks=None) -> np.ndarray:
        return self._fill_empty_rows(self.similarity_[last].toarray(), "no similar item: popularity",
                                     fallbacks)



# ---------------------------------------------------------------------- session-kNN
@numba.njit(cache=True)
def _pick_neighbours(indptr, indices, data, rank_key, session_time, sample_size, k,
                     out_indptr, out_indices, out_data):  # pragma: no cover - compiled
    """Per row: the ``sample_size`` most recent candidate sessions, then the ``k`` most similar.

    ``rank_key`` is the similarity rounded so that values equal up to summation order tie;
    ties in time go to the lower session index, ties in similarity to the more recent session.
    """
    for r in range(indptr.size - 1):
        a, b = indptr[r], indptr[r + 1]
        if b == a:
            continue
        cand = indices[a:b]
        sims = data[a:b]
        keys = rank_key[a:b]
        by_recency = np.argsort(-session_time[cand], kind="mergesort")
        if by_recency.size > sample_size:
            by_recency = by_recency[:sample_size]
        cand = cand[by_recency]
        sims = sims[by_recency]
        best = np.argsort(-keys[by_recency], kind="mergesort")
        o = out_indptr[r]
        n = out_indptr[r + 1] - o
        for t in range(n):
            out_indices[o + t] = cand[best[t]]
            out_data[o + t] = sims[best[t]]


class _SessionNeighbours(_PopularityFallback, SessionRecommender):
    """Shared machinery of SKNN and V-SKNN: candidates, sampling, neighbours, item scores.

    For a batch of current sessions as a sparse query matrix :math:`Q` (sessions x items),
    :math:`Q X^\\top` gives each current session's overlap with every training session that
    shares an item with it; of those, the ``sample_size`` most recent (by the training
    session's last event) are kept, then the ``k`` most similar; finally the item scores are
    :math:`W X` with :math:`W` the neighbours' similarities (Ludewig & Jannach 2018, eq. 1):

    .. math:: \\mathrm{score}(i \\mid s) = \\sum_{n \\in N_k(s)} \\mathrm{sim}(s, n)\\,[i \\in n]
    """

    state = ("sessions_items_", "items_sessions_", "session_time_", "session_size_")

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        if self.k < 1 or self.sample_size < 1:
            raise ValueError(f"{type(self).__name__} needs k >= 1 and sample_size >= 1")
        x = session_item_matrix(train)
        self.sessions_items_ = x
        self.items_sessions_ = x.T.tocsr()
        self.items_sessions_.sort_indices()
        # recency of a training session = time of its last event (empty sessions never match)
        nonempty = train.lengths > 0
        self.session_time_ = np.full(train.n_sessions, -np.inf)
        self.session_time_[nonempty] = train.timestamps[train.offsets[1:][nonempty] - 1]
        self.session_size_ = np.diff(x.indptr).astype(np.float64)

    def _query(self, sessions: list[np.ndarray]) -> sp.csr_matrix:
        raise NotImplementedError

    def _similarity(self, query: sp.csr_matrix) -> sp.csr_matrix:
        """Similarities (current sessions x training sessions) for every overlapping pair."""
        raise NotImplementedError

    def neighbours(self, sessions: list[np.ndarray]) -> sp.csr_matrix:
        """The selected neighbours of each inner-index session with their similarities.

        Returns a CSR matrix (len(sessions), n_training_sessions); row ``r`` holds at most
        ``k`` entries.
        """
        sim = self._similarity(self._query(sessions))
        sim.sort_indices()
        n_cand = np.diff(sim.indptr)
        n_keep = np.minimum(n_cand, min(self.k, self.sample_size))
        out_indptr = np.zeros(n_keep.size + 1, dtype=np.int64)
        np.cumsum(n_keep, out=out_indptr[1:])
        out_indices = np.empty(out_indptr[-1], dtype=np.int32)
        out_data = np.empty(out_indptr[-1], dtype=np.float64)
        data = sim.data.astype(np.float64)
        # similarities equal up to floating-point summation order must tie (then: more recent)
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            _pick_neighbours(sim.indptr.astype(np.int64), sim.indices.astype(np.int64),
                             data, np.round(data, 9), self.session_time_,
                             int(self.sample_size), int(self.k), out_indptr, out_indices,
                             out_data)
        return sp.csr_matrix((out_data, out_indices, out_indptr), shape=sim.shape)

    def _score_next(self, sessions: list[np.ndarray], fallbacks=None) -> np.ndarray:
        w = self.neighbours(sessions)
        scores = (w @ self.sessions_items_).toarray().astype(np.float32)
        return self._fill_empty_rows(scores, "no neighbour session: popularity", fallbacks)


@register("SKNN")
class SKNN(_SessionNeighbours):
    """Session-based kNN (Ludewig & Jannach 2018, section 3.2; Jannach & Ludewig 2017).

    The current session :math:`s` and each training session :math:`n` are sets of items;
    their similarity is the binary cosine

    .. math:: \\mathrm{sim}(s, n) = \\frac{|s \\cap n|}{\\sqrt{|s|\\,|n|}}

    Neighbours are the ``k`` most similar among the ``sample_size`` most recent training
    sessions that share at least one item with :math:`s`; an item's score is the sum of the
    similarities of the neighbours containing it.

    Parameters
    ----------
    k : int, default 100
        Neighbour sessions used.
    sample_size : int, default 500
        Most recent candidate sessions considered.
    """

    def __init__(self, k: int = 100, sample_size: int = 500):
        self.k = k
        self.sample_size = sample_size

    def _query(self, sessions: list[np.ndarray]) -> sp.csr_matrix:
        rows, items, _ = _flatten(sessions)
        q = sp.csr_matrix((np.ones(items.size, dtype=np.float64), (rows, items)),
                          shape=(len(sessions), self.n_items_))
        q.sum_duplicates()
        q.data[:] = 1.0
        return q

    def _similarity(self, query: sp.csr_matrix) -> sp.csr_matrix:
        overlap = (query @ self.items_sessions_).tocsr()
        size_s = np.diff(query.indptr).astype(np.float64)
        row = np.repeat(np.arange(query.shape[0]), np.diff(overlap.indptr))
        overlap.data = overlap.data / np.sqrt(size_s[row] * self.session_size_[overlap.indices])
        return overlap


@register("VSKNN")
class VSKNN(_SessionNeighbours):
    """Vector-multiplication session-based kNN (Ludewig & Jannach 2018, section 3.2).

    Like :class:`SKNN`, but the current session is a real-valued vector in which an item's
    weight grows with the position of its (latest) occurrence, so recent clicks matter more;
    the similarity to a training session :math:`n` is the dot product with its binary vector:

    .. math:: \\mathrm{sim}(s, n) = \\sum_{i \\in s} w_s(i)\\,[i \\in n], \\qquad
              w_s(i) = \\frac{p_s(i)}{|s|} \\;(\\text{linear}) \\text{ or }
              \\frac{1}{|s| - p_s(i) + 1} \\;(\\text{harmonic})

    with :math:`p_s(i)` the 1-based position of the last occurrence of :math:`i` in
    :math:`s` (the most recent event has weight 1 under both decays).

    Parameters
    ----------
    k : int, default 100
    sample_size : int, default 1000
    weighting : {"linear", "harmonic"}, default "linear"
    """

    def __init__(self, k: int = 100, sample_size: int = 1000, weighting: str = "linear"):
        self.k = k
        self.sample_size = sample_size
        self.weighting = weighting

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        if self.weighting not in ("linear", "harmonic"):
            raise ValueError(f"weighting must be 'linear' or 'harmonic', got {self.weighting!r}")
        super()._fit(train, item_features=item_features, validation=validation)

    def position_weights(self, sessions: list[np.ndarray]) -> sp.csr_matrix:
        """The weighted query vectors (len(sessions), n_items) of the current sessions."""
        rows, items, position = _flatten(sessions)
        lengths = np.fromiter((len(s) for s in sessions), dtype=np.float64, count=len(sessions))
        if self.weighting == "linear":
            weight = position / lengths[rows]
        else:
            weight = 1.0 / (lengths[rows] - position + 1.0)
        # keep each item's latest occurrence: sort by (row, item, position), take group ends
        order = np.lexsort((position, items, rows))
        r, i = rows[order], items[order]
        last = np.ones(order.size, dtype=bool)
        last[:-1] = (r[1:] != r[:-1]) | (i[1:] != i[:-1])
        keep = order[last]
        return sp.csr_matrix((weight[keep], (rows[keep], items[keep])),
                             shape=(len(sessions), self.n_items_))

    def _query(self, sessions: list[np.ndarray]) -> sp.csr_matrix:
        return self.position_weights(sessions)

    def _similarity(self, query: sp.csr_matrix) -> sp.csr_matrix:
        return (query @ self.items_sessions_).tocsr()
