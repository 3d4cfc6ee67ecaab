"""SVD++: one epoch against a literal transcription of Koren (2008)'s SGD, the prediction
formula, extra implicit feedback, and the fold-in against a transcription of its user-block
SGD."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Interactions
from recforge.models.factorization import SVDpp, fold_in_svdpp

from ..contract import contract_data


def _tiny(seed: int = 3, n_users: int = 9, n_items: int = 11, density: float = 0.45):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[:, 0] |= ~mask.any(axis=1)  # every user rates something
    u, i = np.nonzero(mask)
    r = rng.integers(1, 6, u.size).astype(float)
    return Interactions.from_arrays(u, i, r, rating_scale=(1, 5))


def _transcription(data: Interactions, model: SVDpp, n_sets: list[list[int]]):
    """Koren (2008) eq. 15 SGD as written: users in index order, each user's ratings in item
    order, every y_j of N(u) updated after every rating. Same initial factors as the model."""
    k = model.n_factors
    rng = np.random.default_rng(model.random_state)
    p = rng.normal(model.init_mean, model.init_std_dev, (data.n_users, k))
    q = rng.normal(model.init_mean, model.init_std_dev, (data.n_items, k))
    y = rng.normal(model.init_mean, model.init_std_dev, (data.n_items, k))
    bu, bi = np.zeros(data.n_users), np.zeros(data.n_items)
    mu = data.global_mean
    (lr_bu, lr_bi, lr_pu, lr_qi, lr_yj), (reg_bu, reg_bi, reg_pu, reg_qi, reg_yj) = model._rates()
    csr = data.csr
    for _ in range(model.n_epochs):
        for u in range(data.n_users):
            n_u = n_sets[u]
            for t in range(csr.indptr[u], csr.indptr[u + 1]):
                i, r = csr.indices[t], float(csr.data[t])
                z = sum(y[j] for j in n_u) / np.sqrt(len(n_u))
                err = r - (mu + bu[u] + bi[i] + q[i] @ (p[u] + z))
                bu[u] += lr_bu * (err - reg_bu * bu[u])
                bi[i] += lr_bi * (err - reg_bi * bi[i])
                pu, qi = p[u].copy(), q[i].copy()
                p[u] += lr_pu * (err * qi - reg_pu * pu)
                q[i] += lr_qi * (err * (pu + z) - reg_qi * qi)
                for j in n_u:
                    y[j] += lr_yj * (err * qi / np.sqrt(len(n_u)) - reg_yj * y[j])
    return mu, bu, bi, p, q, y


def _assert_matches(model, expected):
    mu, bu, bi, p, q, y = expected
    assert model.mu_ == pytest.approx(mu)
    for got, want in ((model.user_bias_, bu), (model.item_bias_, bi), (model.user_factors_, p),
                      (model.item_factors_, q), (model.implicit_factors_, y)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("epochs", [1, 3])
def test_sgd_equals_the_literal_per_rating_updates(epochs):
    data = _tiny()
    # distinct rates per parameter, so that a swapped override shows
    model = SVDpp(n_factors=4, n_epochs=epochs, lr_all=0.05, reg_all=0.1, lr_bi=0.03,
                  reg_pu=0.07, lr_yj=0.04, reg_yj=0.2, init_std_dev=0.3, random_state=5)
    model.fit(data)
    csr = data.csr
    n_sets = [csr.indices[csr.indptr[u]:csr.indptr[u + 1]].tolist() for u in range(data.n_users)]
    expected = _transcription(data, model, n_sets)
    _assert_matches(model, expected)
    rng = np.random.default_rng(5)
    y0 = [rng.normal(0, 0.3, (n, 4)) for n in (data.n_users, data.n_items, data.n_items)][2]
    assert np.abs(model.implicit_factors_ - y0).max() > 1e-3  # the y_j did move


def test_extra_implicit_feedback_joins_n_u():
    data = _tiny()
    rng = np.random.default_rng(1)
    eu, ei = rng.integers(0, data.n_users, 25), rng.integers(0, data.n_items, 25)
    implicit = Interactions.from_arrays(data.user_map.raw[eu], data.item_map.raw[ei])
    model = SVDpp(n_factors=3, n_epochs=1, lr_all=0.05, random_state=2).fit(data, implicit=implicit)
    csr = data.csr
    n_sets = [sorted(set(csr.indices[csr.indptr[u]:csr.indptr[u + 1]].tolist())
                     | set(ei[eu == u].tolist())) for u in range(data.n_users)]
    _assert_matches(model, _transcription(data, model, n_sets))
    plain = SVDpp(n_factors=3, n_epochs=1, lr_all=0.05, random_state=2).fit(data)
    assert np.abs(plain.item_factors_ - model.item_factors_).max() > 1e-6


def test_implicit_pairs_unknown_to_training_are_dropped_with_a_warning():
    data = _tiny()
    implicit = Interactions.from_arrays(np.array([data.user_map.raw[0], 10_000]),
                                        np.array([data.item_map.raw[1], data.item_map.raw[2]]))
    with pytest.warns(UserWarning, match="1 of 2 implicit pairs"):
        SVDpp(n_factors=2, n_epochs=1, random_state=0).fit(data, implicit=implicit)
    with pytest.raises(TypeError, match="implicit must be an Interactions"):
        SVDpp().fit(data, implicit=[(1, 2)])


def test_prediction_formula_and_query_vectors():
    data = _tiny()
    model = SVDpp(n_factors=3, n_epochs=2, random_state=0).fit(data)
    csr = data.csr
    users = np.arange(data.n_users)
    want = np.empty((data.n_users, data.n_items))
    for u in users:
        n_u = csr.indices[csr.indptr[u]:csr.indptr[u + 1]]
        vec = model.user_factors_[u] + model.implicit_factors_[n_u].sum(0) / np.sqrt(n_u.size)
        want[u] = model.mu_ + model.user_bias_[u] + model.item_bias_ + model.item_factors_ @ vec
    uu, ii = np.meshgrid(users, np.arange(data.n_items), indexing="ij")
    np.testing.assert_allclose(model.predict_inner(uu.ravel(), ii.ravel(), clip=False),
                               want.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.score_inner(users, history=csr), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.query_vectors(users) @ model.item_vectors().T, want,
                               rtol=1e-5, atol=1e-5)


def test_fold_in_equals_the_user_block_sgd_transcription():
    rng = np.random.default_rng(0)
    n_items, k, epochs = 12, 3, 4
    q, y, bi = rng.normal(size=(n_items, k)), rng.normal(size=(n_items, k)), rng.normal(size=n_items)
    dense = np.where(rng.random((4, n_items)) < 0.5, rng.integers(1, 6, (4, n_items)), 0.0)
    dense[3] = 0.0  # an empty row gets zeros
    hist = sp.csr_matrix(dense)
    lr_bu, lr_pu, reg_bu, reg_pu, init = 0.05, 0.03, 0.2, 0.1, 0.01
    query, b = fold_in_svdpp(hist, q, y, bi, 3.5, lr_bu=lr_bu, lr_pu=lr_pu, reg_bu=reg_bu,
                             reg_pu=reg_pu, n_epochs=epochs, init_mean=init)
    for r in range(3):
        items, ratings = hist[r].indices, hist[r].data
        z = y[items].sum(0) / np.sqrt(items.size)
        p, bu = np.full(k, init), 0.0
        for _ in range(epochs):
            for i, rating in zip(items, ratings, strict=True):
                err = rating - (3.5 + bu + bi[i] + q[i] @ (p + z))
                bu += lr_bu * (err - reg_bu * bu)
                p = p + lr_pu * (err * q[i] - reg_pu * p)
        np.testing.assert_allclose(query[r], p + z, rtol=0, atol=1e-12)
        assert b[r] == pytest.approx(bu, abs=1e-12)
    np.testing.assert_array_equal(query[3], 0.0)
    assert b[3] == 0.0


def test_anonymous_rows_are_scored_by_the_fold_in():
    data = contract_data()
    model = SVDpp(n_factors=3, n_epochs=5, lr_pu=0.01, reg_bu=0.05, random_state=0).fit(data)
    csr = data.csr
    u = int(np.argmax(data.user_counts))
    sl = slice(csr.indptr[u], csr.indptr[u + 1])
    hist = sp.csr_matrix((csr.data[sl], (np.zeros(sl.stop - sl.start, int), csr.indices[sl])),
                         shape=(1, data.n_items))
    query, bias = fold_in_svdpp(hist, model.item_factors_, model.implicit_factors_,
                                model.item_bias_, model.mu_, lr_bu=0.007, lr_pu=0.01,
                                reg_bu=0.05, reg_pu=0.02, n_epochs=5)
    want = model.mu_ + bias[0] + model.item_bias_ + model.item_factors_ @ query[0]
    got = model.score_inner(np.array([-1]), history=hist)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # a known user queried by id keeps the fitted vector, not a fold-in
    by_id = model.score_inner(np.array([u]), history=hist)[0]
    assert not np.allclose(got, by_id)


def test_bad_hyperparameters_are_named():
    data = _tiny()
    with pytest.raises(ValueError, match="n_factors"):
        SVDpp(n_factors=0).fit(data)
    with pytest.raises(ValueError, match="lr_yj"):
        SVDpp(lr_yj=-1.0).fit(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SVDpp(n_factors=2, n_epochs=0, random_state=0).fit(data)
