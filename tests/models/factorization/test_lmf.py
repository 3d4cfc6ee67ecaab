"""LMF: the sampled gradient against finite differences of its log-likelihood, determinism
across thread counts, fold-in and partial_fit."""

from __future__ import annotations

import numpy as np
import pytest

from recforge.data import Interactions
from recforge.data.synthetic import generate_implicit
from recforge.models.factorization.lmf import LMF, lmf_gradient, lmf_log_likelihood


def test_gradient_equals_finite_differences_of_the_log_likelihood():
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(12, 6))
    x = rng.normal(size=6)
    pos = np.array([1, 4, 7], dtype=np.int64)
    conf = np.array([1.0, 3.0, 0.5])
    neg = np.array([0, 4, 9, 9, 11], dtype=np.int64)  # a positive and a repeat among them
    grad = np.empty(6)
    lmf_gradient(x, Y, pos, conf, neg, 0.6, 4, grad)  # the last two coordinates: bias, 1
    h = 1e-6
    numeric = np.array([(lmf_log_likelihood(x + h * e, Y, pos, conf, neg, 0.6, 4)
                         - lmf_log_likelihood(x - h * e, Y, pos, conf, neg, 0.6, 4)) / (2 * h)
                        for e in np.eye(6)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    # and the likelihood itself, term by term: the prior leaves the bias and constant alone
    s = Y @ x
    expected = (conf * (s[pos] - np.logaddexp(0, s[pos]))).sum() \
        - np.logaddexp(0, s[neg]).sum() - 0.3 * x[:4] @ x[:4]
    assert lmf_log_likelihood(x, Y, pos, conf, neg, 0.6, 4) == pytest.approx(expected, rel=1e-12)
    sig = 1 / (1 + np.exp(-s))
    data_term = (conf * (1 - sig[pos])) @ Y[pos] - sig[neg] @ Y[neg]
    np.testing.assert_allclose(grad, data_term - 0.6 * np.r_[x[:4], 0.0, 0.0], rtol=1e-12)


def _data():
    return generate_implicit(n_users=100, n_items=50, n_events=2500, seed=4).interactions


def test_fit_does_not_depend_on_the_number_of_threads():
    data = _data()
    a = LMF(factors=5, iterations=4, neg_prop=5, random_state=1, num_threads=1).fit(data)
    b = LMF(factors=5, iterations=4, neg_prop=5, random_state=1, num_threads=2).fit(data)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    assert len(a.epoch_seconds_) == 4
    c = LMF(factors=5, iterations=4, neg_prop=5, random_state=2).fit(data)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_max_negatives_caps_the_draws_of_a_row():
    data = _data()  # 25 pairs per user, 50 per item on average: 5 x those exceed the cap
    kw = dict(factors=5, iterations=3, neg_prop=5, random_state=1)
    uncapped = LMF(max_negatives=None, **kw).fit(data)
    unreached = LMF(max_negatives=10**6, **kw).fit(data)
    capped = LMF(**kw).fit(data)  # the default cap, 32
    np.testing.assert_array_equal(uncapped.user_factors_, unreached.user_factors_)
    assert not np.array_equal(uncapped.user_factors_, capped.user_factors_)


def test_training_ranks_held_in_pairs_above_random_ones():
    data = _data()
    m = LMF(factors=8, iterations=15, neg_prop=5, random_state=0, binarize=True).fit(data)
    s = m.user_factors_ @ m.item_factors_.T + m.user_bias_[:, None] + m.item_bias_[None, :]
    pos = data.csr.toarray() > 0
    auc = np.mean([(s[u][pos[u]][:, None] > s[u][~pos[u]][None, :]).mean()
                   for u in range(data.n_users) if pos[u].any() and (~pos[u]).any()])
    assert auc > 0.75


def test_fold_in_improves_the_row_likelihood_and_is_deterministic():
    data = _data()
    m = LMF(factors=6, iterations=10, neg_prop=5, random_state=0).fit(data)
    rows = data.csr[[2, 17, 30]]
    p, b = m.fold_in(rows)
    again = m.fold_in(rows)
    np.testing.assert_array_equal(p, again[0])
    np.testing.assert_array_equal(b, again[1])
    alone = m.fold_in(data.csr[[17]])
    np.testing.assert_array_equal(alone[0][0], p[1])
    Y = np.hstack([m.item_factors_, np.ones((data.n_items, 1)), m.item_bias_[:, None]])
    everything = np.arange(data.n_items, dtype=np.int64)
    for r in range(3):
        sl = slice(rows.indptr[r], rows.indptr[r + 1])
        pos, conf = rows.indices[sl].astype(np.int64), rows.data[sl]
        folded = np.concatenate([p[r], [b[r], 1.0]])
        start = np.zeros(8)
        start[-1] = 1.0
        assert lmf_log_likelihood(folded, Y, pos, conf, everything, 0.6, 6) > \
            lmf_log_likelihood(start, Y, pos, conf, everything, 0.6, 6) + 1.0


def test_partial_fit_grows_the_maps_and_recommends_new_items():
    data = _data()
    m = LMF(factors=6, iterations=10, neg_prop=5, random_state=0, binarize=True).fit(data)
    raw_users = list(data.user_map.raw[:50]) + [5001, 5002]
    new = Interactions.from_arrays(np.array(raw_users), np.array([777] * len(raw_users)))
    m.partial_fit(new, epochs=10)
    assert len(m.user_map_) == data.n_users + 2 and m.n_items_ == data.n_items + 1
    assert m.item_factors_.shape == (data.n_items + 1, 6) and m.user_adagrad_.shape[0] == 102
    hit = int(m.item_map_.to_inner([777])[0])
    rec = m.recommend(data.user_map.raw[50:], k=10)
    assert (rec.inner == hit).any(axis=1).mean() > 0.3  # chance: 10 of ~45 unseen items
    assert m.recommend([5001], k=5).fallback[0] is None


def test_bad_hyperparameters_are_named():
    with pytest.raises(ValueError, match="neg_prop"):
        LMF(neg_prop=-1).fit(_data())
    with pytest.raises(ValueError, match="alpha"):
        LMF(alpha=0.0).fit(_data())
    with pytest.raises(ValueError, match="max_negatives"):
        LMF(max_negatives=2.5).fit(_data())
