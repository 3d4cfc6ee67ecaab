"""Next-click evaluation: hand-computed cases (ties included), properties, a brute-force check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recforge.data import SessionEvents
from recforge.evaluation.session_replay import evaluate_next_item
from recforge.metrics.session import mrr_at_k, rank_of_target, recall_at_k
from recforge.models.base import SessionRecommender

# Score of every next item given the last item (rows: last item, columns: next item).
TABLE = np.array([
    [0, 3, 1, 1, 0],  # after 0: item 1 best, 2 and 3 tied
    [0, 0, 2, 2, 0],  # after 1: 2 and 3 tied on top
    [1, 0, 0, 5, 0],  # after 2: 3 best
    [4, 4, 4, 4, 4],  # after 3: everything tied
    [0, 0, 0, 0, 1],
], dtype=np.float32)


class LastItemTable(SessionRecommender):
    """Scores next items by a fixed table row of the session's last item."""

    def __init__(self, override_advance: bool = False):
        self.override_advance = override_advance

    def _fit(self, train, *, item_features=None, validation=None):
        self.table_ = TABLE.copy()

    def _score_next(self, sessions):
        return self.table_[[int(s[-1]) for s in sessions]]

    def init_state(self, n_slots):
        if not self.override_advance:
            return super().init_state(n_slots)
        return np.zeros(n_slots, dtype=np.int64)

    def advance(self, state, items, reset):
        if not self.override_advance:
            return super().advance(state, items, reset)
        state[:] = items
        return self.table_[state]


def _sessions(rows, item_map=None):
    df = pd.DataFrame(rows, columns=["session", "item", "timestamp"])
    return SessionEvents.from_dataframe(df, item_map=item_map)


def _events(sessions: dict):
    rows = []
    for sid, seq in sessions.items():
        rows += [(sid, 10 + i, float(t)) for t, i in enumerate(seq)]
    return rows


@pytest.fixture
def train():
    # item counts 1, 2, 4, 1, 1 -> popularity / max = 0.25, 0.5, 1, 0.25, 0.25
    return _sessions(_events({1: [0, 1, 2], 2: [1, 2], 3: [2, 3], 4: [4, 2]}))


@pytest.fixture
def test(train):
    # a: 0->1 (rank 1), 1->2 (2 tied with 3); b: 2->3 (rank 1); c: 3->0 (all five tied); d: nothing
    return _sessions(_events({"a": [0, 1, 2], "b": [2, 3], "c": [3, 0], "d": [1]}), item_map=train.item_map)


def test_rank_of_target_ties():
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0], [0.0, -np.inf, 2.0, -np.inf]])
    targets = np.array([0, 3, 1])
    np.testing.assert_array_equal(rank_of_target(scores, targets), [3, 4, 4])
    np.testing.assert_array_equal(rank_of_target(scores, targets, ties="optimistic"), [2, 1, 3])
    np.testing.assert_array_equal(rank_of_target(scores, targets, ties="average"), [2.5, 2.5, 3.5])


def test_rank_of_target_rejects_bad_input():
    with pytest.raises(ValueError, match="ties"):
        rank_of_target(np.zeros((1, 3)), np.array([0]), ties="random")
    with pytest.raises(ValueError, match="NaN"):
        rank_of_target(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="targets"):
        rank_of_target(np.zeros((2, 3)), np.array([0, 3]))


def test_recall_mrr_hand_computed():
    ranks = np.array([1, 2, 1, 5, 30])
    assert recall_at_k(ranks, 1) == pytest.approx(2 / 5)
    assert recall_at_k(ranks, 5) == pytest.approx(4 / 5)
    assert mrr_at_k(ranks, 1) == pytest.approx(2 / 5)
    assert mrr_at_k(ranks, 5) == pytest.approx((1 + 0.5 + 1 + 0.2) / 5)
    assert mrr_at_k(ranks, 30) == pytest.approx((1 + 0.5 + 1 + 0.2 + 1 / 30) / 5)
    assert np.isnan(recall_at_k(np.array([]), 5))
    with pytest.raises(ValueError):
        mrr_at_k(ranks, 0)


@pytest.mark.parametrize("override_advance", [False, True])
@pytest.mark.parametrize("batch_size", [1, 2, 512])
def test_evaluate_hand_computed(train, test, override_advance, batch_size):
    model = LastItemTable(override_advance=override_advance).fit(train)
    res = evaluate_next_item(model, test, ks=(1, 2, 5), batch_size=batch_size)
    np.testing.assert_array_equal(res["ranks"], [1, 2, 1, 5])
    np.testing.assert_array_equal(res["session_index"], [0, 0, 1, 2])
    np.testing.assert_array_equal(res["position"], [1, 2, 1, 1])
    assert res["n_events"] == 4 and res["n_sessions"] == 3 and res["sessions_skipped"] == 1
    assert res["recall@1"] == pytest.approx(0.5)
    assert res["recall@2"] == pytest.approx(0.75)
    assert res["recall@5"] == pytest.approx(1.0)
    assert res["mrr@1"] == pytest.approx(0.5)
    assert res["mrr@2"] == pytest.approx((1 + 0.5 + 1) / 4)
    assert res["mrr@5"] == pytest.approx((1 + 0.5 + 1 + 0.2) / 4)
    # top-1 lists: 1, 2, 3, 0 (ties to the lower index); item 4 never recommended
    assert res["coverage@1"] == pytest.approx(0.8)
    assert res["popularity@1"] == pytest.approx((0.5 + 1 + 0.25 + 0.25) / 4)
    # top-2 lists: [1,2] [2,3] [3,0] [0,1]
    assert res["coverage@2"] == pytest.approx(0.8)
    assert res["popularity@2"] == pytest.approx((0.75 + 0.625 + 0.25 + 0.375) / 4)
    assert res["coverage@5"] == pytest.approx(1.0)
    assert res["popularity@5"] == pytest.approx((0.25 + 0.5 + 1 + 0.25 + 0.25) / 5)


def test_evaluate_tie_rules(train, test):
    model = LastItemTable().fit(train)
    opt = evaluate_next_item(model, test, ks=(1, 5), ties="optimistic")
    avg = evaluate_next_item(model, test, ks=(1, 5), ties="average")
    np.testing.assert_array_equal(opt["ranks"], [1, 1, 1, 1])
    np.testing.assert_array_equal(avg["ranks"], [1, 1.5, 1, 3])
    assert opt["recall@1"] == 1.0
    assert avg["mrr@5"] == pytest.approx((1 + 1 / 1.5 + 1 + 1 / 3) / 4)


def test_evaluate_rejects_other_item_index(train):
    model = LastItemTable().fit(train)
    other = _sessions(_events({"x": [0, 1], "y": [2, 3]}))  # its own map: 4 items, not 5
    with pytest.raises(ValueError, match="item index"):
        evaluate_next_item(model, other)
    only_short = _sessions(_events({"x": [0]}), item_map=train.item_map)
    with pytest.raises(ValueError, match="two or more"):
        evaluate_next_item(model, only_short)


def _brute_force_rank(row: np.ndarray, target: int, ties: str) -> float:
    """Position of the target in a full sort, target placed after / before its ties."""
    n = row.size
    is_target = np.arange(n) == target
    after = np.lexsort((is_target, -row))  # ties first, target last among equals
    before = np.lexsort((~is_target, -row))
    pess = float(np.flatnonzero(after == target)[0] + 1)
    opt = float(np.flatnonzero(before == target)[0] + 1)
    return {"pessimistic": pess, "optimistic": opt, "average": (pess + opt) / 2}[ties]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 9)),
              elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, -np.inf])),
       st.data())
def test_rank_matches_brute_force_and_bounds(scores, data):
    n, m = scores.shape
    targets = np.array(data.draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n)))
    ranks = {t: rank_of_target(scores, targets, ties=t) for t in ("pessimistic", "optimistic", "average")}
    for t, r in ranks.items():
        expected = [_brute_force_rank(scores[i], targets[i], t) for i in range(n)]
        np.testing.assert_array_equal(r, expected)
        assert ((r >= 1) & (r <= m)).all()
    assert (ranks["optimistic"] <= ranks["average"]).all() and (ranks["average"] <= ranks["pessimistic"]).all()
    recalls = [recall_at_k(ranks["pessimistic"], k) for k in range(1, m + 1)]
    assert all(a <= b for a, b in zip(recalls, recalls[1:], strict=False)) and recalls[-1] == 1.0
    for k in range(1, m + 1):
        assert mrr_at_k(ranks["pessimistic"], k) <= recall_at_k(ranks["pessimistic"], k) + 1e-12


def test_perfect_scores_give_one():
    targets = np.array([2, 0, 1])
    scores = np.zeros((3, 4))
    scores[np.arange(3), targets] = 1.0
    r = rank_of_target(scores, targets)
    assert recall_at_k(r, 1) == 1.0 and mrr_at_k(r, 1) == 1.0


@pytest.mark.parametrize("model_name", ["SPop", "VSKNN"])
def test_walk_equals_direct_prefix_ranking(model_name):
    """The session-parallel walk gives the ranks of scoring every prefix on its own."""
    from recforge.models.base import get_model_class

    rng = np.random.default_rng(11)
    seqs = {s: list(rng.integers(0, 15, size=rng.integers(1, 8))) for s in range(60)}
    seqs[60] = list(range(15))
    train = _sessions(_events({s: q for s, q in seqs.items() if s % 3 or s == 60}))
    test = _sessions(_events({s: q for s, q in seqs.items() if s % 3 == 0 and s != 60}),
                     item_map=train.item_map)
    model = get_model_class(model_name)().fit(train)
    expected = []
    for s in range(test.n_sessions):
        seq = test.session(s)
        for t in range(1, len(seq)):
            scores = model._score_next([seq[:t]])
            expected.append(rank_of_target(scores, seq[t:t + 1])[0])
    for batch_size in (3, 512):
        res = evaluate_next_item(model, test, batch_size=batch_size)
        np.testing.assert_array_equal(res["ranks"], expected)


def test_gru4rec_tie_names_equal_ours_on_hand_values():
    # target (column 0) scores 0.5; one item above (0.9), two tied with it (0.5, 0.5)
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    target = np.array([0])
    for gru4rec, ours, expected in (("conservative", "pessimistic", 4.0),
                                    ("standard", "optimistic", 2.0),
                                    ("median", "average", 3.0)):
        assert rank_of_target(scores, target, ties=gru4rec).tolist() == [expected]
        assert rank_of_target(scores, target, ties=ours).tolist() == [expected]
    with pytest.raises(ValueError, match="conservative"):
        rank_of_target(scores, target, ties="strict")


def test_replay_accepts_gru4rec_tie_names(train, test):
    model = LastItemTable().fit(train)
    for gru4rec, ours in (("conservative", "pessimistic"), ("standard", "optimistic"),
                          ("median", "average")):
        a = evaluate_next_item(model, test, ks=(1, 5), ties=gru4rec)
        b = evaluate_next_item(model, test, ks=(1, 5), ties=ours)
        np.testing.assert_array_equal(a["ranks"], b["ranks"])
        assert a["ties"] == ours
    assert evaluate_next_item(model, test, ks=(1,), ties="median")["ranks"].tolist() == [1, 1.5, 1, 3]
