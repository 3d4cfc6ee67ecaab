"""The Spark data path: ids mapped on the cluster equal recforge's maps; Parquet round trips;
the session binds to 127.0.0.1."""

import os

import numpy as np
import pandas as pd

from recforge.data import Interactions
from recforge.scale.spark import (
    index_interactions,
    load_parquet,
    save_parquet,
    to_interactions,
    to_spark,
)


def small() -> Interactions:
    rng = np.random.default_rng(0)
    users = rng.integers(0, 40, 400) * 7 + 3
    items = rng.integers(0, 60, 400) * 11 - 50  # negative ids too
    values = rng.integers(1, 6, 400).astype(float)
    return Interactions.from_arrays(users, items, values, timestamps=np.arange(400.0))


def test_session_binds_to_localhost(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.ui.enabled") == "false"
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_ids_mapped_on_the_cluster_equal_recforge_maps(spark):
    data = small()
    raw = spark.createDataFrame(data.to_dataframe().rename(columns={"rating": "value"}))
    idx = index_interactions(raw)
    assert idx.user_map == data.user_map and idx.item_map == data.item_map
    assert idx.rating_scale == (1.0, 5.0) and idx.kind == "explicit"
    back = to_interactions(idx)
    np.testing.assert_array_equal(back.users, data.users)
    np.testing.assert_array_equal(back.items, data.items)
    np.testing.assert_array_equal(back.values, data.values)
    np.testing.assert_array_equal(back.timestamps, data.timestamps)
    # the frame's own inner columns agree with the maps
    pdf = idx.frame.toPandas()
    np.testing.assert_array_equal(data.user_map.to_inner(pdf["user"].to_numpy()), pdf["user_idx"])
    np.testing.assert_array_equal(data.item_map.to_inner(pdf["item"].to_numpy()), pdf["item_idx"])


def test_text_ids_in_code_point_order(spark):
    users = ["b", "a", "Z", "é", "ab", "a"]
    items = ["x1", "x10", "x2", "Ω", "x1", "x2"]
    data = Interactions.from_arrays(users, items)
    raw = spark.createDataFrame(pd.DataFrame({"user": users, "item": items}))
    idx = index_interactions(raw, value=None)
    assert idx.kind == "implicit"
    assert idx.user_map == data.user_map and idx.item_map == data.item_map


def test_given_maps_and_unknown_ids(spark):
    data = small()
    raw = spark.createDataFrame(pd.DataFrame({"user": [3, 3, 999], "item": [-50, 12345, -50],
                                              "value": [1.0, 2.0, 3.0]}))
    kept = index_interactions(raw, user_map=data.user_map, item_map=data.item_map,
                              unknown="keep").frame.toPandas().sort_values(["user", "item"])
    assert kept["user_idx"].tolist() == [0, 0, -1]
    assert kept["item_idx"].tolist() == [0, -1, 0]
    dropped = index_interactions(raw, user_map=data.user_map, item_map=data.item_map)
    assert dropped.frame.count() == 1


def test_parquet_round_trip(spark, tmp_path):
    data = small()
    save_parquet(data, tmp_path / "local")
    back = load_parquet(tmp_path / "local")
    assert back.user_map == data.user_map and back.item_map == data.item_map
    np.testing.assert_array_equal(back.values, data.values)
    # the same directory read by Spark keeps the maps; written back by Spark, read locally
    idx = load_parquet(tmp_path / "local", spark)
    assert idx.user_map == data.user_map and idx.frame.count() == data.nnz
    save_parquet(idx, tmp_path / "spark")
    again = load_parquet(tmp_path / "spark")
    np.testing.assert_array_equal(again.items, data.items)
    np.testing.assert_array_equal(again.timestamps, data.timestamps)
    assert to_spark(spark, data).frame.count() == data.nnz
