"""Random splits: holdout, k-fold, leave-one-out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import IdMap, Interactions
from recforge.split import SplitResult, holdout, kfold, leave_one_out

from .strategies import interactions, pair_keys, rows

SETTINGS = settings(max_examples=40, deadline=None)


def _assert_partition(data: Interactions, result: SplitResult) -> None:
    """train and test are disjoint, their union is the data, and both share its id maps."""
    assert result.train.user_map is data.user_map and result.test.item_map is data.item_map
    assert result.train.nnz + result.test.nnz == data.nnz
    assert not set(pair_keys(result.train)) & set(pair_keys(result.test))
    assert rows(result.train) | rows(result.test) == rows(data)
    assert result.report["train"]["interactions"] == result.train.nnz
    assert result.report["test"]["interactions"] == result.test.nnz


@SETTINGS
@given(interactions(), st.floats(0.05, 0.95), st.integers(0, 3))
def test_holdout_partitions_with_the_requested_size(data, ratio, seed):
    result = holdout(data, test_ratio=ratio, seed=seed)
    _assert_partition(data, result)
    assert result.test.nnz == int(round(ratio * data.nnz))
    assert result.config == {"split": "holdout", "test_ratio": ratio, "seed": seed}


@SETTINGS
@given(interactions(min_nnz=2), st.integers(0, 3))
def test_holdout_is_reproducible_and_seed_dependent(data, seed):
    a, b = holdout(data, 0.5, seed=seed), holdout(data, 0.5, seed=seed)
    assert np.array_equal(pair_keys(a.test), pair_keys(b.test))


def test_holdout_different_seeds_differ():
    data = Interactions(np.arange(200) // 20, np.arange(200) % 20, np.ones(200),
                        user_map=IdMap(np.arange(10)), item_map=IdMap(np.arange(20)))
    a, b = holdout(data, 0.3, seed=0), holdout(data, 0.3, seed=1)
    assert not np.array_equal(pair_keys(a.test), pair_keys(b.test))


def test_holdout_counts_cold_test_interactions():
    # user 1 has a single interaction: if it is in test, the user is cold there
    data = Interactions([0, 0, 0, 1], [0, 1, 2, 0], [1, 2, 3, 4],
                        user_map=IdMap([7, 8]), item_map=IdMap([1, 2, 3]))
    for seed in range(20):
        r = holdout(data, test_ratio=0.25, seed=seed)
        expected_user = int(r.test.nnz == 1 and r.test.users[0] == 1)
        assert r.report["cold_test"]["interactions_with_unseen_user"] == expected_user
        test_items = set(r.test.items.tolist())
        train_items = set(r.train.items.tolist())
        assert r.report["cold_test"]["interactions_with_unseen_item"] == len(test_items - train_items)


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5])
def test_holdout_rejects_bad_ratio(ratio):
    data = Interactions([0], [0], [1], user_map=IdMap([1]), item_map=IdMap([1]))
    with pytest.raises(ValueError, match="test_ratio"):
        holdout(data, ratio)


def test_splits_reject_session_data_and_dataframes():
    with pytest.raises(TypeError, match="Interactions"):
        holdout([1, 2, 3])


@SETTINGS
@given(interactions(min_nnz=2), st.integers(2, 6), st.integers(0, 3))
def test_kfold_every_interaction_in_exactly_one_test_fold(data, n_folds, seed):
    if n_folds > data.nnz:
        with pytest.raises(ValueError, match="n_folds"):
            kfold(data, n_folds, seed)
        return
    folds = kfold(data, n_folds=n_folds, seed=seed)
    assert len(folds) == n_folds
    seen = np.concatenate([pair_keys(f.test) for f in folds])
    assert np.array_equal(np.sort(seen), np.sort(pair_keys(data)))
    sizes = [f.test.nnz for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for f, fold in enumerate(folds):
        _assert_partition(data, fold)
        assert fold.config == {"split": "kfold", "n_folds": n_folds, "fold": f, "seed": seed}


def test_kfold_is_reproducible():
    data = Interactions(np.arange(50) // 10, np.arange(50) % 10, np.arange(50),
                        user_map=IdMap(np.arange(5)), item_map=IdMap(np.arange(10)))
    a = kfold(data, 5, seed=4)
    b = kfold(data, 5, seed=4)
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(pair_keys(fa.test), pair_keys(fb.test))


@SETTINGS
@given(interactions(), st.integers(1, 4), st.integers(0, 3))
def test_leave_one_out_latest_takes_each_users_latest(data, min_interactions, seed):
    result = leave_one_out(data, mode="latest", seed=seed, min_interactions=min_interactions)
    _assert_partition(data, result)
    counts = data.user_counts
    eligible = counts >= min_interactions
    # exactly one test interaction per eligible user, none for the others
    assert np.array_equal(result.test.user_counts, eligible.astype(int))
    # the held-out interaction is (one of) the user's latest
    latest = np.full(data.n_users, -np.inf)
    np.maximum.at(latest, data.users, data.timestamps)
    assert np.array_equal(result.test.timestamps, latest[result.test.users])
    short = (counts > 0) & ~eligible
    assert result.report["users_kept_whole_in_train"] == short.sum()
    assert result.report["interactions_of_users_kept_whole"] == counts[short].sum()


def test_leave_one_out_latest_hand_example():
    # user 0: items 0,1,2 at times 5,9,1 -> item 1 held out; user 1: one event -> stays in train
    data = Interactions([0, 0, 0, 1], [0, 1, 2, 0], [3, 4, 5, 1], timestamps=[5, 9, 1, 2],
                        user_map=IdMap(["a", "b"]), item_map=IdMap(["x", "y", "z"]))
    r = leave_one_out(data)
    assert r.test.to_dataframe().to_dict("list") == {"user": ["a"], "item": ["y"], "rating": [4.0],
                                                    "timestamp": [9.0]}
    assert r.train.nnz == 3
    assert r.report["users_kept_whole_in_train"] == 1


def test_leave_one_out_breaks_time_ties_by_seed_not_by_item_index():
    n_items = 6
    data = Interactions(np.zeros(n_items, int), np.arange(n_items), np.ones(n_items),
                        timestamps=np.zeros(n_items), user_map=IdMap([1]), item_map=IdMap(np.arange(n_items)))
    picks = {int(leave_one_out(data, seed=s).test.items[0]) for s in range(40)}
    assert len(picks) > 2  # all six are tied; a fixed rule would always pick the same one


@SETTINGS
@given(interactions(timestamps=False), st.integers(0, 5))
def test_leave_one_out_random_one_per_user(data, seed):
    result = leave_one_out(data, mode="random", seed=seed)
    _assert_partition(data, result)
    assert np.array_equal(result.test.user_counts, (data.user_counts >= 2).astype(int))


def test_leave_one_out_random_is_uniform_enough():
    data = Interactions(np.zeros(4, int), np.arange(4), np.ones(4), user_map=IdMap([1]),
                        item_map=IdMap(np.arange(4)))
    picks = np.array([leave_one_out(data, mode="random", seed=s).test.items[0] for s in range(400)])
    freq = np.bincount(picks, minlength=4) / 400
    assert np.all(np.abs(freq - 0.25) < 0.08)


def test_leave_one_out_errors():
    data = Interactions([0, 0], [0, 1], [1, 1], user_map=IdMap([1]), item_map=IdMap([1, 2]))
    with pytest.raises(ValueError, match="timestamps"):
        leave_one_out(data, mode="latest")
    with pytest.raises(ValueError, match="mode"):
        leave_one_out(data, mode="oldest")
    with pytest.raises(ValueError, match="min_interactions"):
        leave_one_out(data, mode="random", min_interactions=0)


# ---------------------------------------------------------------- per-user holdout
def test_holdout_per_user_splits_each_user_by_rounded_ratio():
    from recforge.split import holdout_per_user

    counts = np.array([1, 2, 3, 4, 5, 6, 10])
    users = np.repeat(np.arange(counts.size), counts)
    items = np.concatenate([np.arange(c) for c in counts])
    data = Interactions.from_arrays(users, items, np.ones(users.size))
    parts = holdout_per_user(data, test_ratio=0.25, seed=3)
    n_train = np.bincount(parts.train.users, minlength=counts.size)
    n_test = np.bincount(parts.test.users, minlength=counts.size)
    # round half to even of 0.75 * n: 1->1 (0.75), 2->2 (1.5), 3->2 (2.25), 4->3, 5->4 (3.75),
    # 6->4 (4.5), 10->8 (7.5)
    assert n_train.tolist() == [1, 2, 2, 3, 4, 4, 8]
    assert (n_train + n_test).tolist() == counts.tolist()
    assert parts.config == {"split": "holdout_per_user", "test_ratio": 0.25, "seed": 3}
    # disjoint and complete
    pairs = set(zip(parts.train.users.tolist(), parts.train.items.tolist(), strict=True))
    assert not pairs & set(zip(parts.test.users.tolist(), parts.test.items.tolist(), strict=True))


def test_holdout_per_user_is_seeded_and_random_within_users():
    from recforge.split import holdout_per_user

    users = np.repeat(np.arange(50), 8)
    items = np.tile(np.arange(8), 50)
    data = Interactions.from_arrays(users, items, np.ones(users.size))
    a = holdout_per_user(data, seed=1)
    b = holdout_per_user(data, seed=1)
    c = holdout_per_user(data, seed=2)
    assert np.array_equal(a.test.items, b.test.items)
    assert not np.array_equal(a.test.items, c.test.items)
    # every item position is held out for some users (not always the last ones)
    assert np.unique(a.test.items).size == 8
