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
    _cg_half_step,
    _kernel_csr,
    _regularised_gram,
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
    _cg_half_step(indptr, indices, values, x, y, a0, np.arange(data.n_users, dtype=np.int64), 25)
    for u in range(data.n_users):
        a, b = _normal_equations(model, dense_conf[u])
        np.testing.assert_allclose(x[u], np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)
    # warm-started from the previous factors, three steps cut the error well below one step's
    exact = np.array([np.linalg.solve(*_normal_equations(model, dense_conf[u]))
                      for u in range(data.n_users)])
    errors = []
    for steps in (1, 3):
        xs = model.user_factors_.astype(np.float64).copy()
        _cg_half_step(indptr, indices, values, xs, y, a0, np.arange(data.n_users, dtype=np.int64),
                      steps)
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
    # the touched items (new ones included) were solved last, exactly, against all their users
    touched = model.item_map_.to_inner(np.unique(data.item_map.raw[data.items[rest]]))
    item_conf = model.confidence_matrix().T.tocsr()[touched]
    np.testing.assert_allclose(model.item_factors_[touched],
                               model.solve_rows(item_conf, model.user_factors_), rtol=1e-4,
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
