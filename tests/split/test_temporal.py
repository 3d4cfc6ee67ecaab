"""Temporal splits: global cutoff and per-user ratio; no test event precedes training events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import IdMap, Interactions
from recforge.split import temporal_global, temporal_per_user

from .strategies import interactions, pair_keys, rows

SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(interactions(), st.integers(-1, 7))
def test_global_cutoff_puts_everything_at_or_after_it_in_test(data, cutoff):
    r = temporal_global(data, cutoff_time=cutoff)
    assert np.all(r.test.timestamps >= cutoff)
    assert np.all(r.train.timestamps < cutoff)
    assert rows(r.train) | rows(r.test) == rows(data)
    assert r.train.nnz + r.test.nnz == data.nnz
    assert r.report["cutoff_time"] == cutoff


@SETTINGS
@given(interactions(), st.floats(0.05, 0.95))
def test_global_ratio_no_leak_and_at_least_the_ratio(data, ratio):
    r = temporal_global(data, test_ratio=ratio)
    n_test = int(np.ceil(ratio * data.nnz))
    assert r.test.nnz >= n_test
    if r.train.nnz and r.test.nnz:
        assert r.train.timestamps.max() < r.test.timestamps.min()
    # only ties at the cutoff can make the test part larger than asked
    at_cutoff = np.sum(data.timestamps == r.report["cutoff_time"])
    assert r.test.nnz - n_test < at_cutoff
    assert not set(pair_keys(r.train)) & set(pair_keys(r.test))


def test_global_ratio_hand_example():
    data = Interactions([0, 0, 1, 1, 2], [0, 1, 0, 1, 0], [1, 2, 3, 4, 5], timestamps=[1, 5, 3, 4, 2],
                        user_map=IdMap([1, 2, 3]), item_map=IdMap([1, 2]))
    r = temporal_global(data, test_ratio=0.4)  # the two latest: times 4 and 5
    assert sorted(r.test.timestamps.tolist()) == [4.0, 5.0]
    assert r.report["cutoff_time"] == 4.0
    # item 2 (inner 1) only occurs at times 4 and 5: both test interactions are item-cold
    assert r.report["cold_test"] == {"interactions_with_unseen_user": 0,
                                     "interactions_with_unseen_item": 2}


def test_global_argument_checks():
    data = Interactions([0], [0], [1], timestamps=[0], user_map=IdMap([1]), item_map=IdMap([1]))
    with pytest.raises(ValueError, match="exactly one"):
        temporal_global(data)
    with pytest.raises(ValueError, match="exactly one"):
        temporal_global(data, cutoff_time=1, test_ratio=0.5)
    no_time = Interactions([0], [0], [1], user_map=IdMap([1]), item_map=IdMap([1]))
    with pytest.raises(ValueError, match="timestamps"):
        temporal_global(no_time, cutoff_time=1)
    with pytest.raises(ValueError, match="timestamps"):
        temporal_per_user(no_time)


@SETTINGS
@given(interactions(), st.floats(0.05, 0.95), st.integers(0, 3))
def test_per_user_no_test_event_before_the_users_training_events(data, ratio, seed):
    r = temporal_per_user(data, test_ratio=ratio, seed=seed)
    assert rows(r.train) | rows(r.test) == rows(data)
    assert r.train.nnz + r.test.nnz == data.nnz
    counts = data.user_counts
    expected = np.minimum(np.floor(ratio * counts + 0.5), np.maximum(counts - 1, 0))
    assert np.array_equal(r.test.user_counts, expected)
    last_train = np.full(data.n_users, -np.inf)
    np.maximum.at(last_train, r.train.users, r.train.timestamps)
    assert np.all(r.test.timestamps >= last_train[r.test.users])
    assert np.all(r.train.user_counts[counts > 0] >= 1)  # every user keeps a training event


def test_per_user_hand_example():
    # user 0: times 1..5 -> 20% of 5 = 1 test event (time 5); user 1: 2 events -> round(0.4)=0
    users = [0, 0, 0, 0, 0, 1, 1]
    data = Interactions(users, [0, 1, 2, 3, 4, 0, 1], np.ones(7), timestamps=[3, 1, 5, 2, 4, 9, 8],
                        user_map=IdMap([1, 2]), item_map=IdMap(np.arange(5)))
    r = temporal_per_user(data, test_ratio=0.2)
    assert r.test.users.tolist() == [0] and r.test.items.tolist() == [2]
    assert r.report["users_without_test"] == 1
    r = temporal_per_user(data, test_ratio=0.5)  # 2.5 -> 3 for user 0 (half up), 1 for user 1
    assert sorted(zip(r.test.users.tolist(), r.test.timestamps.tolist(), strict=True)) == [
        (0, 3.0), (0, 4.0), (0, 5.0), (1, 9.0)]
