"""SurpriseAlgorithm: contract, parity with Surprise run directly, ids, fallbacks, errors."""

import sys

import numpy as np
import pytest

from recforge.models.base import Recommender, clone, get_model_class
from recforge.models.baseline import BaselineOnly

from .contract import check_model_contract, contract_data

surprise = pytest.importorskip("surprise")

from recforge.models.surprise_wrapper import SurpriseAlgorithm  # noqa: E402


@pytest.mark.parametrize("algo, params", [
    ("BaselineOnly", {"verbose": False}),
    ("SVD", {"n_factors": 4, "n_epochs": 5, "random_state": 0}),
    ("KNNBasic", {"k": 3, "verbose": False}),
])
def test_contract(algo, params, tmp_path):
    check_model_contract(lambda: SurpriseAlgorithm(algo, params), contract_data(),
                         tmp_path=tmp_path, atol=1e-6)


def test_registered_by_name():
    cls = get_model_class("SurpriseAlgorithm")
    assert cls is SurpriseAlgorithm
    assert cls(algo="SVD", params={"n_factors": 3}).get_params() == {"algo": "SVD",
                                                                   "params": {"n_factors": 3}}


def test_matches_surprise_run_directly():
    """Same data through Surprise's own Dataset/Trainset and through the wrapper."""
    data = contract_data()
    df = data.to_dataframe()
    reader = surprise.Reader(rating_scale=data.rating_scale)
    trainset = surprise.Dataset.load_from_df(df[["user", "item", "rating"]], reader).build_full_trainset()
    ref = surprise.SVD(n_factors=3, n_epochs=7, random_state=1).fit(trainset)
    ours = SurpriseAlgorithm("SVD", {"n_factors": 3, "n_epochs": 7, "random_state": 1}).fit(data)
    users = np.repeat(data.user_map.raw[:8], data.n_items)
    items = np.tile(data.item_map.raw, 8)
    expected = [ref.predict(u, i).est for u, i in zip(users.tolist(), items.tolist(), strict=True)]
    np.testing.assert_allclose(ours.predict(users, items), expected, rtol=1e-12)


def test_baseline_only_wrapped_equals_native():
    data = contract_data()
    wrapped = SurpriseAlgorithm("BaselineOnly", {"verbose": False}).fit(data)
    native = BaselineOnly().fit(data)
    u = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_allclose(wrapped.score_inner(u), native.score_inner(u), atol=1e-5)


def test_impossible_predictions_fall_back_and_are_counted():
    data = contract_data()
    m = SurpriseAlgorithm("KNNBasic", {"verbose": False}).fit(data)
    # user u8 has no training ratings: KNN cannot predict -> training mean, counted
    pred, fallbacks = m.predict(["u8", "u8"], [100, 101], return_fallbacks=True)
    np.testing.assert_allclose(pred, data.values.astype(np.float64).mean())
    assert fallbacks["surprise: prediction impossible (training mean)"] == 2


def test_instance_is_copied_and_not_saveable(tmp_path):
    algo = surprise.BaselineOnly(verbose=False)
    m = SurpriseAlgorithm(algo).fit(contract_data())
    assert m.algo_ is not algo and not hasattr(algo, "trainset")  # caller's instance untouched
    twin = clone(m).fit(contract_data())
    assert twin.algo_ is not m.algo_
    with pytest.raises(TypeError):
        m.save(tmp_path / "m")


def test_custom_algorithm_by_import_path(tmp_path):
    m = SurpriseAlgorithm("surprise.prediction_algorithms.random_pred:NormalPredictor").fit(contract_data())
    assert np.isfinite(m.predict(["u1"], [100])).all()
    loaded = Recommender.load(SurpriseAlgorithm("surprise:SlopeOne").fit(contract_data()).save(tmp_path / "s"))
    assert loaded.algo == "surprise:SlopeOne"


def test_bad_names_and_missing_dependency(monkeypatch):
    with pytest.raises(ValueError, match="no algorithm 'NotAnAlgo'.*SVD"):
        SurpriseAlgorithm("NotAnAlgo").fit(contract_data())
    with pytest.raises(TypeError, match="not a surprise AlgoBase"):
        SurpriseAlgorithm("surprise:Reader").fit(contract_data())
    with pytest.raises(ValueError, match="cannot import"):
        SurpriseAlgorithm("no_such_module:Algo").fit(contract_data())
    monkeypatch.setitem(sys.modules, "surprise", None)
    with pytest.raises(ImportError, match="pip install scikit-surprise"):
        SurpriseAlgorithm("SVD").fit(contract_data())
