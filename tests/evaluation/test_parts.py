"""Protocols built from parts: a splitter, a task and the metric table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recforge.data import Interactions
from recforge.evaluation import Evaluator, make_protocol
from recforge.evaluation.metric_table import (
    LOWER_IS_BETTER,
    METRICS,
    SQRT_METRICS,
    check_metrics,
    higher_is_better,
    metrics_for,
)
from recforge.evaluation.protocols import Protocol, TopNHoldout
from recforge.evaluation.tasks import NextItem, RatingPrediction, TopNRanking
from recforge.models.base import RANKING, Recommender


class ByIndex(Recommender):
    """Scores item i with -i: lower item index ranks first."""

    capabilities = frozenset({RANKING})

    def _fit(self, train, **kw):
        pass

    def _score(self, users, history=None, fallbacks=None):
        return np.tile(-np.arange(self.n_items_, dtype=np.float32), (users.size, 1))


def _tiny() -> Interactions:
    """Two users, six items, four interactions each at increasing times.

    user a: items 0, 1, 2, 3 at t = 1, 2, 3, 4; user b: items 5, 4, 1, 0 at t = 1, 2, 3, 4.
    """
    df = pd.DataFrame({"user": ["a"] * 4 + ["b"] * 4,
                       "item": [0, 1, 2, 3, 5, 4, 1, 0],
                       "rating": 1.0,
                       "timestamp": [1, 2, 3, 4, 1, 2, 3, 4]})
    df["timestamp"] = df["timestamp"].astype(float)
    return Interactions.from_dataframe(df, kind="implicit", name="tiny")


def test_temporal_per_user_split_with_topn_task_by_hand():
    data = _tiny()
    proto = Protocol({"name": "temporal_per_user", "test_ratio": 0.5}, TopNRanking(k=2),
                     metrics=["hr", "precision", "recall", "mrr", "coverage"])
    assert proto.name == "topn_temporal_per_user"
    ev = Evaluator(data, proto, progress=False, memory=False, n_resamples=50)
    ev.add(ByIndex(), "by-index")
    res = ev.run(raise_errors=True)
    # a: train {0, 1}, test {2, 3}; top-2 of unseen {2..5} by index = [2, 3]: 2 hits
    # b: train {5, 4}, test {1, 0}; top-2 of unseen {0..3} = [0, 1]: 2 hits
    assert res.value("by-index", "hr@2") == 1.0
    assert res.value("by-index", "precision@2") == 1.0
    assert res.value("by-index", "recall@2") == 1.0
    assert res.value("by-index", "mrr@2") == 1.0
    assert res.value("by-index", "coverage@2") == pytest.approx(4 / 6)
    assert set(res.get("by-index").metric_names()) == {"hr@2", "precision@2", "recall@2",
                                                       "mrr@2", "coverage@2"}


def test_preset_with_swapped_split_by_hand():
    data = _tiny()
    proto = make_protocol("holdout", k=1, split={"name": "temporal_global", "test_ratio": 0.25})
    assert proto.name == "topn_temporal_global"
    assert proto.config()["split"] == {"name": "temporal_global", "test_ratio": 0.25}
    ev = Evaluator(data, proto, progress=False, memory=False, n_resamples=50)
    ev.add(ByIndex(), "by-index")
    res = ev.run(raise_errors=True)
    # cutoff t = 4: test a:{3}, b:{0}; top-1 of a (unseen 3, 4, 5) = 3: hit;
    # of b (unseen 0, 2, 3) = 0: hit
    assert res.value("by-index", "hr@1") == 1.0
    assert res.value("by-index", "map@1") == 1.0


def test_kfold_splitter_gives_k_folds_and_one_split_gives_one():
    data = _tiny()
    assert len(Protocol({"name": "kfold", "n_folds": 4}, TopNRanking(k=2)).folds(data)) == 4
    assert len(Protocol("temporal_per_user", TopNRanking(k=2)).folds(data)) == 1


def test_part_mismatches_are_clear_errors():
    with pytest.raises(ValueError, match="unknown split 'weekly'.*temporal_per_user"):
        Protocol("weekly", TopNRanking())
    with pytest.raises(ValueError, match="takes test_ratio, seed; unknown: n_folds"):
        Protocol({"name": "temporal_per_user", "n_folds": 3}, TopNRanking())
    with pytest.raises(ValueError, match="'next_item' evaluates sessions"):
        Protocol("holdout", NextItem())
    with pytest.raises(ValueError, match="'rmse'.*do not apply to task 'topn'"):
        Protocol("holdout", TopNRanking(), metrics=["rmse"])
    with pytest.raises(ValueError, match="unknown split"):
        make_protocol("rating_cv", split="nope")
    with pytest.raises(ValueError, match="needs explicit ratings"):
        Protocol("holdout", RatingPrediction()).folds(_tiny())


def test_metric_table_directions_and_aggregations():
    assert LOWER_IS_BETTER == {"rmse", "mae", "popularity", "logloss"}
    assert SQRT_METRICS == {"rmse"}
    assert not higher_is_better("rmse") and not higher_is_better("popularity@20")
    assert higher_is_better("ndcg@10") and higher_is_better("coverage@5")
    assert METRICS["mae"].aggregation == "ratio"
    assert METRICS["coverage"].aggregation == "fold"
    assert METRICS["hr"].aggregation == "mean"
    assert metrics_for("rating") == ("rmse", "mae")
    assert metrics_for("sampled") == ("hr", "ndcg", "mrr")
    assert metrics_for("next_item") == ("recall", "mrr", "coverage", "popularity")
    assert METRICS["mrr"].label("sampled", 10) == "mrr"
    assert METRICS["mrr"].label("topn", 10) == "mrr@10"
    # a metric list comes back in table order
    assert check_metrics(["coverage", "ndcg", "hr"], "topn") == ("hr", "ndcg", "coverage")


def test_presets_keep_names_labels_and_default_metrics():
    assert make_protocol("loo").name == "loo_topn"
    assert make_protocol("cv", n_folds=3).label == "3-fold CV, rating prediction"
    assert make_protocol("sampled").label.startswith("sampled:")
    assert make_protocol("sampled", split="temporal_per_user").name == "sampled_temporal_per_user"
    assert TopNHoldout().metrics == ("hr", "ndcg", "precision", "recall", "map", "mrr", "novelty",
                                     "diversity", "coverage", "popularity")
    assert make_protocol("session", ties="conservative").label == \
        "session next-item, full ranking (ties conservative)"
    with pytest.raises(ValueError, match="ties must be one of"):
        make_protocol("session", ties="strict")
