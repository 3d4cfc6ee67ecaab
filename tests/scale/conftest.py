"""Shared Spark fixtures: one local[2] session reused by every module (the standalone-cluster
module, which runs last, stops it), and the ML-100K-sized data and models of the equality
tests (real ML-100K when ../shared/data has it, else the synthetic generator at its size)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - depends on the machine
    pytest.skip("Spark needs Java on the PATH", allow_module_level=True)

from recforge.data import load  # noqa: E402
from recforge.data.synthetic import generate_ratings  # noqa: E402
from recforge.scale.spark import spark_session  # noqa: E402

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ML100K = SHARED / "ml-100k" if (SHARED / "ml-100k").exists() else None


def local_session():
    """The local[2] session (created once; reused while it runs)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and active.sparkContext.master == "local[2]":
        return active
    if active is not None:
        active.stop()
    return spark_session("local[2]", app_name="recforge-tests", partitions=4,
                         conf={"spark.driver.memory": "1g"})


@pytest.fixture(scope="module")
def spark():
    return local_session()


@pytest.fixture(scope="session")
def ml100k():
    """ML-100K ratings, or the synthetic generator at ML-100K's size (943 x 1682 x 100k)."""
    if ML100K is not None:
        return load(ML100K).interactions
    return generate_ratings(seed=0).interactions


@pytest.fixture(scope="session")
def saved_models(ml100k, tmp_path_factory):
    """A k-NN and a factor model fitted on ``ml100k``, saved, with the single-process top-10 of
    every user (their training rows as history): {"knn": (dir, Recommendations), "als": ...}."""
    from recforge.models.factorization.als import ALS
    from recforge.models.neighborhood.topn import ItemKNNTopN

    root = tmp_path_factory.mktemp("scale-models")
    users = ml100k.user_map.raw
    out = {}
    for name, model in (("knn", ItemKNNTopN(k=20)),
                        ("als", ALS(factors=16, iterations=3, random_state=0, num_threads=2))):
        model.fit(ml100k)
        path = model.save(root / name)
        out[name] = (path, model.recommend(users=users, k=10, history=ml100k))
    return out


def lists_by_user(frame) -> dict:
    """{user: (items, scores)} of a collected recommend_batch result."""
    df = frame.toPandas().sort_values(["user", "rank"])
    return {u: (g["item"].to_numpy(), g["score"].to_numpy()) for u, g in df.groupby("user")}


def assert_same_lists(got: dict, users: np.ndarray, ref) -> None:
    """Every user's Spark list equals the single-process list (items exactly, scores to
    float32 rounding)."""
    assert len(got) == len(users)
    for j, u in enumerate(users):
        keep = np.asarray(ref.inner[j]) >= 0
        items, scores = got[u]
        np.testing.assert_array_equal(items, ref.items[j][keep].astype(items.dtype),
                                      err_msg=f"user {u}")
        np.testing.assert_allclose(scores, ref.scores[j][keep], rtol=1e-6, atol=1e-7)
