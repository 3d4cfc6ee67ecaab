r"""Distributed evaluation: top-N and rating metrics computed per partition, summed on the
driver.

Each partition evaluates its users with the pure functions of :mod:`recforge.metrics` (the
functions the single-machine evaluator's metric table calls) and returns, per metric, the sum
of the per-user values and the number of users it is defined for; the driver adds these up.
Top-N metrics are means over users with at least one relevant held-out item, as the
evaluator's ``mean`` aggregation; RMSE and MAE are pooled over all held-out pairs
(:math:`\sqrt{\sum e^2 / n}` and :math:`\sum |e| / n`), as its ``sqrt_ratio`` / ``ratio``
aggregation. Only the per-partition sums travel, so the result equals the single-machine value
up to the order of a float64 summation (far below 1e-9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...metrics import ranking as M
from .data import ITEM, USER, VALUE, IndexedInteractions

#: Top-N metric name -> the recforge.metrics function (the evaluator's metric-table names).
TOPN_METRICS = {
    "hr": M.hit_rate,
    "arhr": M.arhr,
    "ndcg": M.ndcg_at_k,
    "precision": M.precision_at_k,
    "recall": M.recall_at_k,
    "map": M.average_precision_at_k,
    "mrr": M.reciprocal_rank,
}
RATING_METRICS = ("rmse", "mae")


def _frame(data):
    return data.frame if isinstance(data, IndexedInteractions) else data


def _topn_partition(metrics: tuple[str, ...], k: int):
    def run(batches):
        for df in batches:
            if not len(df):
                continue
            recs = [np.asarray(r) if r is not None else np.empty(0) for r in df["rec"]]
            rels = [np.asarray(r) for r in df["rel"]]
            # local codes for the batch's item ids: the metrics only compare ids
            pool = np.concatenate(recs + rels) if (recs or rels) else np.empty(0)
            kind = "U" if pool.dtype.kind in "OUS" else "i"
            pool = pool.astype(str) if kind == "U" else pool.astype(np.int64)
            vocab = np.unique(pool)
            rec = np.full((len(df), k), -1, dtype=np.int64)
            for j, r in enumerate(recs):  # one row per user: k entries each
                if r.size:
                    rr = r.astype(str) if kind == "U" else r.astype(np.int64)
                    rec[j, :min(k, rr.size)] = np.searchsorted(vocab, rr[:k])
            lengths = np.array([r.size for r in rels])
            flat = np.concatenate(rels) if rels else np.empty(0)
            flat = flat.astype(str) if kind == "U" else flat.astype(np.int64)
            rel = sp.csr_matrix((np.ones(flat.size), np.searchsorted(vocab, flat),
                                 np.concatenate(([0], np.cumsum(lengths)))),
                                shape=(len(df), max(vocab.size, 1)))
            rel.sum_duplicates()
            out = {"metric": [], "total": [], "count": []}
            for name in metrics:
                vals = np.asarray(TOPN_METRICS[name](rec, rel, k=k), dtype=np.float64)
                ok = np.isfinite(vals)
                out["metric"].append(name)
                out["total"].append(float(vals[ok].sum()))
                out["count"].append(int(ok.sum()))
            yield pd.DataFrame(out)

    return run


def topn_metrics(recommendations, test, *, k: int = 10,
                 metrics=("hr", "ndcg", "precision", "recall", "map", "mrr"),
                 relevant_threshold: float | None = None, user: str = USER, item: str = ITEM,
                 value: str = VALUE) -> dict[str, float]:
    """Top-N metrics at ``k`` of top-N lists against held-out interactions, on the cluster.

    Parameters
    ----------
    recommendations : pyspark.sql.DataFrame
        ``user, rank, item`` (what :func:`~recforge.scale.spark.batch.recommend_batch`
        writes); ranks from 1.
    test : pyspark.sql.DataFrame or IndexedInteractions
        Held-out ``user, item[, value]``; every held-out item is relevant (with
        ``relevant_threshold``: those with value at least this; users left with none are not
        evaluated). A test user without a list counts as an empty list.
    k : int, default 10
    metrics : sequence of str
        Names from :data:`TOPN_METRICS`.

    Returns
    -------
    dict
        ``{"hr@10": ..., ...}`` (means over the evaluated users) and ``"users"``: their number.
    """
    from pyspark.sql import functions as F

    bad = [m for m in metrics if m not in TOPN_METRICS]
    if bad:
        raise ValueError(f"metrics: unknown {bad}; known: {sorted(TOPN_METRICS)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    t = _frame(test)
    if relevant_threshold is not None:
        t = t.where(F.col(value) >= float(relevant_threshold))
    rel = t.groupBy(F.col(user).alias(USER)).agg(F.collect_set(F.col(item)).alias("rel"))
    recs = (recommendations.where(F.col("rank") <= int(k))
            .groupBy(USER)
            .agg(F.array_sort(F.collect_list(F.struct("rank", ITEM))).alias("_r"))
            .select(USER, F.transform("_r", lambda s: s[ITEM]).alias("rec")))
    joined = rel.join(recs, USER, "left").select("rel", "rec")
    names = tuple(metrics)
    parts = joined.mapInPandas(_topn_partition(names, int(k)),
                               "metric string, total double, count long")
    sums = parts.groupBy("metric").agg(F.sum("total").alias("total"),
                                       F.sum("count").alias("count")).toPandas()
    out: dict[str, float] = {}
    for name in names:
        row = sums[sums["metric"] == name]
        total = float(row["total"].iloc[0]) if len(row) else 0.0
        count = int(row["count"].iloc[0]) if len(row) else 0
        out[f"{name}@{k}"] = total / count if count else float("nan")
    out["users"] = int(sums["count"].max()) if len(sums) else 0
    return out


def _rating_partition(label: str, prediction: str):
    def run(batches):
        se = ae = 0.0
        n = 0
        for df in batches:
            if not len(df):
                continue
            err = df[prediction].to_numpy(np.float64) - df[label].to_numpy(np.float64)
            if not np.isfinite(err).all():
                raise ValueError(f"non-finite {prediction!r} or {label!r} value")
            se += float(np.sum(err * err))
            ae += float(np.sum(np.abs(err)))
            n += err.size
        yield pd.DataFrame({"se": [se], "ae": [ae], "n": [n]})

    return run


def rating_metrics(predictions, *, label: str = VALUE, prediction: str = "prediction") -> dict:
    """RMSE and MAE of a DataFrame of held-out ratings with predictions (e.g. from
    :func:`~recforge.scale.spark.batch.predict_batch`), pooled over all pairs."""
    from pyspark.sql import functions as F

    frame = _frame(predictions)
    for col in (label, prediction):
        if col not in frame.columns:
            raise ValueError(f"predictions: column {col!r} is missing (columns: {frame.columns})")
    parts = frame.select(label, prediction).mapInPandas(
        _rating_partition(label, prediction), "se double, ae double, n long")
    row = parts.agg(F.sum("se").alias("se"), F.sum("ae").alias("ae"), F.sum("n").alias("n")).first()
    n = int(row["n"] or 0)
    if n == 0:
        raise ValueError("no ratings to evaluate (predictions is empty)")
    return {"rmse": float(np.sqrt(row["se"] / n)), "mae": float(row["ae"] / n), "n": n}
