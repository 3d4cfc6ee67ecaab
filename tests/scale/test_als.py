"""SparkALS returns an ordinary recforge factor model: its scores are MLlib's, it saves, loads
and is served by the HTTP service."""

import numpy as np
import pandas as pd
import pytest

from recforge.data import Interactions
from recforge.models import load_model
from recforge.models.factorization.als import ALS
from recforge.models.factorization.svd import PMF
from recforge.scale.spark import SparkALS, index_interactions


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 60, 900) + 100
    items = rng.integers(0, 80, 900) * 3
    values = rng.integers(1, 6, 900).astype(float)
    return Interactions.from_arrays(users, items, values, duplicates="last")


@pytest.fixture(scope="module")
def frame(spark, data):
    return spark.createDataFrame(data.to_dataframe().rename(columns={"rating": "value"}))


def mllib_predictions(est, frame, data):
    """MLlib's own predictions for every training pair, by raw ids."""
    idx = est.data_.frame
    pred = est.model_.transform(idx).select("user", "item", "prediction").toPandas()
    return pred["user"].to_numpy(), pred["item"].to_numpy(), pred["prediction"].to_numpy()


@pytest.mark.parametrize("implicit", [True, False])
def test_scores_are_mllib_scores(frame, data, implicit, tmp_path):
    est = SparkALS(factors=4, iterations=3, implicit=implicit, regularization=0.05, blocks=2)
    model = est.fit(frame)
    assert isinstance(model, ALS if implicit else PMF)
    assert model.user_map_ == data.user_map and model.item_map_ == data.item_map
    np.testing.assert_array_equal(model.item_popularity_, data.item_counts)
    users, items, expected = mllib_predictions(est, frame, data)
    u = data.user_map.to_inner(users)
    i = data.item_map.to_inner(items)
    ours = model.score_inner(u)[np.arange(u.size), i]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    if not implicit:
        assert model.rating_scale_ == [1.0, 5.0]
        np.testing.assert_allclose(model.predict(users, items, clip=False), expected,
                                   rtol=1e-4, atol=1e-5)
    # saved and loaded like any recforge model, same lists
    loaded = load_model(model.save(tmp_path / "m"))
    a = model.recommend(users=data.user_map.raw[:5], k=5, history=data)
    b = loaded.recommend(users=data.user_map.raw[:5], k=5, history=data)
    np.testing.assert_array_equal(a.items, b.items)


def test_keep_feedback_and_bad_parameters(spark, frame, data):
    model = SparkALS(factors=2, iterations=1, keep_feedback=True, blocks=2).fit(
        index_interactions(frame))
    assert model.feedback_.nnz == data.nnz
    np.testing.assert_allclose(model.feedback_.toarray(), data.csr.toarray())
    with pytest.raises(ValueError, match="factors"):
        SparkALS(factors=0).fit(frame)
    with pytest.raises(ValueError, match="alpha"):
        SparkALS(alpha=-1.0).fit(frame)


def test_served_by_the_service(frame, data, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("prometheus_client")
    from fastapi.testclient import TestClient

    from recforge.serving import Settings, save_bundle
    from recforge.serving.app import create_app

    model = SparkALS(factors=4, iterations=3, blocks=2).fit(frame)
    root = tmp_path / "models"
    save_bundle(model, root / "spark-als", history=data)
    settings = Settings(models_root=str(root), store=str(tmp_path / "store.sqlite"),
                        model_dir="spark-als")
    client = TestClient(create_app(settings))
    user = int(data.user_map.raw[0])
    resp = client.get(f"/users/{user}/recommendations", params={"k": 5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "ALS" and body["fallback"] is None
    expected = model.recommend(users=[user], k=5, history=data).items[0]
    assert [int(e["item"]) for e in body["items"]] == [int(x) for x in expected]
    anon = client.post("/recommendations", json={"history": [int(data.item_map.raw[0])], "k": 3})
    assert anon.status_code == 200 and len(anon.json()["items"]) == 3
    assert pd.notna(body["items"][0]["score"])
