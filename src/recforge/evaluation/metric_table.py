"""The one metric table: every metric a protocol can report, with its direction and aggregation.

Each :class:`Metric` says what the metric is called, whether higher or lower is better, how
per-unit values become a fold value, and, per task it applies to, the function computing it
from what that task measured. Protocols, results, reports, significance tests and tuning all
read this table, so adding a metric is one entry here.

Aggregation (see :mod:`recforge.evaluation.protocols` for units)

``"mean"``
    one value per unit (user or ranked event); the fold value is their mean; units where the
    value is NaN (undefined, e.g. no relevant item above the cHR threshold) are not units of
    the metric;
``"ratio"``
    per unit a numerator and a denominator; the fold value is ``sum(num) / sum(den)`` (MAE: a
    user's sum of absolute errors over their number of test ratings);
``"sqrt_ratio"``
    the square root of that ratio (RMSE);
``"fold"``
    one scalar per fold with no per-unit decomposition (catalogue coverage), so no interval.

What each task hands its metric functions (``fn(measured, k)``)

``rating``
    :class:`PairErrors`: the test pairs' users and prediction errors; ``fn`` returns the
    per-user ``(num, den)``;
``topn``
    ``(lists, context)``: the top-k recommendation lists of the evaluated users and the fold's
    context (relevant items, item popularity, item vectors); ``fn(lists, context)`` returns one
    value per user (``"mean"``), a scalar (``"fold"``) or ``None`` when not defined on the fold;
``click``
    :class:`ClickPairs`: the test pairs' users, labels and predicted probabilities; ``fn``
    returns the per-user ``(num, den)`` (log loss) or a fold scalar (AUC);
``sampled``, ``next_item``
    the rank of each unit's target (1 = best; ties as the task says); ``fn(ranks, k)`` returns
    one value per unit; ``next_item`` fold metrics get the replay driver's output dict instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import metrics as M

#: Aggregations a metric can have.
AGGREGATIONS = ("mean", "ratio", "sqrt_ratio", "fold")
#: Task names (see :mod:`recforge.evaluation.tasks`).
TASKS = ("rating", "topn", "sampled", "next_item", "click")


@dataclass(frozen=True)
class Impl:
    """How one task computes a metric: ``fn`` and whether the reported name carries ``@k``."""

    fn: Callable
    at_k: bool = True


@dataclass(frozen=True)
class Metric:
    """One row of the metric table.

    Attributes
    ----------
    name : str
        Base name (reported as ``name@k`` where the task's :class:`Impl` says ``at_k``).
    higher_is_better : bool
    aggregation : {'mean', 'ratio', 'sqrt_ratio', 'fold'}
    tasks : dict[str, Impl]
        The tasks it applies to and how each computes it.
    description : str
    """

    name: str
    higher_is_better: bool
    aggregation: str
    tasks: dict[str, Impl] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"metric {self.name!r}: aggregation must be one of {AGGREGATIONS}")
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown task(s) {sorted(unknown)}; known: {TASKS}")

    def label(self, task: str, k: int | None) -> str:
        """The reported name on ``task`` at cut-off ``k`` (``'ndcg@10'``, ``'rmse'``, ``'mrr'``)."""
        return f"{self.name}@{k}" if self.tasks[task].at_k and k is not None else self.name


@dataclass(frozen=True)
class PairErrors:
    """Errors of a rating task's test pairs: ``errors[j] = prediction - rating`` of user ``users[j]``."""

    users: np.ndarray
    errors: np.ndarray
    n_users: int


@dataclass(frozen=True)
class ClickPairs:
    """Labelled test pairs of a click task: ``labels[j]`` (0/1) and the predicted click
    probability ``probs[j]`` of user ``users[j]``."""

    users: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    n_users: int


# ------------------------------------------------------------------ per-task functions
def _per_user_sum(values: np.ndarray, e: PairErrors) -> tuple[np.ndarray, np.ndarray]:
    den = np.bincount(e.users, minlength=e.n_users).astype(np.float64)
    return np.bincount(e.users, weights=values, minlength=e.n_users), den


def _squared_error(e: PairErrors, k=None):
    return _per_user_sum(e.errors * e.errors, e)


def _absolute_error(e: PairErrors, k=None):
    return _per_user_sum(np.abs(e.errors), e)


def _lists(fn):
    """A ranking metric of :mod:`recforge.metrics` as a top-N metric function."""
    return lambda lists, ctx: fn(lists, ctx["relevant"])


def _chr(lists, ctx):
    if ctx.get("chr_threshold") is None:
        return None
    return M.cumulative_hit_rate(lists, ctx["relevant"], threshold=ctx["chr_threshold"])


def _click_auc(c: ClickPairs, k=None) -> float:
    return M.roc_auc(c.labels, c.probs)


def _click_log_loss(c: ClickPairs, k=None):
    loss = M.per_row_log_loss(c.labels, c.probs)
    den = np.bincount(c.users, minlength=c.n_users).astype(np.float64)
    return np.bincount(c.users, weights=loss, minlength=c.n_users), den


def _hit_from_ranks(ranks, k):
    return (ranks <= k).astype(np.float64)


def _ndcg_from_ranks(ranks, k):
    """One relevant item, so IDCG = 1: ``1/log2(rank + 1)`` within the top k."""
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def _reciprocal_rank(ranks, k):
    return 1.0 / ranks


def _reciprocal_rank_at_k(ranks, k):
    return np.where(ranks <= k, 1.0 / ranks, 0.0)


def _replay_scalar(name):
    return lambda out, k: float(out[f"{name}@{k}"]) if f"{name}@{k}" in out else None


# ------------------------------------------------------------------ the table
_ROWS = [
    Metric("rmse", False, "sqrt_ratio", {"rating": Impl(_squared_error, at_k=False)},
           "root mean squared error of predicted ratings"),
    Metric("mae", False, "ratio", {"rating": Impl(_absolute_error, at_k=False)},
           "mean absolute error of predicted ratings"),
    Metric("hr", True, "mean", {"topn": Impl(_lists(M.hit_rate)), "sampled": Impl(_hit_from_ranks)},
           "hit rate: a relevant item is in the top k"),
    Metric("arhr", True, "mean", {"topn": Impl(_lists(M.arhr))},
           "average reciprocal hit rank (Deshpande & Karypis 2004)"),
    Metric("chr", True, "mean", {"topn": Impl(_chr)},
           "cumulative hit rate over held-out ratings >= the threshold"),
    Metric("ndcg", True, "mean", {"topn": Impl(_lists(M.ndcg_at_k)), "sampled": Impl(_ndcg_from_ranks)},
           "normalised discounted cumulative gain, binary gains"),
    Metric("precision", True, "mean", {"topn": Impl(_lists(M.precision_at_k))},
           "share of the top k that is relevant"),
    Metric("recall", True, "mean", {"topn": Impl(_lists(M.recall_at_k)),
                                    "next_item": Impl(_hit_from_ranks)},
           "share of the relevant items in the top k (next item: the target is in the top k)"),
    Metric("map", True, "mean", {"topn": Impl(_lists(M.average_precision_at_k))},
           "average precision at k"),
    Metric("mrr", True, "mean", {"topn": Impl(_lists(M.reciprocal_rank)),
                                 "sampled": Impl(_reciprocal_rank, at_k=False),
                                 "next_item": Impl(_reciprocal_rank_at_k)},
           "reciprocal rank of the first relevant item (0 beyond k where cut)"),
    Metric("novelty", True, "mean", {"topn": Impl(lambda lists, ctx: M.novelty(lists, ctx["item_counts"]))},
           "mean popularity rank of the recommended items"),
    Metric("diversity", True, "mean", {"topn": Impl(lambda lists, ctx: _diversity(lists, ctx))},
           "intra-list diversity, cosine over training users"),
    Metric("coverage", True, "fold", {"topn": Impl(lambda lists, ctx: M.catalog_coverage(lists, ctx["n_items"])),
                                      "next_item": Impl(_replay_scalar("coverage"))},
           "share of the catalogue in at least one top-k list"),
    Metric("auc", True, "fold", {"click": Impl(_click_auc, at_k=False)},
           "ROC AUC of the click probabilities over all held-out pairs"),
    Metric("logloss", False, "ratio", {"click": Impl(_click_log_loss, at_k=False)},
           "mean binary cross-entropy of the click probabilities"),
    Metric("popularity", False, "fold", {"next_item": Impl(_replay_scalar("popularity")),
                                         "topn": Impl(lambda lists, ctx: _mean_popularity(lists, ctx))},
           "mean normalised training popularity of the recommended items (count / largest count)"),
]


def _mean_popularity(lists, ctx) -> float:
    counts = np.asarray(ctx["item_counts"], dtype=np.float64)
    items = np.asarray(lists)
    items = items[items >= 0]
    if not items.size or counts.max(initial=0.0) <= 0:
        return float("nan")
    return float(np.mean(counts[items]) / counts.max())


def _diversity(lists, ctx):

    return M.intra_list_diversity(lists, ctx["item_vectors"])


#: Every metric by base name, in reporting order.
METRICS: dict[str, Metric] = {m.name: m for m in _ROWS}

#: Metrics for which a lower value is better; every other metric is "higher is better".
LOWER_IS_BETTER = frozenset(m.name for m in METRICS.values() if not m.higher_is_better)
#: Metrics whose fold value is the square root of the per-unit ratio.
SQRT_METRICS = frozenset(m.name for m in METRICS.values() if m.aggregation == "sqrt_ratio")


def metric_base(name: str) -> str:
    """``'ndcg@10'`` -> ``'ndcg'``."""
    return name.split("@", 1)[0]


def higher_is_better(name: str) -> bool:
    """Direction of a reported metric (``'rmse'``, ``'ndcg@10'``); unknown names count as higher."""
    return metric_base(name) not in LOWER_IS_BETTER


def metrics_for(task: str) -> tuple[str, ...]:
    """Base names of the metrics that apply to ``task``, in table order."""
    return tuple(m.name for m in METRICS.values() if task in m.tasks)


def check_metrics(names, task: str) -> tuple[str, ...]:
    """``names`` in table order; ``ValueError`` naming any that does not apply to ``task``."""
    names = [names] if isinstance(names, str) else list(names)
    known = metrics_for(task)
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"metric(s) {', '.join(map(repr, bad))} do not apply to task {task!r}; "
                         f"known: {', '.join(known)}")
    chosen = set(names)
    return tuple(n for n in known if n in chosen)
