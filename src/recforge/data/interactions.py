"""The user x item interaction log, sparse-first.

:class:`Interactions` holds one value per (user, item) pair, optionally with a timestamp, in
parallel arrays sorted by (user, item). Sparse views (user-major CSR, item-major CSR) are built
once on first use and cached. Raw ids map to inner indices through two :class:`IdMap` objects
that every subset (train/test part of a split) shares, so inner indices agree across parts.
"""

from __future__ import annotations

import logging
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import DataError, DropReport
from .idmap import IdMap, raw_ids_as_text_reason

DUPLICATE_POLICIES = ("last", "first", "mean", "sum", "count")
KINDS = ("explicit", "implicit")

log = logging.getLogger(__name__)


class Interactions:
    """Users x items with a value, an optional timestamp, and stable id maps.

    Parameters
    ----------
    users, items : array of int
        Inner user / item indices, one per interaction, unique pairs.
    values : array of float
        Rating (explicit) or weight / count (implicit).
    user_map, item_map : IdMap
        Raw <-> inner id maps; they may hold ids with no interaction here (e.g. a test part
        shares the full data's maps).
    timestamps : array of float, optional
        Event time in seconds (unix), one per interaction.
    kind : {'explicit', 'implicit'}
        Explicit data carries ratings on ``rating_scale``.
    rating_scale : (float, float), optional
        Lowest and highest possible rating (explicit data only).
    drops : DropReport, optional
        What was dropped or merged while building this object.
    name : str, optional
        Where the data came from, for reports.

    Notes
    -----
    Memory is O(nnz): three (four with time) arrays plus the cached CSR views.
    """

    def __init__(self, users, items, values, *, user_map: IdMap, item_map: IdMap,
                 timestamps=None, kind: str = "explicit", rating_scale=None,
                 drops: DropReport | None = None, name: str | None = None, _sorted: bool = False):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        users = np.asarray(users, dtype=np.int32)
        items = np.asarray(items, dtype=np.int32)
        values = np.asarray(values, dtype=np.float32)
        if not (users.shape == items.shape == values.shape) or users.ndim != 1:
            raise ValueError("users, items and values must be 1-d arrays of one length")
        if timestamps is not None:
            timestamps = np.asarray(timestamps, dtype=np.float64)
            if timestamps.shape != users.shape:
                raise ValueError("timestamps must have one entry per interaction")
        if users.size:
            if users.min() < 0 or users.max() >= len(user_map):
                raise ValueError("user index out of the user map's range")
            if items.min() < 0 or items.max() >= len(item_map):
                raise ValueError("item index out of the item map's range")
        if not _sorted:
            order = np.lexsort((items, users))
            users, items, values = users[order], items[order], values[order]
            if timestamps is not None:
                timestamps = timestamps[order]
        self.users = users
        self.items = items
        self.values = values
        self.timestamps = timestamps
        self.user_map = user_map
        self.item_map = item_map
        self.kind = kind
        self.rating_scale = None if rating_scale is None else (float(rating_scale[0]), float(rating_scale[1]))
        self.drops = drops if drops is not None else DropReport()
        self.name = name

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, *, user: str = "user", item: str = "item",
                       rating: str | None = "rating", timestamp: str | None = "timestamp",
                       kind: str | None = None, rating_scale=None, duplicates: str = "last",
                       user_map: IdMap | None = None, item_map: IdMap | None = None,
                       on_error: str = "raise", source: str = "<dataframe>",
                       line_offset: int = 0, name: str | None = None) -> Interactions:
        """Build from a DataFrame with one row per event.

        Parameters
        ----------
        df : DataFrame
        user, item, rating, timestamp : str
            Column names; ``rating=None`` (or a missing ``rating`` column) means implicit data
            with value 1 per event; ``timestamp`` is optional.
        kind : {'explicit', 'implicit'}, optional
            Defaults to explicit when a rating column is present.
        rating_scale : (lo, hi), optional
            Declared scale for explicit data; ratings outside it are errors. Inferred from the
            data (min, max) when not given.
        duplicates : {'last', 'first', 'mean', 'sum', 'count'}
            How repeated (user, item) pairs are merged; ``'last'`` (default) keeps the latest by
            timestamp, or by row order without timestamps. ``'count'`` sets the value to the
            number of events. Merged rows are counted in ``drops``.
        user_map, item_map : IdMap, optional
            Use these maps instead of building new ones (rows with unknown ids are errors, or
            dropped and counted with ``on_error='skip'``).
        on_error : {'raise', 'skip'}
            ``'raise'``: a bad value raises :class:`DataError` naming the source, line and field.
            ``'skip'``: bad rows are dropped and counted in ``drops`` with example line numbers.
        source : str
            Name used in error messages (a file path).
        line_offset : int
            Added to the 1-based row number to get the line number in ``source`` (1 for a file
            with a header line).
        """
        if duplicates not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
        if on_error not in ("raise", "skip"):
            raise ValueError("on_error must be 'raise' or 'skip'")
        for col in (user, item):
            if col not in df.columns:
                raise DataError(f"missing column '{col}' (columns: {list(df.columns)})", path=source, field=col)
        has_rating = rating is not None and rating in df.columns
        if rating is not None and not has_rating and kind == "explicit":
            raise DataError(f"missing rating column '{rating}'", path=source, field=rating)
        kind = kind or ("explicit" if has_rating else "implicit")
        has_time = timestamp is not None and timestamp in df.columns
        drops = DropReport()
        n = len(df)
        lines = np.arange(n, dtype=np.int64) + 1 + line_offset
        keep = np.ones(n, dtype=bool)

        def bad(mask: np.ndarray, reason: str, field: str, detail) -> None:
            if not mask.any():
                return
            rows = np.flatnonzero(mask & keep)
            if rows.size == 0:
                return
            if on_error == "raise":
                r = rows[0]
                raise DataError(f"{reason}: {detail(r)!s}", path=source, line=int(lines[r]), field=field)
            drops.add(f"rows with {reason} in '{field}'", rows.size, lines[rows])
            keep[rows] = False

        uvals = df[user].to_numpy()
        ivals = df[item].to_numpy()
        bad(pd.isna(uvals), "missing id", user, lambda r: repr(uvals[r]))
        bad(pd.isna(ivals), "missing id", item, lambda r: repr(ivals[r]))
        if has_rating:
            raw_r = df[rating]
            vals = pd.to_numeric(raw_r, errors="coerce").to_numpy(dtype=np.float64)
            bad(~np.isfinite(vals), "non-numeric or NaN rating", rating, lambda r: repr(raw_r.iloc[r]))
            if kind == "explicit" and rating_scale is not None:
                lo, hi = float(rating_scale[0]), float(rating_scale[1])
                with np.errstate(invalid="ignore"):
                    out = np.isfinite(vals) & ((vals < lo) | (vals > hi))
                bad(out, f"rating outside the scale [{lo:g}, {hi:g}]", rating, lambda r: repr(vals[r]))
        else:
            vals = np.ones(n, dtype=np.float64)
        if has_time:
            raw_t = df[timestamp]
            if pd.api.types.is_datetime64_any_dtype(raw_t):
                if isinstance(raw_t.dtype, pd.DatetimeTZDtype):  # to naive UTC first
                    raw_t = raw_t.dt.tz_convert("UTC").dt.tz_localize(None)
                times = raw_t.astype("datetime64[ns]").astype("int64").to_numpy() / 1e9
                times = np.where(raw_t.isna().to_numpy(), np.nan, times)
            else:
                times = pd.to_numeric(raw_t, errors="coerce").to_numpy(dtype=np.float64)
            bad(~np.isfinite(times), "non-numeric or missing timestamp", timestamp, lambda r: repr(raw_t.iloc[r]))
        else:
            times = None

        if not keep.all():
            uvals, ivals, vals, lines = uvals[keep], ivals[keep], vals[keep], lines[keep]
            times = times[keep] if times is not None else None

        for col, raw in ((user, uvals), (item, ivals)):
            if (user_map if col == user else item_map) is None:
                _note_text_ids(drops, raw, col, source)
        if user_map is None:
            user_map, ucodes = IdMap.from_values(uvals)
        else:
            ucodes = user_map.to_inner(uvals, missing="mask")
        if item_map is None:
            item_map, icodes = IdMap.from_values(ivals)
        else:
            icodes = item_map.to_inner(ivals, missing="mask")
        unknown = (ucodes < 0) | (icodes < 0)
        if unknown.any():
            rows = np.flatnonzero(unknown)
            if on_error == "raise":
                r = rows[0]
                fld = user if ucodes[r] < 0 else item
                val = uvals[r] if ucodes[r] < 0 else ivals[r]
                raise DataError(f"id {val!r} is not in the given id map", path=source, line=int(lines[r]), field=fld)
            drops.add("rows with ids unknown to the given id map", rows.size, lines[rows])
            ok = ~unknown
            ucodes, icodes, vals, lines = ucodes[ok], icodes[ok], vals[ok], lines[ok]
            times = times[ok] if times is not None else None

        if kind == "explicit" and rating_scale is None and vals.size:
            rating_scale = (float(vals.min()), float(vals.max()))
        users, items, values, ts, merged = _merge_duplicates(ucodes, icodes, vals, times, duplicates)
        if merged:
            drops.add(f"duplicate (user, item) rows merged by '{duplicates}'", merged)
        return cls(users, items, values, user_map=user_map, item_map=item_map, timestamps=ts,
                   kind=kind, rating_scale=rating_scale if kind == "explicit" else None,
                   drops=drops, name=name, _sorted=True)

    @classmethod
    def from_arrays(cls, user_ids, item_ids, values=None, timestamps=None, **kwargs) -> Interactions:
        """Build from parallel arrays of raw ids (values default to 1, i.e. implicit)."""
        data = {"user": np.asarray(user_ids), "item": np.asarray(item_ids)}
        if values is not None:
            data["rating"] = np.asarray(values)
        if timestamps is not None:
            data["timestamp"] = np.asarray(timestamps)
        kwargs.setdefault("source", "<arrays>")
        return cls.from_dataframe(pd.DataFrame(data), rating="rating" if values is not None else None,
                                  timestamp="timestamp", **kwargs)

    # ------------------------------------------------------------------ basic properties
    @property
    def n_users(self) -> int:
        """Size of the user index space (the shared map), not only users with data here."""
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def nnz(self) -> int:
        return int(self.users.size)

    def __len__(self) -> int:
        return self.nnz

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_users, self.n_items)

    @property
    def is_explicit(self) -> bool:
        return self.kind == "explicit"

    @property
    def has_timestamps(self) -> bool:
        return self.timestamps is not None

    def __repr__(self) -> str:
        scale = f", scale={self.rating_scale}" if self.rating_scale else ""
        return (f"Interactions({self.kind}, users={self.n_users}, items={self.n_items}, "
                f"nnz={self.nnz}{scale}{', timestamps' if self.has_timestamps else ''})")

    # ------------------------------------------------------------------ sparse views (cached)
    @cached_property
    def csr(self) -> sp.csr_matrix:
        """User-major CSR (n_users x n_items, float32), column indices sorted within rows."""
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.users, minlength=self.n_users), out=indptr[1:])
        m = sp.csr_matrix((self.values, self.items, indptr), shape=self.shape)
        m.has_sorted_indices = True
        return m

    @cached_property
    def item_csr(self) -> sp.csr_matrix:
        """Item-major CSR (n_items x n_users, float32): row i lists the users of item i."""
        m = self.csr.T.tocsr()
        m.sort_indices()
        return m

    @cached_property
    def user_counts(self) -> np.ndarray:
        """Number of interactions per user (int64, length n_users)."""
        return np.bincount(self.users, minlength=self.n_users)

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Number of interactions per item (int64, length n_items): the item's popularity."""
        return np.bincount(self.items, minlength=self.n_items)

    def user_items(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """Item indices and values of one user (inner index), sorted by item."""
        m = self.csr
        s, e = m.indptr[user], m.indptr[user + 1]
        return m.indices[s:e], m.data[s:e]

    def item_users(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """User indices and values of one item (inner index), sorted by user."""
        m = self.item_csr
        s, e = m.indptr[item], m.indptr[item + 1]
        return m.indices[s:e], m.data[s:e]

    @property
    def global_mean(self) -> float:
        return float(self.values.mean(dtype=np.float64)) if self.nnz else 0.0

    def user_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's items in time order: ``(items, offsets)`` with user u's history in
        ``items[offsets[u]:offsets[u+1]]``; ties in time keep item order."""
        if self.timestamps is None:
            order = np.arange(self.nnz)
        else:
            order = np.lexsort((self.items, self.timestamps, self.users))
        offsets = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(self.user_counts, out=offsets[1:])
        return self.items[order], offsets

    # ------------------------------------------------------------------ derived objects
    def subset(self, index, name: str | None = None) -> Interactions:
        """The interactions at ``index`` (bool mask or integer positions) with the same id maps."""
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != self.users.shape:
                raise ValueError("boolean mask must have one entry per interaction")
        else:
            index = np.sort(index)  # keep (user, item) order
        return Interactions(self.users[index], self.items[index], self.values[index],
                            user_map=self.user_map, item_map=self.item_map,
                            timestamps=None if self.timestamps is None else self.timestamps[index],
                            kind=self.kind, rating_scale=self.rating_scale, name=name or self.name,
                            _sorted=True)

    def to_dataframe(self, raw_ids: bool = True) -> pd.DataFrame:
        """One row per interaction: user, item, rating (or weight), and timestamp if present."""
        if raw_ids:
            data = {"user": self.user_map.to_raw(self.users), "item": self.item_map.to_raw(self.items)}
        else:
            data = {"user": self.users, "item": self.items}
        data["rating"] = self.values
        if self.timestamps is not None:
            data["timestamp"] = self.timestamps
        return pd.DataFrame(data)

    def summary(self) -> dict:
        """Counts and scale, as printed by ``recforge datasets info``."""
        active_users = int((self.user_counts > 0).sum())
        active_items = int((self.item_counts > 0).sum())
        out = {
            "name": self.name,
            "kind": self.kind,
            "interactions": self.nnz,
            "users": active_users,
            "items": active_items,
            "density": self.nnz / max(1, active_users * active_items),
            "rating_scale": list(self.rating_scale) if self.rating_scale else None,
            "timestamps": self.has_timestamps,
        }
        if self.is_explicit and self.nnz:
            out["rating_mean"] = float(self.values.mean())
            uniq = np.unique(self.values)
            if uniq.size <= 20:
                out["rating_values"] = [float(v) for v in uniq]
        if self.has_timestamps and self.nnz:
            out["time_range"] = [float(self.timestamps.min()), float(self.timestamps.max())]
        if self.drops or self.drops.notes:
            out["dropped"] = self.drops.to_dict()
        return out


def _merge_duplicates(users, items, values, times, policy):
    """Merge repeated (user, item) pairs; returns sorted arrays and the number of rows merged."""
    n = users.size
    if n == 0:
        return users.astype(np.int32), items.astype(np.int32), values.astype(np.float32), times, 0
    # sort by (user, item, time, row order): two stable sorts (time, then the pair as one
    # int64 key) give the same order as a four-key lexsort at a fraction of its cost
    pair = users.astype(np.int64) * (int(items.max()) + 1) + items
    if times is None:
        order = np.argsort(pair, kind="stable")
    else:
        by_time = np.argsort(times, kind="stable")
        order = by_time[np.argsort(pair[by_time], kind="stable")]
    u, i, v = users[order], items[order], values[order]
    t = None if times is None else times[order]
    new_pair = np.ones(n, dtype=bool)
    new_pair[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    starts = np.flatnonzero(new_pair)
    merged = n - starts.size
    if merged == 0:
        if policy == "count":
            v = np.ones(n)
        return u.astype(np.int32), i.astype(np.int32), v.astype(np.float32), t, 0
    ends = np.append(starts[1:], n) - 1
    if policy == "last":
        pick = ends
        v_out = v[pick]
    elif policy == "first":
        pick = starts
        v_out = v[pick]
    else:
        pick = ends
        sums = np.add.reduceat(v, starts)
        counts = np.diff(np.append(starts, n))
        v_out = {"sum": sums, "mean": sums / counts, "count": counts.astype(np.float64)}[policy]
    t_out = None if t is None else t[pick]
    return u[starts].astype(np.int32), i[starts].astype(np.int32), v_out.astype(np.float32), t_out, merged


def _note_text_ids(drops: DropReport, raw: np.ndarray, field: str, source: str) -> None:
    """Note (and log) that the ids of ``field`` are kept as text, when they could not all be
    int64 integers: nothing is merged, but integer ids from elsewhere will not match them."""
    reason = raw_ids_as_text_reason(raw)
    if reason is None:
        return
    what = f"rows with ids in '{field}' kept as text ({reason})"
    drops.note(what, raw.size)
    log.warning("%s: %d %s", source, raw.size, what)
