"""Once against a real standalone cluster (a master and two workers started here, on
127.0.0.1, from pyspark's own launch script): batch top-N equals single-process ``recommend``
for every user of ML-100K (k-NN and factor model; the k-NN model shipped with the job, the
factor model read from the shared path) and distributed metrics equal single-machine ones."""

import numpy as np
import pytest
import scipy.sparse as sp

import recforge.metrics as M
from recforge.scale.spark import recommend_batch, spark_session, to_spark, topn_metrics

from .cluster import StandaloneCluster
from .conftest import assert_same_lists, lists_by_user

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_spark():
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    with StandaloneCluster(workers=2, cores=1, memory="1g") as url:
        spark = spark_session(url, app_name="recforge-standalone-test", partitions=4,
                              executor_memory="512m",
                              conf={"spark.cores.max": "2", "spark.executor.cores": "1"})
        try:
            yield spark
        finally:
            spark.stop()


def test_cluster_batch_and_metrics_equal_single_process(cluster_spark, ml100k, saved_models):
    sc = cluster_spark.sparkContext
    assert sc.master.startswith("spark://127.0.0.1:")
    frame = to_spark(cluster_spark, ml100k)
    users = ml100k.user_map.raw
    for name, ship in (("knn", True), ("als", False)):
        path, ref = saved_models[name]
        recs = recommend_batch(frame, path, k=10, partitions=4, ship_model=ship).cache()
        assert_same_lists(lists_by_user(recs), users, ref)
        if name == "als":
            # metrics summed over the cluster's partitions against the same lists on one
            # machine, the items at ranks 2 and 5 taken as the relevant ones
            held = recs.where("rank = 2 or rank = 5").select("user", "item")
            got = topn_metrics(recs, held, k=10, metrics=("hr", "ndcg", "mrr"))
            rows = np.repeat(np.arange(len(users)), 2)
            rel = sp.csr_matrix((np.ones(rows.size), (rows, ref.inner[:, [1, 4]].ravel())),
                                shape=(len(users), ml100k.n_items))
            assert got["users"] == len(users)
            assert abs(got["ndcg@10"] - np.mean(M.ndcg_at_k(ref.inner, rel, k=10))) <= 1e-9
            assert abs(got["mrr@10"] - 0.5) <= 1e-9 and abs(got["hr@10"] - 1.0) <= 1e-9
    executors = sc._jsc.sc().getExecutorMemoryStatus().keySet().toString()
    assert "127.0.0.1" in executors
