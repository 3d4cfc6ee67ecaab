"""NMF: the multiplicative updates against a slow transcription of Luo et al. (2014) as
Surprise 1.1.5 defines them, non-negative factors, fold-in by the same updates."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Interactions
from recforge.models.factorization import NMF

from ..contract import contract_data


def slow_epochs(r: sp.csr_matrix, pu, qi, bu, bi, mu, n_epochs, m: NMF, update_items=True):
    """The update rules written out per rating and per factor (module docstring of nmf.py):
    sums over the epoch with the previous epoch's factors, biases by SGD in user-major order."""
    pu, qi, bu, bi = pu.copy(), qi.copy(), bu.copy(), bi.copy()
    n_users, k = pu.shape
    n_items = qi.shape[0]
    for _ in range(n_epochs):
        un, ud = np.zeros((n_users, k)), np.zeros((n_users, k))
        inum, iden = np.zeros((n_items, k)), np.zeros((n_items, k))
        for u in range(n_users):
            for i, rating in zip(r[u].indices, r[u].data, strict=True):
                est = sum(qi[i, f] * pu[u, f] for f in range(k))
                if m.biased:
                    est += mu + bu[u] + bi[i]
                    err = rating - est
                    bu[u] += m.lr_bu * (err - m.reg_bu * bu[u])
                    if update_items:
                        bi[i] += m.lr_bi * (err - m.reg_bi * bi[i])
                for f in range(k):
                    un[u, f] += qi[i, f] * rating
                    ud[u, f] += qi[i, f] * est
                    inum[i, f] += pu[u, f] * rating
                    iden[i, f] += pu[u, f] * est
        new_pu = pu.copy()
        for u in range(n_users):
            n_u = r[u].nnz
            for f in range(k):
                if pu[u, f] != 0 and n_u:  # a user without ratings keeps its factors
                    new_pu[u, f] = pu[u, f] * un[u, f] / (ud[u, f] + m.reg_pu * n_u * pu[u, f])
        if update_items:
            n_i = np.bincount(r.indices, minlength=n_items)
            for i in range(n_items):
                for f in range(k):
                    if qi[i, f] != 0 and n_i[i]:
                        qi[i, f] = qi[i, f] * inum[i, f] / (iden[i, f] + m.reg_qi * n_i[i] * qi[i, f])
        pu = new_pu
    return pu, qi, bu, bi


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("n_epochs", [1, 3])
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-10), ("float32", 1e-5)])
def test_epochs_equal_the_slow_transcription(biased, n_epochs, dtype, rtol):
    """float64 to rounding; float32 (factor width padded with zero columns) to single precision."""
    data = contract_data()
    model = NMF(n_factors=4, n_epochs=n_epochs, biased=biased, reg_pu=0.1, reg_qi=0.07,
                lr_bu=0.01, lr_bi=0.02, random_state=3, dtype=dtype).fit(data)
    pu0, qi0 = model.initial_factors(data.n_users, data.n_items)
    r = sp.csr_matrix(data.csr, dtype=np.float64)
    mu = float(r.data.mean())
    pu, qi, bu, bi = slow_epochs(r, pu0, qi0, np.zeros(data.n_users), np.zeros(data.n_items),
                                 mu, n_epochs, model)
    assert not np.allclose(pu, pu0)  # the epochs moved the factors
    np.testing.assert_allclose(model.user_factors_, pu, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(model.item_factors_, qi, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(model.user_bias_, bu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=1e-10, atol=1e-12)
    assert model.user_factors_.shape == pu.shape and model.user_factors_.dtype == np.float64
    if biased:
        assert np.abs(bu).max() > 0 and np.abs(bi).max() > 0
    else:
        assert not bu.any() and not bi.any()


def test_predictions_follow_the_factors():
    data = contract_data()
    for biased in (False, True):
        m = NMF(n_factors=3, n_epochs=5, biased=biased, random_state=0).fit(data)
        u, i = data.users[:5], data.items[:5]
        expect = np.einsum("ij,ij->i", m.user_factors_[u], m.item_factors_[i])
        if biased:
            expect += m.mu_ + m.user_bias_[u] + m.item_bias_[i]
        np.testing.assert_allclose(m.predict_inner(u, i, clip=False), expect, rtol=1e-12)


@pytest.mark.parametrize("biased", [False, True])
def test_factors_stay_non_negative(biased):
    rng = np.random.default_rng(1)
    n = 600
    # ratings far from the factors' starting scale push many updates to shrink
    data = Interactions.from_arrays(rng.integers(0, 40, n), rng.integers(0, 30, n),
                                    rng.choice([0.0, 0.5, 5.0], n), rating_scale=(0, 5))
    m = NMF(n_factors=6, n_epochs=30, biased=biased, random_state=2).fit(data)
    assert (m.user_factors_ >= 0).all() and (m.item_factors_ >= 0).all()
    assert (m.item_factors_ < 1e-3).any()  # the data drove some factors towards zero
    hist = sp.csr_matrix(data.csr[:5])
    f, _ = m.fold_in(hist)
    assert (f >= 0).all()


@pytest.mark.parametrize("biased", [False, True])
def test_fold_in_is_the_same_updates_with_items_fixed(biased):
    data = contract_data()
    m = NMF(n_factors=3, n_epochs=4, biased=biased, random_state=5).fit(data)
    hist = sp.csr_matrix(np.array([[5, 0, 3, 0, 0, 1, 0, 0, 4, 0, 0, 0, 2, 0],
                                   [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                                   [1, 1, 0, 0, 5, 0, 0, 0, 0, 0, 3, 0, 0, 0]], float))
    f, b = m.fold_in(hist)
    start = np.tile(m.user_factors_.mean(0), (3, 1))
    pu, qi, bu, bi = slow_epochs(hist, start, m.item_factors_, np.zeros(3), m.item_bias_,
                                 m.mu_, m.n_epochs, m, update_items=False)
    np.testing.assert_allclose(f[[0, 2]], pu[[0, 2]], rtol=1e-10)
    np.testing.assert_allclose(b, bu, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(qi, m.item_factors_)
    assert not f[1].any()
    # the anonymous rows are scored from those factors
    rec = m.recommend(history=[{100: 5, 102: 3, 105: 1, 108: 4, 112: 2}], k=14)
    scores = f[0] @ m.item_factors_.T + ((m.mu_ + b[0] + m.item_bias_) if biased else 0)
    order = np.argsort(-scores[rec.inner[0][rec.inner[0] >= 0]], kind="stable")
    np.testing.assert_allclose(rec.scores[0][rec.inner[0] >= 0],
                               scores[rec.inner[0][rec.inner[0] >= 0]], rtol=1e-5)
    np.testing.assert_array_equal(order, np.arange(order.size))


def test_bad_input_is_refused():
    data = contract_data()
    with pytest.raises(ValueError, match="init_low"):
        NMF(init_low=-0.1).fit(data)
    neg = Interactions.from_arrays(np.array([0, 1]), np.array([0, 1]), np.array([-1.0, 2.0]))
    with pytest.raises(ValueError, match="non-negative"):
        NMF().fit(neg)
