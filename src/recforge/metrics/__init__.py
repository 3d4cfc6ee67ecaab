"""Evaluation metrics: pure, vectorized functions on arrays.

* :mod:`~recforge.metrics.rating` — MAE, RMSE and per-user errors,
* :mod:`~recforge.metrics.ranking` — top-N accuracy (HR, ARHR, cumulative and rating hit
  rate, precision, recall, NDCG, MAP, MRR, AUC), one value per user,
* :mod:`~recforge.metrics.classification` — click prediction over labelled pairs: global ROC
  AUC and log loss,
* :mod:`~recforge.metrics.beyond_accuracy` — coverage, diversity, novelty, churn,
* :mod:`~recforge.metrics.session` — next-click ranks of session models, Recall@k and MRR@k
  from ranks (with the tie rules). Its
  ``recall_at_k`` works on target ranks, not on lists, so it stays under
  ``recforge.metrics.session`` and is not re-exported here (the top-level ``recall_at_k`` is the
  list metric of :mod:`~recforge.metrics.ranking`).

Nothing here calls a model: the drivers that do (session replay, responsiveness) are in
:mod:`recforge.evaluation`. Definitions and the tie rules are collected in ``docs/metrics.md``.
"""

from . import session
from .beyond_accuracy import (
    catalog_coverage,
    churn,
    diversity,
    intra_list_diversity,
    novelty,
    popularity_rank,
    user_coverage,
)
from .classification import log_loss, per_row_log_loss, roc_auc
from .ranking import (
    arhr,
    auc,
    average_precision_at_k,
    cumulative_hit_rate,
    hit_rate,
    hits_matrix,
    ndcg_at_k,
    precision_at_k,
    rating_hit_rate,
    recall_at_k,
    reciprocal_rank,
)
from .rating import mae, per_user_absolute_error, per_user_squared_error, rmse
from .session import mrr_at_k, rank_of_target

__all__ = [
    "mae", "rmse", "per_user_squared_error", "per_user_absolute_error",
    "hits_matrix", "hit_rate", "arhr", "cumulative_hit_rate", "rating_hit_rate",
    "precision_at_k", "recall_at_k", "ndcg_at_k", "average_precision_at_k", "reciprocal_rank",
    "auc", "roc_auc", "log_loss", "per_row_log_loss",
    "catalog_coverage", "user_coverage", "diversity", "intra_list_diversity", "novelty", "popularity_rank", "churn",
    "session", "mrr_at_k", "rank_of_target",
]
