"""Co-Clustering: hand-computed single-cluster case, one sweep by hand, and parity with Surprise
from the same initial clusters."""

import numpy as np
import pytest

from recforge.data import IdMap, Interactions
from recforge.models.neighborhood import CoClustering

from .contract import check_model_contract, contract_data


def test_contract(tmp_path):
    check_model_contract(lambda: CoClustering(n_cltr_u=2, n_cltr_i=2, random_state=4),
                         contract_data(), tmp_path=tmp_path)


def test_single_cluster_is_the_bias_formula():
    """With one cluster each way the co-cluster, user-cluster and item-cluster means are all the
    global mean, so r_ui = mu_u + mu_i - mu. Users 1, 2 x items 10, 20::

        1: 10=5, 20=1      mu_1 = 3,  mu_10 = 4.5, mu = 3
        2: 10=4, 20=2      mu_2 = 3,  mu_20 = 1.5

    so r(1, 10) = 3 + 4.5 - 3 = 4.5.
    """
    data = Interactions.from_arrays([1, 1, 2, 2], [10, 20, 10, 20], [5.0, 1.0, 4.0, 2.0],
                                    rating_scale=(1, 5))
    model = CoClustering(n_cltr_u=1, n_cltr_i=1, random_state=0).fit(data)
    np.testing.assert_allclose(model.predict([1, 2, 1], [10, 20, 20]), [4.5, 1.5, 1.5])


def slow_sweeps(dense, cu, ci, n_cu, n_ci, n_epochs):
    """George & Merugu's batch updates, transcribed pair by pair (NaN = not rated)."""
    rated = ~np.isnan(dense)
    mu = dense[rated].mean()
    mu_u = np.array([dense[u, rated[u]].mean() if rated[u].any() else 0 for u in range(dense.shape[0])])
    mu_i = np.array([dense[rated[:, i], i].mean() if rated[:, i].any() else 0 for i in range(dense.shape[1])])

    def averages(cu, ci):
        au = [dense[(cu[:, None] == c) & rated].mean() if ((cu[:, None] == c) & rated).any() else mu
              for c in range(n_cu)]
        ai = [dense[(ci[None, :] == c) & rated].mean() if ((ci[None, :] == c) & rated).any() else mu
              for c in range(n_ci)]
        aco = np.full((n_cu, n_ci), mu)
        for a in range(n_cu):
            for b in range(n_ci):
                m = (cu[:, None] == a) & (ci[None, :] == b) & rated
                if m.any():
                    aco[a, b] = dense[m].mean()
        return np.array(au), np.array(ai), aco

    cu, ci = cu.copy(), ci.copy()
    for _ in range(n_epochs):
        au, ai, aco = averages(cu, ci)
        for u in range(dense.shape[0]):
            err = [sum((dense[u, i] - (aco[c, ci[i]] + mu_u[u] - au[c] + mu_i[i] - ai[ci[i]])) ** 2
                       for i in np.flatnonzero(rated[u])) for c in range(n_cu)]
            cu[u] = int(np.argmin(err))
        for i in range(dense.shape[1]):
            err = [sum((dense[u, i] - (aco[cu[u], c] + mu_u[u] - au[cu[u]] + mu_i[i] - ai[c])) ** 2
                       for u in np.flatnonzero(rated[:, i])) for c in range(n_ci)]
            ci[i] = int(np.argmin(err))
    return cu, ci


def _random(seed, n_users=30, n_items=20, density=0.35):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    r = rng.integers(1, 6, u.size).astype(np.float32)
    return Interactions(u, i, r, user_map=IdMap(np.arange(n_users)),
                        item_map=IdMap(np.arange(n_items) + 1000), rating_scale=(1.0, 5.0))


@pytest.mark.parametrize("seed", [0, 1])
def test_sweeps_match_slow_reference(seed):
    data = _random(seed)
    model = CoClustering(n_cltr_u=3, n_cltr_i=2, n_epochs=4, random_state=seed).fit(data)
    rng = np.random.default_rng(seed)
    cu0, ci0 = rng.integers(3, size=data.n_users), rng.integers(2, size=data.n_items)
    dense = np.where(data.csr.toarray() > 0, data.csr.toarray().astype(float), np.nan)
    cu, ci = slow_sweeps(dense, cu0, ci0, 3, 2, 4)
    np.testing.assert_array_equal(model.cltr_u_, cu)
    np.testing.assert_array_equal(model.cltr_i_, ci)


def test_same_seed_same_model_and_seed_matters():
    data = _random(3, n_users=60, n_items=40)
    a = CoClustering(random_state=1).fit(data)
    b = CoClustering(random_state=1).fit(data)
    np.testing.assert_array_equal(a.cltr_u_, b.cltr_u_)
    np.testing.assert_array_equal(a.cltr_i_, b.cltr_i_)
    with pytest.raises(ValueError):
        CoClustering(n_cltr_u=0).fit(data)


@pytest.mark.reference
def test_parity_with_surprise_from_the_same_start():
    surprise = pytest.importorskip("surprise")
    data = _random(11, n_users=50, n_items=35)
    test_mask = np.random.default_rng(2).random(data.nnz) < 0.2
    train, test = data.subset(~test_mask), data.subset(test_mask)
    df = train.to_dataframe()
    trainset = surprise.Dataset.load_from_df(df[["user", "item", "rating"]],
                                             surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    algo = surprise.CoClustering(n_cltr_u=3, n_cltr_i=3, n_epochs=10, random_state=5).fit(trainset)
    # Surprise's start: RandomState(5).randint over its own inner ids (users, then items)
    rs = np.random.RandomState(5)
    s_cu, s_ci = rs.randint(3, size=trainset.n_users), rs.randint(3, size=trainset.n_items)
    model = CoClustering(n_cltr_u=3, n_cltr_i=3, n_epochs=10, random_state=0).fit(train)
    cu = np.zeros(train.n_users, np.int64)
    ci = np.zeros(train.n_items, np.int64)
    for inner in range(trainset.n_users):
        cu[train.user_map.to_inner([trainset.to_raw_uid(inner)])[0]] = s_cu[inner]
    for inner in range(trainset.n_items):
        ci[train.item_map.to_inner([trainset.to_raw_iid(inner)])[0]] = s_ci[inner]
    model._iterate(train, cu, ci)
    tdf = test.to_dataframe()
    want = [algo.predict(u, i).est for u, i in zip(tdf.user, tdf.item, strict=True)]
    got = model.predict(tdf.user.to_numpy(), tdf.item.to_numpy())
    np.testing.assert_allclose(got, want, atol=1e-9)
