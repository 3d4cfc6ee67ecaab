"""EASE against its closed form, fold-in, incremental updates and the memory guard."""

from __future__ import annotations

import numpy as np
import pytest

from recforge.data import IdMap, Interactions
from recforge.models.linear import EASE
from tests.models.contract import check_fold_in_exact, contract_data


def _closed_form(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck (2019), eq. 8, written out with numpy."""
    g = x.T @ x + lam * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def _dense(data: Interactions, threshold=None, binarize=True) -> np.ndarray:
    x = np.zeros(data.shape)
    keep = data.values > 0 if threshold is None else data.values >= threshold
    x[data.users[keep], data.items[keep]] = 1.0 if binarize else data.values[keep]
    return x


@pytest.mark.parametrize("threshold, binarize", [(None, True), (3.0, True), (None, False)])
def test_weights_and_scores_match_the_closed_form(threshold, binarize):
    data = contract_data()
    model = EASE(l2=3.0, threshold=threshold, binarize=binarize).fit(data)
    x = _dense(data, threshold, binarize)
    b = _closed_form(x, 3.0)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-5, atol=1e-6)
    assert np.all(np.diag(model.weights_) == 0)
    users = np.arange(data.n_users - 1, dtype=np.int32)  # u8 has no history
    if threshold is not None:
        users = users[x[users].sum(axis=1) > 0]
    scores = model.score_inner(users, history=data.csr[users])
    np.testing.assert_allclose(scores, x[users] @ b, rtol=1e-4, atol=1e-5)
    expected_dropped = 0 if threshold is None else int((data.values < threshold).sum())
    assert model.feedback_dropped_ == expected_dropped


def test_an_anonymous_history_gets_the_list_of_the_user():
    data = contract_data()
    check_fold_in_exact(EASE(l2=2.0).fit(data), data)


def test_a_history_below_the_threshold_falls_back_to_popularity():
    data = contract_data()
    model = EASE(l2=2.0, threshold=4.5).fit(data)
    rec = model.recommend(history=[{int(data.item_map.raw[0]): 1.0}], k=3)
    assert rec.fallback[0] == "no history above threshold: popularity"


def test_partial_fit_equals_a_refit_on_all_interactions():
    data = contract_data()
    n = data.nnz
    order = np.argsort(data.timestamps)
    first, later = data.subset(order[: n // 2]), data.subset(order[n // 2:])
    # the first part's maps lack the users and items it does not touch
    def compact(part):
        df = part.to_dataframe()
        return Interactions.from_arrays(df["user"].to_numpy(), df["item"].to_numpy(),
                                        df["rating"].to_numpy() if "rating" in df else None)
    a, b = compact(first), compact(later)
    assert len(b.item_map) and not set(b.user_map.raw) <= set(a.user_map.raw)
    model = EASE(l2=2.0).fit(a).partial_fit(b)
    full = EASE(l2=2.0).fit(compact(data))
    # the same items in the same order -> the same weights
    idx = model.item_map_.to_inner(full.item_map_.raw)
    np.testing.assert_allclose(model.weights_[np.ix_(idx, idx)], full.weights_, rtol=1e-5, atol=1e-6)
    users = full.user_map_.raw
    got = model.recommend(users, k=5, history=compact(data))
    want = full.recommend(users, k=5, history=compact(data))
    np.testing.assert_array_equal(got.items, want.items)
    assert model.n_users_ == full.n_users_ and model.n_items_ == full.n_items_
    np.testing.assert_array_equal(model.item_popularity_[idx], full.item_popularity_)


def test_a_catalogue_too_large_is_refused_with_its_size():
    data = contract_data()
    with pytest.raises(ValueError, match=r"14 items need about .* GB.*SLIM.*ALS"):
        EASE(max_memory_gb=1e-9).fit(data)


@pytest.mark.parametrize("params, field", [({"l2": 0.0}, "l2"), ({"l2": -1}, "l2"),
                                           ({"binarize": "yes"}, "binarize"),
                                           ({"threshold": float("nan")}, "threshold")])
def test_bad_hyperparameters_are_named(params, field):
    with pytest.raises(ValueError, match=f"EASE: {field}"):
        EASE(**params).fit(contract_data())


def test_items_without_interactions_get_zero_weights():
    data = Interactions(np.array([0, 0, 1]), np.array([0, 1, 1]), np.ones(3, np.float32),
                        user_map=IdMap(np.array([10, 11])), item_map=IdMap(np.array([5, 6, 7])))
    model = EASE(l2=1.0).fit(data)
    assert np.all(model.weights_[2] == 0) and np.all(model.weights_[:, 2] == 0)
