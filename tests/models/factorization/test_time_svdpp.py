"""timeSVD++: one epoch against a slow transcription of Koren (2009)'s update rules, the
SVD++ special case, time-aware prediction and fold-in."""

from __future__ import annotations

import numpy as np
import pytest

from recforge.data import IdMap, Interactions
from recforge.models.factorization import TimeSVDpp
from recforge.models.factorization.time_svdpp import deviation
from recforge.models.query import History

DAY = 86400.0
FAST_TIME = dict(lr_bit=0.01, reg_bit=0.05, lr_alpha=0.01, reg_alpha=0.1, lr_but=0.02,
                 reg_but=0.03)


def timed_data(seed: int = 3) -> Interactions:
    """7 users x 10 items, ratings 1-5 spread over 60 days (some users rate twice a day)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(7):
        items = rng.choice(10, size=int(rng.integers(3, 8)), replace=False)
        rows += [u] * items.size
        cols += items.tolist()
    rows, cols = np.array(rows), np.array(cols)
    days = rng.integers(0, 60, rows.size)
    ts = 1.2e9 + days * DAY + rng.integers(0, 3600, rows.size)
    return Interactions(rows, cols, rng.integers(1, 6, rows.size).astype(np.float32),
                        user_map=IdMap(np.arange(7)), item_map=IdMap(np.arange(10)),
                        timestamps=ts, rating_scale=(1.0, 5.0), name="timed")


def slow_time_svdpp(data: Interactions, k: int, n_bins: int, seed: int, lr: dict, reg: dict,
                    beta: float = 0.4, std: float = 0.1, time_terms: bool = True) -> dict:
    """One epoch of timeSVD++ written rating by rating from the formulas of Koren (2009)."""
    rng = np.random.default_rng(seed)
    nu, ni = data.n_users, data.n_items
    p, q, y = (rng.normal(0, std, (nu, k)), rng.normal(0, std, (ni, k)),
               rng.normal(0, std, (ni, k)))
    order = rng.permutation(nu)
    r = list(zip(data.users.tolist(), data.items.tolist(), data.values.tolist(),
                 data.timestamps.tolist(), strict=True))
    mu = float(np.mean(data.values.astype(np.float64)))
    day = {j: int(np.floor(t / DAY)) for j, (_, _, _, t) in enumerate(r)}
    d0, d1 = min(day.values()), max(day.values())
    width = (d1 - d0 + 1) / n_bins
    t_u = {u: np.mean([day[j] for j, x in enumerate(r) if x[0] == u]) for u in range(nu)}
    bu, bi, alpha = np.zeros(nu), np.zeros(ni), np.zeros(nu)
    bit = np.zeros((ni, n_bins))
    but: dict = {}
    for u in order:
        mine = sorted((j for j, x in enumerate(r) if x[0] == u), key=lambda j: r[j][1])
        if not mine:
            continue
        n_u = [r[j][1] for j in mine]
        z = sum(y[j] for j in n_u) / np.sqrt(len(n_u))
        grad_y = np.zeros(k)
        for j in mine:
            _, i, rating, _ = r[j]
            t = day[j]
            b = min(int((t - d0) // width), n_bins - 1)
            dev = np.sign(t - t_u[u]) * abs(t - t_u[u]) ** beta
            est = mu + bu[u] + bi[i] + q[i] @ (p[u] + z)
            if time_terms:
                est += bit[i, b] + alpha[u] * dev + but.get((u, t), 0.0)
            e = rating - est
            bu[u] += lr["bu"] * (e - reg["bu"] * bu[u])
            bi[i] += lr["bi"] * (e - reg["bi"] * bi[i])
            if time_terms:
                bit[i, b] += lr["bit"] * (e - reg["bit"] * bit[i, b])
                alpha[u] += lr["alpha"] * (e * dev - reg["alpha"] * alpha[u])
                but[(u, t)] = but.get((u, t), 0.0) + lr["but"] * (e - reg["but"] * but.get((u, t), 0.0))
            pu, qi = p[u].copy(), q[i].copy()
            p[u] = pu + lr["pu"] * (e * qi - reg["pu"] * pu)
            q[i] = qi + lr["qi"] * (e * (pu + z) - reg["qi"] * qi)
            grad_y += e * qi
        for j in n_u:
            y[j] = y[j] + lr["yj"] * (grad_y / np.sqrt(len(n_u)) - reg["yj"] * y[j])
    return {"p": p, "q": q, "y": y, "bu": bu, "bi": bi, "bit": bit, "alpha": alpha, "but": but}


def slow_svdpp(data: Interactions, k: int, seed: int, lr: float, reg: float,
               std: float = 0.1) -> dict:
    """One epoch of SVD++ (Koren 2008) with the implicit gradient applied once per user."""
    rng = np.random.default_rng(seed)
    nu, ni = data.n_users, data.n_items
    p, q, y = (rng.normal(0, std, (nu, k)), rng.normal(0, std, (ni, k)),
               rng.normal(0, std, (ni, k)))
    order = rng.permutation(nu)
    mu = float(np.mean(data.values.astype(np.float64)))
    bu, bi = np.zeros(nu), np.zeros(ni)
    csr = data.csr
    for u in order:
        items = csr.indices[csr.indptr[u]:csr.indptr[u + 1]]
        ratings = csr.data[csr.indptr[u]:csr.indptr[u + 1]]
        if items.size == 0:
            continue
        s = 1.0 / np.sqrt(items.size)
        implicit = s * y[items].sum(axis=0)
        g = np.zeros(k)
        for i, rating in zip(items, ratings, strict=True):
            e = rating - (mu + bu[u] + bi[i] + q[i] @ (p[u] + implicit))
            bu[u] += lr * (e - reg * bu[u])
            bi[i] += lr * (e - reg * bi[i])
            pu, qi = p[u].copy(), q[i].copy()
            p[u] += lr * (e * qi - reg * pu)
            q[i] += lr * (e * (pu + implicit) - reg * qi)
            g += e * qi
        y[items] += lr * (s * g - reg * y[items])
    return {"p": p, "q": q, "y": y, "bu": bu, "bi": bi}


def test_one_epoch_matches_the_slow_transcription_of_the_update_rules():
    data = timed_data()
    model = TimeSVDpp(n_factors=3, n_epochs=1, n_bins=5, lr_all=0.05, reg_all=0.04, lr_yj=0.03,
                      reg_qi=0.06, random_state=11, **FAST_TIME).fit(data)
    lr = {"bu": 0.05, "bi": 0.05, "pu": 0.05, "qi": 0.05, "yj": 0.03, "bit": 0.01,
          "alpha": 0.01, "but": 0.02}
    reg = {"bu": 0.04, "bi": 0.04, "pu": 0.04, "qi": 0.06, "yj": 0.04, "bit": 0.05,
           "alpha": 0.1, "but": 0.03}
    ref = slow_time_svdpp(data, k=3, n_bins=5, seed=11, lr=lr, reg=reg)
    np.testing.assert_allclose(model.user_factors_, ref["p"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.item_factors_, ref["q"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.implicit_factors_, ref["y"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.user_bias_, ref["bu"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, ref["bi"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.item_bin_bias_, ref["bit"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.user_alpha_, ref["alpha"], rtol=1e-10, atol=1e-12)
    assert np.abs(model.user_alpha_).max() > 1e-4 and np.abs(model.item_bin_bias_).max() > 1e-4
    # day-specific biases, ordered by (user, day)
    keys = sorted(ref["but"])
    np.testing.assert_allclose(model.user_day_bias_, [ref["but"][key] for key in keys],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(model.user_day_days_, [d for _, d in keys])


def test_without_time_terms_it_is_svdpp():
    data = timed_data(seed=5)
    model = TimeSVDpp(n_factors=4, n_epochs=1, n_bins=5, lr_all=0.03, reg_all=0.05,
                      time_terms=False, random_state=2, **FAST_TIME).fit(data)
    ref = slow_svdpp(data, k=4, seed=2, lr=0.03, reg=0.05)
    for key, attr in (("p", "user_factors_"), ("q", "item_factors_"), ("y", "implicit_factors_"),
                      ("bu", "user_bias_"), ("bi", "item_bias_")):
        np.testing.assert_allclose(getattr(model, attr), ref[key], rtol=1e-10, atol=1e-12)
    assert not model.item_bin_bias_.any() and not model.user_alpha_.any()
    assert not model.user_day_bias_.any()


def test_deviation_is_signed_power_of_the_distance_to_the_mean_day():
    np.testing.assert_allclose(deviation(np.array([10, 42, 10]), np.array([10.0, 10.0, 42.0]), 0.4),
                               [0.0, 32 ** 0.4, -(32 ** 0.4)])


def test_prediction_without_time_is_at_the_user_s_latest_training_day():
    data = timed_data()
    model = TimeSVDpp(n_factors=3, n_epochs=5, n_bins=5, random_state=0, **FAST_TIME).fit(data)
    users = data.user_map.raw[np.repeat(np.arange(7), 10)]
    items = np.tile(data.item_map.raw, 7)
    last = np.array([data.timestamps[data.users == u].max() for u in range(7)])
    at_last = model.predict_at(users, items, np.repeat(last, 10))
    np.testing.assert_allclose(model.predict(users, items), at_last, rtol=1e-12)
    # a later day: no day bias, drift continues, the last bin
    later = model.predict_at(users, items, np.repeat(last + 400 * DAY, 10), clip=False)
    u = model.user_map_.to_inner(users)
    i = model.item_map_.to_inner(items)
    dev = deviation(np.floor((np.repeat(last, 10) + 400 * DAY) / DAY),
                    model.user_mean_day_[u], 0.4)
    expect = (model.mu_ + model.user_bias_[u] + model.user_alpha_[u] * dev + model.item_bias_[i]
              + model.item_bin_bias_[i, -1]
              + np.einsum("ij,ij->i", model.user_factors_[u] + model.user_implicit_[u],
                          model.item_factors_[i]))
    np.testing.assert_allclose(later, expect, rtol=1e-12)


def test_fold_in_solves_least_squares_after_the_implicit_term():
    data = timed_data()
    model = TimeSVDpp(n_factors=3, n_epochs=5, n_bins=5, random_state=0, **FAST_TIME).fit(data)
    hist = {0: 4.0, 3: 2.0, 7: 5.0, 9: 1.0}
    items = np.array(sorted(hist))
    ratings = np.array([hist[i] for i in items])
    z = model.implicit_factors_[items].sum(axis=0) / np.sqrt(items.size)
    bi = model.item_bias_ + model.item_bin_bias_[:, -1]
    x = np.hstack([model.item_factors_[items], np.ones((items.size, 1))])
    y = ratings - model.mu_ - bi[items] - model.item_factors_[items] @ z
    w = np.linalg.solve(x.T @ x + np.diag([0.02, 0.02, 0.02, 0.02]), x.T @ y)
    scores = model.score_inner(np.array([-1]), history=History.from_csr(
        np.bincount(items, weights=ratings, minlength=10)[None, :]))
    expect = model.mu_ + w[3] + bi + model.item_factors_ @ (w[:3] + z)
    np.testing.assert_allclose(scores[0], expect, rtol=1e-5)


def test_needs_timestamps():
    data = timed_data()
    bare = Interactions(data.users, data.items, data.values, user_map=data.user_map,
                        item_map=data.item_map, rating_scale=(1.0, 5.0), name="bare")
    with pytest.raises(ValueError, match="TimeSVDpp needs timestamps.*bare"):
        TimeSVDpp(n_epochs=1).fit(bare)


def test_a_user_without_training_ratings_is_placed_on_the_last_training_day():
    from ..contract import contract_data

    data = contract_data()  # user "u8" has no interaction
    model = TimeSVDpp(n_factors=3, n_epochs=3, n_bins=4, random_state=0, **FAST_TIME).fit(data)
    u8 = int(model.user_map_.to_inner(np.array(["u8"]))[0])
    assert not model.user_factors_[u8].any()
    got = model.predict(np.array(["u8"] * data.n_items), data.item_map.raw, clip=False)
    last_day = int(np.floor(data.timestamps.max() / DAY))
    assert model.user_last_day_[u8] == last_day
    b = model._bins(np.array([last_day]))[0]
    np.testing.assert_allclose(got, model.mu_ + model.item_bias_ + model.item_bin_bias_[:, b],
                               rtol=1e-12)


def test_an_item_without_training_ratings_has_zero_factors():
    from ..contract import contract_data

    data = contract_data()  # item 113 has no interaction
    model = TimeSVDpp(n_factors=3, n_epochs=3, n_bins=4, random_state=0, **FAST_TIME).fit(data)
    i = int(model.item_map_.to_inner(np.array([113]))[0])
    assert not model.item_factors_[i].any() and model.item_factors_.any()
