"""RBM: the CD-k step against a slow NumPy transcription of Salakhutdinov et al. (2007) with the
same random draws, the momentum update, prediction (eq. 3), determinism and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recforge.models.neural_cf._ratings import RatingRows
from recforge.models.neural_cf.rbm import (
    RBM,
    cd_gradients,
    cd_gradients_dense,
    cd_gradients_value,
    momentum_step,
)
from tests.models.contract import contract_data


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _cd_slow(W, bv, bh, users, hu, vu):
    """CD-T for each user separately, one rated item at a time. ``users``: list of
    [(item, level), ...]; ``hu[t][u]`` (F,) and ``vu[t][e]`` (one per rated entry, in order)."""
    n, K, F = W.shape
    dW, dbv, dbh = np.zeros_like(W), np.zeros_like(bv), np.zeros_like(bh)
    e0 = 0
    recon_all = []
    for u, rated in enumerate(users):
        def hidden(states, rated=rated):  # per rated item a (K,) vector of visible states
            return _sigmoid(bh + sum(states[j] @ W[i] for j, (i, _) in enumerate(rated)))

        data = [np.eye(K)[lvl] for _, lvl in rated]
        ph0 = hidden(data)
        ph = ph0
        T = len(hu)
        for t in range(T):
            h = (hu[t][u] < ph).astype(float)
            probs = [_softmax(bv[i] + W[i] @ h) for i, _ in rated]
            if t < T - 1:
                states = []
                for j, p in enumerate(probs):
                    level = min(int(np.searchsorted(np.cumsum(p), vu[t][e0 + j], side="right")), K - 1)
                    states.append(np.eye(K)[level])
                ph = hidden(states)
        phT = hidden(probs)
        for j, (i, lvl) in enumerate(rated):
            dW[i, lvl] += ph0
            dW[i] -= np.outer(probs[j], phT)
            dbv[i] += data[j] - probs[j]
        dbh += ph0 - phT
        recon_all += probs
        e0 += len(rated)
    B = len(users)
    return dW / B, dbv / B, dbh / B, np.array(recon_all)


@pytest.mark.parametrize("T", [1, 2, 3])
def test_cd_step_equals_the_slow_transcription(T):
    rng = np.random.default_rng(0)
    n, K, F = 5, 3, 4
    W = rng.normal(0, 0.5, (n, K, F))
    bv = rng.normal(0, 0.3, (n, K))
    bh = rng.normal(0, 0.3, F)
    users = [[(0, 2), (3, 0), (4, 1)], [(1, 1)], [(0, 0), (1, 2), (2, 2), (4, 0)]]
    rows = np.repeat(np.arange(3), [len(r) for r in users])
    items = np.array([i for r in users for i, _ in r])
    levels = np.array([lvl for r in users for _, lvl in r])
    hu = [rng.random((3, F)) for _ in range(T)]
    vu = [rng.random(items.size) for _ in range(T - 1)]
    batch = RatingRows(torch.from_numpy(rows), torch.from_numpy(items), torch.from_numpy(levels), 3)
    t = [torch.from_numpy(x) for x in (W, bv, bh)]
    got = cd_gradients(*t, batch, [torch.from_numpy(x) for x in hu], [torch.from_numpy(x) for x in vu])
    want = _cd_slow(W, bv, bh, users, hu, vu)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)
    # unrated items get no gradient at all (no visible unit)
    assert np.all(got[0].numpy()[[i for i in range(n) if i not in items]] == 0)


def test_cd_gradients_need_matching_draws():
    batch = RatingRows(torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                       torch.zeros(1, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="T - 1 visible"):
        cd_gradients(torch.zeros(1, 2, 3), torch.zeros(1, 2), torch.zeros(3), batch,
                     [torch.rand(1, 3)] * 2, [])


def test_momentum_step_is_the_paper_update():
    theta = torch.tensor([1.0, -2.0])
    vel = torch.tensor([0.5, 0.5])
    momentum_step(theta, vel, torch.tensor([0.2, 0.4]), lr=0.1, momentum=0.9, weight_decay=0.01)
    want_vel = 0.9 * np.array([0.5, 0.5]) + 0.1 * (np.array([0.2, 0.4]) - 0.01 * np.array([1.0, -2.0]))
    np.testing.assert_allclose(vel.numpy(), want_vel, rtol=1e-6)
    np.testing.assert_allclose(theta.numpy(), np.array([1.0, -2.0]) + want_vel, rtol=1e-6)


def test_prediction_is_the_expectation_of_eq_3():
    data = contract_data()
    model = RBM(n_hidden=5, epochs=2, batch_size=3, random_state=0).fit(data)
    W = model.params_.W.double().numpy()
    bv, bh = model.params_.bv.double().numpy(), model.params_.bh.double().numpy()
    u = 2
    sl = slice(model.rows_indptr_[u], model.rows_indptr_[u + 1])
    p_hat = _sigmoid(bh + sum(W[i, lvl] for i, lvl in zip(model.rows_items_[sl], model.rows_levels_[sl],
                                                          strict=True)))
    want = np.array([_softmax(bv[i] + W[i] @ p_hat) @ model.levels_ for i in range(data.n_items)])
    got = model.predict(np.repeat(data.user_map.raw[u], data.n_items), data.item_map.raw, clip=False)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    scores = model.score_inner(np.array([u], np.int32), history=data.csr[[u]])
    np.testing.assert_allclose(scores[0], want, rtol=1e-5)


def test_training_lowers_the_reconstruction_error_and_is_seeded():
    data = contract_data()
    a = RBM(n_hidden=8, epochs=15, batch_size=4, learning_rate=0.2, random_state=3).fit(data)
    b = RBM(n_hidden=8, epochs=15, batch_size=4, learning_rate=0.2, random_state=3).fit(data)
    c = RBM(n_hidden=8, epochs=15, batch_size=4, learning_rate=0.2, random_state=4).fit(data)
    loss = a.history_["train_loss"]
    assert loss[-1] < loss[0]
    assert torch.equal(a.params_.W, b.params_.W) and not torch.equal(a.params_.W, c.params_.W)
    assert a.history_["train_loss"] == b.history_["train_loss"]


def test_cd_k_schedule_and_validation():
    data = contract_data()
    model = RBM(n_hidden=4, epochs=5, cd_k=1, cd_k_final=3, patience=10, random_state=0)
    model.fit(data, validation=data)
    assert model.history_["cd_k"] == [1, 2, 2, 2, 3]
    assert len(model.history_["val_rmse"]) == 5


@pytest.mark.parametrize("params, match", [
    ({"n_hidden": 0}, "n_hidden"), ({"momentum": 1.0}, "momentum"),
    ({"learning_rate": -1.0}, "learning_rate"), ({"ranking_score": "best"}, "ranking_score"),
    ({"cd_k": 0}, "cd_k")])
def test_bad_hyperparameters_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        RBM(**params).fit(contract_data())


def test_one_rating_level_is_refused():
    with pytest.raises(ValueError, match="at least two rating levels"):
        RBM().fit(contract_data("implicit"))


@pytest.mark.parametrize("T", [1, 3])
def test_dense_cd_step_is_the_sparse_one_over_every_item(T):
    """unrated="level": every (user, item) is a visible unit whose state 0 is "unrated"."""
    rng = np.random.default_rng(1)
    B, n, K, F = 3, 4, 3, 5
    W = rng.normal(0, 0.5, (n, K, F))
    bv, bh = rng.normal(0, 0.3, (n, K)), rng.normal(0, 0.3, F)
    states = rng.integers(0, K, (B, n))
    hu = [rng.random((B, F)) for _ in range(T)]
    vu = [rng.random((B, n)) for _ in range(T - 1)]
    t = [torch.from_numpy(x) for x in (W, bv, bh)]
    dense = cd_gradients_dense(*t, torch.from_numpy(states), [torch.from_numpy(x) for x in hu],
                               [torch.from_numpy(x) for x in vu])
    rows, items = np.divmod(np.arange(B * n), n)
    batch = RatingRows(torch.from_numpy(rows), torch.from_numpy(items),
                       torch.from_numpy(states.ravel()), B)
    sparse = cd_gradients(*t, batch, [torch.from_numpy(x) for x in hu],
                          [torch.from_numpy(x.ravel()) for x in vu])
    for a, b in zip(dense[:3], sparse[:3], strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dense[3].numpy().reshape(-1, K), sparse[3].numpy(), rtol=1e-10)


@pytest.mark.parametrize("score", ["rated", "joint", "expected"])
def test_the_unrated_level_variant_runs_the_contract(score, tmp_path):
    from tests.models.contract import check_model_contract

    model = check_model_contract(lambda: RBM(n_hidden=5, epochs=3, batch_size=4, unrated="level",
                                             ranking_score=score, random_state=0),
                                 contract_data(), tmp_path=tmp_path)
    assert model.params_.W.shape[1] == 6  # five levels and "unrated"


def test_presence_scores_need_the_unrated_level():
    with pytest.raises(ValueError, match="ranking_score"):
        RBM(ranking_score="rated").fit(contract_data())
    with pytest.raises(ValueError, match="unrated"):
        RBM(unrated="zero").fit(contract_data())


# ---------------------------------------------------------------------- value units
def _cd_value_slow(W, bv, bh, values, units, state_values, hu, vu, keep):
    """CD-T for value units, one user and one unit at a time (``values`` (B, n), 0 = unrated;
    ``units`` (B, n) bool; ``keep`` (B, F) dropout mask)."""
    B, n = values.shape
    dW, dbv, dbh = np.zeros_like(W), np.zeros_like(bv), np.zeros_like(bh)
    recon_all = np.zeros((B, n, state_values.size))
    T = len(hu)
    for u in range(B):
        idx = [i for i in range(n) if units[u, i]]

        def hidden(v, u=u, idx=idx):
            return _sigmoid(bh + sum(v[i] * W[i] for i in idx)) * keep[u]

        v0 = {i: values[u, i] for i in idx}
        ph0 = hidden(v0)
        ph = ph0
        for t in range(T):
            h = (hu[t][u] < ph).astype(float)
            probs = {i: _softmax(state_values * (bv[i] + W[i] @ h)) for i in idx}
            if t < T - 1:
                vt = {}
                for i in idx:
                    s = min(int(np.searchsorted(np.cumsum(probs[i]), vu[t][u, i], side="right")),
                            state_values.size - 1)
                    vt[i] = state_values[s]
                ph = hidden(vt)
        vT = {i: probs[i] @ state_values for i in idx}
        phT = hidden(vT)
        for i in idx:
            dW[i] += v0[i] * ph0 - vT[i] * phT
            dbv[i] += v0[i] - vT[i]
            recon_all[u, i] = probs[i]
        dbh += ph0 - phT
    return dW / B, dbv / B, dbh / B, recon_all


@pytest.mark.parametrize("T", [1, 2, 3])
@pytest.mark.parametrize("unrated", ["ignore", "level"])
def test_value_unit_cd_step_equals_the_slow_transcription(T, unrated):
    rng = np.random.default_rng(T)
    B, n, F = 3, 5, 4
    levels = np.array([1.0, 2.0, 3.0])
    W = rng.normal(0, 0.5, (n, F))
    bv, bh = rng.normal(0, 0.3, n), rng.normal(0, 0.3, F)
    values = rng.choice(np.concatenate([[0.0], levels]), size=(B, n))
    units = np.ones((B, n), bool) if unrated == "level" else values != 0
    state_values = np.concatenate([[0.0], levels]) if unrated == "level" else levels
    hu = [rng.random((B, F)) for _ in range(T)]
    vu = [rng.random((B, n)) for _ in range(T - 1)]
    keep = (rng.random((B, F)) < 0.7).astype(float)
    th = torch.from_numpy
    got = cd_gradients_value(th(W), th(bv), th(bh), th(values), th(units), th(state_values),
                             [th(x) for x in hu], [th(x) for x in vu], hidden_mask=th(keep))
    want = _cd_value_slow(W, bv, bh, values, units, state_values, hu, vu, keep)
    for g, w in zip(got[:3], want[:3], strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got[3].numpy()[units], want[3][units], rtol=1e-10)
    # a dropped hidden unit learns nothing in this update
    dropped = keep == 0
    assert np.all(got[2].numpy()[dropped.all(0)] == 0)


def test_value_unit_cd_step_is_the_free_energy_gradient():
    """Without dropout, (dW, dbv, dbh) is minus the gradient of F(v0) - F(vT) at the chain's end
    point vT (the mean values), F(v) = -v.bv - sum_j softplus(bh_j + (vW)_j) summed over users."""
    rng = np.random.default_rng(7)
    B, n, F = 4, 6, 3
    levels = np.array([1.0, 2.0, 4.0, 5.0])
    W, bv, bh = rng.normal(0, 0.4, (n, F)), rng.normal(0, 0.3, n), rng.normal(0, 0.3, F)
    values = rng.choice(np.concatenate([[0.0], levels]), size=(B, n))
    units = values != 0
    th = torch.from_numpy
    hu = [th(rng.random((B, F))) for _ in range(2)]
    vu = [th(rng.random((B, n)))]
    dW, dbv, dbh, recon = cd_gradients_value(th(W), th(bv), th(bh), th(values), th(units), th(levels), hu, vu)
    vT = (recon @ th(levels)) * th(units).double()
    Wt, bvt, bht = (th(x).clone().requires_grad_(True) for x in (W, bv, bh))

    def free_energy(v):
        return -(v @ bvt).sum() - torch.nn.functional.softplus(bht + v @ Wt).sum()

    ((free_energy(th(values)) - free_energy(vT)) / B).backward()
    for got, param in zip((dW, dbv, dbh), (Wt, bvt, bht), strict=True):
        np.testing.assert_allclose(got.numpy(), -param.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dropout_mask_of_ones_changes_nothing():
    rng = np.random.default_rng(2)
    B, n, K, F = 2, 3, 3, 4
    t = [torch.from_numpy(x) for x in (rng.normal(0, 0.5, (n, K, F)), rng.normal(0, 0.3, (n, K)),
                                       rng.normal(0, 0.3, F))]
    states = torch.from_numpy(rng.integers(0, K, (B, n)))
    hu = [torch.from_numpy(rng.random((B, F))) for _ in range(2)]
    vu = [torch.from_numpy(rng.random((B, n)))]
    a = cd_gradients_dense(*t, states, hu, vu)
    b = cd_gradients_dense(*t, states, hu, vu, hidden_mask=torch.ones(B, F, dtype=torch.float64))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_value_unit_prediction_by_hand():
    data = contract_data()
    model = RBM(n_hidden=5, epochs=2, batch_size=3, visible="value", optimizer="adam",
                learning_rate=0.01, init_std=0.1, random_state=0).fit(data)
    assert model.params_.W.shape == (data.n_items, 5) and model.params_.bv.shape == (data.n_items,)
    W, bv, bh = (x.double().numpy() for x in (model.params_.W, model.params_.bv, model.params_.bh))
    u = 1
    sl = slice(model.rows_indptr_[u], model.rows_indptr_[u + 1])
    vals = model.levels_[model.rows_levels_[sl]]
    p_hat = _sigmoid(bh + (vals[:, None] * W[model.rows_items_[sl]]).sum(0))
    levels = model.levels_.astype(np.float64)
    dist = np.array([_softmax(levels * (bv[i] + W[i] @ p_hat)) for i in range(data.n_items)])
    got = model.predict(np.repeat(data.user_map.raw[u], data.n_items), data.item_map.raw, clip=False)
    np.testing.assert_allclose(got, dist @ levels, rtol=1e-5)
    model.ranking_score = "mode"
    scores = model.score_inner(np.array([u], np.int32), history=data.csr[[u]])
    np.testing.assert_allclose(scores[0], levels[dist.argmax(1)] * dist.max(1), rtol=1e-5)


@pytest.mark.parametrize("unrated, score", [("ignore", "mode"), ("level", "rated")])
def test_value_units_with_adam_and_dropout_run_the_contract(unrated, score, tmp_path):
    from tests.models.contract import check_model_contract

    model = check_model_contract(
        lambda: RBM(n_hidden=5, epochs=3, batch_size=4, visible="value", unrated=unrated,
                    optimizer="adam", learning_rate=0.01, keep_prob=0.8, cd_k=1, cd_k_final=2,
                    ranking_score=score, random_state=0),
        contract_data(), tmp_path=tmp_path)
    assert model.params_.W.shape == (contract_data().n_items, 5)


def test_adam_training_is_seeded_and_lowers_the_error():
    data = contract_data()
    kw = {"n_hidden": 8, "epochs": 12, "batch_size": 4, "learning_rate": 0.05, "optimizer": "adam",
          "keep_prob": 0.9, "unrated": "level", "ranking_score": "rated"}
    a, b = RBM(**kw, random_state=3).fit(data), RBM(**kw, random_state=3).fit(data)
    assert torch.equal(a.params_.W, b.params_.W)
    assert a.history_["train_loss"][-1] < a.history_["train_loss"][0]


@pytest.mark.parametrize("params, match", [
    ({"visible": "binary"}, "visible"), ({"optimizer": "sgd"}, "optimizer"),
    ({"keep_prob": 0.0}, "keep_prob"), ({"keep_prob": 1.5}, "keep_prob")])
def test_bad_variant_parameters_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        RBM(**params).fit(contract_data())
