"""recforge on Apache Spark (extra ``spark``): data, MLlib ALS, batch top-N, similarity, metrics.

* :func:`spark_session` — the one session builder (binds to 127.0.0.1 by default, UI off);
* :mod:`.data` — interactions to and from Spark DataFrames and Parquet with recforge's id maps,
  ids mapped on the cluster (:func:`index_interactions`, :func:`to_spark`,
  :func:`to_interactions`, :func:`save_parquet`, :func:`load_parquet`);
* :class:`SparkALS` — MLlib ALS whose ``fit`` returns a recforge ALS / PMF model;
* :func:`recommend_batch` / :func:`predict_batch` — any saved model scored across executors;
* :func:`item_similarity` / :func:`item_knn_model` — top-k item-item similarity on the cluster,
  as an :class:`~recforge.models.neighborhood.topn.ItemKNNTopN`;
* :func:`topn_metrics` / :func:`rating_metrics` — metrics summed over partitions.

pyspark is imported when a function needs it, not when this package is imported.
"""

from .als import SparkALS
from .batch import predict_batch, recommend_batch
from .data import (
    IndexedInteractions,
    index_interactions,
    load_parquet,
    save_parquet,
    to_interactions,
    to_spark,
)
from .evaluate import rating_metrics, topn_metrics
from .session import spark_session
from .similarity import item_knn_model, item_similarity

__all__ = ["SparkALS", "IndexedInteractions", "index_interactions", "item_knn_model",
           "item_similarity", "load_parquet", "predict_batch", "rating_metrics",
           "recommend_batch", "save_parquet", "spark_session", "to_interactions", "to_spark",
           "topn_metrics"]
