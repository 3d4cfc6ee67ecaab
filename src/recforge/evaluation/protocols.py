"""Evaluation protocols: how the data is split and how a fitted model is scored on a fold.

A protocol makes the splits once (the evaluator reuses them for every model, so all models see
exactly the same folds) and turns one fitted model into per-unit metric values on one fold.
Units are users for rating and top-N protocols and ranked events for the session protocol; a
metric on a fold is ``transform(sum(num) / sum(den))`` over units, which covers plain means
(``den = 1`` per evaluated unit) and ratio metrics such as RMSE (``num`` = a user's sum of
squared errors, ``den`` = the user's number of test ratings, ``transform = sqrt``).

Protocols
---------
:class:`RatingCV`
    k-fold cross-validation of rating prediction (RMSE, MAE), as Surprise's ``cross_validate``.
:class:`TopNLeaveOneOut`
    One held-out interaction per user; **full ranking** over every item the user has not seen
    in training (Hit rate, ARHR and cumulative hit rate as in Deshpande & Karypis, "Item-based
    top-N recommendation algorithms", TOIS 2004; NDCG, MRR, recall curves).
:class:`TopNHoldout`
    A random share of each user's interactions held out; full ranking; precision, recall, NDCG,
    MAP.
:class:`SampledNegatives`
    Leave-one-out where the held-out item is ranked against ``n_negatives`` sampled items the
    user never interacted with (He et al., "Neural collaborative filtering", WWW 2017, section
    4.1). Krichene & Rendle ("On sampled metrics for item recommendation", KDD 2020) show such
    numbers can disagree with full ranking, so every output of this protocol is labelled
    ``sampled``.
:class:`SessionNextItem`
    Next-click evaluation of session models (Hidasi et al. 2016), through
    :func:`recforge.metrics.session.evaluate_next_item`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

# imported here, not inside the timed code, so import time never counts as a model's time
from .. import metrics as M
from .. import split as S
from ..data.dataset import Dataset
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..metrics.session import evaluate_next_item
from ..models.base import RANKING, RATING, SESSION
from ..topk import mask_rows, topk_rows

log = logging.getLogger(__name__)

#: Metrics for which a lower value is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset({"rmse", "mae", "popularity"})


def metric_base(name: str) -> str:
    """``'ndcg@10'`` -> ``'ndcg'``."""
    return name.split("@", 1)[0]


def higher_is_better(name: str) -> bool:
    return metric_base(name) not in LOWER_IS_BETTER


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


def _interactions_of(data) -> Interactions:
    if isinstance(data, Interactions):
        return data
    if isinstance(data, Dataset) and data.interactions is not None:
        return data.interactions
    raise TypeError(f"this protocol needs user x item interactions; got {type(data).__name__}"
                    + (" without interactions" if isinstance(data, Dataset) else ""))


def _split_report(res) -> dict:
    rep = getattr(res, "report", None) or {}
    cfg = getattr(res, "config", None) or {}
    return {"report": _plain(rep), "config": _plain(cfg)}


def _plain(obj):
    """JSON-friendly copy of split reports (numpy scalars and DropReports made plain)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 100 else f"array{obj.shape}"
    if hasattr(obj, "to_dict"):
        return _plain(obj.to_dict())
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


class Protocol:
    """Base class: a named way of splitting data and scoring fitted models.

    Subclasses set ``task`` (the capability a model needs), implement :meth:`folds` and
    :meth:`evaluate`, and describe themselves in :meth:`config`.
    """

    name: str = "protocol"
    task: str = RATING
    sampled: bool = False
    seed: int = 0

    @property
    def label(self) -> str:
        return self.name

    def config(self) -> dict:
        return {"protocol": self.name, "label": self.label, "sampled": self.sampled,
                "task": self.task}

    def applicable(self, model) -> bool:
        """Whether ``model``'s declared capabilities let this protocol evaluate it."""
        caps = getattr(model, "capabilities", frozenset())
        if self.task == RANKING:
            # rating models rank by predicted rating (Recommender._score builds on _predict)
            return RANKING in caps or RATING in caps
        return self.task in caps

    def folds(self, data) -> list[Fold]:
        raise NotImplementedError

    def fit_part(self, fold: Fold):
        return fold.train

    def evaluate(self, model, fold: Fold, context: dict) -> FoldEval:
        raise NotImplementedError

    def context(self, fold: Fold, dataset: Dataset | None) -> dict:
        """Model-independent data for :meth:`evaluate`, computed once per fold."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


# ---------------------------------------------------------------------- ratings
class RatingCV(Protocol):
    """k-fold cross-validation of rating prediction: RMSE and MAE per fold.

    Each rating is in exactly one test fold (:func:`recforge.split.kfold`); a model is fitted on
    the other folds and predicts the held-out ratings (clipped to the rating scale, unknown
    users/items falling back to the training mean, as :meth:`Recommender.predict_inner` does).

    .. math:: \\mathrm{RMSE} = \\sqrt{\\tfrac{1}{|T|}\\sum_{(u,i)\\in T}(r_{ui}-\\hat r_{ui})^2},
              \\qquad \\mathrm{MAE} = \\tfrac{1}{|T|}\\sum_{(u,i)\\in T}|r_{ui}-\\hat r_{ui}|

    Per user the protocol keeps the sum of squared (absolute) errors and the number of test
    ratings, so bootstrap intervals and paired tests resample users.

    Parameters
    ----------
    n_folds : int
    seed : int
    """

    name = "rating_cv"
    task = RATING

    def __init__(self, n_folds: int = 5, seed: int = 0):
        if n_folds < 2:
            raise ValueError("n_folds must be at least 2")
        self.n_folds = int(n_folds)
        self.seed = seed

    @property
    def label(self) -> str:
        return f"{self.n_folds}-fold CV, rating prediction"

    def config(self) -> dict:
        return super().config() | {"n_folds": self.n_folds, "seed": self.seed}

    def folds(self, data) -> list[Fold]:
        inter = _interactions_of(data)
        if not inter.is_explicit:
            raise ValueError("RatingCV needs explicit ratings; use a top-N protocol for implicit data")
        parts = S.kfold(inter, n_folds=self.n_folds, seed=self.seed)
        return [Fold(j, p.train, p.test, p.validation, _split_report(p)) for j, p in enumerate(parts)]

    def evaluate(self, model, fold: Fold, context: dict) -> FoldEval:
        test = fold.test
        pred = model.predict_inner(test.users, test.items, clip=True)
        err = pred - test.values.astype(np.float64)
        n_users = len(test.user_map)
        den = np.bincount(test.users, minlength=n_users).astype(np.float64)
        se = np.bincount(test.users, weights=err * err, minlength=n_users)
        ae = np.bincount(test.users, weights=np.abs(err), minlength=n_users)
        return FoldEval(units={"rmse": (se, den), "mae": (ae, den)}, n_units=n_users)


# ---------------------------------------------------------------------- top-N, full ranking
class _TopN(Protocol):
    """Shared full-ranking scoring of top-N protocols."""

    task = RANKING

    def __init__(self, k: int = 10, curve_ks=(1, 2, 5, 10, 20, 50), relevance_threshold=None,
                 seed: int = 0, batch_size: int = 1024):
        if k < 1:
            raise ValueError("k must be positive")
        self.k = int(k)
        self.curve_ks = tuple(sorted({int(c) for c in curve_ks} | {self.k}))
        self.relevance_threshold = relevance_threshold
        self.seed = seed
        self.batch_size = int(batch_size)

    def config(self) -> dict:
        return super().config() | {"k": self.k, "curve_ks": list(self.curve_ks), "seed": self.seed,
                                   "relevance_threshold": self.relevance_threshold,
                                   "candidates": "all items not seen in training"}

    def context(self, fold: Fold, dataset: Dataset | None) -> dict:
        return topn_context(fold.train, fold.test, self.relevance_threshold)

    def evaluate(self, model, fold: Fold, context: dict) -> FoldEval:
        users = context["users"]
        k_max = max(self.curve_ks)
        rec, _ = model.recommend_inner(users, k_max, exclude_seen=True, batch_size=self.batch_size)
        return score_topn(rec, context, self.k, self.curve_ks, self._metric_names)

    _metric_names: tuple[str, ...] = ()


class TopNLeaveOneOut(_TopN):
    """Leave-one-out top-N with full ranking (:func:`recforge.split.leave_one_out`).

    For each user with at least ``min_interactions`` interactions one interaction is held out
    (the latest with ``mode='latest'``, a random one with ``mode='random'``). The model ranks
    every item the user has not interacted with in training; metrics at ``k``:

    * hit rate ``HR@k`` = share of users whose held-out item is in the top k;
    * ``ARHR@k`` = mean of ``1/rank`` over hits (Deshpande & Karypis 2004, eq. 4);
    * cumulative hit rate ``cHR@k``: hit rate over users whose held-out rating is at least
      ``relevance_threshold`` (explicit data only);
    * ``NDCG@k`` = ``1/log2(rank+1)`` for a hit (one relevant item, so IDCG = 1);
    * ``recall@k'`` for every ``k'`` in ``curve_ks`` (equals HR@k' here);
    * novelty (mean popularity rank of the recommended items), intra-list diversity and
      catalogue coverage of the top-k lists (:mod:`recforge.metrics.beyond_accuracy`).

    Parameters
    ----------
    k : int
    mode : {'latest', 'random'}
    min_interactions : int
    relevance_threshold : float, optional
        Rating from which a held-out item counts for cHR (default 4.0 on explicit data).
    curve_ks : sequence of int
    seed : int
    """

    name = "loo_topn"
    _metric_names = ("hr", "arhr", "chr", "ndcg", "mrr", "novelty", "diversity", "coverage")

    def __init__(self, k: int = 10, mode: str = "latest", min_interactions: int = 2,
                 relevance_threshold: float | None = 4.0, curve_ks=(1, 2, 5, 10, 20, 50),
                 seed: int = 0, batch_size: int = 1024):
        super().__init__(k=k, curve_ks=curve_ks, relevance_threshold=relevance_threshold, seed=seed,
                         batch_size=batch_size)
        if mode not in ("latest", "random"):
            raise ValueError("mode must be 'latest' or 'random'")
        self.mode = mode
        self.min_interactions = int(min_interactions)

    @property
    def label(self) -> str:
        return f"leave-one-out ({self.mode}) top-{self.k}, full ranking"

    def config(self) -> dict:
        return super().config() | {"mode": self.mode, "min_interactions": self.min_interactions}

    def folds(self, data) -> list[Fold]:
        inter = _interactions_of(data)
        res = S.leave_one_out(inter, mode=self.mode, seed=self.seed, min_interactions=self.min_interactions)
        return [Fold(0, res.train, res.test, res.validation, _split_report(res))]

    def context(self, fold: Fold, dataset: Dataset | None) -> dict:
        thr = self.relevance_threshold if fold.test.is_explicit else None
        return topn_context(fold.train, fold.test, thr, relevant_threshold=None)


class TopNHoldout(_TopN):
    """Random holdout top-N with full ranking (:func:`recforge.split.holdout`).

    A share ``test_ratio`` of the interactions is held out; each test user's held-out items
    (with rating ``>= relevance_threshold`` when given, on explicit data) are the relevant set.
    Metrics at ``k``: precision, recall, NDCG (binary gains), MAP, hit rate, MRR, plus novelty,
    diversity and coverage, and recall at every ``curve_ks``.
    """

    name = "holdout_topn"
    _metric_names = ("precision", "recall", "ndcg", "map", "hr", "mrr", "novelty", "diversity",
                     "coverage")

    def __init__(self, k: int = 10, test_ratio: float = 0.2, relevance_threshold: float | None = None,
                 curve_ks=(1, 2, 5, 10, 20, 50), seed: int = 0, batch_size: int = 1024):
        super().__init__(k=k, curve_ks=curve_ks, relevance_threshold=relevance_threshold, seed=seed,
                         batch_size=batch_size)
        self.test_ratio = float(test_ratio)

    @property
    def label(self) -> str:
        return f"{self.test_ratio:g} holdout top-{self.k}, full ranking"

    def config(self) -> dict:
        return super().config() | {"test_ratio": self.test_ratio}

    def folds(self, data) -> list[Fold]:
        inter = _interactions_of(data)
        res = S.holdout(inter, test_ratio=self.test_ratio, seed=self.seed)
        return [Fold(0, res.train, res.test, res.validation, _split_report(res))]

    def context(self, fold: Fold, dataset: Dataset | None) -> dict:
        thr = self.relevance_threshold if fold.test.is_explicit else None
        return topn_context(fold.train, fold.test, None, relevant_threshold=thr)


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


def intra_list_diversity(recommended: np.ndarray, item_vectors: sp.csr_matrix,
                         batch_size: int = 256) -> np.ndarray:
    """Per row, ``1 -`` the mean pairwise cosine similarity of the recommended items.

    The same quantity as :func:`recforge.metrics.diversity` with cosine similarity of the
    rows of ``item_vectors`` (Ziegler et al., WWW 2005, intra-list similarity), computed
    without forming the item x item matrix or one vector per pair: for a list ``L`` of unit
    vectors, the sum of ``cos(i, j)`` over ordered pairs ``i != j`` is
    ``||sum_{i in L} v_i||^2 - sum_{i in L} ||v_i||^2``. Memory is bounded by ``batch_size``
    lists at a time. Rows with fewer than two items are NaN.
    """
    rec = np.asarray(recommended)
    n_rows = rec.shape[0]
    out = np.full(n_rows, np.nan)
    self_sq = np.asarray(item_vectors.multiply(item_vectors).sum(axis=1)).ravel()
    for start in range(0, n_rows, batch_size):
        block = rec[start:start + batch_size]
        valid = block >= 0
        lens = valid.sum(axis=1).astype(np.float64)
        rows = np.repeat(np.arange(block.shape[0]), valid.sum(axis=1))
        cols = block[valid]
        ind = sp.csr_matrix((np.ones(cols.size), (rows, cols)),
                            shape=(block.shape[0], item_vectors.shape[0]))
        summed = ind @ item_vectors  # each list's sum of item vectors
        sq = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        diag = np.bincount(rows, weights=self_sq[cols], minlength=block.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            div = 1.0 - (sq - diag) / (lens * (lens - 1.0))
        div[lens < 2] = np.nan
        out[start:start + block.shape[0]] = div
    return out


def score_topn(rec: np.ndarray, ctx: dict, k: int, curve_ks, metric_names) -> FoldEval:
    """Per-user top-N metrics of recommendation lists ``rec`` (rows aligned to ``ctx['users']``).

    Accuracy, novelty (mean popularity rank of the recommended items, popularity = training
    interaction count) and catalogue coverage come from :mod:`recforge.metrics`; intra-list
    diversity (cosine over training users) from :func:`intra_list_diversity`; users for whom a metric is undefined (NaN,
    e.g. no held-out rating above the cHR threshold) are not units of that metric.
    """
    users = ctx["users"]
    relevant = ctx["relevant"]
    n_users = ctx["n_users"]
    rec_k = np.ascontiguousarray(rec[:, :k])
    names = set(metric_names)
    per_user: dict[str, np.ndarray] = {}
    if "hr" in names:
        per_user[f"hr@{k}"] = M.hit_rate(rec_k, relevant)
    if "arhr" in names:
        per_user[f"arhr@{k}"] = M.arhr(rec_k, relevant)
    if "chr" in names and ctx.get("chr_threshold") is not None:
        per_user[f"chr@{k}"] = M.cumulative_hit_rate(rec_k, relevant, threshold=ctx["chr_threshold"])
    if "ndcg" in names:
        per_user[f"ndcg@{k}"] = M.ndcg_at_k(rec_k, relevant)
    if "precision" in names:
        per_user[f"precision@{k}"] = M.precision_at_k(rec_k, relevant)
    if "recall" in names:
        per_user[f"recall@{k}"] = M.recall_at_k(rec_k, relevant)
    if "map" in names:
        per_user[f"map@{k}"] = M.average_precision_at_k(rec_k, relevant)
    if "mrr" in names:
        per_user[f"mrr@{k}"] = M.reciprocal_rank(rec_k, relevant)
    if "novelty" in names:
        per_user[f"novelty@{k}"] = M.novelty(rec_k, ctx["item_counts"])
    if "diversity" in names:
        per_user[f"diversity@{k}"] = intra_list_diversity(rec_k, ctx["item_vectors"])
    units: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, vec in per_user.items():
        vec = np.asarray(vec, dtype=np.float64)
        ok = np.isfinite(vec)
        units[name] = _scatter(users[ok], vec[ok], n_users)
    scalars = {}
    if "coverage" in names:
        scalars[f"coverage@{k}"] = M.catalog_coverage(rec_k, ctx["n_items"])
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
    Seen items (stored entries of ``seen``) are masked to ``-inf``; top-k by ``argpartition``
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


# ---------------------------------------------------------------------- sampled negatives
class SampledNegatives(Protocol):
    """Leave-one-out with the held-out item ranked against sampled negatives (**sampled**).

    He et al., "Neural collaborative filtering" (WWW 2017), section 4.1: for every test user,
    ``n_negatives`` items the user never interacted with (in training or test) are drawn
    uniformly without replacement; the model scores the held-out item and the negatives
    (:meth:`Recommender.score_inner`), and HR@k / NDCG@k / MRR come from the held-out item's
    rank among these ``n_negatives + 1`` items. Ties count against the held-out item
    (pessimistic), so a model with constant scores never gets credit.

    This is **not** full ranking: Krichene & Rendle (KDD 2020) show sampled metrics can rank
    models differently from the full-ranking ones. The protocol name, label and every output
    row carry ``sampled``.
    """

    name = "sampled_loo"
    task = RANKING
    sampled = True

    def __init__(self, n_negatives: int = 100, k: int = 10, mode: str = "latest",
                 min_interactions: int = 2, seed: int = 0, batch_size: int = 1024):
        self.n_negatives = int(n_negatives)
        self.k = int(k)
        self.mode = mode
        self.min_interactions = int(min_interactions)
        self.seed = seed
        self.batch_size = int(batch_size)

    @property
    def label(self) -> str:
        return f"sampled: leave-one-out vs {self.n_negatives} sampled negatives, top-{self.k}"

    def config(self) -> dict:
        return super().config() | {"n_negatives": self.n_negatives, "k": self.k, "mode": self.mode,
                                   "min_interactions": self.min_interactions, "seed": self.seed,
                                   "ties": "pessimistic"}

    def folds(self, data) -> list[Fold]:
        inter = _interactions_of(data)
        res = S.leave_one_out(inter, mode=self.mode, seed=self.seed, min_interactions=self.min_interactions)
        return [Fold(0, res.train, res.test, res.validation, _split_report(res))]

    def context(self, fold: Fold, dataset: Dataset | None) -> dict:
        test_csr = fold.test.csr.tocsr()
        users = np.flatnonzero(np.diff(test_csr.indptr) > 0).astype(np.int32)
        # the held-out item: one per user in leave-one-out (the first if a split gave several)
        pos = test_csr.indices[test_csr.indptr[users]].astype(np.int64)
        seen = (fold.train.csr + test_csr).tocsr()
        rng = np.random.default_rng(self.seed)
        neg = sample_negatives(seen, users, self.n_negatives, rng)
        return {"users": users, "candidates": np.column_stack([pos, neg]),
                "n_users": len(fold.test.user_map)}

    def evaluate(self, model, fold: Fold, context: dict) -> FoldEval:
        users = context["users"]
        cand = context["candidates"]
        ranks = np.empty(users.size, dtype=np.float64)
        for start in range(0, users.size, self.batch_size):
            sl = slice(start, start + self.batch_size)
            s = np.asarray(model.score_inner(users[sl], cand[sl]), dtype=np.float64)
            if np.isnan(s).any():
                raise ValueError(f"{type(model).__name__} returned NaN scores")
            target = s[:, :1]
            # pessimistic: every negative scoring >= the held-out item ranks above it
            ranks[sl] = 1.0 + (s[:, 1:] >= target).sum(axis=1)
        n = context["n_users"]
        hit = (ranks <= self.k).astype(np.float64)
        ndcg = np.where(ranks <= self.k, 1.0 / np.log2(ranks + 1.0), 0.0)
        mrr = 1.0 / ranks
        k = self.k
        units = {f"hr@{k}": _scatter(users, hit, n), f"ndcg@{k}": _scatter(users, ndcg, n),
                 "mrr": _scatter(users, mrr, n)}
        return FoldEval(units=units, n_units=n)


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


# ---------------------------------------------------------------------- sessions
class SessionNextItem(Protocol):
    """Next-item prediction in held-out sessions (Hidasi et al., ICLR 2016, section 4).

    The split is :func:`recforge.split.session_split` (the last ``test_days`` days' sessions
    are the test part) unless the dataset ships a predefined split (``parts['train_full']``
    and ``parts['test']``, as GRU4Rec-style sources do) and ``use_predefined`` is true.
    Units are ranked test events; metrics are Recall@k and MRR@k from
    :func:`recforge.metrics.session.evaluate_next_item` (ties pessimistic by default), plus
    item coverage@k and mean popularity@k of the recommendations.
    """

    name = "session_next_item"
    task = SESSION

    def __init__(self, ks=(1, 5, 10, 20), test_days: float = 1, min_length: int = 2,
                 use_predefined: bool = True, ties: str = "pessimistic", batch_size: int = 512):
        self.ks = tuple(sorted({int(k) for k in ks}))
        self.test_days = test_days
        self.min_length = int(min_length)
        self.use_predefined = bool(use_predefined)
        self.ties = ties
        self.batch_size = int(batch_size)

    @property
    def label(self) -> str:
        return f"session next-item, full ranking (ties {self.ties})"

    def config(self) -> dict:
        return super().config() | {"ks": list(self.ks), "test_days": self.test_days,
                                   "min_length": self.min_length, "ties": self.ties,
                                   "use_predefined": self.use_predefined}

    def folds(self, data) -> list[Fold]:
        if isinstance(data, Dataset):
            if self.use_predefined and "train_full" in data.parts and "test" in data.parts:
                return [Fold(0, data.parts["train_full"], data.parts["test"],
                             report={"report": {"predefined": True}, "config": {}})]
            sessions = data.sessions
        else:
            sessions = data
        if not isinstance(sessions, SessionEvents):
            raise TypeError("SessionNextItem needs session events")
        res = S.session_split(sessions, test_days=self.test_days, min_length=self.min_length)
        return [Fold(0, res.train, res.test, res.validation, _split_report(res))]

    def evaluate(self, model, fold: Fold, context: dict) -> FoldEval:
        out = evaluate_next_item(model, fold.test, ks=self.ks, ties=self.ties,
                                 batch_size=self.batch_size)
        ranks = np.asarray(out["ranks"], dtype=np.float64)
        ones = np.ones(ranks.size)
        units = {}
        for k in self.ks:
            units[f"recall@{k}"] = ((ranks <= k).astype(np.float64), ones)
            units[f"mrr@{k}"] = (np.where(ranks <= k, 1.0 / ranks, 0.0), ones)
        scalars = {}
        for k in self.ks:
            for key in (f"coverage@{k}", f"popularity@{k}"):
                if key in out:
                    scalars[key] = float(out[key])
        curve = {k: float(np.mean(ranks <= k)) if ranks.size else float("nan") for k in self.ks}
        return FoldEval(units=units, scalars=scalars, curve=curve, n_units=int(ranks.size),
                        unit_name="event")


PROTOCOLS = {cls.name: cls for cls in (RatingCV, TopNLeaveOneOut, TopNHoldout, SampledNegatives,
                                       SessionNextItem)}
ALIASES = {"rating-cv": "rating_cv", "cv": "rating_cv", "kfold": "rating_cv",
           "loo": "loo_topn", "leave-one-out": "loo_topn", "holdout": "holdout_topn",
           "sampled": "sampled_loo", "sampled-negatives": "sampled_loo",
           "session": "session_next_item", "next-item": "session_next_item"}


def make_protocol(kind: str, **params) -> Protocol:
    """A protocol by name (``'rating_cv'``, ``'loo_topn'``, ``'holdout_topn'``,
    ``'sampled_loo'``, ``'session_next_item'`` or an alias such as ``'loo'``)."""
    key = ALIASES.get(kind, kind)
    if key not in PROTOCOLS:
        raise ValueError(f"unknown protocol {kind!r}; known: {', '.join(sorted(PROTOCOLS))}, "
                         f"aliases: {', '.join(sorted(ALIASES))}")
    try:
        return PROTOCOLS[key](**params)
    except TypeError as exc:
        raise ValueError(f"protocol {kind!r}: {exc}") from None
