"""SVD and PMF: SGD against a slow transcription of the update rules, predictions, fold-in."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Interactions
from recforge.models import get_model_class
from recforge.models.factorization import PMF, SVD
from recforge.models.factorization.svd import NO_LEARNING, _fill_normal, count_blocks


def _tiny(seed: int = 0, n_users: int = 9, n_items: int = 7, n: int = 40) -> Interactions:
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_users * n_items, size=n, replace=False)
    return Interactions.from_arrays(cells // n_items + 1, cells % n_items + 100,
                                    rng.integers(1, 6, n).astype(float), rating_scale=(1, 5))


def _slow_epochs(train, pu, qi, biased, n_epochs, lr, reg, order=None):
    """The update rules of Koren, Bell & Volinsky (2009) written out rating by rating, as
    Surprise's SVD documents them: e once, biases, then p_u and q_i from their old values.
    ``order``: the ratings' visiting order in each epoch (default: as stored)."""
    pu, qi = pu.copy(), qi.copy()
    bu, bi = np.zeros(train.n_users), np.zeros(train.n_items)
    mu = float(np.mean(train.values, dtype=np.float64)) if biased else 0.0
    order = np.arange(len(train)) if order is None else np.asarray(order)
    for _ in range(n_epochs):
        for u, i, r in zip(train.users[order].tolist(), train.items[order].tolist(),
                           train.values[order].tolist(), strict=True):
            err = r - (mu + bu[u] + bi[i] + sum(qi[i, f] * pu[u, f] for f in range(pu.shape[1])))
            if biased:
                bu[u] += lr["bu"] * (err - reg["bu"] * bu[u])
                bi[i] += lr["bi"] * (err - reg["bi"] * bi[i])
            p_old, q_old = pu[u].copy(), qi[i].copy()
            pu[u] = p_old + lr["pu"] * (err * q_old - reg["pu"] * p_old)
            qi[i] = q_old + lr["qi"] * (err * p_old - reg["qi"] * q_old)
    return mu, bu, bi, pu, qi


@pytest.mark.parametrize("cls", [SVD, PMF])
@pytest.mark.parametrize("n_epochs", [1, 3])
@pytest.mark.parametrize(("dtype", "atol"), [("float64", 1e-12), ("float32", 2e-6)])
def test_sgd_matches_the_update_rules(cls, n_epochs, dtype, atol):
    """float64 reproduces the transcription to rounding; float32 to single precision."""
    train = _tiny()
    lr = {"bu": 0.03, "bi": 0.02, "pu": 0.05, "qi": 0.04}
    reg = {"bu": 0.1, "bi": 0.2, "pu": 0.05, "qi": 0.07}
    model = cls(n_factors=3, n_epochs=n_epochs, init_std_dev=0.3, init_mean=0.05,
                lr_bu=lr["bu"], lr_bi=lr["bi"], lr_pu=lr["pu"], lr_qi=lr["qi"],
                reg_bu=reg["bu"], reg_bi=reg["bi"], reg_pu=reg["pu"], reg_qi=reg["qi"],
                random_state=7, dtype=dtype).fit(train)
    pu0, qi0 = model.initial_factors(train.n_users, train.n_items)
    mu, bu, bi, pu, qi = _slow_epochs(train, pu0, qi0, cls is SVD, n_epochs, lr, reg)
    assert model.mu_ == pytest.approx(mu, abs=0)
    np.testing.assert_allclose(model.user_bias_, bu, rtol=0, atol=atol)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=0, atol=atol)
    np.testing.assert_allclose(model.user_factors_, pu, rtol=0, atol=atol)
    np.testing.assert_allclose(model.item_factors_, qi, rtol=0, atol=atol)
    if dtype == "float32":  # really single precision: not equal to the float64 run
        assert np.abs(model.user_factors_ - pu).max() > 0
    # the factors did move
    assert np.abs(model.user_factors_ - pu0).max() > 1e-3
    if cls is SVD:
        assert np.abs(bu).max() > 1e-3


def test_initial_factors_are_normal_user_matrix_first():
    model = SVD(n_factors=4, init_mean=0.5, init_std_dev=0.2, random_state=3)
    pu, qi = model.initial_factors(5, 6)
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(pu, rng.normal(0.5, 0.2, (5, 4)))
    np.testing.assert_array_equal(qi, rng.normal(0.5, 0.2, (6, 4)))
    # zero epochs: the initial factors and zero biases
    train = _tiny()
    m = SVD(n_factors=4, n_epochs=0, random_state=3, dtype="float64").fit(train)
    np.testing.assert_array_equal(m.user_factors_,
                                  np.random.default_rng(3).normal(0, 0.1, (train.n_users, 4)))
    np.testing.assert_array_equal(m.item_factors_,
                                  m.initial_factors(train.n_users, train.n_items)[1])
    m32 = SVD(n_factors=4, n_epochs=0, random_state=3).fit(train)
    np.testing.assert_array_equal(m32.user_factors_, m.user_factors_.astype(np.float32))
    assert not m.user_bias_.any() and not m.item_bias_.any()
    # fit draws straight into its training rows, chunk by chunk: the same values as
    # initial_factors' rng.normal, also across chunk boundaries and for other mean / std
    big = SVD(n_factors=7, init_mean=0.3, init_std_dev=0.17, random_state=5, dtype="float64")
    pu, qi = big.initial_factors(3000, 2500)
    out = np.zeros((3000, 16))
    rng = np.random.default_rng(5)
    _fill_normal(rng, out[:, :7], 0.3, 0.17, chunk=100)
    np.testing.assert_array_equal(out[:, :7], pu)
    assert not out[:, 7:].any()
    _fill_normal(rng, out[:2500, :7], 0.3, 0.17)
    np.testing.assert_array_equal(out[:2500, :7], qi)


def test_defaults_and_overrides_are_surprises():
    m = SVD()
    assert (m.n_factors, m.n_epochs, m.lr_all, m.reg_all, m.init_mean, m.init_std_dev) \
        == (100, 20, 0.005, 0.02, 0.0, 0.1)
    rates = SVD(lr_all=0.01, reg_all=0.3, lr_qi=0.002, reg_bu=0.5).rates()
    assert rates == {"lr_bu": 0.01, "lr_bi": 0.01, "lr_pu": 0.01, "lr_qi": 0.002,
                     "reg_bu": 0.5, "reg_bi": 0.3, "reg_pu": 0.3, "reg_qi": 0.3}
    # the SGD's regularisation plus the ridge equivalent of T epochs at rate lr: 1 / (lr T)
    lam = SVD(reg_all=0.3, reg_pu=0.4, reg_bu=0.6, lr_all=0.01, lr_bu=0.05,
              n_epochs=4).fold_in_regularisation()
    assert lam == pytest.approx((0.4 + 25.0, 0.6 + 5.0), rel=1e-12)
    assert SVD().fold_in_regularisation() == pytest.approx((10.02, 10.02), rel=1e-12)
    assert SVD(n_epochs=0).fold_in_regularisation() == (NO_LEARNING, NO_LEARNING)
    assert "biased" not in PMF().get_params()
    assert get_model_class("SVD") is SVD and get_model_class("PMF") is PMF


def test_predicted_rating_formula():
    train = _tiny(1)
    m = SVD(n_factors=3, n_epochs=4, random_state=0).fit(train)
    u, i = train.users, train.items
    expected = (m.mu_ + m.user_bias_[u] + m.item_bias_[i]
                + np.sum(m.user_factors_[u] * m.item_factors_[i], axis=1))
    np.testing.assert_allclose(m.predict_inner(u, i, clip=False), expected, rtol=1e-12)
    np.testing.assert_allclose(m.predict_inner(u, i), np.clip(expected, 1, 5), rtol=1e-12)
    assert m.mu_ == pytest.approx(train.values.mean())


def test_pmf_has_no_biases():
    train = _tiny(2)
    m = PMF(n_factors=3, n_epochs=4, random_state=0).fit(train)
    assert m.mu_ == 0.0 and not m.user_bias_.any() and not m.item_bias_.any()
    u, i = train.users, train.items
    np.testing.assert_allclose(m.predict_inner(u, i, clip=False),
                               np.sum(m.user_factors_[u] * m.item_factors_[i], axis=1),
                               rtol=1e-12)
    # same initial factors as SVD with biased=False, and the same training
    s = SVD(n_factors=3, n_epochs=4, biased=False, random_state=0).fit(train)
    np.testing.assert_array_equal(m.user_factors_, s.user_factors_)
    np.testing.assert_array_equal(m.item_factors_, s.item_factors_)


@pytest.mark.parametrize("cls", [SVD, PMF])
def test_fold_in_is_a_direct_least_squares_solve(cls):
    train = _tiny(3, n_users=6, n_items=8, n=30)
    m = cls(n_factors=3, n_epochs=10, reg_pu=0.3, reg_bu=0.7, lr_pu=0.5, lr_bu=0.2,
            lr_qi=0.01, random_state=0).fit(train)
    lp, lb = 0.3 + 1 / (0.5 * 10), 0.7 + 1 / (0.2 * 10)
    rng = np.random.default_rng(5)
    hist = sp.csr_matrix(np.where(rng.random((3, train.n_items)) < 0.6,
                                  rng.integers(1, 6, (3, train.n_items)), 0.0))
    scores = m.score_inner(np.full(3, -1), history=hist)
    for r in range(3):
        items = hist[r].indices
        q = m.item_factors_[items]
        if cls is SVD:
            x = np.hstack([q, np.ones((items.size, 1))])
            y = hist[r].data - m.mu_ - m.item_bias_[items]
            lam = [lp, lp, lp, lb]
        else:
            x, y, lam = q, hist[r].data, [lp, lp, lp]
        xa = np.vstack([x, np.diag(np.sqrt(lam))])
        w = np.linalg.lstsq(xa, np.concatenate([y, np.zeros(len(lam))]), rcond=None)[0]
        expected = m.item_factors_ @ w[:3]
        if cls is SVD:
            expected += m.mu_ + w[3] + m.item_bias_
        np.testing.assert_allclose(scores[r], expected, rtol=1e-5, atol=1e-5)
    # different histories, different users
    assert np.abs(scores[0] - scores[1]).max() > 1e-3


def test_fold_in_without_learning_leaves_the_user_at_zero():
    train = _tiny(4)
    m = SVD(n_factors=3, n_epochs=0, random_state=0).fit(train)
    f, b = m.fold_in(train.csr[:3])
    assert np.abs(f).max() < 1e-9 and np.abs(b).max() < 1e-9


def test_bad_hyperparameters_are_named():
    train = _tiny()
    with pytest.raises(ValueError, match="n_factors"):
        SVD(n_factors=0).fit(train)
    with pytest.raises(ValueError, match="lr_pu"):
        SVD(lr_pu=-1.0).fit(train)
    with pytest.raises(ValueError, match="n_epochs"):
        SVD(n_epochs=1.5).fit(train)
    with pytest.raises(FloatingPointError, match="diverged"):
        SVD(n_factors=2, lr_all=50.0, n_epochs=50, random_state=0).fit(train)


@pytest.mark.parametrize("biased", [True, False])
def test_same_factors_as_surprise_from_the_same_start_and_order(biased):
    """Surprise 1.1.5's SVD, handed our initial factors (through its RandomState argument) and
    a trainset built from our interactions in their stored order, ends where we end."""
    surprise = pytest.importorskip("surprise")
    train = _tiny(6, n_users=8, n_items=9, n=45)
    model = SVD(n_factors=4, n_epochs=3, biased=biased, lr_all=0.02, reg_all=0.05,
                random_state=11, dtype="float64").fit(train)
    pu0, qi0 = model.initial_factors(train.n_users, train.n_items)
    df = train.to_dataframe()[["user", "item", "rating"]]
    trainset = surprise.Dataset.load_from_df(
        df, surprise.Reader(rating_scale=(1, 5))).build_full_trainset()
    # Surprise numbers items by first appearance; reorder our item rows into its numbering
    ours_of_theirs = train.item_map.to_inner(
        np.array([trainset.to_raw_iid(j) for j in range(trainset.n_items)]))
    theirs_users = train.user_map.to_inner(
        np.array([trainset.to_raw_uid(j) for j in range(trainset.n_users)]))

    class Start(np.random.RandomState):
        draws = [pu0[theirs_users], qi0[ours_of_theirs]]

        def normal(self, loc=0.0, scale=1.0, size=None):
            return self.draws.pop(0).copy()

    algo = surprise.SVD(n_factors=4, n_epochs=3, biased=biased, lr_all=0.02, reg_all=0.05,
                        random_state=Start(0)).fit(trainset)
    np.testing.assert_allclose(model.user_factors_[theirs_users], algo.pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.item_factors_[ours_of_theirs], algo.qi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.user_bias_[theirs_users], algo.bu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_[ours_of_theirs], algo.bi, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_step_is_the_update_and_the_next_dot_product(dtype):
    """The explicit-SIMD step: p' = kp p + sp q, q' = kq q + sq p (old p), returns r . p'."""
    import numba

    from recforge.models.factorization.svd import fused_step

    @numba.njit
    def step(pu, qi, u, i, n, kp, sp, kq, sq, want):
        return fused_step(pu, qi, u, i, n, kp, sp, kq, sq, want)

    rng = np.random.default_rng(0)
    width = 32  # two float32 vector pairs, four float64 ones
    pu = rng.normal(size=(3, width)).astype(dtype)
    qi = rng.normal(size=(4, width)).astype(dtype)
    p0, q0, r0 = pu[1].copy(), qi[2].copy(), qi[0].copy()
    kp, sp, kq, sq = (dtype(x) for x in (0.99, 0.05, 0.98, -0.03))
    dot = step(pu, qi, 1, 2, 0, kp, sp, kq, sq, True)
    p1 = (0.99 * p0.astype(np.float64) + 0.05 * q0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(pu[1], p1, rtol=tol, atol=tol)
    np.testing.assert_allclose(qi[2], 0.98 * q0.astype(np.float64) - 0.03 * p0, rtol=tol, atol=tol)
    assert dot == pytest.approx(float(r0 @ p1), rel=tol, abs=tol)
    np.testing.assert_array_equal(qi[0], r0)  # the next row is only read
    # without the dot: the same update, 0 returned, other rows untouched
    before = pu.copy(), qi.copy()
    assert step(pu, qi, 0, 3, 3, kp, sp, kq, sq, False) == 0
    np.testing.assert_array_equal(pu[1:], before[0][1:])
    np.testing.assert_array_equal(qi[:3], before[1][:3])


def _dsgd_order(train, n_blocks):
    """DSGD's visiting order written out (Gemulla et al. 2011): round t, user block b with item
    stratum (b + t) mod n; the blocks of a round share no user or item, so running them one
    after the other is what the threads compute; within a block, users ascending, each user's
    ratings as stored."""
    user_block = count_blocks(train.user_counts, n_blocks)[train.users]
    item_block = count_blocks(train.item_counts, n_blocks)[train.items]
    return [j for t in range(n_blocks) for b in range(n_blocks) for j in range(len(train))
            if user_block[j] == b and item_block[j] == (b + t) % n_blocks]


@pytest.mark.parametrize("cls", [SVD, PMF])
@pytest.mark.parametrize("n_threads", [2, 3])
def test_stratified_sgd_is_the_update_rules_in_block_order(cls, n_threads):
    train = _tiny(seed=3, n_users=12, n_items=10, n=70)
    order = _dsgd_order(train, n_threads)
    assert sorted(order) == list(range(len(train)))  # every rating once per epoch
    assert order != list(range(len(train)))
    lr = {"bu": 0.03, "bi": 0.02, "pu": 0.05, "qi": 0.04}
    reg = {"bu": 0.1, "bi": 0.2, "pu": 0.05, "qi": 0.07}
    model = cls(n_factors=3, n_epochs=2, init_std_dev=0.3, lr_bu=lr["bu"], lr_bi=lr["bi"],
                lr_pu=lr["pu"], lr_qi=lr["qi"], reg_bu=reg["bu"], reg_bi=reg["bi"],
                reg_pu=reg["pu"], reg_qi=reg["qi"], random_state=7, dtype="float64",
                n_threads=n_threads).fit(train)
    pu0, qi0 = model.initial_factors(train.n_users, train.n_items)
    mu, bu, bi, pu, qi = _slow_epochs(train, pu0, qi0, cls is SVD, 2, lr, reg, order)
    np.testing.assert_allclose(model.user_factors_, pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.item_factors_, qi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.user_bias_, bu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.item_bias_, bi, rtol=0, atol=1e-12)
    serial = cls(n_factors=3, n_epochs=2, init_std_dev=0.3, random_state=7, dtype="float64",
                 lr_all=0.05).fit(train)
    assert np.abs(serial.user_factors_ - model.user_factors_).max() > 1e-6  # another order


def test_stratified_sgd_does_not_depend_on_the_threads_running_it():
    import numba

    train = _tiny(seed=4, n_users=40, n_items=30, n=500)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = SVD(n_factors=8, n_epochs=3, n_threads=2).fit(train)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = SVD(n_factors=8, n_epochs=3, n_threads=2).fit(train)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(one.item_bias_, two.item_bias_)


def test_count_blocks_are_contiguous_and_balanced():
    counts = np.array([50, 1, 1, 1, 30, 10, 10, 10, 1, 1, 40, 20])
    blocks = count_blocks(counts, 3)
    assert (np.diff(blocks) >= 0).all() and blocks[0] == 0 and blocks[-1] == 2
    shares = np.bincount(blocks, weights=counts, minlength=3)
    assert shares.tolist() == [53.0, 62.0, 60.0]  # cut where each row's middle falls (of 175)
    assert count_blocks(np.ones(5), 1).tolist() == [0] * 5
    with pytest.raises(ValueError, match="n_threads"):
        SVD(n_threads=0).fit(_tiny())
