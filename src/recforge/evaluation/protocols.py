"""Evaluation protocols: a splitter, a task and a metric list.

A protocol makes the splits once (the evaluator reuses them for every model, so all models see
exactly the same folds) and turns one fitted model into per-unit metric values on one fold. It
is built from three parts:

* a **splitter** from :mod:`recforge.split` by name (``holdout``, ``kfold``,
  ``leave_one_out``, ``temporal_global``, ``temporal_per_user``, ``session_split``, see
  :func:`recforge.split.available_splitters`) with its parameters; a splitter giving one split
  makes one fold, k-fold makes k;
* a **task** (:mod:`recforge.evaluation.tasks`): rating prediction, top-N full ranking, top-N
  against sampled negatives, next item in sessions;
* a **metric list** from the one metric table (:mod:`recforge.evaluation.metric_table`).

Units are users for rating and top-N tasks and ranked events for the session task; a metric on
a fold is ``transform(sum(num) / sum(den))`` over units, which covers plain means (``den = 1``
per evaluated unit) and ratio metrics such as RMSE (``num`` = a user's sum of squared errors,
``den`` = the user's number of test ratings, ``transform = sqrt``).

Presets
-------
The named protocols are presets of these parts (each also takes ``split=`` to swap its
splitter, e.g. ``split={"name": "temporal_per_user", "test_ratio": 0.2}``, and ``metrics=``):

:class:`RatingCV`
    ``kfold`` + rating prediction (RMSE, MAE), as Surprise's ``cross_validate``.
:class:`TopNLeaveOneOut`
    ``leave_one_out`` + top-N **full ranking** (Hit rate, ARHR and cumulative hit rate as in
    Deshpande & Karypis, "Item-based top-N recommendation algorithms", TOIS 2004; NDCG, MRR,
    recall curves).
:class:`TopNHoldout`
    ``holdout`` + top-N full ranking; precision, recall, NDCG, MAP.
:class:`SampledNegatives`
    ``leave_one_out`` + the held-out item ranked against ``n_negatives`` sampled items (He et
    al., "Neural collaborative filtering", WWW 2017, section 4.1). Krichene & Rendle ("On
    sampled metrics for item recommendation", KDD 2020) show such numbers can disagree with
    full ranking, so every output of this protocol is labelled ``sampled``.
:class:`SessionNextItem`
    ``session_split`` (or the dataset's predefined parts) + next-click evaluation of session
    models (Hidasi et al. 2016), through
    :func:`recforge.evaluation.session_replay.evaluate_next_item`.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import split as S
from ..data.dataset import Dataset
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..metrics.beyond_accuracy import intra_list_diversity
from .metric_table import LOWER_IS_BETTER, higher_is_better, metric_base
from .tasks import (
    Fold,
    FoldEval,
    NextItem,
    RatingPrediction,
    SampledRanking,
    Task,
    TopNRanking,
    evaluate_score_function,
    rank_with_score_function,
    sample_negatives,
    score_topn,
    topn_context,
)

log = logging.getLogger(__name__)

__all__ = [
    "ALIASES", "Fold", "FoldEval", "LOWER_IS_BETTER", "PROTOCOLS", "Protocol", "RatingCV",
    "SampledNegatives", "SessionNextItem", "TopNHoldout", "TopNLeaveOneOut",
    "evaluate_score_function", "higher_is_better", "intra_list_diversity", "make_protocol",
    "metric_base", "rank_with_score_function", "sample_negatives", "score_topn", "topn_context",
]


def _interactions_of(data) -> Interactions:
    if isinstance(data, Interactions):
        return data
    if isinstance(data, Dataset) and data.interactions is not None:
        return data.interactions
    raise TypeError(f"this protocol needs user x item interactions; got {type(data).__name__}"
                    + (" without interactions" if isinstance(data, Dataset) else ""))


def _sessions_of(data) -> SessionEvents:
    sessions = data.sessions if isinstance(data, Dataset) else data
    if not isinstance(sessions, SessionEvents):
        raise TypeError(f"this protocol needs session events; got {type(data).__name__}")
    return sessions


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


def parse_split(split) -> tuple[S.Splitter, dict]:
    """``'holdout'``, ``{'name': 'temporal_per_user', 'test_ratio': 0.2}`` or a
    :class:`~recforge.split.Splitter` -> (splitter, parameters), parameters checked."""
    if isinstance(split, S.Splitter):
        return split, {}
    if isinstance(split, str):
        return S.get_splitter(split), {}
    if isinstance(split, dict):
        if "name" not in split:
            raise ValueError(f"split {split!r} needs 'name' (one of {', '.join(S.available_splitters())})")
        params = {k: v for k, v in split.items() if k != "name"}
        splitter = S.get_splitter(split["name"])
        splitter.check_params(params)
        return splitter, params
    raise TypeError(f"split must be a name, a dict with 'name', or a Splitter; got {type(split).__name__}")


class Protocol:
    """A splitter + a task + a metric list.

    Parameters
    ----------
    split : str, dict or Splitter
        The splitter by name, or ``{"name": ..., **parameters}``.
    task : Task
        What is asked of the model (:mod:`recforge.evaluation.tasks`).
    metrics : sequence of str, optional
        Metric base names from the metric table; default every metric that applies to the task.
    seed : int
        Passed to seeded splitters that were not given their own ``seed``.
    name, label : str, optional
        Default ``'<task>_<split>'`` (e.g. ``'topn_temporal_per_user'``) and a description
        built from both parts. A bake-off uses each protocol name once.

    Examples
    --------
    >>> from recforge.evaluation.tasks import TopNRanking
    >>> p = Protocol({"name": "temporal_per_user", "test_ratio": 0.2}, TopNRanking(k=10),
    ...              metrics=["hr", "ndcg"])
    >>> p.name
    'topn_temporal_per_user'
    """

    seed: int = 0

    def __init__(self, split, task: Task, metrics=None, *, seed: int = 0, name: str | None = None,
                 label: str | None = None):
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task, got {type(task).__name__}")
        self.splitter, params = parse_split(split)
        if self.splitter.input != task.input:
            raise ValueError(f"task {task.name!r} evaluates {task.input}, but split "
                             f"{self.splitter.name!r} splits {self.splitter.input}")
        if self.splitter.seeded and "seed" not in params:
            params["seed"] = seed
        self.split_params = params
        self.evaluation_task = task
        self.metrics = task.check_metrics(metrics)
        self.seed = seed
        self.name = name or f"{task.name}_{self.splitter.name}"
        self._label = label

    # -- the parts, as the evaluator and reports read them
    @property
    def task(self) -> str:
        """The model capability the protocol needs (``RATING``, ``RANKING``, ``SESSION``)."""
        return self.evaluation_task.capability

    @property
    def sampled(self) -> bool:
        """Whether the numbers come from sampled candidates (then every output says so)."""
        return self.evaluation_task.sampled

    @property
    def label(self) -> str:
        if self._label:
            return self._label
        params = ", ".join(f"{k}={v}" for k, v in self.split_params.items())
        return f"{self.evaluation_task.label()}, split {self.splitter.name}({params})"

    def config(self) -> dict:
        return {"protocol": self.name, "label": self.label, "sampled": self.sampled,
                "task": self.task, "evaluation_task": self.evaluation_task.name,
                "split": {"name": self.splitter.name, **self.split_params},
                "metrics": list(self.metrics)} | self.evaluation_task.config()

    def applicable(self, model) -> bool:
        """Whether ``model``'s declared capabilities let this protocol evaluate it."""
        return self.evaluation_task.applicable(model)

    def folds(self, data) -> list[Fold]:
        """The splits, one :class:`Fold` per split the splitter makes."""
        if self.splitter.input == "sessions":
            part = _sessions_of(data)
        else:
            part = _interactions_of(data)
        self.evaluation_task.check_data(part)
        results = self.splitter.split(part, **self.split_params)
        return [Fold(j, r.train, r.test, r.validation, _split_report(r)) for j, r in enumerate(results)]

    def fit_part(self, fold: Fold):
        return fold.train

    def context(self, fold: Fold, dataset: Dataset | None) -> dict:
        """Model-independent data for :meth:`evaluate`, computed once per fold."""
        return self.evaluation_task.context(fold, dataset)

    def evaluate(self, model, fold: Fold, context: dict) -> FoldEval:
        return self.evaluation_task.evaluate(model, fold, context, self.metrics)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"


def _preset(self, preset_name: str, preset_label: str, default_split: dict, split, task: Task,
            metrics, seed: int) -> None:
    """Build a preset: its own split, name and label unless ``split`` replaces the splitter."""
    if split is None:
        Protocol.__init__(self, default_split, task, metrics, seed=seed, name=preset_name,
                          label=preset_label)
    else:
        Protocol.__init__(self, split, task, metrics, seed=seed)


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
    split : str or dict, optional
        Another splitter instead of ``kfold`` (``n_folds`` is then unused).
    metrics : sequence of str, optional
    """

    name = "rating_cv"

    def __init__(self, n_folds: int = 5, seed: int = 0, split=None, metrics=("rmse", "mae")):
        if n_folds < 2:
            raise ValueError("n_folds must be at least 2")
        self.n_folds = int(n_folds)
        _preset(self, "rating_cv", f"{self.n_folds}-fold CV, rating prediction",
                {"name": "kfold", "n_folds": self.n_folds}, split, RatingPrediction(), metrics, seed)

    def config(self) -> dict:
        return super().config() | {"n_folds": self.n_folds, "seed": self.seed}


# ---------------------------------------------------------------------- top-N, full ranking
class TopNLeaveOneOut(Protocol):
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
    split : str or dict, optional
        Another splitter instead of ``leave_one_out`` (``mode`` and ``min_interactions`` are
        then unused).
    metrics : sequence of str, optional
    """

    name = "loo_topn"
    default_metrics = ("hr", "arhr", "chr", "ndcg", "mrr", "novelty", "diversity", "coverage",
                       "popularity")

    def __init__(self, k: int = 10, mode: str = "latest", min_interactions: int = 2,
                 relevance_threshold: float | None = 4.0, curve_ks=(1, 2, 5, 10, 20, 50),
                 seed: int = 0, batch_size: int = 1024, split=None, metrics=default_metrics):
        if mode not in ("latest", "random"):
            raise ValueError("mode must be 'latest' or 'random'")
        task = TopNRanking(k=k, curve_ks=curve_ks, chr_threshold=relevance_threshold,
                           batch_size=batch_size)
        self.k, self.curve_ks, self.batch_size = task.k, task.curve_ks, task.batch_size
        self.relevance_threshold = relevance_threshold
        self.mode = mode
        self.min_interactions = int(min_interactions)
        _preset(self, "loo_topn", f"leave-one-out ({mode}) top-{task.k}, full ranking",
                {"name": "leave_one_out", "mode": mode, "min_interactions": self.min_interactions},
                split, task, metrics, seed)

    def config(self) -> dict:
        return super().config() | {"k": self.k, "curve_ks": list(self.curve_ks), "seed": self.seed,
                                   "relevance_threshold": self.relevance_threshold,
                                   "mode": self.mode, "min_interactions": self.min_interactions}


class TopNHoldout(Protocol):
    """Random holdout top-N with full ranking (:func:`recforge.split.holdout`).

    A share ``test_ratio`` of the interactions is held out; each test user's held-out items
    (with rating ``>= relevance_threshold`` when given, on explicit data) are the relevant set.
    Metrics at ``k``: precision, recall, NDCG (binary gains), MAP, hit rate, MRR, plus novelty,
    diversity and coverage, and recall at every ``curve_ks``. ``split`` swaps the splitter
    (``test_ratio`` is then unused), e.g. ``split="temporal_per_user"``.
    """

    name = "holdout_topn"
    default_metrics = ("precision", "recall", "ndcg", "map", "hr", "mrr", "novelty", "diversity",
                       "coverage", "popularity")

    def __init__(self, k: int = 10, test_ratio: float = 0.2, relevance_threshold: float | None = None,
                 curve_ks=(1, 2, 5, 10, 20, 50), seed: int = 0, batch_size: int = 1024, split=None,
                 metrics=default_metrics):
        task = TopNRanking(k=k, curve_ks=curve_ks, relevant_threshold=relevance_threshold,
                           batch_size=batch_size)
        self.k, self.curve_ks, self.batch_size = task.k, task.curve_ks, task.batch_size
        self.relevance_threshold = relevance_threshold
        self.test_ratio = float(test_ratio)
        _preset(self, "holdout_topn", f"{self.test_ratio:g} holdout top-{task.k}, full ranking",
                {"name": "holdout", "test_ratio": self.test_ratio}, split, task, metrics, seed)

    def config(self) -> dict:
        return super().config() | {"k": self.k, "curve_ks": list(self.curve_ks), "seed": self.seed,
                                   "relevance_threshold": self.relevance_threshold,
                                   "test_ratio": self.test_ratio}


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

    def __init__(self, n_negatives: int = 100, k: int = 10, mode: str = "latest",
                 min_interactions: int = 2, seed: int = 0, batch_size: int = 1024, split=None,
                 metrics=("hr", "ndcg", "mrr")):
        task = SampledRanking(n_negatives=n_negatives, k=k, seed=seed, batch_size=batch_size)
        self.n_negatives, self.k, self.batch_size = task.n_negatives, task.k, task.batch_size
        self.mode = mode
        self.min_interactions = int(min_interactions)
        _preset(self, "sampled_loo",
                f"sampled: leave-one-out vs {task.n_negatives} sampled negatives, top-{task.k}",
                {"name": "leave_one_out", "mode": mode, "min_interactions": self.min_interactions},
                split, task, metrics, seed)
        if split is not None:
            self.name = f"sampled_{self.splitter.name}"  # every name of sampled output says so

    def config(self) -> dict:
        return super().config() | {"n_negatives": self.n_negatives, "k": self.k, "mode": self.mode,
                                   "min_interactions": self.min_interactions, "seed": self.seed,
                                   "ties": "pessimistic"}


# ---------------------------------------------------------------------- sessions
class SessionNextItem(Protocol):
    """Next-item prediction in held-out sessions (Hidasi et al., ICLR 2016, section 4).

    The split is :func:`recforge.split.session_split` (the last ``test_days`` days' sessions
    are the test part) unless the dataset ships a predefined split (``parts['train_full']``
    and ``parts['test']``, as GRU4Rec-style sources do) and ``use_predefined`` is true.
    Units are ranked test events; metrics are Recall@k and MRR@k from the session replay
    (:func:`recforge.evaluation.session_replay.evaluate_next_item`; ties pessimistic by
    default, GRU4Rec's names ``conservative`` / ``standard`` / ``median`` accepted), plus item
    coverage@k and mean popularity@k of the recommendations.
    """

    name = "session_next_item"

    def __init__(self, ks=(1, 5, 10, 20), test_days: float = 1, min_length: int = 2,
                 use_predefined: bool = True, ties: str = "pessimistic", batch_size: int = 512,
                 split=None, metrics=("recall", "mrr", "coverage", "popularity")):
        task = NextItem(ks=ks, ties=ties, batch_size=batch_size)
        self.ks, self.ties, self.batch_size = task.ks, task.ties, task.batch_size
        self.test_days = test_days
        self.min_length = int(min_length)
        self.use_predefined = bool(use_predefined)
        _preset(self, "session_next_item", f"session next-item, full ranking (ties {ties})",
                {"name": "session_split", "test_days": test_days, "min_length": self.min_length},
                split, task, metrics, 0)

    def config(self) -> dict:
        return super().config() | {"ks": list(self.ks), "test_days": self.test_days,
                                   "min_length": self.min_length, "ties": self.ties,
                                   "use_predefined": self.use_predefined}

    def folds(self, data) -> list[Fold]:
        if (isinstance(data, Dataset) and self.use_predefined and "train_full" in data.parts
                and "test" in data.parts):
            return [Fold(0, data.parts["train_full"], data.parts["test"],
                         report={"report": {"predefined": True}, "config": {}})]
        return super().folds(data)


PROTOCOLS = {cls.name: cls for cls in (RatingCV, TopNLeaveOneOut, TopNHoldout, SampledNegatives,
                                       SessionNextItem)}
ALIASES = {"rating-cv": "rating_cv", "cv": "rating_cv", "kfold": "rating_cv",
           "loo": "loo_topn", "leave-one-out": "loo_topn", "holdout": "holdout_topn",
           "sampled": "sampled_loo", "sampled-negatives": "sampled_loo",
           "session": "session_next_item", "next-item": "session_next_item"}


def make_protocol(kind: str, **params) -> Protocol:
    """A protocol by name (``'rating_cv'``, ``'loo_topn'``, ``'holdout_topn'``,
    ``'sampled_loo'``, ``'session_next_item'`` or an alias such as ``'loo'``).

    Every preset also takes ``split`` (a splitter name or ``{"name": ..., **parameters}``)
    and ``metrics`` (base names from the metric table)."""
    key = ALIASES.get(kind, kind)
    if key not in PROTOCOLS:
        raise ValueError(f"unknown protocol {kind!r}; known: {', '.join(sorted(PROTOCOLS))}, "
                         f"aliases: {', '.join(sorted(ALIASES))}")
    try:
        return PROTOCOLS[key](**params)
    except TypeError as exc:
        raise ValueError(f"protocol {kind!r}: {exc}") from None

