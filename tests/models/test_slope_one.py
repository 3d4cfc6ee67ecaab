"""Slope One: the paper's worked example, a slow transcription, and parity with Surprise."""

import numpy as np
import pytest

from recforge.data import IdMap, Interactions
from recforge.models.neighborhood import SlopeOne

from .contract import check_model_contract, contract_data


def test_contract(tmp_path):
    check_model_contract(lambda: SlopeOne(), contract_data(), tmp_path=tmp_path)


def test_hand_computed():
    """Users 1, 2, 3 x items 10, 20::

        1: 10=5, 20=3
        2: 10=3, 20=4
        3: 10=2

    dev(20, 10) = ((3 - 5) + (4 - 3)) / 2 = -0.5, so user 3's estimate for item 20 is
    mean(3) + dev(20, 10) = 2 - 0.5 = 1.5 (unclipped).
    """
    data = Interactions.from_arrays([1, 1, 2, 2, 3], [10, 20, 10, 20, 10],
                                    [5.0, 3.0, 3.0, 4.0, 2.0], rating_scale=(1, 5))
    model = SlopeOne().fit(data)
    est, fallbacks = model.predict([3], [20], clip=False, return_fallbacks=True)
    np.testing.assert_allclose(est, [1.5])
    np.testing.assert_allclose(model.dev_, [[0.0, 0.5], [-0.5, 0.0]])
    np.testing.assert_array_equal(model.freq_, [[3, 2], [2, 2]])
    assert fallbacks == {}


def test_no_co_rated_item_falls_back_to_user_mean():
    """Item 30 is rated only by user 4, who rated nothing else; user 1 rated 10 and 20, which
    share no rater with 30, so (1, 30) gets user 1's mean, counted."""
    data = Interactions.from_arrays([1, 1, 4], [10, 20, 30], [5.0, 3.0, 1.0], rating_scale=(1, 5))
    model = SlopeOne().fit(data)
    est, fallbacks = model.predict([1], [30], return_fallbacks=True)
    np.testing.assert_allclose(est, [4.0])
    assert fallbacks == {"no co-rated item: user mean": 1}


def slow_slope_one(dense: np.ndarray, u: int, i: int) -> float:
    rated = ~np.isnan(dense)
    mean_u = dense[u, rated[u]].mean()
    devs = []
    for j in np.flatnonzero(rated[u]):
        common = rated[:, i] & rated[:, j]
        if common.any():
            devs.append(np.mean(dense[common, i] - dense[common, j]))
    return mean_u + (np.mean(devs) if devs else 0.0)


def _random(seed, n_users=25, n_items=15, density=0.35):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    r = rng.integers(1, 6, u.size).astype(np.float32)
    data = Interactions(u, i, r, user_map=IdMap(np.arange(n_users)), item_map=IdMap(np.arange(n_items) + 1000),
                        rating_scale=(1.0, 5.0))
    return data, np.where(mask, np.zeros(mask.shape), np.nan) + data.csr.toarray()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_slow_reference(seed):
    data, dense = _random(seed)
    model = SlopeOne().fit(data)
    uu, ii = np.meshgrid(np.arange(data.n_users), np.arange(data.n_items), indexing="ij")
    got = model.predict_inner(uu.ravel(), ii.ravel(), clip=False)
    want = [slow_slope_one(dense, u, i) for u, i in zip(uu.ravel(), ii.ravel(), strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # the fast all-items scoring agrees with pair-wise prediction
    np.testing.assert_allclose(model.score_inner(np.arange(3), history=data.csr[:3]), got.reshape(uu.shape)[:3], rtol=1e-6)


@pytest.mark.reference
def test_parity_with_surprise():
    surprise = pytest.importorskip("surprise")
    data, _ = _random(7, n_users=40, n_items=30, density=0.3)
    test_mask = np.random.default_rng(3).random(data.nnz) < 0.2
    train, test = data.subset(~test_mask), data.subset(test_mask)
    df = train.to_dataframe()
    trainset = surprise.Dataset.load_from_df(df[["user", "item", "rating"]],
                                             surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = surprise.SlopeOne().fit(trainset)
    tdf = test.to_dataframe()
    want = [algo.predict(u, i).est for u, i in zip(tdf.user, tdf.item, strict=True)]
    got = SlopeOne().fit(train).predict(tdf.user.to_numpy(), tdf.item.to_numpy())
    np.testing.assert_allclose(got, want, atol=1e-9)
