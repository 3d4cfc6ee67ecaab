"""Hypothesis strategies for small interaction and session logs (shared by the split tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from recforge.data import IdMap, Interactions, SessionEvents


@st.composite
def interactions(draw, max_users: int = 8, max_items: int = 9, min_nnz: int = 1,
                 timestamps: bool = True) -> Interactions:
    """Unique (user, item) pairs on a small grid; timestamps from a small set so ties occur."""
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(-(-min_nnz // n_users), max_items))
    cells = draw(st.sets(st.integers(0, n_users * n_items - 1), min_size=min_nnz,
                         max_size=n_users * n_items))
    cells = np.array(sorted(cells), dtype=np.int64)
    values = draw(st.lists(st.integers(1, 5), min_size=cells.size, max_size=cells.size))
    times = None
    if timestamps:
        times = np.array(draw(st.lists(st.integers(0, 6), min_size=cells.size, max_size=cells.size)),
                         dtype=np.float64)
    return Interactions(cells // n_items, cells % n_items, values,
                        user_map=IdMap(np.arange(n_users) + 100), item_map=IdMap(np.arange(n_items) + 10),
                        timestamps=times, kind="explicit", rating_scale=(1, 5))


@st.composite
def session_logs(draw, max_sessions: int = 12, max_items: int = 8, max_len: int = 6) -> SessionEvents:
    """Sessions over a few days (times in seconds), lengths 1..max_len, items from a small set."""
    n = draw(st.integers(1, max_sessions))
    rows = []
    for s in range(n):
        start = draw(st.integers(0, 5 * 24)) * 3600.0
        length = draw(st.integers(1, max_len))
        gaps = draw(st.lists(st.integers(0, 3000), min_size=length, max_size=length))
        items = draw(st.lists(st.integers(0, max_items - 1), min_size=length, max_size=length))
        t = start + np.cumsum(gaps)
        rows += [(1000 + s, 50 + i, float(ti)) for i, ti in zip(items, t, strict=True)]
    df = pd.DataFrame(rows, columns=["session", "item", "timestamp"])
    return SessionEvents.from_dataframe(df)


def pair_keys(part: Interactions) -> np.ndarray:
    """(user, item) of each interaction as one int64 key (parts share maps, so keys agree)."""
    return part.users.astype(np.int64) * part.n_items + part.items


def rows(part: Interactions) -> set:
    """The part's interactions as a set of (user, item, value, time) tuples."""
    t = part.timestamps if part.timestamps is not None else np.zeros(part.nnz)
    return set(zip(part.users.tolist(), part.items.tolist(), part.values.tolist(), t.tolist(), strict=True))
