"""BPR: the step against hand arithmetic, the epoch kernel against a Python transcription of
the same random stream, fold-in, partial_fit and parameter errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Interactions
from recforge.data.synthetic import generate_implicit
from recforge.models.factorization.bpr import (
    BPR,
    MAX_NEGATIVE_DRAWS,
    _bpr_epoch,
    bpr_step,
    negative_cdf,
    next_uint64,
    pool_negative_cdf,
    uniform_index,
)


def test_one_step_matches_the_hand_computed_update():
    U = np.array([[0.1, -0.2, 1.0]])
    V = np.array([[0.3, 0.1, 0.05], [-0.2, 0.4, -0.1]])
    lr, reg = 0.1, 0.01
    # x_uij = b_i - b_j + p_u (q_i - q_j) = 0.15 + 0.1 * 0.5 + (-0.2) * (-0.3) = 0.26
    z = 1.0 / (1.0 + math.exp(0.26))
    got = bpr_step(U, V, 0, 0, 1, lr, reg, True)
    assert got == pytest.approx(z, rel=1e-12)
    np.testing.assert_allclose(U[0], [0.1 + lr * (z * 0.5 - reg * 0.1),
                                      -0.2 + lr * (z * -0.3 - reg * -0.2), 1.0], rtol=1e-12)
    np.testing.assert_allclose(V[0], [0.3 + lr * (z * 0.1 - reg * 0.3),
                                      0.1 + lr * (z * -0.2 - reg * 0.1),
                                      0.05 + lr * (z - reg * 0.05)], rtol=1e-12)
    np.testing.assert_allclose(V[1], [-0.2 + lr * (-z * 0.1 - reg * -0.2),
                                      0.4 + lr * (-z * -0.2 - reg * 0.4),
                                      -0.1 + lr * (-z - reg * -0.1)], rtol=1e-12)
    # without item bias the bias column does not move
    V2 = np.array([[0.3, 0.1, 0.05], [-0.2, 0.4, -0.1]])
    bpr_step(np.array([[0.1, -0.2, 1.0]]), V2, 0, 0, 1, lr, reg, False)
    assert V2[0, 2] == 0.05 and V2[1, 2] == -0.1


def _tiny():
    rng = np.random.default_rng(3)
    m = sp.random(7, 9, density=0.45, format="csr", random_state=rng)
    m.data[:] = 1.0
    m.sort_indices()
    return m


def _python_epoch(m, U, V, cdf, lr, reg, item_bias, verify, n_samples, state, free_users=None,
                  free_items=None):
    """One epoch of LearnBPR written out in Python, drawing from the same stream; only the
    rows marked free (None: all) change."""
    fu = np.ones(U.shape[0], bool) if free_users is None else free_users
    fi = np.ones(V.shape[0], bool) if free_items is None else free_items
    users = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    items = m.indices
    n_items = V.shape[0]
    k = U.shape[1] - 1
    for _ in range(n_samples):
        state, s = uniform_index(state, users.size)
        u, i = users[s], items[s]
        row = set(m.indices[m.indptr[u]:m.indptr[u + 1]].tolist())
        j = -1
        for _d in range(MAX_NEGATIVE_DRAWS):
            if cdf.size == 0:
                state, cand = uniform_index(state, n_items)
            else:
                state, z64 = next_uint64(state)
                unit = float(z64 >> 11) / 2.0**53
                cand = min(int(np.searchsorted(cdf, unit * cdf[-1], side="right")), n_items - 1)
            if not verify or cand not in row:
                j = cand
                break
        if j < 0:
            continue
        x = sum(U[u, f] * (V[i, f] - V[j, f]) for f in range(k + 1))
        z = 1.0 / (1.0 + math.exp(x))
        pu, qi, qj = U[u, :k].copy(), V[i, :k].copy(), V[j, :k].copy()
        bi, bj = V[i, k], V[j, k]
        if fu[u]:
            U[u, :k] = pu + lr * (z * (qi - qj) - reg * pu)
        if fi[i]:
            V[i, :k] = qi + lr * (z * pu - reg * qi)
            if item_bias:
                V[i, k] = bi + lr * (z - reg * bi)
        if fi[j]:
            V[j, :k] = qj + lr * (-z * pu - reg * qj)
            if item_bias:
                V[j, k] = bj + lr * (-z - reg * bj)
    return state


@pytest.mark.parametrize("sampling, verify, item_bias", [("uniform", True, True),
                                                          ("popularity", True, True),
                                                          ("uniform", False, False)])
def test_one_epoch_equals_a_python_transcription_of_the_same_stream(sampling, verify, item_bias):
    m = _tiny()
    rng = np.random.default_rng(0)
    U = rng.uniform(-0.5, 0.5, (7, 4))
    U[:, 3] = 1.0
    V = rng.uniform(-0.5, 0.5, (9, 4))
    cdf = negative_cdf(np.bincount(m.indices, minlength=9), sampling, 0.75)
    assert (cdf.size > 0) == (sampling == "popularity")
    U_py, V_py = U.copy(), V.copy()
    seed = 123456789
    n = 3 * m.nnz
    states = np.array([seed], dtype=np.uint64)
    stats = np.zeros((1, 2), dtype=np.int64)
    users = np.repeat(np.arange(7, dtype=np.int32), np.diff(m.indptr))
    _bpr_epoch(users, m.indices.astype(np.int32), m.indptr.astype(np.int64),
               m.indices.astype(np.int32), U, V, cdf, 0.05, 0.01, item_bias, verify, n, states,
               stats, np.empty(0, np.bool_), np.empty(0, np.bool_))
    state = _python_epoch(m, U_py, V_py, cdf, 0.05, 0.01, item_bias, verify, n, seed)
    assert int(states[0]) == state  # the same number of draws
    np.testing.assert_allclose(U, U_py, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(V, V_py, rtol=1e-10, atol=1e-12)
    assert not np.allclose(V, np.random.default_rng(0).uniform(-0.5, 0.5, (16, 4))[7:])


@pytest.mark.parametrize("which", ["users", "items"])
def test_an_epoch_holding_rows_fixed_equals_the_transcription(which):
    """The fold-in phases of partial_fit: the same kernel, only the rows marked free change."""
    m = _tiny()
    rng = np.random.default_rng(1)
    U = rng.uniform(-0.5, 0.5, (7, 4))
    U[:, 3] = 1.0
    V = rng.uniform(-0.5, 0.5, (9, 4))
    free_users = np.zeros(7, np.bool_)
    free_items = np.zeros(9, np.bool_)
    if which == "users":
        free_users[4:] = True
    else:
        free_items[[0, 5, 8]] = True
    U_py, V_py, U0, V0 = U.copy(), V.copy(), U.copy(), V.copy()
    seed = 987654321
    n = 3 * m.nnz
    states = np.array([seed], dtype=np.uint64)
    users = np.repeat(np.arange(7, dtype=np.int32), np.diff(m.indptr))
    _bpr_epoch(users, m.indices.astype(np.int32), m.indptr.astype(np.int64),
               m.indices.astype(np.int32), U, V, np.empty(0), 0.05, 0.01, True, True, n, states,
               np.zeros((1, 2), dtype=np.int64), free_users, free_items)
    _python_epoch(m, U_py, V_py, np.empty(0), 0.05, 0.01, True, True, n, seed, free_users,
                  free_items)
    np.testing.assert_allclose(U, U_py, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(V, V_py, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(U[~free_users], U0[~free_users])
    np.testing.assert_array_equal(V[~free_items], V0[~free_items])
    moved = free_users if which == "users" else free_items
    assert not np.allclose((U if which == "users" else V)[moved],
                           (U0 if which == "users" else V0)[moved])


def test_pool_negative_cdf_weights_items_by_their_share_in_the_pool():
    counts = np.array([4, 2, 0, 5])
    pool = np.array([0, 1, 1, 3])  # item 0: 1 of 4, item 1: 2 of 2, item 3: 1 of 5
    overall = 4 / 11
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], pool_negative_cdf(
        np.empty(0), counts, pool)])), [0.25, 1.0, overall, 0.2])
    popular = negative_cdf(counts, "popularity", 1.0)
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], pool_negative_cdf(
        popular, counts, pool)])), [1.0, 2.0, 0.0, 1.0])


def _data():
    return generate_implicit(n_users=120, n_items=60, n_events=3000, seed=2).interactions


def test_single_thread_fit_is_a_function_of_the_seed_and_learns():
    data = _data()
    a = BPR(factors=8, iterations=15, random_state=5, num_threads=1).fit(data)
    b = BPR(factors=8, iterations=15, random_state=5, num_threads=1).fit(data)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert len(a.epoch_seconds_) == 15 and all(s > 0 for s in a.epoch_seconds_)
    assert a.train_auc_[-1] > a.train_auc_[0] + 0.03 and a.train_auc_[-1] > 0.68
    c = BPR(factors=8, iterations=15, random_state=6, num_threads=1).fit(data)
    assert not np.array_equal(a.item_factors_, c.item_factors_)
    np.testing.assert_array_equal(a.user_bias_, 0.0)
    assert a.feedback_dropped_ == 0


def _objective(p, model, items):
    """Mean ln sigma(x_uij) over the row's (i, j) pairs minus the L2 term."""
    q, b = model.item_factors_, model.item_bias_
    s = q @ p + b
    neg = np.setdiff1d(np.arange(q.shape[0]), items)
    x = s[items][:, None] - s[neg][None, :]
    return float(-np.logaddexp(0.0, -x).mean() - 0.5 * model.regularization * p @ p)


def test_fold_in_improves_the_objective_and_is_deterministic():
    data = _data()
    model = BPR(factors=8, iterations=20, learning_rate=0.05, random_state=0,
                num_threads=1).fit(data)
    csr = data.csr
    rows = csr[[3, 10, 42]]
    p, b = model.fold_in(rows)
    np.testing.assert_array_equal(b, 0.0)
    for r in range(3):
        items = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
        assert _objective(p[r], model, items) > _objective(np.zeros(8), model, items) + 0.05
    again, _ = model.fold_in(rows)
    np.testing.assert_array_equal(p, again)
    alone, _ = model.fold_in(csr[[10]])  # a row's vector does not depend on its batch
    np.testing.assert_array_equal(alone[0], p[1])
    # values below the threshold are not positives: a thresholded copy ignores them
    thresholded = BPR(factors=8, iterations=20, learning_rate=0.05, random_state=0,
                      num_threads=1, threshold=2).fit(data)
    low = sp.csr_matrix(([1.0], ([0], [5])), shape=(1, data.n_items))
    np.testing.assert_array_equal(thresholded.fold_in(low)[0], 0.0)


def test_anonymous_rows_are_scored_by_fold_in():
    data = _data()
    model = BPR(factors=8, iterations=10, random_state=0, num_threads=1).fit(data)
    hist = {int(data.item_map.raw[i]): 1.0 for i in data.csr[7].indices}
    rec = model.recommend(history=[hist], k=5)
    assert rec.fallback[0] is None
    p, _ = model.fold_in(data.csr[[7]])
    scores = model.item_factors_ @ p[0] + model.item_bias_
    scores[data.csr[7].indices] = -np.inf
    np.testing.assert_array_equal(rec.inner[0], np.argsort(-scores, kind="stable")[:5])


def test_partial_fit_grows_the_maps_and_recommends_new_items():
    data = _data()
    model = BPR(factors=8, iterations=20, learning_rate=0.05, random_state=0,
                num_threads=1).fit(data)
    n_users, n_items = data.n_users, data.n_items
    old_q = model.item_factors_.copy()
    # 40 existing users and 5 new ones all take up a new item 'new-hit'
    raw_users = list(data.user_map.raw[:40]) + [10_001, 10_002, 10_003, 10_004, 10_005]
    new = Interactions.from_arrays(np.array(raw_users + [10_001]),
                                   np.array([99_999] * len(raw_users) + [int(data.item_map.raw[0])]))
    model.partial_fit(new, epochs=10)
    assert len(model.user_map_) == n_users + 5 and model.n_items_ == n_items + 1
    assert model.item_factors_.shape == (n_items + 1, 8)
    assert model.user_factors_.shape == (n_users + 5, 8)
    assert not np.array_equal(model.item_factors_[:n_items], old_q)  # trained further
    assert model.item_popularity_[-1] == len(raw_users)
    hit = int(model.item_map_.to_inner([99_999])[0])
    assert hit == n_items
    others = data.user_map.raw[60:100]  # users who did not take it up
    rec = model.recommend(others, k=10)
    assert (rec.inner == hit).any(axis=1).mean() > 0.5
    by_id = model.recommend([10_002], k=5, history=[[99_999]])
    assert by_id.fallback[0] is None and hit not in by_id.inner[0]


@pytest.mark.parametrize("params, match", [({"sampling": "zipf"}, "sampling"),
                                           ({"factors": 0}, "factors"),
                                           ({"learning_rate": -1.0}, "learning_rate"),
                                           ({"num_threads": 0}, "num_threads"),
                                           ({"item_bias": "yes"}, "item_bias"),
                                           ({"threshold": float("nan")}, "threshold")])
def test_bad_hyperparameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        BPR(iterations=1, **params).fit(_data())


def _split_new_users(data, n_new=20):
    """(old part, new part) of ``data``: the last ``n_new`` users are new."""
    cut = data.n_users - n_new
    raw_u, raw_i = data.user_map.raw, data.item_map.raw

    def part(mask):
        return Interactions.from_arrays(raw_u[data.users[mask]], raw_i[data.items[mask]],
                                        data.values[mask], kind="implicit")

    return part(data.users < cut), part(data.users >= cut)


def test_partial_fit_folds_new_users_in_with_the_items_fixed():
    data = _data()
    old, new = _split_new_users(data)
    model = BPR(factors=8, iterations=30, learning_rate=0.05, random_state=0,
                num_threads=1).fit(old)
    q, b, p = model.item_factors_.copy(), model.item_bias_.copy(), model.user_factors_.copy()
    signatures = len(_bpr_epoch.signatures)
    model.partial_fit(new, epochs=0)  # the fold-in phase alone
    assert len(_bpr_epoch.signatures) == signatures  # fit compiled everything it ran
    assert model.n_users_ == data.n_users
    n_items = q.shape[0]
    np.testing.assert_array_equal(model.item_factors_[:n_items], q)
    np.testing.assert_array_equal(model.item_bias_[:n_items], b)
    np.testing.assert_array_equal(model.user_factors_[:p.shape[0]], p)
    # each new user's own items now outrank the others (AUC on the user's pairs)
    inner = model.user_map_.to_inner(new.user_map.raw)
    items = model.item_map_.to_inner(new.item_map.raw)
    csr = sp.csr_matrix((np.ones(new.nnz), (inner[new.users] - p.shape[0], items[new.items])),
                        shape=(inner.size, model.n_items_))
    scores = model.user_factors_[inner] @ model.item_factors_.T + model.item_bias_
    aucs = []
    for r in range(inner.size):
        pos = csr[r].indices
        neg = np.setdiff1d(np.arange(model.n_items_), pos)
        aucs.append((scores[r, pos][:, None] > scores[r, neg][None, :]).mean())
    assert np.mean(aucs) > 0.75
    # and a popularity ranking does worse on the same pairs
    pop = model.item_popularity_
    pop_auc = np.mean([(pop[csr[r].indices][:, None] > pop[np.setdiff1d(
        np.arange(model.n_items_), csr[r].indices)][None, :]).mean() for r in range(inner.size)])
    assert np.mean(aucs) > pop_auc + 0.03, (np.mean(aucs), pop_auc)


def test_partial_fit_defaults_and_bad_values():
    model = BPR()
    assert (model.partial_epochs, model.partial_replay, model.partial_fold_epochs) == (5, 1.0, 20)
    for params, match in [({"partial_epochs": -1}, "partial_epochs"),
                          ({"partial_replay": -0.5}, "partial_replay"),
                          ({"partial_fold_epochs": 1.5}, "partial_fold_epochs")]:
        with pytest.raises(ValueError, match=match):
            BPR(iterations=1, **params).fit(_data())
