"""SessionEvents: construction, ordering, offsets, selection, unknown items, bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import DataError, IdMap, SessionEvents


def _df():
    # session "b" listed first and out of time order; ties in time keep row order
    return pd.DataFrame({
        "session": ["b", "a", "b", "a", "b", "c"],
        "item": [30, 10, 20, 20, 10, 30],
        "timestamp": [5.0, 1.0, 2.0, 1.0, 9.0, 0.0],
        "user": ["u2", "u1", "u2", "u1", "u2", "u3"],
    })


def test_from_dataframe_sorts_by_session_then_time():
    se = SessionEvents.from_dataframe(_df(), user="user")
    assert se.session_map.raw.tolist() == ["a", "b", "c"]
    assert se.item_map.raw.tolist() == [10, 20, 30]
    assert se.offsets.tolist() == [0, 2, 5, 6]
    assert se.item_map.to_raw(se.session(0)).tolist() == [10, 20]  # tie at t=1: row order
    assert se.item_map.to_raw(se.session(1)).tolist() == [20, 30, 10]
    assert se.timestamps.tolist() == [1, 1, 2, 5, 9, 0]
    assert se.users.tolist() == ["u1", "u2", "u3"]
    assert se.lengths.tolist() == [2, 3, 1]
    assert se.session_of_event.tolist() == [0, 0, 1, 1, 1, 2]
    assert (se.n_sessions, se.n_events, se.n_items, len(se)) == (3, 6, 3, 3)


def test_start_times_and_order_by_start():
    se = SessionEvents.from_dataframe(_df())
    assert se.start_times.tolist() == [1.0, 2.0, 0.0]
    assert se.order_by_start().tolist() == [2, 0, 1]


def test_select_keeps_events_and_offsets():
    se = SessionEvents.from_dataframe(_df(), user="user")
    sub = se.select([2, 1])  # given unsorted: returned in raw-id order
    assert sub.session_map.raw.tolist() == ["b", "c"]
    assert sub.offsets.tolist() == [0, 3, 4]
    assert sub.item_map is se.item_map
    assert sub.item_map.to_raw(sub.items).tolist() == [20, 30, 10, 30]
    assert sub.users.tolist() == ["u2", "u3"]
    empty = se.select([])
    assert empty.n_sessions == 0 and empty.n_events == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(0, 20)), min_size=1,
                max_size=40), st.data())
def test_round_trip_and_select_against_pandas(rows, data):
    df = pd.DataFrame(rows, columns=["session", "item", "timestamp"])
    se = SessionEvents.from_dataframe(df)
    expected = df.sort_values(["session", "timestamp"], kind="stable").reset_index(drop=True)
    got = se.to_dataframe()
    assert got["session"].tolist() == expected["session"].tolist()
    assert got["item"].tolist() == expected["item"].tolist()
    assert got["timestamp"].tolist() == expected["timestamp"].astype(float).tolist()
    chosen = data.draw(st.lists(st.integers(0, se.n_sessions - 1), unique=True))
    sub = se.select(chosen)
    keep = expected["session"].isin(se.session_map.raw[chosen])
    assert sub.to_dataframe()["item"].tolist() == expected.loc[keep, "item"].tolist()


def test_unknown_items_raise_or_are_dropped_and_counted():
    train_map = IdMap([10, 20])
    with pytest.raises(DataError) as err:
        SessionEvents.from_dataframe(_df(), item_map=train_map, source="test.tsv", line_offset=1)
    assert err.value.line == 2 and err.value.field == "item" and "30" in str(err.value)
    se = SessionEvents.from_dataframe(_df(), item_map=train_map, unknown_items="drop", line_offset=1)
    assert se.item_map is train_map
    assert se.n_events == 4 and se.session_map.raw.tolist() == ["a", "b"]  # "c" had only item 30
    assert se.drops.counts == {"events on items unknown to the item map": 2}
    assert se.drops.examples["events on items unknown to the item map"] == [2, 7]


def test_bad_input_names_line_and_field():
    df = _df().astype({"timestamp": object})
    df.loc[3, "timestamp"] = "later"
    with pytest.raises(DataError) as err:
        SessionEvents.from_dataframe(df, source="clicks.csv", line_offset=1)
    assert (err.value.path, err.value.line, err.value.field) == ("clicks.csv", 5, "timestamp")
    assert "clicks.csv, line 5, field 'timestamp'" in str(err.value)
    df = _df()
    df.loc[1, "session"] = None
    with pytest.raises(DataError) as err:
        SessionEvents.from_dataframe(df)
    assert err.value.line == 2 and err.value.field == "session"
    with pytest.raises(DataError, match="missing column 'Time'"):
        SessionEvents.from_dataframe(_df(), timestamp="Time")


def test_datetime_timestamps_become_seconds():
    df = pd.DataFrame({"session": [1, 1], "item": [1, 2],
                       "timestamp": pd.to_datetime(["2014-04-01T00:00:00", "2014-04-01T00:00:30"])})
    se = SessionEvents.from_dataframe(df)
    assert se.timestamps.tolist() == [1396310400.0, 1396310430.0]


def test_constructor_checks_offsets():
    with pytest.raises(ValueError, match="offsets"):
        SessionEvents([0, 1], [0, 1], [0, 1], session_map=IdMap([1]), item_map=IdMap([1, 2]))
    with pytest.raises(ValueError, match="n_sessions"):
        SessionEvents([0, 1], [0, 1], [0, 2], session_map=IdMap([1, 2]), item_map=IdMap([1, 2]))


def test_summary():
    s = SessionEvents.from_dataframe(_df()).summary()
    assert s["sessions"] == 3 and s["events"] == 6 and s["items"] == 3
    assert s["session_length"] == {"min": 1, "mean": 2.0, "max": 3}
    assert s["time_range"] == [0.0, 9.0]
