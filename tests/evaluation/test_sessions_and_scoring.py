"""The session protocol with a toy model of known accuracy, and full-ranking evaluation of a
bare score function on a hand-checked case."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recforge.data import Dataset, SessionEvents
from recforge.evaluation import Evaluator, SessionNextItem
from recforge.evaluation.protocols import evaluate_score_function, rank_with_score_function
from recforge.models.base import SessionRecommender


class NextIndex(SessionRecommender):
    """Predicts item ``last + 1`` (scores fall with the distance above the last item)."""

    def __init__(self):
        pass

    def _fit(self, train, **kw):
        pass

    def _score_next(self, sessions):
        last = np.array([s[-1] for s in sessions])
        dist = (np.arange(self.n_items_)[None, :] - last[:, None] - 1) % self.n_items_
        return -dist.astype(np.float32)


def _sessions(n_sessions: int, start_item, length: int, t0: float) -> pd.DataFrame:
    rows = []
    for s in range(n_sessions):
        first = start_item(s)
        for j in range(length):
            rows.append({"session": f"{t0:.0f}-{s}", "item": (first + j) % 20, "timestamp": t0 + 60 * s + j})
    return pd.DataFrame(rows)


@pytest.fixture
def session_data():
    train_df = _sessions(30, lambda s: s % 20, 4, 0.0)
    train = SessionEvents.from_dataframe(train_df)
    test_df = _sessions(10, lambda s: (3 * s) % 20, 5, 1e6)
    test = SessionEvents.from_dataframe(test_df, item_map=train.item_map)
    return Dataset(name="toy-sessions", sessions=train, parts={"train_full": train, "test": test})


def test_session_protocol_known_outcome(session_data):
    proto = SessionNextItem(ks=(1, 5))
    ev = Evaluator(session_data, proto, progress=False)
    ev.add(NextIndex(), "next")
    res = ev.run()
    e = res.get("next")
    # every next item is last + 1 (mod 20): rank 1 for all 10 sessions x 4 predicted events
    assert e.value("recall@1") == 1.0 and e.value("mrr@5") == 1.0
    assert np.isfinite(e.per_unit("recall@1")).sum() == 40
    assert res.protocols["session_next_item"]["folds"][0]["report"]["predefined"] is True


def test_rank_with_score_function_by_hand():
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=np.float32))
    scores = np.array([[9, 1, 5, 5, 0], [4, 2, 8, 7, 4]], dtype=np.float32)
    rec, vals = rank_with_score_function(lambda u: scores[u], seen, np.array([0, 1]), k=3, batch_size=1)
    # user 0: item 0 is seen; 2 and 3 tie at 5 (lower index first), then 1
    np.testing.assert_array_equal(rec, [[2, 3, 1], [0, 4, 1]])
    np.testing.assert_array_equal(vals, [[5, 5, 1], [4, 4, 2]])
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    out = evaluate_score_function(lambda u: scores[u], seen, relevant, k=3)
    assert out["hr@3"] == 1.0
    assert out["mrr@3"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert out["ndcg@3"] == pytest.approx((1 / np.log2(4) + 1 / np.log2(3)) / 2)
    with pytest.raises(ValueError, match="shape"):
        rank_with_score_function(lambda u: scores[u][:, :3], seen, np.array([0]), k=2)
