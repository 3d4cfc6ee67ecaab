r"""Item-item similarity on the cluster, top-k per item, as a recforge item-kNN model.

For catalogues whose item x item similarity does not fit one machine. Every pair of items two
users share is formed on the cluster (a self-join of the interactions on the user), and per
pair the sums recforge's similarity kernel walks are accumulated over the common users
:math:`U_{ij}`:

* ``cosine``: :math:`\frac{\sum_{u \in U_{ij}} r_{ui} r_{uj}}
  {\sqrt{\sum_{u \in U_{ij}} r_{ui}^2 \sum_{u \in U_{ij}} r_{uj}^2}}` (over the *common*
  users, Surprise's definition, as :mod:`recforge.models.neighborhood.similarities`);
* ``jaccard``: :math:`|U_{ij}| / (|U_i| + |U_j| - |U_{ij}|)`.

Pairs with fewer than ``min_support`` common users are dropped, and each item keeps its
``neighbors`` most similar items (ties to the lower item index) — the pruned similarity
:class:`~recforge.models.neighborhood.topn.ItemKNNTopN` keeps with ``neighbors`` set. Only
those ``n_items x neighbors`` entries come back to the driver, as the model's sparse
similarity; :func:`item_knn_model` returns the fitted model, equal to
``ItemKNNTopN(k, sim, neighbors=...).fit(interactions)`` on one machine.

The self-join costs :math:`\sum_u n_u^2` pair rows: very active users dominate it, which is
why production systems cap a user's history (``max_per_user``) before the join.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .data import ITEM_IDX, USER_IDX, VALUE, IndexedInteractions, index_interactions, set_base_state

MEASURES = ("cosine", "jaccard")


def item_similarity(data, *, measure: str = "cosine", neighbors: int = 50, min_support: int = 1,
                    max_per_user: int | None = None):
    """Top-``neighbors`` similar items of every item, on the cluster.

    Parameters
    ----------
    data : IndexedInteractions or pyspark.sql.DataFrame
        One row per (user, item) pair (raw ids are mapped first when a plain frame is given).
    measure : {"cosine", "jaccard"}
    neighbors : int, default 50
    min_support : int, default 1
        Least number of common users of a kept pair.
    max_per_user : int, optional
        Use only each user's ``max_per_user`` highest-valued interactions (ties: lower item
        index), bounding the self-join; default all (then the result equals the
        single-machine similarity).

    Returns
    -------
    pyspark.sql.DataFrame
        ``item_idx, other_idx, similarity`` (inner indices; similarity != 0).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    for name, v in (("neighbors", neighbors), ("min_support", min_support)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not isinstance(data, IndexedInteractions):
        data = index_interactions(data)
    df = data.frame.select(USER_IDX, ITEM_IDX, F.col(VALUE).cast("double").alias(VALUE))
    if max_per_user is not None:
        w = Window.partitionBy(USER_IDX).orderBy(F.col(VALUE).desc(), F.col(ITEM_IDX))
        df = df.withColumn("_n", F.row_number().over(w)).where(F.col("_n") <= int(max_per_user)) \
            .drop("_n")
    a = df.select(USER_IDX, F.col(ITEM_IDX).alias("i"), F.col(VALUE).alias("vi"))
    b = df.select(USER_IDX, F.col(ITEM_IDX).alias("j"), F.col(VALUE).alias("vj"))
    pairs = (a.join(b, USER_IDX).where(F.col("i") != F.col("j"))
             .groupBy("i", "j")
             .agg(F.sum(F.col("vi") * F.col("vj")).alias("dot"),
                  F.sum(F.col("vi") * F.col("vi")).alias("sqi"),
                  F.sum(F.col("vj") * F.col("vj")).alias("sqj"),
                  F.count(F.lit(1)).alias("support"))
             .where(F.col("support") >= int(min_support)))
    if measure == "cosine":
        den = F.sqrt(F.col("sqi") * F.col("sqj"))
        sim = F.when(den > 0, F.col("dot") / den).otherwise(F.lit(0.0))
    else:
        counts = df.groupBy(ITEM_IDX).count()
        ci = counts.select(F.col(ITEM_IDX).alias("i"), F.col("count").alias("ni"))
        cj = counts.select(F.col(ITEM_IDX).alias("j"), F.col("count").alias("nj"))
        pairs = pairs.join(ci, "i").join(cj, "j")
        union = F.col("ni") + F.col("nj") - F.col("support")
        sim = F.when(union > 0, F.col("support") / union).otherwise(F.lit(0.0))
    scored = pairs.select("i", "j", sim.alias("similarity")).where(F.col("similarity") != 0)
    w = Window.partitionBy("i").orderBy(F.col("similarity").desc(), F.col("j"))
    return (scored.withColumn("_rank", F.row_number().over(w))
            .where(F.col("_rank") <= int(neighbors))
            .select(F.col("i").alias(ITEM_IDX), F.col("j").alias("other_idx"), "similarity"))


def item_knn_model(data, *, k: int = 10, sim: str = "cosine", neighbors: int = 50,
                   min_support: int = 1, rating_threshold: float | None = None,
                   max_per_user: int | None = None):
    """A fitted :class:`~recforge.models.neighborhood.topn.ItemKNNTopN` whose pruned similarity
    was computed on the cluster (:func:`item_similarity`); ``k`` and ``rating_threshold``
    are the model's seed hyperparameters. The model saves, loads, evaluates and serves as any
    ItemKNNTopN."""
    from ...models.neighborhood.topn import ItemKNNTopN

    if not isinstance(data, IndexedInteractions):
        data = index_interactions(data)
    model = ItemKNNTopN(k=k, sim=sim, neighbors=neighbors, min_support=min_support,
                        rating_threshold=rating_threshold)
    _, _, stats = set_base_state(model, data)
    table = item_similarity(data, measure=sim, neighbors=neighbors, min_support=min_support,
                            max_per_user=max_per_user).toArrow()
    n = data.n_items
    m = sp.csr_matrix((table.column("similarity").to_numpy().astype(np.float32),
                       (table.column(ITEM_IDX).to_numpy(), table.column("other_idx").to_numpy())),
                      shape=(n, n))
    m.sort_indices()
    model.item_similarity_ = m
    model.rating_top_ = float(data.rating_scale[1]) if data.rating_scale else stats["max"]
    return model
