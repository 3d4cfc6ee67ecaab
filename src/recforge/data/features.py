"""Item features aligned to an item index.

Row ``i`` of every feature describes inner item ``i`` of the :class:`IdMap` the features were
aligned to. Which items have a feature is explicit (``has(name)``): an item with no genres is
an all-zero row *and* ``False`` in the mask, never a silent zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .idmap import IdMap

logger = logging.getLogger(__name__)


@dataclass
class ItemFeatures:
    """Features of the items of ``item_map``, one row per inner item index.

    Attributes
    ----------
    item_map : IdMap
        The item index the rows follow.
    titles : ndarray of str, shape (n_items,)
        Display titles ('' where unknown).
    categorical : dict[str, (csr_matrix, list[str])]
        Multi-valued categorical features (genres, tags) as multi-hot CSR (n_items x n_values,
        float32) with the value vocabulary.
    numeric : dict[str, ndarray]
        Numeric features as float arrays (n_items,) or (n_items, d); NaN where unknown.
    text : dict[str, ndarray of str]
        Free text ('' where unknown).
    present : dict[str, ndarray of bool]
        For each feature name (and ``'title'``), which items have it.
    """

    item_map: IdMap
    titles: np.ndarray | None = None
    categorical: dict = field(default_factory=dict)
    numeric: dict = field(default_factory=dict)
    text: dict = field(default_factory=dict)
    present: dict = field(default_factory=dict)
    unmatched: int = 0  # feature rows whose item is not in item_map (counted, not kept)
    duplicate_rows: int = 0  # repeated rows for one item: the first is kept, the rest counted

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    def has(self, name: str) -> np.ndarray:
        """Boolean mask of items that have feature ``name``."""
        return self.present[name]

    def names(self) -> list[str]:
        return list(self.categorical) + list(self.numeric) + list(self.text)

    def title(self, inner_items) -> np.ndarray:
        if self.titles is None:
            return np.asarray(self.item_map.to_raw(inner_items)).astype(str)
        return self.titles[np.asarray(inner_items)]

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, item_map: IdMap, *, item: str = "item",
                       title: str | None = None, categorical: dict[str, str] | None = None,
                       numeric: list[str] | dict[str, list[str]] | None = None,
                       text: list[str] | None = None) -> ItemFeatures:
        """Align a per-item table to ``item_map``.

        Parameters
        ----------
        df : DataFrame
            One row per item, raw item ids in column ``item``.
        title : str, optional
            Column holding display titles.
        categorical : dict[str, str], optional
            ``{column: separator}`` for multi-valued columns, e.g. ``{"genres": "|"}``; an empty
            cell means the item has no value for it.
        numeric : list[str] or dict[str, list[str]], optional
            Numeric columns; a dict groups several columns into one vector feature, e.g.
            ``{"mise_en_scene": ["f1", ..., "f7"]}``.
        text : list[str], optional
            Free-text columns.
        """
        rows = item_map.to_inner(df[item].to_numpy(), missing="mask")
        ok = rows >= 0
        # a second row for the same item would silently overwrite (or, for categories, merge
        # into) the first: keep the first and count the others
        repeated = ok & pd.Index(rows).duplicated(keep="first")
        out = cls(item_map=item_map, unmatched=int((~ok).sum()), duplicate_rows=int(repeated.sum()))
        if out.duplicate_rows:
            logger.warning("item features: %d repeated rows for the same item ignored (first kept)",
                           out.duplicate_rows)
        ok &= ~repeated
        df = df.loc[ok]
        rows = rows[ok]
        n = len(item_map)
        if title is not None:
            t = np.full(n, "", dtype=object)
            vals = df[title].astype("string").fillna("").to_numpy(dtype=object)
            t[rows] = vals
            out.titles = t.astype(str)
            out.present["title"] = np.zeros(n, bool)
            out.present["title"][rows] = vals != ""
        for col, sep in (categorical or {}).items():
            out.add_categorical(col, rows, df[col].astype("string").fillna("").to_numpy(dtype=object), sep)
        if isinstance(numeric, list):
            numeric = {c: [c] for c in numeric}
        for name, cols in (numeric or {}).items():
            vals = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            arr = np.full((n, len(cols)), np.nan)
            arr[rows] = vals
            out.add_numeric(name, arr[:, 0] if len(cols) == 1 else arr)
        for col in text or []:
            t = np.full(n, "", dtype=object)
            t[rows] = df[col].astype("string").fillna("").to_numpy(dtype=object)
            out.text[col] = t.astype(str)
            out.present[col] = out.text[col] != ""
        return out

    def add_categorical(self, name: str, rows: np.ndarray, cells, sep: str | None) -> None:
        """Add a multi-hot feature from one string cell per row (values split on ``sep``)."""
        n = len(self.item_map)
        lists = [[v for v in (c.split(sep) if sep else [c]) if v] if c else [] for c in cells]
        vocab = sorted({v for lst in lists for v in lst})
        code = {v: j for j, v in enumerate(vocab)}
        r = np.repeat(np.asarray(rows, dtype=np.int64), [len(lst) for lst in lists])
        c = np.fromiter((code[v] for lst in lists for v in lst), dtype=np.int64, count=r.size)
        m = sp.csr_matrix((np.ones(r.size, np.float32), (r, c)), shape=(n, len(vocab)))
        m.sum_duplicates()
        m.data[:] = 1.0
        self.categorical[name] = (m, vocab)
        self.present[name] = np.diff(m.indptr) > 0

    def add_numeric(self, name: str, values: np.ndarray) -> None:
        """Add a numeric feature aligned to the item index (NaN where unknown)."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != len(self.item_map):
            raise ValueError(f"numeric feature '{name}' needs one row per item")
        self.numeric[name] = values
        finite = np.isfinite(values)
        self.present[name] = finite if values.ndim == 1 else finite.all(axis=1)

    def summary(self) -> dict:
        return {name: int(mask.sum()) for name, mask in self.present.items()} | {
            "items": self.n_items, "unmatched_rows": self.unmatched,
            "duplicate_rows": self.duplicate_rows}


@dataclass
class UserFeatures:
    """Per-user attributes aligned to a user index (the counterpart of :class:`ItemFeatures`).

    Row ``u`` of every column describes inner user ``u`` of ``user_map``. A column is either
    categorical (an object array of strings, ``''`` where unknown) or numeric (float64, NaN
    where unknown); ``present`` says which users have each column.

    Attributes
    ----------
    user_map : IdMap
    categorical : dict[str, ndarray of str]
    numeric : dict[str, ndarray of float64]
    present : dict[str, ndarray of bool]
    unmatched : int
        Table rows whose user is not in ``user_map`` (counted, not kept).
    duplicate_rows : int
        Repeated rows for one user (the first is kept).
    """

    user_map: IdMap
    categorical: dict = field(default_factory=dict)
    numeric: dict = field(default_factory=dict)
    present: dict = field(default_factory=dict)
    unmatched: int = 0
    duplicate_rows: int = 0

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    def names(self) -> list[str]:
        return list(self.categorical) + list(self.numeric)

    def has(self, name: str) -> np.ndarray:
        return self.present[name]

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, user_map: IdMap, *, user: str | None = None,
                       categorical: list[str] | None = None,
                       numeric: list[str] | None = None) -> UserFeatures:
        """Align a per-user table to ``user_map``.

        Parameters
        ----------
        df : DataFrame
            One row per user; raw user ids in column ``user``, or in the index when ``user`` is
            None (the layout of ``Dataset.user_features``).
        categorical, numeric : list of str, optional
            Columns of each kind. When both are None every column is used: numeric dtypes
            become numeric columns, all others categorical.
        """
        raw = df.index.to_numpy() if user is None else df[user].to_numpy()
        if user is not None:
            df = df.drop(columns=[user])
        if categorical is None and numeric is None:
            numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])
                       and not pd.api.types.is_bool_dtype(df[c])]
            categorical = [c for c in df.columns if c not in numeric]
        for col in list(categorical or []) + list(numeric or []):
            if col not in df.columns:
                raise ValueError(f"user features: no column {col!r} (columns: {list(df.columns)})")
        rows = user_map.to_inner(raw, missing="mask")
        ok = rows >= 0
        repeated = ok & pd.Index(rows).duplicated(keep="first")
        out = cls(user_map=user_map, unmatched=int((~ok).sum()), duplicate_rows=int(repeated.sum()))
        if out.duplicate_rows:
            logger.warning("user features: %d repeated rows for the same user ignored (first kept)",
                           out.duplicate_rows)
        ok &= ~repeated
        df, rows = df.loc[ok], rows[ok]
        n = len(user_map)
        for col in categorical or []:
            vals = np.full(n, "", dtype=object)
            vals[rows] = _as_text(df[col])
            out.categorical[col] = vals
            out.present[col] = vals != ""
        for col in numeric or []:
            vals = np.full(n, np.nan)
            vals[rows] = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
            out.numeric[col] = vals
            out.present[col] = np.isfinite(vals)
        return out

    def add_categorical(self, name: str, values) -> None:
        """Add a categorical column aligned to the user index (``''`` where unknown)."""
        values = np.asarray(values, dtype=object)
        if values.shape != (self.n_users,):
            raise ValueError(f"categorical user feature '{name}' needs one value per user")
        self.categorical[name] = np.array(["" if v is None else str(v) for v in values], dtype=object)
        self.present[name] = self.categorical[name] != ""

    def summary(self) -> dict:
        return {name: int(mask.sum()) for name, mask in self.present.items()} | {
            "users": self.n_users, "unmatched_rows": self.unmatched,
            "duplicate_rows": self.duplicate_rows}


def _as_text(series: pd.Series) -> np.ndarray:
    """Cells as strings, ``''`` where missing; integral floats lose their ``.0`` (so that an
    age read as 24.0 and one read as 24 are the same category)."""
    return as_category_strings(series.to_numpy())


def as_category_strings(values) -> np.ndarray:
    """Any 1-d array of category values as an object array of strings, ``''`` where missing
    (None, NaN, empty); integral numbers print without a decimal part (``24.0`` -> ``'24'``)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64).astype(str).astype(object)
    if arr.dtype.kind == "f":
        out = np.full(arr.shape, "", dtype=object)
        finite = np.isfinite(arr)
        integral = finite & (np.floor(np.where(finite, arr, 0)) == arr)
        out[integral] = arr[integral].astype(np.int64).astype(str)
        rest = finite & ~integral
        out[rest] = arr[rest].astype(str)
        return out
    out = pd.Series(arr, dtype="string").fillna("").str.strip().to_numpy(dtype=object)
    return out


#: Context columns :func:`context_features` derives from a timestamp.
CONTEXT_COLUMNS = ("hour", "weekday", "days_since_previous")


def context_features(interactions, *, history=None, utc_offset_hours: float = 0.0) -> dict[str, np.ndarray]:
    """Context of each interaction, derived from its timestamp.

    Returns one array per column, aligned to ``interactions`` (its stored order):

    ``hour``
        hour of day, 0–23, at ``utc_offset_hours`` from UTC;
    ``weekday``
        day of week, 0 = Monday … 6 = Sunday;
    ``days_since_previous``
        days since the same user's previous event (float64; NaN for a user's first event) —
        the recency signal, bucketised by the :class:`~recforge.data.feature_spec.FeatureSpec`.
        Previous events are looked up in ``interactions`` and, when given, ``history`` (e.g.
        the training part when the context of test events is wanted), never in the future.

    All three are float64 with NaN where unknown (data without timestamps), which the feature
    spec encodes as missing.
    """
    n = len(interactions)
    if interactions.timestamps is None:
        return {"hour": np.full(n, np.nan), "weekday": np.full(n, np.nan),
                "days_since_previous": np.full(n, np.nan)}
    t = interactions.timestamps + 3600.0 * float(utc_offset_hours)
    hour = (t // 3600) % 24
    # 1970-01-01 was a Thursday (weekday 3)
    weekday = ((t // 86400) + 3) % 7
    users = interactions.users.astype(np.int64)
    times = interactions.timestamps
    own = np.ones(n, bool)
    if history is not None and history.timestamps is not None and len(history):
        users = np.concatenate([users, history.users.astype(np.int64)])
        times = np.concatenate([times, history.timestamps])
        own = np.concatenate([own, np.zeros(len(history), bool)])
    # history events first among ties, so an event at the same second counts as previous
    order = np.lexsort((own, times, users))
    su, st = users[order], times[order]
    gap = np.full(su.size, np.nan)
    same = su[1:] == su[:-1]
    gap[1:][same] = (st[1:] - st[:-1])[same] / 86400.0
    recency = np.empty(users.size)
    recency[order] = gap
    return {"hour": hour, "weekday": weekday, "days_since_previous": recency[:n]}
