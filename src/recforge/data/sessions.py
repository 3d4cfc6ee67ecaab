"""Anonymous (or user-linked) sessions of events: each session is a contiguous slice."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError, DropReport
from .idmap import IdMap


class SessionEvents:
    """Events (session, item, time) sorted by session then time, with per-session offsets.

    Session ``s`` (inner index) is ``items[offsets[s]:offsets[s+1]]``. Sessions are ordered by
    their raw id; :meth:`order_by_start` gives the order by first event, which session-parallel
    training uses.

    Parameters
    ----------
    items : array of int
        Inner item index of each event.
    timestamps : array of float
        Event time (unix seconds).
    offsets : array of int, shape (n_sessions + 1,)
    session_map, item_map : IdMap
    users : array of int, optional
        Raw user id of each session where the source has one.
    drops : DropReport, optional
    """

    def __init__(self, items, timestamps, offsets, *, session_map: IdMap, item_map: IdMap,
                 users=None, drops: DropReport | None = None, name: str | None = None):
        self.items = np.asarray(items, dtype=np.int32)
        self.timestamps = np.asarray(timestamps, dtype=np.float64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.session_map = session_map
        self.item_map = item_map
        self.users = None if users is None else np.asarray(users)
        self.drops = drops if drops is not None else DropReport()
        self.name = name
        if self.offsets.shape != (len(session_map) + 1,):
            raise ValueError("offsets must have n_sessions + 1 entries")
        if self.offsets[-1] != self.items.size or self.timestamps.shape != self.items.shape:
            raise ValueError("offsets, items and timestamps disagree")

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, *, session: str = "session", item: str = "item",
                       timestamp: str = "timestamp", user: str | None = None,
                       item_map: IdMap | None = None, unknown_items: str = "raise",
                       source: str = "<dataframe>", line_offset: int = 0,
                       name: str | None = None) -> SessionEvents:
        """Build from one row per event.

        ``item_map`` maps items to an existing index (e.g. a training part's); events on items
        not in it raise :class:`DataError`, or with ``unknown_items='drop'`` are dropped and
        counted.
        """
        for col in (session, item, timestamp):
            if col not in df.columns:
                raise DataError(f"missing column '{col}' (columns: {list(df.columns)})", path=source, field=col)
        drops = DropReport()
        lines = np.arange(len(df), dtype=np.int64) + 1 + line_offset
        t_raw = df[timestamp]
        if pd.api.types.is_datetime64_any_dtype(t_raw):
            if isinstance(t_raw.dtype, pd.DatetimeTZDtype):  # to naive UTC first
                t_raw = t_raw.dt.tz_convert("UTC").dt.tz_localize(None)
            times = t_raw.astype("datetime64[ns]").astype("int64").to_numpy() / 1e9
            times = np.where(t_raw.isna().to_numpy(), np.nan, times)  # NaT is missing
        else:
            times = pd.to_numeric(t_raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(times) | df[session].isna().to_numpy() | df[item].isna().to_numpy()
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            fld = timestamp if not np.isfinite(times[r]) else (session if pd.isna(df[session].iloc[r]) else item)
            raise DataError("missing or non-numeric value", path=source, line=int(lines[r]), field=fld)
        s_vals = df[session].to_numpy()
        i_vals = df[item].to_numpy()
        u_vals = df[user].to_numpy() if user else None
        if item_map is None:
            item_map, icodes = IdMap.from_values(i_vals)
        else:
            icodes = item_map.to_inner(i_vals, missing="mask")
            unk = icodes < 0
            if unk.any():
                if unknown_items == "raise":
                    r = int(np.flatnonzero(unk)[0])
                    raise DataError(f"item {i_vals[r]!r} is not in the given item map", path=source,
                                    line=int(lines[r]), field=item)
                drops.add("events on items unknown to the item map", int(unk.sum()), lines[unk])
                keep = ~unk
                s_vals, icodes, times, lines = s_vals[keep], icodes[keep], times[keep], lines[keep]
                u_vals = u_vals[keep] if u_vals is not None else None
        session_map, scodes = IdMap.from_values(s_vals)
        order = np.lexsort((np.arange(scodes.size), times, scodes))
        scodes, icodes, times = scodes[order], icodes[order], times[order]
        offsets = np.zeros(len(session_map) + 1, dtype=np.int64)
        np.cumsum(np.bincount(scodes, minlength=len(session_map)), out=offsets[1:])
        users = None
        if u_vals is not None:
            users = u_vals[order][offsets[:-1]]
        return cls(icodes, times, offsets, session_map=session_map, item_map=item_map, users=users,
                   drops=drops, name=name)

    @property
    def n_sessions(self) -> int:
        return len(self.session_map)

    @property
    def n_events(self) -> int:
        return int(self.items.size)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return self.n_sessions

    def __repr__(self) -> str:
        return f"SessionEvents(sessions={self.n_sessions}, events={self.n_events}, items={self.n_items})"

    def session(self, s: int) -> np.ndarray:
        """Item indices of session ``s`` in time order."""
        return self.items[self.offsets[s]:self.offsets[s + 1]]

    @property
    def session_of_event(self) -> np.ndarray:
        """Inner session index of every event."""
        return np.repeat(np.arange(self.n_sessions, dtype=np.int32), self.lengths)

    @property
    def start_times(self) -> np.ndarray:
        t = np.full(self.n_sessions, np.nan)
        nonempty = self.lengths > 0
        t[nonempty] = self.timestamps[self.offsets[:-1][nonempty]]
        return t

    def order_by_start(self) -> np.ndarray:
        """Session indices ordered by first event time (ties by session index)."""
        return np.lexsort((np.arange(self.n_sessions), self.start_times))

    def select(self, sessions, name: str | None = None) -> SessionEvents:
        """A new object holding only the given sessions (inner indices), in raw-id order."""
        sessions = np.sort(np.asarray(sessions, dtype=np.int64))
        lengths = self.lengths[sessions]
        offsets = np.zeros(sessions.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # event positions: each selected session's start, repeated over its length, plus rank
        idx = np.repeat(self.offsets[:-1][sessions] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return SessionEvents(self.items[idx], self.timestamps[idx], offsets,
                             session_map=IdMap(self.session_map.raw[sessions]), item_map=self.item_map,
                             users=None if self.users is None else self.users[sessions],
                             name=name or self.name)

    def to_dataframe(self) -> pd.DataFrame:
        df = pd.DataFrame({
            "session": self.session_map.raw[self.session_of_event],
            "item": self.item_map.to_raw(self.items),
            "timestamp": self.timestamps,
        })
        return df

    def summary(self) -> dict:
        lengths = self.lengths
        return {"name": self.name, "sessions": self.n_sessions, "events": self.n_events,
                "items": int(np.unique(self.items).size) if self.n_events else 0,
                "session_length": {"min": int(lengths.min()) if lengths.size else 0,
                                   "mean": float(lengths.mean()) if lengths.size else 0.0,
                                   "max": int(lengths.max()) if lengths.size else 0},
                "time_range": [float(self.timestamps.min()), float(self.timestamps.max())] if self.n_events else None}


SECONDS_PER_DAY = 86400.0


def drop_short_sessions(sessions: SessionEvents, min_length: int,
                        dropped: DropReport) -> SessionEvents:
    """Step 1 of the GRU4Rec session split: the sessions with at least ``min_length`` events
    (the removed sessions and their events counted in ``dropped``)."""
    short = sessions.lengths < min_length
    dropped.add("sessions shorter than min_length (before splitting)", int(short.sum()))
    dropped.add("events of sessions shorter than min_length (before splitting)",
                int(sessions.lengths[short].sum()))
    return sessions.select(np.flatnonzero(~short)) if short.any() else sessions


def split_by_end_time(data: SessionEvents, days: float, min_length: int, dropped: DropReport,
                side: str) -> tuple[SessionEvents, SessionEvents, float]:
    """Steps 2-4 of the GRU4Rec session split (:mod:`recforge.split.session`): sessions whose
    last event lies within the last ``days`` days of ``data`` are held out, their events on
    items not in the training part removed, then held-out sessions shorter than ``min_length``;
    every removal counted in ``dropped`` under ``side``. Returns (train, held-out part, cutoff
    time); the training part gets an item index over its own items, the held-out part is
    re-mapped onto it."""
    lengths = data.lengths
    nonempty = lengths > 0
    end_times = np.full(data.n_sessions, -np.inf)
    # events are time-ordered within a session, so the last event is the session's maximum
    end_times[nonempty] = data.timestamps[data.offsets[1:][nonempty] - 1]
    t_max = float(data.timestamps.max()) if data.n_events else 0.0
    cutoff = t_max - days * SECONDS_PER_DAY
    held = nonempty & (end_times >= cutoff)
    train = restrict_sessions(data, ~held & nonempty, None)
    held_out = restrict_sessions(data, held, train.item_map)
    n_unseen = int(held_out.drops.counts.get("unseen", 0))
    dropped.add(f"{side} events on items not in the training part", n_unseen)
    keep = held_out.lengths >= min_length
    dropped.add(f"{side} sessions shorter than min_length after removing unseen items",
                int((~keep).sum()))
    dropped.add(f"{side} events of sessions shorter than min_length after removing unseen items",
                int(held_out.lengths[~keep].sum()))
    held_out = held_out.select(np.flatnonzero(keep))
    held_out.drops = DropReport()
    held_out.drops.add(f"{side} events on items not in the training part", n_unseen)
    return train, held_out, cutoff


def restrict_sessions(data: SessionEvents, session_mask: np.ndarray, item_map: IdMap | None) -> SessionEvents:
    """The sessions in ``session_mask``, with items re-indexed.

    ``item_map=None`` builds a new item index over the items occurring in the selected sessions
    (keeping their relative order in ``data.item_map``); otherwise events on items not in
    ``item_map`` are removed (their number is left in ``drops.counts["unseen"]``) and the rest
    re-mapped onto it. Sessions left empty are kept here (their removal is counted by the caller).
    """
    part = data.select(np.flatnonzero(session_mask))
    if item_map is None:
        # bincount, not np.unique: linear time and already sorted
        used = np.flatnonzero(np.bincount(part.items, minlength=data.n_items))
        new_map = IdMap(data.item_map.raw[used])
        lookup = np.full(data.n_items, -1, dtype=np.int64)
        lookup[used] = np.arange(used.size)
        return SessionEvents(lookup[part.items], part.timestamps, part.offsets,
                             session_map=part.session_map, item_map=new_map, users=part.users,
                             name=data.name)
    codes = item_map.to_inner(data.item_map.raw, missing="mask")[part.items]
    keep = codes >= 0
    sess = part.session_of_event
    new_lengths = np.bincount(sess[keep], minlength=part.n_sessions)
    offsets = np.zeros(part.n_sessions + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=offsets[1:])
    out = SessionEvents(codes[keep], part.timestamps[keep], offsets, session_map=part.session_map,
                        item_map=item_map, users=part.users, name=data.name)
    out.drops.add("unseen", int((~keep).sum()))
    return out
