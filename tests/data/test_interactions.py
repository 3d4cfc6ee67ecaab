"""Interactions: construction, duplicate policies, bad input, sparse views, subsets, sequences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import DataError, IdMap, Interactions


def _log():
    """Three users, four items; (u1, i2) is rated twice (3 at t=20, then 5 at t=10 in row order)."""
    return pd.DataFrame({
        "user": ["u1", "u2", "u1", "u3", "u1", "u2"],
        "item": [2, 1, 4, 3, 2, 2],
        "rating": [3.0, 4.0, 1.0, 2.0, 5.0, 2.0],
        "timestamp": [20, 5, 7, 30, 10, 1],
    })


def test_from_dataframe_maps_sorts_and_keeps_values():
    x = Interactions.from_dataframe(_log(), duplicates="first")
    assert x.user_map.raw.tolist() == ["u1", "u2", "u3"] and x.item_map.raw.tolist() == [1, 2, 3, 4]
    assert x.shape == (3, 4) and x.nnz == 5 and len(x) == 5
    assert x.users.tolist() == [0, 0, 1, 1, 2] and x.items.tolist() == [1, 3, 0, 1, 2]
    assert x.users.dtype == np.int32 and x.values.dtype == np.float32
    assert x.kind == "explicit" and x.is_explicit and x.rating_scale == (1.0, 5.0)  # inferred
    assert x.drops.counts == {"duplicate (user, item) rows merged by 'first'": 1}


@pytest.mark.parametrize("policy, value, time", [
    ("last", 3.0, 20.0),   # latest by timestamp (t=20), not the later row (t=10)
    ("first", 5.0, 10.0),  # earliest by timestamp
    ("mean", 4.0, 20.0),
    ("sum", 8.0, 20.0),
    ("count", 2.0, 20.0),
])
def test_duplicate_policies(policy, value, time):
    x = Interactions.from_dataframe(_log(), duplicates=policy)
    u, i = x.user_map.to_inner(["u1"])[0], x.item_map.to_inner([2])[0]
    pos = np.flatnonzero((x.users == u) & (x.items == i))
    assert pos.size == 1
    assert x.values[pos[0]] == value and x.timestamps[pos[0]] == time
    assert sum(x.drops.counts.values()) == 1


def test_duplicates_without_time_follow_row_order():
    df = _log().drop(columns="timestamp")
    assert Interactions.from_dataframe(df, duplicates="last").values[0] == 5.0
    assert Interactions.from_dataframe(df, duplicates="first").values[0] == 3.0


def test_count_without_duplicates_sets_ones():
    df = _log().iloc[:4]
    x = Interactions.from_dataframe(df, duplicates="count")
    assert x.values.tolist() == [1.0] * 4 and not x.drops


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 5), st.integers(0, 9)),
                min_size=1, max_size=30),
       st.sampled_from(["last", "first", "mean", "sum", "count"]))
def test_duplicate_policies_against_pandas(rows, policy):
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    x = Interactions.from_dataframe(df, duplicates=policy)
    ordered = df.reset_index().sort_values(["user", "item", "timestamp", "index"])
    g = ordered.groupby(["user", "item"])
    expected = {"last": g.rating.last(), "first": g.rating.first(), "mean": g.rating.mean(),
                "sum": g.rating.sum(), "count": g.rating.size()}[policy]
    got = x.to_dataframe().set_index(["user", "item"]).rating
    assert np.allclose(got.to_numpy(), expected.to_numpy(dtype=float))
    assert got.index.tolist() == expected.index.tolist()
    assert x.drops.total == len(df) - len(expected)


@pytest.mark.parametrize("column, bad, reason", [
    ("user", None, "missing id"),
    ("item", np.nan, "missing id"),
    ("rating", "five", "non-numeric or NaN rating"),
    ("timestamp", "yesterday", "non-numeric or missing timestamp"),
])
def test_bad_values_raise_with_line_and_field(column, bad, reason):
    df = _log().astype(object)
    df.loc[3, column] = bad
    with pytest.raises(DataError) as err:
        Interactions.from_dataframe(df, source="ratings.csv", line_offset=1)
    e = err.value
    assert (e.path, e.line, e.field) == ("ratings.csv", 5, column)  # row 3 + header line + 1
    assert reason in str(e) and "ratings.csv, line 5, field" in str(e)


def test_rating_outside_declared_scale():
    df = _log()
    df.loc[2, "rating"] = 7
    with pytest.raises(DataError, match=r"outside the scale \[1, 5\]") as err:
        Interactions.from_dataframe(df, rating_scale=(1, 5))
    assert err.value.line == 3 and err.value.field == "rating"


def test_skip_counts_bad_rows_with_examples():
    df = _log().astype(object)
    df.loc[1, "rating"] = "n/a"
    df.loc[4, "user"] = None
    df.loc[5, "rating"] = 9
    x = Interactions.from_dataframe(df, on_error="skip", rating_scale=(1, 5), line_offset=1)
    assert x.nnz == 3  # six rows, three bad, no duplicate left
    assert x.drops.counts == {"rows with missing id in 'user'": 1,
                              "rows with non-numeric or NaN rating in 'rating'": 1,
                              "rows with rating outside the scale [1, 5] in 'rating'": 1}
    assert x.drops.examples["rows with missing id in 'user'"] == [6]
    assert x.drops.examples["rows with rating outside the scale [1, 5] in 'rating'"] == [7]


def test_given_maps_unknown_ids_raise_or_skip():
    users = IdMap(["u1", "u2"])
    with pytest.raises(DataError, match="'u3' is not in the given id map") as err:
        Interactions.from_dataframe(_log(), user_map=users)
    assert err.value.line == 4 and err.value.field == "user"
    x = Interactions.from_dataframe(_log(), user_map=users, on_error="skip")
    assert x.user_map is users and x.nnz == 4
    assert x.drops.counts["rows with ids unknown to the given id map"] == 1


def test_missing_columns_and_bad_arguments():
    with pytest.raises(DataError, match="missing column 'user_id'"):
        Interactions.from_dataframe(_log(), user="user_id")
    with pytest.raises(DataError, match="missing rating column"):
        Interactions.from_dataframe(_log().drop(columns="rating"), kind="explicit")
    with pytest.raises(ValueError, match="duplicates"):
        Interactions.from_dataframe(_log(), duplicates="max")
    with pytest.raises(ValueError, match="on_error"):
        Interactions.from_dataframe(_log(), on_error="ignore")


def test_implicit_without_rating_column():
    x = Interactions.from_dataframe(_log().drop(columns="rating"), duplicates="count")
    assert x.kind == "implicit" and x.rating_scale is None
    assert x.values.max() == 2.0 and x.values.sum() == 6


def test_datetime_timestamps():
    df = _log()
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="D", origin="2000-01-01")
    x = Interactions.from_dataframe(df)
    assert x.timestamps.min() == 946684800.0 + 86400


def test_constructor_validates():
    m = IdMap([1, 2])
    with pytest.raises(ValueError, match="one length"):
        Interactions([0, 1], [0], [1, 1], user_map=m, item_map=m)
    with pytest.raises(ValueError, match="user index"):
        Interactions([0, 2], [0, 1], [1, 1], user_map=m, item_map=m)
    with pytest.raises(ValueError, match="item index"):
        Interactions([0, 1], [0, -1], [1, 1], user_map=m, item_map=m)
    with pytest.raises(ValueError, match="timestamps"):
        Interactions([0, 1], [0, 1], [1, 1], timestamps=[1], user_map=m, item_map=m)
    with pytest.raises(ValueError, match="kind"):
        Interactions([0], [0], [1], user_map=m, item_map=m, kind="ratings")


@st.composite
def _dense(draw):
    n_users, n_items = draw(st.integers(1, 6)), draw(st.integers(1, 7))
    cells = draw(st.lists(st.integers(0, 5), min_size=n_users * n_items, max_size=n_users * n_items))
    return np.array(cells, dtype=np.float32).reshape(n_users, n_items)


@settings(max_examples=50, deadline=None)
@given(_dense())
def test_sparse_views_match_dense(dense):
    u, i = np.nonzero(dense)
    perm = np.random.default_rng(0).permutation(u.size)  # construction order must not matter
    x = Interactions(u[perm], i[perm], dense[u, i][perm], user_map=IdMap(np.arange(dense.shape[0])),
                     item_map=IdMap(np.arange(dense.shape[1])))
    assert x.csr.shape == dense.shape and np.array_equal(x.csr.toarray(), dense)
    assert x.csr.has_sorted_indices and x.csr.dtype == np.float32
    assert np.array_equal(x.item_csr.toarray(), dense.T)
    assert np.array_equal(x.user_counts, (dense > 0).sum(1))
    assert np.array_equal(x.item_counts, (dense > 0).sum(0))
    for user in range(dense.shape[0]):
        items, values = x.user_items(user)
        assert items.tolist() == np.flatnonzero(dense[user]).tolist()
        assert values.tolist() == dense[user][dense[user] > 0].tolist()
    for item in range(dense.shape[1]):
        users, values = x.item_users(item)
        assert users.tolist() == np.flatnonzero(dense[:, item]).tolist()
    if x.nnz:
        assert x.global_mean == pytest.approx(dense[dense > 0].mean())


def test_subset_shares_maps_and_keeps_order():
    x = Interactions.from_dataframe(_log())
    part = x.subset(np.array([4, 0, 2]), name="test")
    assert part.user_map is x.user_map and part.item_map is x.item_map
    assert part.name == "test" and part.n_users == 3 and part.n_items == 4
    assert part.users.tolist() == x.users[[0, 2, 4]].tolist()
    assert part.timestamps.tolist() == x.timestamps[[0, 2, 4]].tolist()
    mask = x.values > 2
    assert x.subset(mask).nnz == mask.sum()
    with pytest.raises(ValueError, match="mask"):
        x.subset(np.array([True, False]))
    assert part.csr.shape == x.csr.shape  # same index space


def test_user_sequences_in_time_order_ties_by_item():
    df = pd.DataFrame({"user": [1, 1, 1, 2, 2, 1], "item": [5, 3, 9, 1, 2, 4],
                       "timestamp": [30, 10, 20, 2, 1, 10]})
    x = Interactions.from_dataframe(df)
    items, offsets = x.user_sequences()
    raw = x.item_map.to_raw(items)
    assert offsets.tolist() == [0, 4, 6]
    assert raw[offsets[0]:offsets[1]].tolist() == [3, 4, 9, 5]  # t=10 (3, 4 tied: by item), 20, 30
    assert raw[offsets[1]:offsets[2]].tolist() == [2, 1]
    no_time = Interactions.from_dataframe(df.drop(columns="timestamp"))
    items, offsets = no_time.user_sequences()
    assert no_time.item_map.to_raw(items[:4]).tolist() == [3, 4, 5, 9]  # item order


def test_to_dataframe_round_trip_and_summary():
    x = Interactions.from_dataframe(_log())
    df = x.to_dataframe()
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    y = Interactions.from_dataframe(df)
    assert np.array_equal(x.values, y.values) and x.user_map == y.user_map
    s = x.summary()
    assert s["interactions"] == 5 and s["users"] == 3 and s["items"] == 4
    assert s["density"] == pytest.approx(5 / 12) and s["rating_values"] == [1.0, 2.0, 3.0, 4.0]
    assert s["dropped"]["counts"] == {"duplicate (user, item) rows merged by 'last'": 1}
    assert "nnz=5" in repr(x)


def test_from_arrays():
    x = Interactions.from_arrays(["a", "b", "a"], [1, 1, 2])
    assert x.kind == "implicit" and x.nnz == 3 and x.timestamps is None
    y = Interactions.from_arrays([1, 2], [3, 4], [4.5, 2.0], timestamps=[1, 2])
    assert y.is_explicit and y.rating_scale == (2.0, 4.5) and y.has_timestamps


def test_from_dataframe_ids_beyond_int64_stay_distinct():
    df = pd.DataFrame({"user": np.array([1e30, 2e30, 99999999999999999999], dtype=object),
                       "item": [1, 2, 3], "rating": [5.0, 4.0, 3.0]})
    inter = Interactions.from_dataframe(df)
    assert inter.n_users == 3
    assert sorted(inter.user_map.raw.tolist()) == ["1e+30", "2e+30", "99999999999999999999"]
    assert inter.item_map.raw.dtype == np.int64
    assert inter.drops.notes == {"rows with ids in 'user' kept as text (mixed types)": 3}
    # a float column of huge values: no wrap-around to one int64 value
    floats = pd.DataFrame({"user": [1e30, 2e30, 1e20], "item": [1, 2, 3]})
    inter = Interactions.from_dataframe(floats, rating=None)
    assert inter.n_users == 3
    assert inter.drops.notes == {"rows with ids in 'user' kept as text (floats beyond int64)": 3}
    ints = pd.DataFrame({"user": [3, 1, 2], "item": [1, 2, 3]})
    inter = Interactions.from_dataframe(ints, rating=None)
    assert inter.user_map.raw.dtype == np.int64 and not inter.drops.notes
