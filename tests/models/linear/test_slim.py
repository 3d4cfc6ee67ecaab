"""SLIM's coordinate descent against scikit-learn's ElasticNet, and the model around it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet

from recforge.models.linear import SLIM
from recforge.models.linear.slim import slim_weights
from tests.models.contract import check_fold_in_exact, contract_data


def _feedback(seed=0, shape=(40, 15), density=0.3, binary=True):
    rng = np.random.default_rng(seed)
    x = (rng.random(shape) < density).astype(np.float64)
    if not binary:
        x *= rng.integers(1, 6, shape)
    return x


@pytest.mark.reference
@pytest.mark.parametrize("alpha, l1_ratio, binary", [(1e-3, 0.3, True), (1e-2, 0.9, True),
                                                     (5e-3, 0.05, True), (2e-3, 0.5, False)])
def test_each_column_solves_the_elastic_net_of_scikit_learn(alpha, l1_ratio, binary):
    x = _feedback(binary=binary)
    w = slim_weights(sp.csr_matrix(x), alpha, l1_ratio, max_iter=10_000, tol=1e-12).toarray()
    for j in range(x.shape[1]):
        others = x.copy()
        others[:, j] = 0.0  # w_jj = 0
        ref = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, positive=True, fit_intercept=False,
                         tol=1e-14, max_iter=100_000).fit(others, x[:, j]).coef_
        np.testing.assert_allclose(w[:, j], ref, atol=1e-9, err_msg=f"column {j}")
    assert w.min() >= 0 and np.all(np.diag(w) == 0)
    assert 0 < (w > 0).mean() < 1  # sparse, not empty


def test_topk_keeps_the_largest_weights_of_each_column():
    x = sp.csr_matrix(_feedback(seed=1))
    full = slim_weights(x, 1e-3, 0.1, max_iter=500, tol=1e-10).toarray()
    top = slim_weights(x, 1e-3, 0.1, max_iter=500, tol=1e-10, topk=3).toarray()
    assert ((top > 0).sum(axis=0) <= 3).all()
    for j in range(x.shape[1]):
        keep = np.argsort(-full[:, j], kind="stable")[:3]
        np.testing.assert_array_equal(top[keep, j], full[keep, j])


def test_scores_are_the_history_times_w_and_threads_do_not_change_them():
    data = contract_data()
    one = SLIM(alpha=0.01, l1_ratio=0.2, num_threads=1).fit(data)
    two = SLIM(alpha=0.01, l1_ratio=0.2, num_threads=2).fit(data)
    assert (one.weights_ != two.weights_).nnz == 0
    x = (data.csr.toarray() > 0).astype(np.float64)
    users = np.arange(data.n_users - 1, dtype=np.int32)
    np.testing.assert_allclose(one.score_inner(users, history=data.csr[users]),
                               x[users] @ one.weights_.toarray(), rtol=1e-5, atol=1e-6)
    check_fold_in_exact(one, data)


@pytest.mark.parametrize("params, field", [({"alpha": 0}, "alpha"), ({"l1_ratio": 1.5}, "l1_ratio"),
                                           ({"max_iter": 0}, "max_iter"), ({"topk": 2.5}, "topk"),
                                           ({"num_threads": 0}, "num_threads")])
def test_bad_hyperparameters_are_named(params, field):
    with pytest.raises(ValueError, match=f"SLIM: {field}"):
        SLIM(**params).fit(contract_data())


def _split_new(seed=2):
    """Tiny feedback in raw ids; the last 5 users and the last 3 items arrive later."""
    from recforge.data import Interactions

    x = _feedback(seed=seed, shape=(40, 15), density=0.35)
    u, i = np.nonzero(x)
    late = (u >= 35) | (i >= 12)
    part = lambda m: Interactions.from_arrays(u[m] + 100, i[m] + 500, np.ones(m.sum()),  # noqa: E731
                                              kind="implicit")
    return part(~late), part(late), part(np.ones(u.size, bool))


@pytest.mark.parametrize("resolve", ["new", "touched"])
def test_partial_fit_grows_and_solves_the_new_columns_as_a_refit(resolve):
    old, new, full = _split_new()
    kw = dict(alpha=2e-3, l1_ratio=0.3, max_iter=10_000, tol=1e-12, num_threads=1)
    model = SLIM(**kw).fit(old)
    before = model.weights_.toarray()
    model.partial_fit(new, resolve=resolve)
    refit = SLIM(**kw).fit(full)
    assert model.n_users_ == 40 and model.n_items_ == 15
    order = model.item_map_.to_inner(refit.item_map_.raw)  # refit's items in the model's order
    want = refit.weights_.toarray()
    got = model.weights_.toarray()[np.ix_(order, order)]
    new_cols = model.item_map_.to_inner(np.arange(512, 515))
    new_in_refit = refit.item_map_.to_inner(np.arange(512, 515))
    # a column's problem depends on X and the penalties only: the new items' columns are the
    # refit's to the solver's tolerance (strictly convex, l1_ratio < 1)
    np.testing.assert_allclose(model.weights_.toarray()[:, new_cols][order],
                               want[:, new_in_refit], atol=1e-6)
    if resolve == "new":  # the old columns are kept
        np.testing.assert_array_equal(model.weights_.toarray()[:12, :12], before.astype(np.float32))
    else:  # every old column is touched here: all equal the refit's
        assert model.resolved_columns_ == 15
        np.testing.assert_allclose(got, want, atol=1e-6)
    hist = np.ones((1, 15))
    hist[0, new_cols] = 0.0  # old items only: the new items are recommended from them
    assert model.score_inner(np.array([-1]), history=hist)[0, new_cols].min() > 0
    with pytest.raises(ValueError, match="resolve"):
        model.partial_fit(new, resolve="all")
