"""User features, context features and the FeatureSpec: encodings, OOV counts, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recforge.data import (
    FeatureSpec,
    IdMap,
    Interactions,
    ItemFeatures,
    UserFeatures,
    context_features,
)
from recforge.data.feature_spec import item_columns, tokenize


def _data():
    """4 users (u0..u3, u3 without interactions), 3 items (10, 11, 12; 12 never rated)."""
    users = IdMap(np.array(["u0", "u1", "u2", "u3"]))
    items = IdMap(np.array([10, 11, 12]))
    # 2024-01-01 was a Monday; 13:00 UTC, then 1.5 days later, then 25 h later
    t0 = 1704114000.0
    inter = Interactions(np.array([0, 0, 1, 2]), np.array([0, 1, 0, 1]), np.array([5, 3, 4, 1.0]),
                         user_map=users, item_map=items,
                         timestamps=np.array([t0, t0 + 1.5 * 86400, t0, t0 + 90000]))
    uf = UserFeatures.from_dataframe(pd.DataFrame(
        {"age": [24.0, 53.0, 24.0, 70.0], "gender": ["M", "F", "M", "X"], "income": [1.0, 2.0, 3.0, np.nan]},
        index=["u0", "u1", "u2", "u3"]), users, categorical=["gender", "age"], numeric=["income"])
    itf = ItemFeatures.from_dataframe(pd.DataFrame(
        {"item": [10, 11, 12], "title": ["Toy Story (1995)", "Heat", "New Film"],
         "genres": ["Animation|Comedy", "Action", "Horror"], "year": [1995, 1995, 2024]}),
        items, title="title", categorical={"genres": "|"}, numeric=["year"])
    return inter, uf, itf


def test_user_features_align_and_infer_kinds():
    users = IdMap(np.array([3, 1, 2]))
    df = pd.DataFrame({"age": [30, 40, 50, 60], "job": ["a", "b", None, "c"]}, index=[1, 2, 3, 9])
    uf = UserFeatures.from_dataframe(df, users)
    assert uf.unmatched == 1  # user 9 is not in the map
    assert list(uf.numeric) == ["age"] and list(uf.categorical) == ["job"]
    assert uf.numeric["age"].tolist() == [50, 30, 40]
    assert uf.categorical["job"].tolist() == ["", "a", "b"]
    assert uf.has("job").tolist() == [False, True, True]
    with pytest.raises(ValueError, match="no column 'zip'"):
        UserFeatures.from_dataframe(df, users, categorical=["zip"])


def test_context_features_hour_weekday_and_recency():
    inter, _, _ = _data()
    ctx = context_features(inter)
    # stored order is (user, item): u0 i10 (Mon 13h), u0 i11 (Wed 01h), u1 i10, u2 i11
    assert ctx["hour"].tolist() == [13, 1, 13, 14]
    assert ctx["weekday"].tolist() == [0, 2, 0, 1]
    rec = ctx["days_since_previous"]
    assert np.isnan(rec[0]) and rec[1] == pytest.approx(1.5) and np.isnan(rec[2]) and np.isnan(rec[3])
    # a later event of u1, with the training part as history: 2 days after u1's event
    later = Interactions(np.array([1]), np.array([1]), np.array([3.0]), user_map=inter.user_map,
                         item_map=inter.item_map, timestamps=np.array([inter.timestamps[2] + 2 * 86400]))
    assert context_features(later, history=inter)["days_since_previous"].tolist() == [pytest.approx(2.0)]
    untimed = Interactions(np.array([0]), np.array([0]), np.array([1.0]), user_map=inter.user_map,
                           item_map=inter.item_map)
    assert np.isnan(context_features(untimed)["hour"]).all()


def test_build_uses_training_entities_only():
    inter, uf, itf = _data()
    spec = FeatureSpec.build(inter, user_features=uf, item_features=itf, context=context_features(inter),
                             n_buckets=2)
    names = [f.name for f in spec.fields]
    assert names == ["user_id", "user.gender", "user.age", "user.income", "item_id", "item.genres",
                     "item.year", "item.title", "context.hour", "context.weekday",
                     "context.days_since_previous"]
    # u3 (gender X, age 70) and item 12 (Horror, 'new', 'film') have no training interaction
    assert spec.field("user.gender").vocab == ["F", "M"]
    assert spec.field("user.age").vocab == ["24", "53"]
    assert spec.field("item.genres").vocab == ["Action", "Animation", "Comedy"]
    assert spec.field("item.genres").width == 2
    assert spec.field("item.title").vocab == ["1995", "heat", "story", "toy"]
    assert spec.field("user_id").unseen_ids == [3] and spec.field("item_id").unseen_ids == [2]
    assert spec.field("user.income").boundaries == [2.0]  # median of 1, 2, 3
    # offsets tile one table
    sizes = [f.size for f in spec.fields]
    assert [f.offset for f in spec.fields] == np.concatenate(([0], np.cumsum(sizes)[:-1])).tolist()
    assert spec.n_features == sum(sizes)
    assert spec.width("item") == 1 + 2 + 1 + 8


def test_encoding_values_and_counts():
    inter, uf, itf = _data()
    spec = FeatureSpec.build(inter, user_features=uf, item_features=itf, n_buckets=2,
                             columns={"user.income": "numeric"})
    enc = spec.encode_users(uf)
    g, a, inc = spec.field("user.gender"), spec.field("user.age"), spec.field("user.income")
    # u3: unseen id, unseen gender X and age 70 -> OOV rows (0), counted; income missing
    assert enc.idx[3].tolist() == [0, g.offset, a.offset, inc.offset]
    assert enc.oov == {"user_id": 1, "user.gender": 1, "user.age": 1, "user.income": 0}
    assert enc.missing["user.income"] == 1 and enc.val[3, 3] == 0.0
    assert enc.idx[1].tolist() == [2, g.offset + 1, a.offset + 2, inc.offset]  # u1: F, 53
    mean, std = np.mean([1, 2, 3]), np.std([1, 2, 3])
    assert enc.val[:3, 3] == pytest.approx((np.array([1, 2, 3]) - mean) / std)
    items = spec.encode_items(itf)
    gen = spec.field("item.genres")
    # item 10: Animation, Comedy -> mean pooling 1/2 each
    assert items.idx[0, 1:3].tolist() == [gen.offset + 2, gen.offset + 3]
    assert items.val[0, 1:3].tolist() == [0.5, 0.5]
    # item 11: one genre, second slot unused (value 0); item 12: Horror is OOV
    assert items.val[1, 1:3].tolist() == [1.0, 0.0]
    assert items.idx[2, 1] == gen.offset and items.oov["item.genres"] == 1
    year = spec.field("item.year")
    assert items.idx[:, 3].tolist() == [year.offset + 2, year.offset + 2, year.offset + 2]


def test_unseen_values_at_query_time_never_crash():
    inter, uf, itf = _data()
    spec = FeatureSpec.build(inter, user_features=uf, item_features=itf)
    table = pd.DataFrame({"gender": ["M", "Q", None], "age": [24, 99, np.nan], "income": ["x", 1, 2]})
    enc = spec.encode("user", table, ids=np.array([0, -1, 17]))
    assert enc.oov == {"user_id": 2, "user.gender": 1, "user.age": 1, "user.income": 0}
    assert enc.missing == {"user_id": 0, "user.gender": 1, "user.age": 1, "user.income": 1}
    # multi-valued cells as text, and a table without the column at all
    items = spec.encode("item", {"genres": ["Action|Western", ""]}, ids=np.array([1, 2]))
    assert items.oov["item.genres"] == 1 and items.missing["item.genres"] == 1
    assert items.missing["item.title"] == 2
    with pytest.raises(ValueError, match="has 2 rows, expected 3"):
        spec.encode("user", {"gender": ["M", "F"]}, ids=np.array([0, 1, 2]))


def test_round_trip_through_json(tmp_path):
    inter, uf, itf = _data()
    ctx = context_features(inter)
    spec = FeatureSpec.build(inter, user_features=uf, item_features=itf, context=ctx,
                             columns={"user.income": "numeric", "item.title": None})
    path = spec.save(tmp_path / "spec.json")
    text = path.read_text()
    json.loads(text)  # plain JSON
    again = FeatureSpec.load(path)
    assert again == spec and again.n_features == spec.n_features
    for src, a, b in (("user", spec.encode_users(uf), again.encode_users(uf)),
                      ("item", spec.encode_items(itf), again.encode_items(itf)),
                      ("context", spec.encode_context(ctx, len(inter)), again.encode_context(ctx, len(inter)))):
        np.testing.assert_array_equal(a.idx, b.idx, err_msg=src)
        np.testing.assert_array_equal(a.val, b.val, err_msg=src)
        assert a.oov == b.oov and a.missing == b.missing
    with pytest.raises(ValueError, match="not a feature spec"):
        FeatureSpec.from_dict({"format": "x"})


def test_bad_arguments_are_named():
    inter, uf, itf = _data()
    with pytest.raises(ValueError, match="columns: no field"):
        FeatureSpec.build(inter, user_features=uf, columns={"user.nope": None})
    with pytest.raises(ValueError, match="n_buckets"):
        FeatureSpec.build(inter, n_buckets=0)
    with pytest.raises(ValueError, match="unknown kind .onehot."):
        FeatureSpec.build(inter, user_features=uf, columns={"user.gender": "onehot"})
    with pytest.raises(ValueError, match="multi-valued"):
        FeatureSpec.build(inter, item_features=itf, columns={"item.genres": "embedding"})
    assert item_columns(None) == {}
    assert tokenize("Toy Story (1995): toy!") == ["toy", "story", "1995"]


def test_ml100k_user_item_and_context_fields():
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ml-100k"
    if not folder.is_dir():
        pytest.skip("ML-100K not available in ../shared/data")
    from recforge.data import load

    ds = load(str(folder))
    assert ds.user_features.loc[1, "zip_prefix"] == "857"
    uf = ds.aligned_user_features()
    spec = FeatureSpec.build(ds.interactions, user_features=uf, item_features=ds.item_features,
                             context=context_features(ds.interactions))
    names = [f.name for f in spec.fields]
    for name in ("user.age", "user.gender", "user.occupation", "user.zip_prefix", "item.genres",
                 "context.hour", "context.weekday", "context.days_since_previous"):
        assert name in names
    enc = spec.encode_users(uf)
    assert enc.idx.shape == (943, spec.width("user")) and sum(enc.oov.values()) == 0
