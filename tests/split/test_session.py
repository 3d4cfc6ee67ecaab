"""The GRU4Rec session split: rule, drop accounting, item re-indexing, no leakage."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import SessionEvents
from recforge.split import session_split

from .strategies import session_logs

DAY = 86400.0


def _events(se: SessionEvents) -> pd.DataFrame:
    return se.to_dataframe()


def _reference_split(df: pd.DataFrame, days: float, min_length: int):
    """Straight pandas transcription of the rule in the module docstring (the official recipe)."""
    lengths = df.groupby("session").size()
    df = df[df.session.isin(lengths[lengths >= min_length].index)]
    t_max = df.timestamp.max()
    end = df.groupby("session").timestamp.max()
    test_ids = end[end >= t_max - days * DAY].index
    train = df[~df.session.isin(test_ids)]
    test = df[df.session.isin(test_ids)]
    test = test[test.item.isin(train.item)]
    tl = test.groupby("session").size()
    test = test[test.session.isin(tl[tl >= min_length].index)]
    return train, test


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["session", "timestamp", "item"]).reset_index(drop=True)[
        ["session", "item", "timestamp"]]


@settings(max_examples=50, deadline=None)
@given(session_logs(), st.sampled_from([0.5, 1.0, 2.0]), st.integers(1, 3))
def test_matches_the_reference_rule(sessions, days, min_length):
    r = session_split(sessions, test_days=days, min_length=min_length)
    ref_train, ref_test = _reference_split(_events(sessions), days, min_length)
    pd.testing.assert_frame_equal(_sorted(_events(r.train)), _sorted(ref_train), check_dtype=False)
    pd.testing.assert_frame_equal(_sorted(_events(r.test)), _sorted(ref_test), check_dtype=False)
    # invariants: disjoint sessions, test on the train item index, lengths, no leakage
    assert not set(r.train.session_map.raw) & set(r.test.session_map.raw)
    assert r.test.item_map is r.train.item_map
    assert np.unique(r.train.items).size == r.train.n_items  # index = items occurring in train
    assert np.all(r.test.lengths >= min_length) and np.all(r.train.lengths >= min_length)
    cutoff = r.report["test_cutoff_time"]
    if r.train.n_events:
        ends = r.train.timestamps[r.train.offsets[1:] - 1]
        assert np.all(ends < cutoff)
    if r.test.n_events:
        # a test session ends after the cut-off in the input (its last event may since have been
        # dropped as an item unseen in training)
        original_end = _events(sessions).groupby("session").timestamp.max()
        assert np.all(original_end[r.test.session_map.raw].to_numpy() >= cutoff)


@settings(max_examples=40, deadline=None)
@given(session_logs(), st.integers(1, 3))
def test_drop_counts_add_up(sessions, min_length):
    r = session_split(sessions, test_days=1.0, min_length=min_length)
    d = r.report["dropped"]
    dropped_events = sum(v for k, v in d.items() if "events" in k)
    assert r.train.n_events + r.test.n_events + dropped_events == sessions.n_events
    dropped_sessions = sum(v for k, v in d.items() if "events" not in k and "sessions" in k)
    assert r.train.n_sessions + r.test.n_sessions + dropped_sessions == sessions.n_sessions
    assert r.report["train"] == {"sessions": r.train.n_sessions, "events": r.train.n_events,
                                 "items": int(np.unique(r.train.items).size)}


def test_hand_example():
    # s1 (day 0), s2 (day 2, ends at the last day), s3 (day 2: one event -> dropped first),
    # s4 (day 2; item 99 unseen in train is removed, leaving 1 event -> dropped)
    df = pd.DataFrame({
        "session": [1, 1, 1, 2, 2, 3, 4, 4],
        "item": [10, 11, 12, 11, 12, 10, 99, 10],
        "timestamp": [0, 10, 20, 2 * DAY, 2 * DAY + 5, 2 * DAY, 2 * DAY + 1, 2 * DAY + 2],
    })
    r = session_split(SessionEvents.from_dataframe(df), test_days=1)
    assert r.train.session_map.raw.tolist() == [1]
    assert r.test.session_map.raw.tolist() == [2]
    assert r.train.item_map.raw.tolist() == [10, 11, 12]  # 99 never occurs in train
    assert r.test.items.tolist() == [1, 2]  # items 11, 12 on the train index
    assert r.report["dropped"] == {
        "sessions shorter than min_length (before splitting)": 1,
        "events of sessions shorter than min_length (before splitting)": 1,
        "test events on items not in the training part": 1,
        "test sessions shorter than min_length after removing unseen items": 1,
        "test events of sessions shorter than min_length after removing unseen items": 1,
    }
    assert r.test.drops.counts == {"test events on items not in the training part": 1}
    assert r.config == {"split": "session", "test_days": 1.0, "min_length": 2,
                        "validation_days": None, "seed": None}


@settings(max_examples=40, deadline=None)
@given(session_logs(max_sessions=16), st.sampled_from([0.5, 1.0]))
def test_validation_is_the_same_rule_on_the_training_part(sessions, days):
    r = session_split(sessions, test_days=1.0, validation_days=days)
    inner = session_split(r.train, test_days=days)
    train_tr = r.parts["train_tr"]
    pd.testing.assert_frame_equal(_sorted(_events(train_tr)), _sorted(_events(inner.train)))
    pd.testing.assert_frame_equal(_sorted(_events(r.validation)), _sorted(_events(inner.test)))
    assert r.validation.item_map is train_tr.item_map
    assert r.report["train_tr"]["events"] == train_tr.n_events
    assert r.report["validation"]["sessions"] == r.validation.n_sessions


def test_argument_checks():
    se = SessionEvents.from_dataframe(pd.DataFrame({"session": [1, 1], "item": [1, 2], "timestamp": [0, 1]}))
    with pytest.raises(ValueError, match="test_days"):
        session_split(se, test_days=0)
    with pytest.raises(ValueError, match="min_length"):
        session_split(se, min_length=0)
    with pytest.raises(ValueError, match="validation_days"):
        session_split(se, validation_days=-1)
    with pytest.raises(TypeError, match="SessionEvents"):
        session_split(pd.DataFrame())


def _shared_data() -> Path:
    env = os.environ.get("RECFORGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.realdata
def test_reproduces_the_published_rsc15_train_valid_split():
    """Splitting rsc15-100k's train_full by the last day gives exactly its train_tr / train_valid."""
    folder = _shared_data() / "rsc15-100k"
    if not (folder / "yoochoose-clicks-100k_train_full.txt").exists():
        pytest.skip("shared data (rsc15-100k) not available")

    def read(part):
        df = pd.read_csv(folder / f"yoochoose-clicks-100k_{part}.txt", sep="\t")
        return df.rename(columns={"SessionId": "session", "ItemId": "item", "Time": "timestamp"})

    full = SessionEvents.from_dataframe(read("train_full"))
    r = session_split(full, test_days=1)
    for mine, theirs in ((r.train, read("train_tr")), (r.test, read("train_valid"))):
        pd.testing.assert_frame_equal(_sorted(_events(mine)), _sorted(theirs), check_dtype=False)
    assert r.report["test"] == {"sessions": 4084, "events": 16539, "items": 2029}
