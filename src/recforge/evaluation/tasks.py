"""Evaluation tasks: what a protocol asks of a fitted model on one fold, and how it is scored.

A task knows the model capability it needs, which data it works on, the model-independent
context of a fold (relevant items, sampled candidates), and how a fitted model plus a fold
become per-unit metric values. The metric functions themselves come from the one metric table
(:mod:`recforge.evaluation.metric_table`).

Tasks
-----
:class:`RatingPrediction` (``"rating"``)
    predict the held-out ratings; units are users.
:class:`TopNRanking` (``"topn"``)
    **full ranking**: rank every item the user has not seen in training; units are users.
:class:`SampledRanking` (``"sampled"``)
    rank the held-out item against sampled negatives (He et al., WWW 2017, section 4.1); every
    output is labelled ``sampled`` (Krichene & Rendle, KDD 2020).
:class:`NextItem` (``"next_item"``)
    next-click prediction in held-out sessions (Hidasi et al., ICLR 2016); units are ranked
    events.
:class:`ClickPrediction` (``"click"``)
    predict the click probability of held-out pairs (a rating at or above a threshold is a
    click); global ROC AUC and log loss (units are users for the log loss).

Every model call of a task goes through one function: :func:`predict_pairs`,
:func:`predict_clicks`,
:func:`rank_top_k`, :func:`score_candidates`, and for sessions the replay driver
(:func:`recforge.evaluation.session_replay.evaluate_next_item`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .. import metrics as M
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..metrics.session import tie_rule
from ..models.base import CLICK, RANKING, RATING, SESSION
from ..models.query import FallbackLog, History
from ..topk import mask_rows, topk_rows
from .metric_table import METRICS, ClickPairs, PairErrors, check_metrics, metrics_for
from .session_replay import evaluate_next_item


@dataclass
class Fold:
    """One train/test split of a protocol (parts share the full data's id maps)."""

    index: int
    train: Interactions | SessionEvents
    test: Interactions | SessionEvents
    validation: Interactions | SessionEvents | None = None
    report: dict = field(default_factory=dict)


@dataclass
class FoldEval:
    """What a protocol measured for one model on one fold.

    ``units[metric] = (num, den)``: float64 arrays over the protocol's unit space (users of the
    full data, or ranked events of the fold); ``scalars`` are fold-level values without a
    per-unit decomposition (catalogue coverage); ``curve`` maps k to recall@k.
    """

    units: dict[str, tuple[np.ndarray, np.ndarray]]
    scalars: dict[str, float] = field(default_factory=dict)
    curve: dict[int, float] = field(default_factory=dict)
    n_units: int = 0
    unit_name: str = "user"
    fallbacks: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- model calls
def predict_pairs(model, test: Interactions, fallbacks: FallbackLog | None = None) -> np.ndarray:
    """The rating task's one model call: predicted ratings of the test pairs, clipped to the scale."""
    return model.predict_inner(test.users, test.items, clip=True, fallbacks=fallbacks)


def predict_clicks(model, test: Interactions, train: Interactions,
                   fallbacks: FallbackLog | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The click task's one model call: (labels, click probabilities) of the test pairs, their
    context derived from the test timestamps with the training part as earlier events."""
    return model.click_labels_and_probabilities(test, history=train, fallbacks=fallbacks)


def rank_top_k(model, users: np.ndarray, train: Interactions, k: int, batch_size: int):
    """The top-N task's one model call: top-``k`` lists of ``users`` with their training rows as
    history (scored from and excluded) — the same path a service takes with its live store.
    Returns :class:`~recforge.models.base.Recommendations` (inner ids, fallbacks)."""
    users = np.asarray(users, dtype=np.int32)
    return model.recommend_inner(users, k, history=History.from_csr(train.csr[users]),
                                 exclude_seen=True, batch_size=batch_size)


def score_candidates(model, users: np.ndarray, candidates: np.ndarray, train: Interactions,
                     fallbacks: FallbackLog | None = None) -> np.ndarray:
    """The sampled task's one model call: scores of each user's candidate items (row-aligned),
    the users' training rows as history."""
    users = np.asarray(users, dtype=np.int32)
    return np.asarray(model.score_inner(users, candidates, history=train.csr[users],
                                        fallbacks=fallbacks), dtype=np.float64)


# ---------------------------------------------------------------------- tasks
class Task:
    """Base class of evaluation tasks.

    Attributes
    ----------
    name : str
        The task's name in the metric table (``'rating'``, ``'topn'``, ``'sampled'``,
        ``'next_item'``).
    capability : str
        The model capability it needs (``RATING``, ``RANKING``, ``SESSION``).
    input : {'interactions', 'sessions'}
        The data it evaluates (a protocol's splitter must split the same kind).
    sampled : bool
        Whether its numbers come from sampled candidates rather than full ranking.
    """

    name = "task"
    capability = RATING
    input = "interactions"
    sampled = False
    unit_name = "user"

    @property
    def default_metrics(self) -> tuple[str, ...]:
        """Every metric of the table that applies to this task."""
        return metrics_for(self.name)

    def check_metrics(self, names) -> tuple[str, ...]:
        return check_metrics(self.default_metrics if names is None else names, self.name)

    def applicable(self, model) -> bool:
        """Whether ``model``'s declared capabilities let this task evaluate it."""
        return self.capability in getattr(model, "capabilities", frozenset())

    def check_data(self, data) -> None:
        """Raise on data the task cannot evaluate (before any split is made)."""

    def label(self) -> str:
        return self.name

    def config(self) -> dict:
        return {}

    def context(self, fold: Fold, dataset) -> dict:
        """Model-independent data for :meth:`evaluate`, computed once per fold."""
        return {}

    def evaluate(self, model, fold: Fold, context: dict, metrics) -> FoldEval:
        raise NotImplementedError


class RatingPrediction(Task):
    """Predict held-out ratings (clipped to the rating scale, unknown users/items falling back
    to the training mean, as :meth:`Recommender.predict_inner` does).

    Per user the task keeps the sum of squared (absolute) errors and the number of test
    ratings, so bootstrap intervals and paired tests resample users.
    """

    name = "rating"
    capability = RATING

    def label(self) -> str:
        return "rating prediction"

    def check_data(self, data) -> None:
        if not data.is_explicit:
            raise ValueError("rating prediction needs explicit ratings; use a top-N protocol for "
                             "implicit data")

    def evaluate(self, model, fold: Fold, context: dict, metrics) -> FoldEval:
        test = fold.test
        log = FallbackLog()
        err = predict_pairs(model, test, log) - test.values.astype(np.float64)
        n_users = len(test.user_map)
        measured = PairErrors(test.users, err, n_users)
        units = {}
        for name in metrics:
            impl = METRICS[name].tasks[self.name]
            units[METRICS[name].label(self.name, None)] = impl.fn(measured, None)
        return FoldEval(units=units, n_units=n_users, fallbacks=log.as_dict())


class TopNRanking(Task):
    """Full-ranking top-N: every item the user has not interacted with in training is a candidate.

    Parameters
    ----------
    k : int
        List length the metrics are cut at.
    curve_ks : sequence of int
        Cut-offs of the recall curve (``k`` is always added); lists are ranked to the largest.
    chr_threshold : float, optional
        Held-out rating from which an item counts for cHR (explicit data only).
    relevant_threshold : float, optional
        Held-out rating from which an item is relevant at all (explicit data only); users with
        no relevant item are not evaluated.
    batch_size : int
        Users ranked per model call.
    """

    name = "topn"
    capability = RANKING

    def __init__(self, k: int = 10, curve_ks=(1, 2, 5, 10, 20, 50), chr_threshold=None,
                 relevant_threshold=None, batch_size: int = 1024):
        if k < 1:
            raise ValueError("k must be positive")
        self.k = int(k)
        self.curve_ks = tuple(sorted({int(c) for c in curve_ks} | {self.k}))
        self.chr_threshold = chr_threshold
        self.relevant_threshold = relevant_threshold
        self.batch_size = int(batch_size)

    def applicable(self, model) -> bool:
        # rating models rank by predicted rating (Recommender._score builds on _predict)
        caps = getattr(model, "capabilities", frozenset())
        return RANKING in caps or RATING in caps

    def label(self) -> str:
        return f"top-{self.k}, full ranking"

    def config(self) -> dict:
        return {"k": self.k, "curve_ks": list(self.curve_ks), "chr_threshold": self.chr_threshold,
                "relevant_threshold": self.relevant_threshold,
                "candidates": "all items not seen in training"}

    def context(self, fold: Fold, dataset) -> dict:
        explicit = fold.test.is_explicit
        return topn_context(fold.train, fold.test, self.chr_threshold if explicit else None,
                            relevant_threshold=self.relevant_threshold if explicit else None)

    def evaluate(self, model, fold: Fold, context: dict, metrics) -> FoldEval:
        rec = rank_top_k(model, context["users"], fold.train, max(self.curve_ks), self.batch_size)
        ev = score_topn(rec.inner, context, self.k, self.curve_ks, metrics)
        ev.fallbacks = rec.fallbacks
        return ev


class SampledRanking(Task):
    """The held-out item ranked against ``n_negatives`` sampled items (**sampled**).

    He et al., "Neural collaborative filtering" (WWW 2017), section 4.1: for every test user,
    ``n_negatives`` items the user never interacted with (in training or test) are drawn
    uniformly without replacement with ``seed``; the model scores the held-out item and the
    negatives, and the metrics come from the held-out item's rank among these
    ``n_negatives + 1`` items. Ties count against the held-out item (pessimistic), so a model
    with constant scores never gets credit. Not full ranking: Krichene & Rendle (KDD 2020) show
    sampled metrics can rank models differently.
    """

    name = "sampled"
    capability = RANKING
    sampled = True

    def __init__(self, n_negatives: int = 100, k: int = 10, seed: int = 0, batch_size: int = 1024):
        self.n_negatives = int(n_negatives)
        self.k = int(k)
        self.seed = seed
        self.batch_size = int(batch_size)

    def applicable(self, model) -> bool:
        caps = getattr(model, "capabilities", frozenset())
        return RANKING in caps or RATING in caps

    def label(self) -> str:
        return f"sampled: vs {self.n_negatives} sampled negatives, top-{self.k}"

    def config(self) -> dict:
        return {"n_negatives": self.n_negatives, "k": self.k, "negatives_seed": self.seed,
                "ties": "pessimistic"}

    def context(self, fold: Fold, dataset) -> dict:
        test_csr = fold.test.csr.tocsr()
        users = np.flatnonzero(np.diff(test_csr.indptr) > 0).astype(np.int32)
        # the held-out item: one per user in leave-one-out (the first if a split gave several)
        pos = test_csr.indices[test_csr.indptr[users]].astype(np.int64)
        seen = (fold.train.csr + test_csr).tocsr()
        rng = np.random.default_rng(self.seed)
        neg = sample_negatives(seen, users, self.n_negatives, rng)
        return {"users": users, "candidates": np.column_stack([pos, neg]),
                "n_users": len(fold.test.user_map)}

    def evaluate(self, model, fold: Fold, context: dict, metrics) -> FoldEval:
        users = context["users"]
        cand = context["candidates"]
        ranks = np.empty(users.size, dtype=np.float64)
        log = FallbackLog()
        for start in range(0, users.size, self.batch_size):
            sl = slice(start, start + self.batch_size)
            sub = FallbackLog(users[sl].size)
            s = score_candidates(model, users[sl], cand[sl], fold.train, sub)
            log.absorb(sub)
            if np.isnan(s).any():
                raise ValueError(f"{type(model).__name__} returned NaN scores")
            target = s[:, :1]
            # pessimistic: every negative scoring >= the held-out item ranks above it
            ranks[sl] = 1.0 + (s[:, 1:] >= target).sum(axis=1)
        n = context["n_users"]
        units = {METRICS[m].label(self.name, self.k): _scatter(users, METRICS[m].tasks[self.name].fn(ranks, self.k), n)
                 for m in metrics}
        return FoldEval(units=units, n_units=n, fallbacks=log.as_dict())


class NextItem(Task):
    """Next-item prediction in held-out sessions (Hidasi et al., ICLR 2016, section 4).

    Units are ranked test events; ranks come from the session replay
    (:func:`recforge.evaluation.session_replay.evaluate_next_item`) with the tie rule ``ties``
    (ours or GRU4Rec's names: ``conservative`` = ``pessimistic``, ``standard`` =
    ``optimistic``, ``median`` = ``average``); metrics are reported at every cut-off in ``ks``.
    """

    name = "next_item"
    capability = SESSION
    input = "sessions"
    unit_name = "event"

    def __init__(self, ks=(1, 5, 10, 20), ties: str = "pessimistic", batch_size: int = 512):
        tie_rule(ties)
        self.ks = tuple(sorted({int(k) for k in ks}))
        self.ties = ties
        self.batch_size = int(batch_size)

    def label(self) -> str:
        return f"next item, full ranking (ties {self.ties})"

    def config(self) -> dict:
        return {"ks": list(self.ks), "ties": self.ties}

    def evaluate(self, model, fold: Fold, context: dict, metrics) -> FoldEval:
        out = evaluate_next_item(model, fold.test, ks=self.ks, ties=self.ties,
                                 batch_size=self.batch_size)
        ranks = np.asarray(out["ranks"], dtype=np.float64)
        ones = np.ones(ranks.size)
        per_event = [m for m in metrics if METRICS[m].aggregation != "fold"]
        per_fold = [m for m in metrics if METRICS[m].aggregation == "fold"]
        units, scalars = {}, {}
        for k in self.ks:
            for m in per_event:
                units[METRICS[m].label(self.name, k)] = (METRICS[m].tasks[self.name].fn(ranks, k), ones)
        for k in self.ks:
            for m in per_fold:
                val = METRICS[m].tasks[self.name].fn(out, k)
                if val is not None:
                    scalars[METRICS[m].label(self.name, k)] = val
        curve = {k: float(np.mean(ranks <= k)) if ranks.size else float("nan") for k in self.ks}
        return FoldEval(units=units, scalars=scalars, curve=curve, n_units=int(ranks.size),
                        unit_name="event")


#: Tasks by name.
class ClickPrediction(Task):
    """Click prediction on held-out pairs (the CTR protocol of Rendle 2010, Cheng et al. 2016,
    Guo et al. 2017, Wang et al. 2021): the model's own click rule labels each test pair (for
    explicit data a rating ``>= threshold``, the model's hyperparameter) and ``predict_proba``
    scores it. AUC is one global ranking of all test pairs (a fold value); the log loss keeps
    per user the sum of the pair losses and the number of pairs, so intervals resample users.
    """

    name = "click"
    capability = CLICK

    def label(self) -> str:
        return "click prediction"

    def evaluate(self, model, fold: Fold, context: dict, metrics) -> FoldEval:
        test = fold.test
        log = FallbackLog()
        y, p = predict_clicks(model, test, fold.train, log)
        n_users = len(test.user_map)
        measured = ClickPairs(test.users, y, p, n_users)
        units, scalars = {}, {}
        for name in metrics:
            metric = METRICS[name]
            value = metric.tasks[self.name].fn(measured, None)
            if metric.aggregation == "fold":
                scalars[metric.label(self.name, None)] = float(value)
            else:
                units[metric.label(self.name, None)] = value
        return FoldEval(units=units, scalars=scalars, n_units=n_users, fallbacks=log.as_dict())


TASKS = {cls.name: cls for cls in (RatingPrediction, TopNRanking, SampledRanking, NextItem,
                                   ClickPrediction)}


# ---------------------------------------------------------------------- top-N helpers
def topn_context(train: Interactions, test: Interactions, chr_threshold=None,
                 relevant_threshold=None) -> dict:
    """Test users, their relevant items (CSR rows aligned to ``users``) and item statistics.

    Users with no relevant test item are not evaluated (they cannot score on any metric); the
    number left out is reported as ``users_without_relevant``.
    """
    test_csr = test.csr.tocsr()
    if relevant_threshold is not None:
        test_csr = test_csr.multiply(test_csr >= relevant_threshold).tocsr()
        test_csr.eliminate_zeros()
    users = np.flatnonzero(np.diff(test_csr.indptr) > 0).astype(np.int32)
    n_test_users = int((np.diff(test.csr.indptr) > 0).sum())
    relevant = test_csr[users]
    relevant.sort_indices()
    counts = np.asarray(train.item_counts, dtype=np.float64)
    return {
        "users": users,
        "relevant": relevant,
        "n_users": len(test.user_map),
        "n_items": len(test.item_map),
        "item_counts": counts,
        "item_vectors": _item_vectors(train),
        "chr_threshold": chr_threshold,
        "users_without_relevant": n_test_users - int(users.size),
    }


def _item_vectors(train: Interactions) -> sp.csr_matrix:
    """L2-normalised binary item vectors over training users (rows = items)."""
    x = train.csr.T.tocsr().astype(np.float64)
    x.data[:] = 1.0
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (sp.diags(inv) @ x).tocsr()




def score_topn(rec: np.ndarray, ctx: dict, k: int, curve_ks, metric_names) -> FoldEval:
    """Per-user top-N metrics of recommendation lists ``rec`` (rows aligned to ``ctx['users']``).

    Each metric named in ``metric_names`` is computed by its ``topn`` function in the metric
    table on the top-``k`` lists; users for whom a metric is undefined (NaN, e.g. no held-out
    rating above the cHR threshold) are not units of that metric; ``"fold"`` metrics
    (catalogue coverage) are fold scalars. The recall curve is recall at every ``curve_ks``.
    """
    users = ctx["users"]
    relevant = ctx["relevant"]
    n_users = ctx["n_users"]
    rec_k = np.ascontiguousarray(rec[:, :k])
    chosen = set(metric_names)
    units: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scalars = {}
    for name, metric in METRICS.items():
        if name not in chosen or "topn" not in metric.tasks:
            continue
        value = metric.tasks["topn"].fn(rec_k, ctx)
        if value is None:
            continue
        if metric.aggregation == "fold":
            scalars[metric.label("topn", k)] = value
            continue
        vec = np.asarray(value, dtype=np.float64)
        ok = np.isfinite(vec)
        units[metric.label("topn", k)] = _scatter(users[ok], vec[ok], n_users)
    curve = {}
    for c in curve_ks:
        vals = M.recall_at_k(rec, relevant, k=int(c)) if users.size else np.array([np.nan])
        curve[int(c)] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    return FoldEval(units=units, scalars=scalars, curve=curve, n_units=n_users)


def rank_with_score_function(score_fn, seen: sp.csr_matrix, users: np.ndarray, k: int,
                             batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Full-ranking top-``k`` of ``users`` from any score function, seen items excluded.

    ``score_fn(users)`` returns scores of every item, shape (len(users), n_items); it is
    called on batches of ``batch_size`` users, so memory is ``batch_size * n_items`` floats.
    Seen items (stored entries of ``seen``) are masked to ``-inf``; top-k by :func:`topk_rows`
    with ties to the lower item index (the same selection as :meth:`Recommender.recommend`).
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = seen.shape[1]
    k_eff = int(min(k, n_items))
    out_idx = np.empty((users.size, k_eff), dtype=np.int32)
    out_val = np.empty((users.size, k_eff), dtype=np.float32)
    for start in range(0, users.size, batch_size):
        ub = users[start:start + batch_size]
        scores = np.array(score_fn(ub), dtype=np.float32, copy=True)
        if scores.shape != (ub.size, n_items):
            raise ValueError(f"score function returned shape {scores.shape}, expected {(ub.size, n_items)}")
        mask_rows(scores, seen, ub)
        out_idx[start:start + ub.size], out_val[start:start + ub.size] = topk_rows(scores, k_eff)
    return out_idx, out_val


def evaluate_score_function(score_fn, seen: sp.csr_matrix, relevant: sp.csr_matrix, k: int = 10,
                            batch_size: int = 1024) -> dict:
    """Full-ranking top-``k`` evaluation of a score function: HR, NDCG, recall, MRR at ``k``.

    Users with at least one entry in ``relevant`` (users x items, the held-out items) are
    ranked over every item without an entry in ``seen`` (their training items); returns the
    mean of each metric over those users and the number of users.
    """
    relevant = relevant.tocsr()
    seen = seen.tocsr()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    rec, _ = rank_with_score_function(score_fn, seen, users, k, batch_size)
    rel = relevant[users]
    return {f"hr@{k}": float(np.mean(M.hit_rate(rec, rel))),
            f"ndcg@{k}": float(np.mean(M.ndcg_at_k(rec, rel))),
            f"recall@{k}": float(np.mean(M.recall_at_k(rec, rel))),
            f"mrr@{k}": float(np.mean(M.reciprocal_rank(rec, rel))),
            "users": int(users.size)}


def _scatter(users: np.ndarray, values: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    num = np.zeros(n_users)
    den = np.zeros(n_users)
    num[users] = values
    den[users] = 1.0
    return num, den


def sample_negatives(seen: sp.csr_matrix, users: np.ndarray, n_negatives: int,
                     rng: np.random.Generator) -> np.ndarray:
    """For each user, ``n_negatives`` distinct items with no entry in ``seen``, uniformly.

    Vectorized rejection sampling: each round draws a block of candidates for the rows still
    short, drops seen items and repeats within a row (keeping draw order, so the kept items are
    a uniform sample without replacement), and keeps the first ones needed.

    Raises
    ------
    ValueError
        When some user has fewer than ``n_negatives`` unseen items.
    """
    n_items = seen.shape[1]
    users = np.asarray(users, dtype=np.int64)
    n_seen = np.diff(seen.indptr)[users]
    short = np.flatnonzero(n_items - n_seen < n_negatives)
    if short.size:
        raise ValueError(f"{short.size} users have fewer than {n_negatives} items they never "
                         f"interacted with (e.g. inner user {int(users[short[0]])}); "
                         "lower n_negatives")
    out = np.full((users.size, n_negatives), -1, dtype=np.int64)
    filled = np.zeros(users.size, dtype=np.int64)
    keys = (np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr)) * n_items
            + seen.indices.astype(np.int64))  # sorted: CSR rows in order, indices sorted below
    keys.sort()
    todo = np.arange(users.size)
    while todo.size:
        need = n_negatives - filled[todo]
        width = int(need.max()) * 2 + 8
        draw = rng.integers(0, n_items, size=(todo.size, width))
        # previously kept items of the row also count as "seen" for the dedup
        prev = out[todo]
        both = np.concatenate([prev, draw], axis=1)
        key = users[todo, None] * n_items + both
        pos = np.searchsorted(keys, key)
        pos = np.minimum(pos, max(keys.size - 1, 0))
        is_seen = keys[pos] == key if keys.size else np.zeros(key.shape, bool)
        # first occurrence within the row (stable sort keeps draw order for equal values)
        order = np.argsort(both, axis=1, kind="stable")
        sorted_vals = np.take_along_axis(both, order, axis=1)
        dup_sorted = np.zeros(both.shape, dtype=bool)
        dup_sorted[:, 1:] = sorted_vals[:, 1:] == sorted_vals[:, :-1]
        dup = np.empty_like(dup_sorted)
        np.put_along_axis(dup, order, dup_sorted, axis=1)
        ok = ~is_seen & ~dup & (both >= 0)
        ok[:, :n_negatives] = False  # the previously kept block is not re-added
        rank = np.cumsum(ok, axis=1)
        take = ok & (rank <= need[:, None])
        r, c = np.nonzero(take)
        dest = filled[todo][r] + rank[r, c] - 1
        out[todo[r], dest] = both[r, c]
        filled[todo] += take.sum(axis=1)
        todo = todo[filled[todo] < n_negatives]
    return out
