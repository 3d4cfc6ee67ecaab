"""Baseline models: the shared contract, hand-computed cases, and parity with Surprise."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest

from recforge.data import IdMap, Interactions
from recforge.metrics import rmse
from recforge.models.baseline import BaselineOnly, GlobalMean, MostPopular, Random, RandomRanker

from .contract import check_model_contract, contract_data

FACTORIES = {
    "Random": lambda: Random(random_state=3),
    "GlobalMean": lambda: GlobalMean(),
    "BaselineOnly-als": lambda: BaselineOnly(),
    "BaselineOnly-sgd": lambda: BaselineOnly(method="sgd"),
    "BaselineOnly-sgd-shuffled": lambda: BaselineOnly(method="sgd", shuffle=True, random_state=5),
    "MostPopular": lambda: MostPopular(),
    "MostPopular-recency": lambda: MostPopular(recency_half_life=3 * 3600.0),
    "RandomRanker": lambda: RandomRanker(random_state=11),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_contract(name, tmp_path):
    check_model_contract(FACTORIES[name], contract_data(), tmp_path=tmp_path)


@pytest.mark.parametrize("name", ["MostPopular", "RandomRanker"])
def test_contract_implicit(name, tmp_path):
    check_model_contract(FACTORIES[name], contract_data(kind="implicit"), tmp_path=tmp_path)


def _tiny():
    """Users a, b, c x items x, y, z (raw ids), ratings:

        a: x=5, y=3      b: x=4      c: y=1, z=2

    global mean = 15 / 5 = 3.
    """
    return Interactions.from_arrays(["a", "a", "b", "c", "c"], ["x", "y", "x", "y", "z"],
                                    [5.0, 3.0, 4.0, 1.0, 2.0], timestamps=[1, 2, 3, 4, 5])


def test_als_one_epoch_by_hand():
    # epoch 1, items first with b_u = 0 and reg_i = 1:
    #   b_x = (2 + 1) / (1 + 2) = 1 ; b_y = (0 - 2) / (1 + 2) = -2/3 ; b_z = -1 / (1 + 1) = -1/2
    # then users with reg_u = 2:
    #   b_a = ((5-3-1) + (3-3+2/3)) / (2 + 2) = (5/3) / 4 = 5/12
    #   b_b = (4-3-1) / (2 + 1) = 0
    #   b_c = ((1-3+2/3) + (2-3+1/2)) / (2 + 2) = (-4/3 - 1/2) / 4 = -11/24
    m = BaselineOnly(reg_i=1, reg_u=2, n_epochs=1).fit(_tiny())
    np.testing.assert_allclose(m.bi_, [1, -2 / 3, -1 / 2])
    np.testing.assert_allclose(m.bu_, [5 / 12, 0, -11 / 24])
    assert m.mu_ == 3.0
    np.testing.assert_allclose(m.predict(["a"], ["z"]), [3 + 5 / 12 - 1 / 2])
    # a second epoch continues from these values
    m2 = BaselineOnly(reg_i=1, reg_u=2, n_epochs=2).fit(_tiny())
    bx = ((5 - 3 - 5 / 12) + (4 - 3 - 0)) / 3
    np.testing.assert_allclose(m2.bi_[0], bx)


def test_sgd_one_epoch_by_hand():
    # ratings visited as (a,x), (a,y), (b,x), (c,y), (c,z); lr = 0.1, reg = 0
    lr = 0.1
    bu, bi = {"a": 0.0, "b": 0.0, "c": 0.0}, {"x": 0.0, "y": 0.0, "z": 0.0}
    for u, i, r in [("a", "x", 5), ("a", "y", 3), ("b", "x", 4), ("c", "y", 1), ("c", "z", 2)]:
        e = r - (3 + bu[u] + bi[i])
        bu[u] += lr * e
        bi[i] += lr * e
    m = BaselineOnly(method="sgd", learning_rate=lr, reg=0.0, n_epochs=1).fit(_tiny())
    np.testing.assert_allclose(m.bu_, list(bu.values()))
    np.testing.assert_allclose(m.bi_, list(bi.values()))


def test_sgd_defaults_and_validation():
    m = BaselineOnly(method="sgd", n_epochs=0).fit(_tiny())
    np.testing.assert_array_equal(m.bu_, 0.0)
    with pytest.raises(ValueError, match="method"):
        BaselineOnly(method="newton").fit(_tiny())
    with pytest.raises(ValueError, match="reg_i"):
        BaselineOnly(reg_i=-1).fit(_tiny())
    with pytest.raises(FloatingPointError, match="diverged"):
        BaselineOnly(method="sgd", learning_rate=1e6, n_epochs=50).fit(_tiny())


def test_unrated_user_and_item_keep_zero_bias():
    data = _tiny()
    train = data.subset(data.users != 2)  # user c and item z have no training ratings
    m = BaselineOnly().fit(train)
    assert m.bu_[2] == 0.0 and m.bi_[2] == 0.0
    np.testing.assert_allclose(m.predict(["c"], ["x"]), [m.mu_ + m.bi_[0]])


def test_global_mean_and_random_moments():
    data = _tiny()
    np.testing.assert_array_equal(GlobalMean().fit(data).predict(["a", "c"], ["z", "x"]), [3.0, 3.0])
    m = Random(random_state=0).fit(data)
    assert m.mu_ == 3.0 and m.sigma_ == pytest.approx(np.sqrt(2.0))  # deviations 2,0,1,-2,-1


def test_random_is_normal_clipped_and_seeded():
    umap, imap = IdMap(np.arange(400)), IdMap(np.arange(300))
    rng = np.random.default_rng(0)
    train = Interactions(np.arange(400), rng.integers(0, 300, 400), rng.integers(1, 6, 400),
                         user_map=umap, item_map=imap, rating_scale=(1, 5))
    m = Random(random_state=1).fit(train)
    u, i = np.repeat(np.arange(400), 300), np.tile(np.arange(300), 400)
    raw = m.predict(u, i, clip=False)
    z = (raw - m.mu_) / m.sigma_
    assert kstest(z, "norm").pvalue > 1e-3  # 120,000 draws look standard normal
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    clipped = m.predict(u, i)
    assert clipped.min() >= 1 and clipped.max() <= 5 and (clipped == 5).any()
    np.testing.assert_array_equal(Random(random_state=1).fit(train).predict(u[:50], i[:50], clip=False),
                                  raw[:50])
    assert not np.array_equal(Random(random_state=2).fit(train).predict(u[:50], i[:50]), raw[:50])


def test_most_popular_counts_and_recency():
    data = _tiny()  # counts: x 2, y 2, z 1 ; times: (a,x)1 (a,y)2 (b,x)3 (c,y)4 (c,z)5
    m = MostPopular().fit(data)
    np.testing.assert_array_equal(m.item_popularity_, [2, 2, 1])
    assert m.recommend(["b"], k=3).items.tolist() == [["y", "z", None]]
    # half-life 1: weights 2^-(5 - t): x = 2^-4 + 2^-2, y = 2^-3 + 2^-1, z = 2^0
    r = MostPopular(recency_half_life=1.0).fit(data)
    np.testing.assert_allclose(r.item_popularity_, [2**-4 + 2**-2, 2**-3 + 2**-1, 1.0])
    assert r.recommend(["zz-unknown"], k=3).items.tolist() == [["z", "y", "x"]]
    no_time = Interactions.from_arrays(["a"], ["x"])
    with pytest.raises(ValueError, match="timestamps"):
        MostPopular(recency_half_life=10.0).fit(no_time)


def test_random_ranker_is_uniform():
    umap, imap = IdMap(np.arange(2000)), IdMap(np.arange(5))
    train = Interactions([0], [0], [1.0], user_map=umap, item_map=imap, kind="implicit")
    m = RandomRanker(random_state=0).fit(train)
    top1 = m.recommend(np.arange(1, 2000), k=1).inner[:, 0]
    counts = np.bincount(top1, minlength=5)
    assert counts.min() > 330 and counts.max() < 470  # ~400 each (binomial sd ~18)
    assert not np.array_equal(m.score_inner(np.array([1]))[0], m.score_inner(np.array([2]))[0])


# ---------------------------------------------------------------------- reference: Surprise
def _ml100k() -> Interactions:
    root = Path(os.environ.get("RECFORGE_SHARED_DATA",
                               Path(__file__).resolve().parents[3] / "shared" / "data"))
    path = root / "ml-100k" / "ml-100k.inter"
    if not path.exists():
        pytest.skip(f"ML-100K not found at {path}")
    df = pd.read_csv(path, sep="\t")
    df.columns = ["user", "item", "rating", "timestamp"]
    return Interactions.from_dataframe(df, rating_scale=(1, 5), source=str(path), line_offset=1)


def _surprise_rmse(algo, train: Interactions, test: Interactions) -> float:
    surprise = pytest.importorskip("surprise")
    tr, te = train.to_dataframe(), test.to_dataframe()
    reader = surprise.Reader(rating_scale=train.rating_scale)
    trainset = surprise.Dataset.load_from_df(tr[["user", "item", "rating"]], reader).build_full_trainset()
    preds = algo.fit(trainset).test(list(zip(te.user, te.item, te.rating.astype(float), strict=True)))
    return surprise.accuracy.rmse(preds, verbose=False)


def _ours_rmse(model, train, test) -> float:
    te = test.to_dataframe()
    return rmse(te.rating, model.fit(train).predict(te.user.to_numpy(), te.item.to_numpy()))


@pytest.mark.reference
@pytest.mark.realdata
def test_baseline_only_matches_surprise_on_ml100k_5_folds():
    """Same five folds for both libraries: ALS within 0.003 per fold (it is exact up to float
    rounding), SGD too; the 5-fold means land on the issue's figures."""
    surprise = pytest.importorskip("surprise")
    data = _ml100k()
    fold = np.random.default_rng(0).permutation(data.nnz) % 5
    ours_als, ref_als = [], []
    for f in range(5):
        train, test = data.subset(fold != f), data.subset(fold == f)
        ours_als.append(_ours_rmse(BaselineOnly(), train, test))
        ref_als.append(_surprise_rmse(surprise.BaselineOnly(verbose=False), train, test))
        assert abs(ours_als[-1] - ref_als[-1]) < 0.003
        if f == 0:
            ours = _ours_rmse(BaselineOnly(method="sgd"), train, test)
            ref = _surprise_rmse(surprise.BaselineOnly(bsl_options={"method": "sgd"}, verbose=False),
                                 train, test)
            assert abs(ours - ref) < 0.003
    assert np.mean(ours_als) == pytest.approx(0.944, abs=0.003)


@pytest.mark.reference
@pytest.mark.realdata
def test_random_rmse_on_ml100k():
    """NormalPredictor's RMSE on ML-100K is 1.52 ± 0.01 (Surprise measured 1.5189 on 5 folds)."""
    data = _ml100k()
    fold = np.random.default_rng(0).permutation(data.nnz) % 5
    scores = [_ours_rmse(Random(random_state=f), data.subset(fold != f), data.subset(fold == f))
              for f in range(5)]
    assert np.mean(scores) == pytest.approx(1.52, abs=0.01)


# ---------------------------------------------------------------------- the contract can fail
class _NoSelf(MostPopular):
    def fit(self, train, **kw):
        super().fit(train, **kw)


class _BatchDependent(MostPopular):
    def _score(self, users, history=None, fallbacks=None):
        # row j of a batch is shifted by j * item index: single calls see j = 0 only
        return super()._score(users, history, fallbacks) + np.arange(users.size)[:, None] * np.arange(self.n_items_)


class _IgnoresSeed(RandomRanker):
    def _fit(self, train, **_):
        self.seed_ = int(np.random.default_rng().integers(0, 2**62))


class _LosesState(MostPopular):
    def _fit(self, train, **kw):
        super()._fit(train, **kw)
        self.boost = np.arange(self.n_items_, dtype=np.float32)  # not saved: no trailing _

    def _score(self, users, history=None, fallbacks=None):
        return super()._score(users, history, fallbacks) + self.boost


class _Mutates(MostPopular):
    def _score(self, users, history=None, fallbacks=None):
        self.calls_ = getattr(self, "calls_", 0) + 1  # state written while answering a query
        return super()._score(users, history, fallbacks)


@pytest.mark.parametrize("broken, message", [
    (_NoSelf, "must return self"),
    (_BatchDependent, "batch and single"),
    (_IgnoresSeed, "same seed"),
    (_LosesState, "load returned"),  # an unregistered subclass cannot round-trip
    (_Mutates, "recommend (changed the model's attributes|mutated)"),
])
def test_contract_catches_broken_models(broken, message, tmp_path):
    with pytest.raises((AssertionError, AttributeError), match=message):
        check_model_contract(broken, contract_data(), tmp_path=tmp_path)


def test_most_popular_partial_fit_equals_refit_and_grows_the_maps():
    """INCREMENTAL: absorbing new interactions (new users and items too) equals a refit."""
    old = Interactions.from_arrays(["a", "a", "b"], [1, 2, 2], timestamps=[0.0, 10.0, 20.0])
    new = Interactions.from_arrays(["b", "c", "c"], [3, 3, 1], timestamps=[30.0, 40.0, 50.0])
    both = Interactions.from_arrays(["a", "a", "b", "b", "c", "c"], [1, 2, 2, 3, 3, 1],
                                    timestamps=[0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    for params in ({}, {"recency_half_life": 15.0}):
        grown = MostPopular(**params).fit(old).partial_fit(new)
        refit = MostPopular(**params).fit(both)
        assert grown.item_map_.raw.tolist() == [1, 2, 3] and grown.user_map_.raw.tolist() == ["a", "b", "c"]
        np.testing.assert_allclose(grown.item_popularity_, refit.item_popularity_, rtol=1e-6)
        assert grown.recommend(["zz"], k=3).items.tolist() == refit.recommend(["zz"], k=3).items.tolist()
    with pytest.raises(TypeError, match="no INCREMENTAL capability"):
        BaselineOnly().fit(old).partial_fit(new)
