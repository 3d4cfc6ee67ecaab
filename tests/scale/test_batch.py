"""Distributed batch top-N equals single-process ``recommend`` for every user (local[2])."""

import numpy as np
import pandas as pd
import pytest

from recforge.models.session.baselines import MarkovChain
from recforge.scale.spark import recommend_batch, to_spark

from .conftest import assert_same_lists, lists_by_user


@pytest.fixture(scope="module")
def frame(spark, ml100k):
    return to_spark(spark, ml100k)


@pytest.mark.parametrize("name", ["knn", "als"])
def test_batch_equals_single_process_for_every_user(frame, ml100k, saved_models, name):
    path, ref = saved_models[name]
    got = lists_by_user(recommend_batch(frame, path, k=10, partitions=3))
    assert_same_lists(got, ml100k.user_map.raw, ref)


def test_users_without_history_and_unknown_users(spark, frame, ml100k, saved_models):
    from recforge.models import load_model

    path, _ = saved_models["als"]
    known = ml100k.user_map.raw[:2]
    targets = spark.createDataFrame(pd.DataFrame({"user": np.r_[known, [-7]].astype(np.int64)}))
    rows = frame.frame.where(frame.frame["user"] == int(known[0]))  # only user 0 has history
    got = recommend_batch(rows, path, k=5, users=targets, partitions=2).toPandas()
    model = load_model(path)
    hist = ml100k.subset(ml100k.users == 0)
    ref = model.recommend(users=np.r_[known, [-7]], k=5, history=hist)
    for j, u in enumerate(np.r_[known, [-7]]):
        g = got[got["user"] == u].sort_values("rank")
        assert g["item"].tolist() == ref.items[j].tolist()
        fallback = g["fallback"].iloc[0]
        assert (None if pd.isna(fallback) else fallback) == ref.fallback[j]
    assert got[got["user"] == -7]["fallback"].iloc[0].endswith("popularity")


def test_session_models_are_refused(spark, frame, tmp_path):
    from recforge.data import SessionEvents

    ev = SessionEvents.from_dataframe(pd.DataFrame({"session": [1, 1, 2, 2], "item": [1, 2, 1, 3],
                                                    "timestamp": range(4)}))
    path = MarkovChain().fit(ev).save(tmp_path / "markov")
    with pytest.raises(TypeError, match="session model"):
        recommend_batch(frame, path)
    with pytest.raises(ValueError, match="k must be"):
        recommend_batch(frame, path, k=0)
