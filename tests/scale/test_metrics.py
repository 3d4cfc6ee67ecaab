"""Distributed metrics equal the single-machine values to 1e-9 (leave-one-out on ML-100K or
its synthetic stand-in)."""

import numpy as np
import pytest

import recforge.metrics as M
from recforge.models.baseline import BaselineOnly
from recforge.models.factorization.als import ALS
from recforge.models.query import History
from recforge.scale.spark import (
    predict_batch,
    rating_metrics,
    recommend_batch,
    to_spark,
    topn_metrics,
)
from recforge.scale.spark.evaluate import TOPN_METRICS
from recforge.split import leave_one_out


@pytest.fixture(scope="module")
def split(ml100k):
    return leave_one_out(ml100k, mode="latest", seed=0)


def single_machine_topn(model, train, test, k):
    """The evaluator's path: test users ranked with their training rows as history, each metric
    function of recforge.metrics averaged over the users with a relevant item."""
    relevant_all = test.csr
    users = np.flatnonzero(np.diff(relevant_all.indptr) > 0).astype(np.int32)
    rec = model.recommend_inner(users, k, history=History.from_csr(train.csr[users]))
    relevant = relevant_all[users]
    out = {f"{name}@{k}": float(np.nanmean(fn(rec.inner, relevant, k=k)))
           for name, fn in TOPN_METRICS.items()}
    return out, users.size


def test_topn_metrics_equal_single_machine(spark, split, tmp_path):
    train, test = split.train, split.test
    model = ALS(factors=16, iterations=3, random_state=0, num_threads=2).fit(train)
    path = model.save(tmp_path / "als")
    recs = recommend_batch(to_spark(spark, train), path, k=10, partitions=3)
    got = topn_metrics(recs, to_spark(spark, test), k=10, metrics=tuple(TOPN_METRICS))
    expected, n_users = single_machine_topn(model, train, test, 10)
    assert got["users"] == n_users
    for name, value in expected.items():
        assert abs(got[name] - value) <= 1e-9, name
    assert got["hr@10"] > 0.02  # a real model, not an empty comparison


def test_topn_metrics_on_text_ids_and_missing_lists(spark):
    import pandas as pd

    recs = spark.createDataFrame(pd.DataFrame({"user": ["a", "a", "b"], "rank": [2, 1, 1],
                                               "item": ["y", "x", "z"]}))
    test = spark.createDataFrame(pd.DataFrame({"user": ["a", "b", "c"], "item": ["y", "q", "x"]}))
    got = topn_metrics(recs, test, k=2, metrics=("hr", "mrr", "precision"))
    # a: x, y -> hit at rank 2; b: miss; c: no list -> miss
    assert got["users"] == 3
    assert got["hr@2"] == pytest.approx(1 / 3)
    assert got["mrr@2"] == pytest.approx(0.5 / 3)
    assert got["precision@2"] == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match="unknown"):
        topn_metrics(recs, test, metrics=("nope",))


def test_rating_metrics_equal_single_machine(spark, split, tmp_path):
    train, test = split.train, split.test
    model = BaselineOnly().fit(train)
    path = model.save(tmp_path / "baseline")
    pred = predict_batch(to_spark(spark, test).frame.repartition(3), path)
    got = rating_metrics(pred)
    expected = model.predict_inner(test.users, test.items, clip=True)
    assert got["n"] == test.nnz
    assert abs(got["rmse"] - M.rmse(test.values, expected)) <= 1e-9
    assert abs(got["mae"] - M.mae(test.values, expected)) <= 1e-9
    ranking_only = ALS(factors=2, iterations=1, random_state=0).fit(train).save(tmp_path / "als")
    with pytest.raises(TypeError, match="does not predict ratings"):
        predict_batch(to_spark(spark, test).frame, ranking_only)
