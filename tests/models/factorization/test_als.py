"""ALS / WRMF (Hu, Koren & Volinsky 2008): solvers against dense linear algebra, the objective,
the feedback options, exact fold-in and incremental updates, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import IdMap, Interactions
from recforge.models import load_model
from recforge.models.base import FOLD_IN, INCREMENTAL, RATING
from recforge.models.factorization import ALS
from recforge.models.factorization.als import (
    _kernel_csr,
    _regularised_gram,
    _solve_rows,
)
from recforge.models.feedback import bm25_weight, confidence, tfidf_weight

from ..contract import contract_data


def _counts(seed: int = 3, n_users: int = 12, n_items: int = 10) -> Interactions:
    """Play counts (1-9) on about half of a 12 x 10 matrix; every user and item has entries."""
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 10, (n_users, n_items)) * (rng.random((n_users, n_items)) < 0.5)
    dense[np.arange(n_users), np.arange(n_users) % n_items] = 3
    dense[0, :] = np.maximum(dense[0, :], 1)
    u, i = np.nonzero(dense)
    return Interactions(u, i, dense[u, i].astype(np.float32),
                        user_map=IdMap(np.array([f"u{j}" for j in range(n_users)])),
                        item_map=IdMap(np.arange(500, 500 + n_items)), kind="implicit")


def _dense_user_solution(c_dense: np.ndarray, p_dense: np.ndarray, y: np.ndarray,
                         reg: float) -> np.ndarray:
    """The paper's eq. 4, transcribed literally: x_u = (Y^T C^u Y + lambda I)^-1 Y^T C^u p(u),
    with C^u the dense diagonal over every item."""
    k = y.shape[1]
    out = np.zeros((c_dense.shape[0], k))
    for u in range(c_dense.shape[0]):
        cu = np.diag(c_dense[u])
        out[u] = np.linalg.inv(y.T @ cu @ y + reg * np.eye(k)) @ (y.T @ cu @ p_dense[u])
    return out


def _normal_equations(model: ALS, conf_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = model.item_factors_.astype(np.float64)
    c = np.where(conf_row > 0, conf_row, 1.0)
    p = (conf_row > 0).astype(np.float64)
    a = y.T @ (c[:, None] * y) + model.regularization * np.eye(y.shape[1])
    return a, y.T @ (c * p)


def test_cg_run_to_convergence_equals_numpy_solve():
    data = _counts()
    model = ALS(factors=5, iterations=5, regularization=0.1, alpha=0.5, random_state=0).fit(data)
    conf = model.confidence_matrix()
    dense_conf = conf.toarray()
    y = model.item_factors_.astype(np.float64)
    x = np.random.default_rng(1).random((data.n_users, 5)) * 0.01
    indptr, indices, values = _kernel_csr(conf, np.float64)
    a0 = _regularised_gram(y, model.regularization, np.float64)
    rows = np.arange(data.n_users, dtype=np.int64)
    cg = np.zeros(data.n_users, dtype=np.bool_)
    _solve_rows(indptr, indices, values, x, y, a0, rows, cg, 25, 2)
    for u in range(data.n_users):
        a, b = _normal_equations(model, dense_conf[u])
        np.testing.assert_allclose(x[u], np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    # warm-started from the previous factors, three steps cut the error well below one step's
    exact = np.array([np.linalg.solve(*_normal_equations(model, dense_conf[u]))
                      for u in range(data.n_users)])
    errors = []
    for steps in (1, 3):
        xs = model.user_factors_.astype(np.float64).copy()
        _solve_rows(indptr, indices, values, xs, y, a0, rows, cg, steps, 2)
        errors.append(np.abs(xs - exact).max())
    start_error = np.abs(model.user_factors_ - exact).max()
    assert errors[1] < 0.2 * start_error and errors[1] < 0.3 * errors[0]


def test_cholesky_half_step_equals_the_paper_s_update_transcribed():
    data = _counts()
    model = ALS(factors=4, iterations=3, regularization=0.3, alpha=2.0, solver="cholesky",
                random_state=0).fit(data)
    r = data.csr.toarray().astype(np.float64)
    c_dense = 1.0 + 2.0 * r
    p_dense = (r > 0).astype(np.float64)
    y = model.item_factors_.astype(np.float64)
    expected = _dense_user_solution(c_dense, p_dense, y, 0.3)
    conf = model.confidence_matrix()
    model._half_step(_kernel_csr(conf, np.float32), model.user_factors_, model.item_factors_,
                     np.arange(data.n_users, dtype=np.int64))
    np.testing.assert_allclose(model.user_factors_, expected, rtol=1e-4, atol=1e-6)
    # the item half-step is the same update on the transpose
    x = model.user_factors_.astype(np.float64)
    expected_items = _dense_user_solution(c_dense.T, p_dense.T, x, 0.3)
    model._half_step(_kernel_csr(conf.T.tocsr(), np.float32), model.item_factors_,
                     model.user_factors_, np.arange(data.n_items, dtype=np.int64))
    np.testing.assert_allclose(model.item_factors_, expected_items, rtol=1e-4, atol=1e-6)


def test_objective_matches_a_dense_evaluation_and_cholesky_decreases_it():
    data = _counts()
    model = ALS(factors=4, iterations=0, regularization=0.05, alpha=1.0, solver="cholesky",
                random_state=2).fit(data)
    r = data.csr.toarray().astype(np.float64)
    c_dense, p_dense = 1.0 + r, (r > 0).astype(np.float64)
    x, y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    dense = np.sum(c_dense * (p_dense - x @ y.T) ** 2) + 0.05 * (np.sum(x * x) + np.sum(y * y))
    assert model.training_loss() == pytest.approx(dense, rel=1e-9)

    conf = model.confidence_matrix()
    users = _kernel_csr(conf, np.float32)
    items = _kernel_csr(conf.T.tocsr(), np.float32)
    losses = [model.training_loss()]
    for _ in range(6):
        model._half_step(users, model.user_factors_, model.item_factors_,
                         np.arange(data.n_users, dtype=np.int64))
        losses.append(model.training_loss())
        model._half_step(items, model.item_factors_, model.user_factors_,
                         np.arange(data.n_items, dtype=np.int64))
        losses.append(model.training_loss())
    steps = np.diff(losses)
    assert np.all(steps <= 1e-6 * losses[0]), steps
    assert losses[-1] < 0.5 * losses[0]


def test_cg_training_lowers_the_objective_like_cholesky():
    data = _counts()
    cg = ALS(factors=4, iterations=10, regularization=0.05, random_state=0).fit(data)
    exact = ALS(factors=4, iterations=10, regularization=0.05, solver="cholesky",
                random_state=0).fit(data)
    start = ALS(factors=4, iterations=0, regularization=0.05, random_state=0).fit(data)
    assert cg.training_loss() < 0.5 * start.training_loss()
    assert cg.training_loss() == pytest.approx(exact.training_loss(), rel=0.05)
    assert cg.iteration_seconds_.shape == (10,) and np.all(cg.iteration_seconds_ > 0)


def test_weighting_and_scaling_change_the_confidence_as_stated():
    data = _counts()
    r = data.csr.astype(np.float64)
    plain = ALS(factors=3, iterations=1, alpha=2.0, random_state=0).fit(data)
    np.testing.assert_allclose(plain.confidence_matrix().toarray(),
                               np.where(r.toarray() > 0, 1.0 + 2.0 * r.toarray(), 0.0))
    bm25 = ALS(factors=3, iterations=1, alpha=2.0, weighting="bm25", random_state=0).fit(data)
    np.testing.assert_allclose(bm25.confidence_matrix().toarray(),
                               confidence(bm25_weight(r), 2.0).toarray(), rtol=1e-12)
    tfidf = ALS(factors=3, iterations=1, alpha=2.0, weighting="tfidf", random_state=0).fit(data)
    np.testing.assert_allclose(tfidf.confidence_matrix().toarray(),
                               confidence(tfidf_weight(r), 2.0).toarray(), rtol=1e-12)
    log = ALS(factors=3, iterations=1, alpha=2.0, scaling="log", random_state=0).fit(data)
    np.testing.assert_allclose(log.confidence_matrix().toarray(),
                               np.where(r.toarray() > 0, 1.0 + 2.0 * np.log1p(r.toarray()), 0.0))
    # a different input gives different factors
    assert not np.allclose(bm25.item_factors_, plain.item_factors_)
    assert not np.allclose(log.item_factors_, plain.item_factors_)


def test_threshold_and_binarize_on_ratings():
    data = contract_data()
    model = ALS(factors=3, iterations=2, threshold=4, binarize=True, random_state=0).fit(data)
    kept = data.values >= 4
    assert model.feedback_dropped_ == int((~kept).sum())
    assert model.feedback_.nnz == int(kept.sum()) and np.all(model.feedback_.data == 1.0)
    assert model.get_params()["threshold"] == 4
    assert not model.has(RATING) and model.has(FOLD_IN) and model.has(INCREMENTAL)


@pytest.mark.parametrize("param, value", [("solver", "lu"), ("weighting", "bm15"),
                                          ("scaling", "sqrt"), ("factors", 0),
                                          ("alpha", -1.0), ("cg_steps", 0),
                                          ("regularization", float("nan")), ("binarize", "yes")])
def test_bad_hyperparameters_name_the_parameter(param, value):
    with pytest.raises(ValueError, match=param):
        ALS(**{param: value}).fit(_counts())


def test_fold_in_is_the_exact_least_squares_solve():
    data = _counts()
    model = ALS(factors=4, iterations=4, regularization=0.2, alpha=3.0, weighting="bm25",
                random_state=0).fit(data)
    history = sp.csr_matrix(np.array([[0, 2, 0, 0, 5, 0, 1, 0, 0, 0],
                                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                                      [4, 0, 0, 1, 0, 0, 0, 0, 0, 7]], dtype=np.float64))
    factors, biases = model.fold_in(history)
    conf = model.confidence_matrix(history).toarray()
    for row in (0, 2):
        a, b = _normal_equations(model, conf[row])
        np.testing.assert_allclose(factors[row], np.linalg.solve(a, b), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(factors[1], 0.0)
    np.testing.assert_array_equal(biases, 0.0)


def test_folding_a_trained_user_s_history_gives_one_more_exact_half_step():
    data = _counts()
    model = ALS(factors=4, iterations=5, regularization=0.1, alpha=2.0, weighting="bm25",
                random_state=0).fit(data)
    folded, _ = model.fold_in(data.csr)
    step = model.user_factors_.copy()
    model._half_step(_kernel_csr(model.confidence_matrix(), np.float32), step,
                     model.item_factors_, np.arange(data.n_users, dtype=np.int64), exact=True)
    np.testing.assert_allclose(folded, step, rtol=1e-5, atol=1e-7)
    # and the anonymous query ranks with those factors
    raw = data.item_map.raw
    csr = data.csr
    hist = [dict(zip(raw[csr.indices[csr.indptr[u]:csr.indptr[u + 1]]].tolist(),
                     csr.data[csr.indptr[u]:csr.indptr[u + 1]].tolist(), strict=True))
            for u in (1, 2, 3)]
    anon = model.recommend(history=hist, k=3)
    assert all(f is None for f in anon.fallback) and np.all(anon.inner >= 0)
    expected = folded[1:4] @ model.item_factors_.T.astype(np.float64)
    for j in range(3):
        np.testing.assert_allclose(anon.scores[j], expected[j, anon.inner[j]], rtol=1e-5)


def _raw(data: Interactions, mask: np.ndarray) -> Interactions:
    """The interactions under ``mask`` with id maps holding only the ids they use."""
    u, i = data.users[mask], data.items[mask]
    uu, ui = np.unique(u, return_inverse=True)
    iu, ii = np.unique(i, return_inverse=True)
    return Interactions(ui, ii, data.values[mask], user_map=IdMap(data.user_map.raw[uu]),
                        item_map=IdMap(data.item_map.raw[iu]), kind="implicit")


def test_partial_fit_adds_users_and_items_and_recommends_for_them(tmp_path):
    data = _counts(seed=5, n_users=16, n_items=12)
    old_mask = (data.users < 13) & (data.items < 10)  # 3 new users, 2 new items
    old = _raw(data, old_mask)
    model = ALS(factors=4, iterations=6, regularization=0.1, solver="cholesky",
                partial_iterations=0, random_state=0).fit(old)
    before_users = model.user_factors_.copy()
    # first a new user touching old items only: solved exactly against the items of the time
    first = (data.users == 15) & (data.items < 10)
    row = np.zeros((1, old.n_items))
    row[0, old.item_map.to_inner(data.item_map.raw[data.items[first]])] = data.values[first]
    expected_new_user, _ = model.fold_in(sp.csr_matrix(row))
    model.partial_fit(_raw(data, first))
    assert model.n_users_ == old.n_users + 1 and model.n_items_ == old.n_items
    np.testing.assert_allclose(model.user_factors_[-1], expected_new_user[0], rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_array_equal(model.user_factors_[:old.n_users], before_users)

    # then everything else: new users and new items
    rest = ~old_mask & ~first
    model.partial_fit(_raw(data, rest))
    assert model.n_users_ == data.n_users and model.n_items_ == data.n_items
    assert set(model.item_map_.raw.tolist()) == set(data.item_map.raw.tolist())
    assert model.user_factors_.shape == (data.n_users, 4)
    assert model.item_factors_.shape == (data.n_items, 4)
    assert model.item_popularity_.shape == (data.n_items,)
    assert model.feedback_.nnz == data.nnz
    new_users = data.user_map.raw[13:]
    rec = model.recommend(new_users, k=4)
    assert all(f is None for f in rec.fallback)
    for j in range(new_users.size):
        own = set(data.item_map.raw[data.items[data.users == 13 + j]].tolist())
        assert not own & set(rec.items[j].tolist()), "a new user's own items came back"
    # the touched users (new ones included) were solved last, exactly, against every item
    touched = model.user_map_.to_inner(np.unique(data.user_map.raw[data.users[rest]]))
    user_conf = model.confidence_matrix()[touched]
    np.testing.assert_allclose(model.user_factors_[touched],
                               model.solve_rows(user_conf, model.item_factors_), rtol=1e-4,
                               atol=1e-6)
    assert np.all(np.abs(model.item_factors_[model.item_map_.to_inner(data.item_map.raw[10:])])
                  .sum(axis=1) > 0.1)
    # saved and loaded, the model keeps absorbing interactions
    loaded = load_model(model.save(tmp_path / "als"))
    more = Interactions([0], [0], [2.0], user_map=IdMap(np.array(["u99"])),
                        item_map=IdMap(np.array([500])), kind="implicit")
    loaded.partial_fit(more)
    assert loaded.n_users_ == data.n_users + 1
    assert loaded.recommend(["u99"], k=3).fallback[0] is None


def test_partial_fit_sweeps_approach_a_refit():
    data = _counts(seed=8, n_users=30, n_items=14)
    old_mask = (data.users < 27) & (data.items < 12)
    full = ALS(factors=3, iterations=15, regularization=0.1, solver="cholesky",
               random_state=0).fit(data)
    once = ALS(factors=3, iterations=15, regularization=0.1, solver="cholesky",
               partial_iterations=0, random_state=0).fit(_raw(data, old_mask))
    swept = ALS(factors=3, iterations=15, regularization=0.1, solver="cholesky",
                partial_iterations=4, random_state=0).fit(_raw(data, old_mask))
    once.partial_fit(_raw(data, ~old_mask))
    swept.partial_fit(_raw(data, ~old_mask))
    # on the grown data the sweeps lower the objective towards the refit's
    assert swept.training_loss() <= once.training_loss()
    assert swept.training_loss() < 1.1 * full.training_loss()


def test_partial_fit_solves_new_rows_exactly_and_steps_known_rows_once():
    """Items first (new ones exactly, against the users of the time, new users still zero),
    then users (new ones exactly against every item); the touched known rows take one warm
    conjugate-gradient step, the untouched keep their factors."""
    data = _counts(seed=11, n_users=20, n_items=14)
    old_mask = (data.users < 17) & (data.items < 12)  # 3 new users, 2 new items
    model = ALS(factors=4, iterations=8, regularization=0.1, alpha=2.0, random_state=0,
                num_threads=1).fit(_raw(data, old_mask))
    n_old_u, n_old_i = model.n_users_, model.n_items_
    x0, y0 = model.user_factors_.copy(), model.item_factors_.copy()
    rest = _raw(data, ~old_mask)
    model.partial_fit(rest)
    assert (model.n_users_, model.n_items_) == (data.n_users, data.n_items)
    assert model.feedback_.nnz == data.nnz
    conf = model.confidence_matrix()
    conf_t = conf.T.tocsr()
    # new items: the exact solve against the known users' factors (the new users still zero)
    x_then = np.zeros_like(model.user_factors_)
    x_then[:n_old_u] = x0
    touched_users = np.unique(model.user_map_.to_inner(rest.user_map.raw[rest.users]))
    untouched_users = np.setdiff1d(np.arange(n_old_u), touched_users)
    touched_items = np.unique(model.item_map_.to_inner(rest.item_map.raw[rest.items]))
    known = touched_items[touched_items < n_old_i].astype(np.int64)
    untouched_items = np.setdiff1d(np.arange(n_old_i), touched_items)
    assert untouched_users.size and untouched_items.size and known.size
    np.testing.assert_array_equal(model.item_factors_[untouched_items], y0[untouched_items])
    new_items = np.arange(n_old_i, data.n_items)
    np.testing.assert_allclose(model.item_factors_[new_items],
                               model.solve_rows(conf_t[new_items], x_then), rtol=1e-4, atol=1e-6)
    # known items: one CG step from their factors, against the same users
    y_step = np.vstack([y0, np.zeros((2, 4), np.float32)])
    indptr, indices, values = _kernel_csr(conf_t, np.float32)
    _solve_rows(indptr, indices, values, y_step, x_then,
                _regularised_gram(x_then, 0.1, np.float64), known,
                np.zeros(known.size, np.bool_), 1, 2)
    np.testing.assert_allclose(model.item_factors_[known], y_step[known], rtol=1e-4, atol=1e-6)
    # new users: the exact solve against every item after the item update
    new_users = np.arange(n_old_u, data.n_users)
    np.testing.assert_allclose(model.user_factors_[new_users],
                               model.solve_rows(conf[new_users], model.item_factors_),
                               rtol=1e-4, atol=1e-6)
    # users without new interactions keep their factors; touched known users moved
    np.testing.assert_array_equal(model.user_factors_[untouched_users], x0[untouched_users])
    old_touched = touched_users[touched_users < n_old_u]
    assert np.all(np.abs(model.user_factors_[old_touched] - x0[old_touched]).sum(axis=1) > 0)
    # and the new users are recommended something other than what they have
    rec = model.recommend(data.user_map.raw[17:], k=3)
    assert all(f is None for f in rec.fallback)
    for j, u in enumerate(range(17, 20)):
        assert not set(data.item_map.raw[data.items[data.users == u]]) & set(rec.items[j])


def test_partial_share_leaves_known_rows_with_little_new_data_alone():
    data = _counts(seed=4, n_users=16, n_items=10)
    # user u0 gets one new interaction (a small share of its row), u15 is new
    row0 = data.csr[0].indices
    extra = (data.users == 0) & (data.items == row0[-1])
    new_user = data.users == 15
    old_mask = ~extra & ~new_user
    kw = dict(factors=3, iterations=6, regularization=0.1, random_state=0, num_threads=1)
    shares = {}
    for share in (0.0, 0.5):
        model = ALS(partial_share=share, **kw).fit(_raw(data, old_mask))
        x0 = model.user_factors_.copy()
        model.partial_fit(_raw(data, extra | new_user))
        shares[share] = model.user_factors_
        assert np.abs(model.user_factors_[-1]).sum() > 0  # the new user is always solved
    u0 = 0
    assert data.csr[0].nnz >= 3  # 1 new of >= 3: a share below 0.5
    np.testing.assert_array_equal(shares[0.5][u0], x0[u0])
    assert not np.array_equal(shares[0.0][u0], x0[u0])


def test_partial_fit_runs_only_kernels_a_fit_compiled():
    """A fit on tiny data compiles every kernel an update runs (the same signatures), so a
    partial_fit right after a fit compiles nothing."""
    data = _counts()
    model = ALS(factors=3, iterations=1, random_state=0, num_threads=1).fit(_raw(data, data.users < 10))
    signatures = len(_solve_rows.signatures)
    model.partial_fit(_raw(data, data.users >= 10))
    assert len(_solve_rows.signatures) == signatures


@pytest.mark.parametrize("param, value", [("partial_share", 1.5), ("partial_share", "a"),
                                          ("partial_cg_steps", 0)])
def test_bad_partial_parameters_are_named(param, value):
    with pytest.raises(ValueError, match=param):
        ALS(**{param: value}).fit(_counts())


def test_balanced_order_splits_work_evenly_and_is_a_permutation():
    from recforge.models.factorization.als import balanced_order

    nnz = np.array([100, 90, 80, 70, 5, 4, 3, 2, 1, 1])  # popular rows first, as MovieLens
    order = balanced_order(nnz, 2)
    assert sorted(order.tolist()) == list(range(nnz.size))
    halves = nnz[order[:5]].sum(), nnz[order[5:]].sum()
    assert abs(halves[0] - halves[1]) <= 12  # contiguous halves: 100+... vs 90+... (not 355 vs 11)
    np.testing.assert_array_equal(balanced_order(nnz, 1), np.arange(nnz.size))
