"""NSVD1 / asymmetric SVD: SGD epochs against a slow transcription of the update rules
(Paterek 2007, with the per-user schedule of Koren 2008), the user side as a projection of the
history, fold-in by that projection."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.models.factorization import NSVD1

from ..contract import check_fold_in_exact, contract_data


def slow_fit(r: sp.csr_matrix, m: NSVD1, qi, xj, orders):
    """The rules of asymmetric.py's docstring, one rating and one factor at a time."""
    qi, xj = qi.copy(), xj.copy()
    n_users, n_items = r.shape
    k = qi.shape[1]
    mu = float(r.data.mean())
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    lr = {n: m.rate(n) for n in ("lr_bu", "lr_bi", "lr_qi", "lr_xj", "reg_bu", "reg_bi",
                                 "reg_qi", "reg_xj")}
    for order in orders:
        for u in order:
            items, ratings = r[u].indices, r[u].data
            if items.size == 0:
                continue
            norm = items.size ** -0.5
            p = [norm * sum(xj[j, f] for j in items) for f in range(k)]
            g = [0.0] * k
            for i, rating in zip(items, ratings, strict=True):
                est = sum(qi[i, f] * p[f] for f in range(k))
                if m.biased:
                    est += mu + bu[u] + bi[i]
                err = rating - est
                if m.biased:
                    bu[u] += lr["lr_bu"] * (err - lr["reg_bu"] * bu[u])
                    bi[i] += lr["lr_bi"] * (err - lr["reg_bi"] * bi[i])
                for f in range(k):
                    g[f] += err * qi[i, f]
                    qi[i, f] += lr["lr_qi"] * (err * p[f] - lr["reg_qi"] * qi[i, f])
            for j in items:
                for f in range(k):
                    xj[j, f] += lr["lr_xj"] * (norm * g[f] - lr["reg_xj"] * xj[j, f])
    pu = np.zeros((n_users, k))
    bu_final = np.zeros(n_users)
    for u in range(n_users):
        items, ratings = r[u].indices, r[u].data
        if items.size:
            pu[u] = xj[items].sum(0) / np.sqrt(items.size)
            if m.biased:
                resid = ratings - mu - bi[items] - qi[items] @ pu[u]
                bu_final[u] = resid.sum() / (items.size * (1 + lr["reg_bu"]))
    return qi, xj, bi, pu, bu_final


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("n_epochs", [1, 2])
def test_epochs_equal_the_slow_transcription(biased, n_epochs):
    data = contract_data()
    m = NSVD1(n_factors=3, n_epochs=n_epochs, biased=biased, lr_all=0.05, reg_all=0.03,
              lr_xj=0.08, reg_bi=0.1, random_state=4).fit(data)
    q0, x0, orders = m.initial_state(data.n_users, data.n_items)
    qi, xj, bi, pu, bu = slow_fit(sp.csr_matrix(data.csr, dtype=np.float64), m, q0, x0, orders)
    assert not np.allclose(xj, x0) and not np.allclose(qi, q0)
    for got, want in ((m.item_factors_, qi), (m.item_implicit_factors_, xj),
                      (m.item_bias_, bi), (m.user_factors_, pu), (m.user_bias_, bu)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert (np.abs(bu).max() > 0) == biased


def test_fold_in_is_the_projection_and_the_least_squares_bias():
    data = contract_data()
    m = NSVD1(n_factors=3, n_epochs=3, random_state=0).fit(data)
    items, ratings = np.array([1, 4, 9, 12]), np.array([4.0, 2.0, 5.0, 3.0])
    hist = sp.csr_matrix((ratings, items, [0, 4]), shape=(1, data.n_items))
    f, b = m.fold_in(hist)
    p = m.item_implicit_factors_[items].sum(0) / 2.0
    np.testing.assert_allclose(f[0], p, rtol=1e-12)
    # the bias minimises sum_i (r_i - mu - b_i - q_i.p - b)^2 + |H| reg_bu b^2
    y = ratings - m.mu_ - m.item_bias_[items] - m.item_factors_[items] @ p
    xa = np.vstack([np.ones((4, 1)), [[np.sqrt(4 * m.rate("reg_bu"))]]])
    want = np.linalg.lstsq(xa, np.append(y, 0.0), rcond=None)[0][0]
    np.testing.assert_allclose(b[0], want, rtol=1e-10)


def test_anonymous_history_equal_to_a_user_s_ratings_gives_that_user_s_scores():
    data = contract_data()
    m = NSVD1(n_factors=4, n_epochs=5, random_state=1).fit(data)
    csr = data.csr
    users = np.flatnonzero(np.diff(csr.indptr) > 0)
    by_id = m.score_inner(users)  # fitted vectors, no history
    anon = m.score_inner(np.full(users.size, -1), history=csr[users])
    np.testing.assert_array_equal(anon, by_id)
    check_fold_in_exact(m, data, k=10)


def test_a_known_user_s_history_overrides_the_fitted_vector():
    data = contract_data()
    m = NSVD1(n_factors=4, n_epochs=5, random_state=1).fit(data)
    hist = sp.csr_matrix(([5.0, 1.0], [2, 3], [0, 2]), shape=(1, data.n_items))
    f, b = m.user_vectors(np.array([0]), hist)
    np.testing.assert_allclose(f[0], m.item_implicit_factors_[[2, 3]].sum(0) / np.sqrt(2))
    assert not np.allclose(f[0], m.user_factors_[0])
    f0, b0 = m.user_vectors(np.array([0]), None)
    np.testing.assert_array_equal(f0[0], m.user_factors_[0])
    assert b0[0] == m.user_bias_[0]


def test_learns_the_ratings():
    data = contract_data()
    u, i, r = data.users, data.items, data.values.astype(float)
    base = np.sqrt(np.mean((r - r.mean()) ** 2))
    m = NSVD1(n_factors=4, n_epochs=60, lr_all=0.02, random_state=0).fit(data)
    fit = np.sqrt(np.mean((m.predict_inner(u, i, clip=False) - r) ** 2))
    assert fit < 0.8 * base
