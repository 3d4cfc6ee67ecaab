"""Queries: who a recommendation is for, what they did, and what may be recommended.

A query row names a known user, an unknown user, or nobody (anonymous), and may carry that
row's *history* — the interactions the model scores from and whose items are excluded from
the list. At the edge histories use raw item ids, in any of three forms:

* a list of item-id sequences, one per row (each interaction has value 1; the order is kept,
  so session models read it as the session so far);
* a list of ``{item: value}`` mappings (ratings or weights);
* a :class:`pandas.DataFrame` with columns ``row, item[, value, timestamp]`` (``row`` is the
  query row, 0-based; rows are ordered by timestamp when given, else by position);

or an :class:`~recforge.data.Interactions` store, whose rows are looked up by the query's raw
user ids (how the evaluator passes the training fold and a service its live store).

Inside, a history is a :class:`History`: a canonical CSR (rows x items, sorted indices, one
entry per item: the last value given) for scoring and masking, and the rows' item sequences in
the order given, for sequence models. Items the model does not know are dropped and counted.
Stoplists (``exclude``) and candidate sets (``candidates``) are per row too: one flat list
applies to every row, a list of lists gives each row its own (:func:`item_rows`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.idmap import IdMap
from ..data.interactions import Interactions


@dataclass
class History:
    """Per-row interactions on inner item indices.

    ``matrix``: CSR (n_rows, n_items), float32, sorted indices, one entry per item.
    ``seq_indptr`` / ``seq_items``: each row's items in the order given (repeats kept).
    ``n_unknown``: interactions dropped because the model does not know the item.
    """

    matrix: sp.csr_matrix
    seq_indptr: np.ndarray
    seq_items: np.ndarray
    n_unknown: int = 0

    @property
    def n_rows(self) -> int:
        return self.matrix.shape[0]

    def sequences(self, rows=None) -> list[np.ndarray]:
        """Item sequences (int32) of ``rows`` (all rows by default), in the order given."""
        rows = range(self.n_rows) if rows is None else rows
        p = self.seq_indptr
        return [self.seq_items[p[r]:p[r + 1]].astype(np.int32) for r in rows]

    def lengths(self) -> np.ndarray:
        return np.diff(self.matrix.indptr)

    def take(self, rows: np.ndarray) -> History:
        """The history of ``rows`` (a batch), without a Python loop over rows."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.seq_indptr[rows]
        lengths = self.seq_indptr[rows + 1] - starts
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return History(self.matrix[rows], indptr, self.seq_items[pos].astype(np.int32), 0)

    @classmethod
    def from_csr(cls, matrix: sp.spmatrix) -> History:
        """A history from inner-index rows (sequences follow the column order)."""
        m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        m.sum_duplicates()
        m.sort_indices()
        return cls(m, m.indptr.astype(np.int64), m.indices.astype(np.int32), 0)

    @classmethod
    def empty(cls, n_rows: int, n_items: int) -> History:
        return cls.from_csr(sp.csr_matrix((n_rows, n_items), dtype=np.float32))


def _from_triples(rows: np.ndarray, items: np.ndarray, values: np.ndarray, n_rows: int,
                  n_items: int, n_unknown: int) -> History:
    """Rows/items/values in the order given -> History (the last value of a repeated item wins)."""
    rows = np.asarray(rows, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    order = np.argsort(rows, kind="stable")
    rows, items, values = rows[order], items[order], values[order]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    # canonical matrix: last value per (row, item)
    # (unique keys come sorted: row-major, columns ascending, so the CSR is built directly)
    width = max(n_items, 1)
    key = rows * width + items
    unique_keys, last = np.unique(key[::-1], return_index=True)
    row_counts = np.bincount(unique_keys // width, minlength=n_rows)
    m_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(row_counts, out=m_indptr[1:])
    m = sp.csr_matrix((values[key.size - 1 - last], (unique_keys % width).astype(np.int32),
                       m_indptr), shape=(n_rows, n_items))
    m.has_sorted_indices = True
    return History(m, indptr, items.astype(np.int32), int(n_unknown))


def build_history(history, item_map: IdMap, n_rows: int | None = None,
                  users_raw: np.ndarray | None = None, parameter: str = "history") -> History:
    """Parse any accepted history form (see the module docstring) into a :class:`History`.

    Raises ``ValueError`` naming ``parameter`` (and the row) for malformed input, and when the
    number of rows does not match ``n_rows``.
    """
    n_items = len(item_map)
    if isinstance(history, History):
        out = history
    elif isinstance(history, Interactions):
        if users_raw is None:
            raise ValueError(f"{parameter}: an Interactions store needs the query's users")
        out = _from_store(history, item_map, users_raw)
    elif sp.issparse(history):
        m = sp.csr_matrix(history)
        if m.shape[1] != n_items:
            raise ValueError(f"{parameter}: a sparse history must have {n_items} columns "
                             f"(the model's items), got {m.shape[1]}")
        out = History.from_csr(m)
    elif isinstance(history, pd.DataFrame):
        out = _from_frame(history, item_map, n_rows, parameter)
    else:
        rows = list(history)
        rr, ii, vv = [], [], []
        for r, entry in enumerate(rows):
            if isinstance(entry, Mapping):
                keys = list(entry.keys())
                vals = [entry[key] for key in keys]
            elif isinstance(entry, (str, bytes)) or np.isscalar(entry):
                raise ValueError(f"{parameter}[{r}]: expected a sequence of item ids or an "
                                 f"{{item: value}} mapping, got {type(entry).__name__}")
            else:
                keys = list(entry)
                vals = [1.0] * len(keys)
            try:
                v = np.asarray(vals, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{parameter}[{r}]: values must be numbers") from None
            if v.size and not np.isfinite(v).all():
                raise ValueError(f"{parameter}[{r}]: values must be finite")
            rr.append(np.full(len(keys), r, dtype=np.int64))
            ii.append(np.asarray(keys, dtype=object))
            vv.append(v)
        raw_items = np.concatenate(ii) if ii else np.empty(0, object)
        inner = item_map.to_inner(raw_items, missing="mask") if raw_items.size else np.empty(0, np.int32)
        r_all = np.concatenate(rr) if rr else np.empty(0, np.int64)
        v_all = np.concatenate(vv) if vv else np.empty(0)
        ok = inner >= 0
        out = _from_triples(r_all[ok], inner[ok], v_all[ok], len(rows), n_items, int((~ok).sum()))
    if n_rows is not None and out.n_rows != n_rows:
        raise ValueError(f"{parameter}: {out.n_rows} rows for {n_rows} users")
    return out


def _from_frame(df: pd.DataFrame, item_map: IdMap, n_rows: int | None, parameter: str) -> History:
    for col in ("row", "item"):
        if col not in df.columns:
            raise ValueError(f"{parameter}: a DataFrame history needs columns 'row' and 'item' "
                             f"(optional 'value', 'timestamp'); missing {col!r}")
    rows = pd.to_numeric(df["row"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(rows) | (rows < 0) | (rows != np.round(rows))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{parameter}: field 'row' at position {j} is {df['row'].iloc[j]!r}, "
                         "not a row number >= 0")
    rows = rows.astype(np.int64)
    values = (pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=np.float64)
              if "value" in df.columns else np.ones(len(df)))
    if not np.isfinite(values).all():
        j = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{parameter}: field 'value' at position {j} is not a finite number")
    order = np.arange(len(df))
    if "timestamp" in df.columns:
        order = np.lexsort((np.arange(len(df)), df["timestamp"].to_numpy(), rows))
    n = int(rows.max()) + 1 if rows.size else 0
    if n_rows is not None:
        if n > n_rows:
            raise ValueError(f"{parameter}: row {n - 1} given for {n_rows} users")
        n = n_rows
    inner = item_map.to_inner(df["item"].to_numpy()[order], missing="mask") if len(df) \
        else np.empty(0, np.int32)
    ok = inner >= 0
    return _from_triples(rows[order][ok], inner[ok], values[order][ok], n, len(item_map),
                         int((~ok).sum()))


def _from_store(store: Interactions, item_map: IdMap, users_raw: np.ndarray) -> History:
    """Rows of ``store`` for the raw users (empty rows for users it does not hold)."""
    n_items = len(item_map)
    rows_in_store = store.user_map.to_inner(np.asarray(users_raw), missing="mask")
    csr = store.csr
    if store.item_map is item_map or store.item_map == item_map:
        cols_map = None
    else:
        cols_map = item_map.to_inner(store.item_map.raw, missing="mask")
    have = rows_in_store >= 0
    picked = sp.csr_matrix((len(users_raw), csr.shape[1]), dtype=np.float32)
    if have.any():
        sel = sp.csr_matrix(csr[rows_in_store[have]], dtype=np.float32)
        place = sp.csr_matrix((np.ones(int(have.sum()), np.float32),
                               (np.flatnonzero(have), np.arange(int(have.sum())))),
                              shape=(len(users_raw), int(have.sum())))
        picked = (place @ sel).tocsr()
    n_unknown = 0
    if cols_map is not None:
        coo = picked.tocoo()
        new_cols = cols_map[coo.col]
        ok = new_cols >= 0
        n_unknown = int((~ok).sum())
        picked = sp.csr_matrix((coo.data[ok], (coo.row[ok], new_cols[ok])),
                               shape=(len(users_raw), n_items), dtype=np.float32)
    hist = History.from_csr(picked)
    hist.n_unknown = n_unknown
    return hist


def item_rows(spec, item_map: IdMap, n_rows: int, parameter: str) -> tuple[sp.csr_matrix | None, int]:
    """Per-row item sets (stoplists or candidate sets) as a boolean CSR (n_rows, n_items).

    ``spec`` is ``None``, one flat list of raw item ids (every row), a list of ``n_rows`` lists
    (one per row), or a sparse matrix on inner indices. Returns the matrix and how many raw ids
    the model does not know (they cannot be recommended anyway).
    """
    if spec is None:
        return None, 0
    n_items = len(item_map)
    if sp.issparse(spec):
        m = sp.csr_matrix(spec, dtype=bool)
        if m.shape != (n_rows, n_items):
            raise ValueError(f"{parameter}: sparse rows must have shape {(n_rows, n_items)}, "
                             f"got {m.shape}")
        return m, 0
    entries = list(spec) if not isinstance(spec, np.ndarray) else spec
    nested = len(entries) > 0 and all(
        not isinstance(e, (str, bytes)) and not np.isscalar(e) for e in entries)
    if not nested:
        idx = item_map.to_inner(np.asarray(entries), missing="mask") if len(entries) \
            else np.empty(0, np.int32)
        known = np.unique(idx[idx >= 0])
        rows = np.repeat(np.arange(n_rows), known.size)
        cols = np.tile(known, n_rows)
        return (sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(n_rows, n_items)),
                int((idx < 0).sum()))
    if len(entries) != n_rows:
        raise ValueError(f"{parameter}: {len(entries)} per-row lists for {n_rows} rows")
    rows = np.concatenate([np.full(len(e), r, np.int64) for r, e in enumerate(entries)])
    raw = np.concatenate([np.asarray(list(e), dtype=object) for e in entries]) if rows.size \
        else np.empty(0, object)
    idx = item_map.to_inner(raw, missing="mask") if raw.size else np.empty(0, np.int32)
    ok = idx >= 0
    m = sp.csr_matrix((np.ones(int(ok.sum()), bool), (rows[ok], idx[ok])), shape=(n_rows, n_items))
    m.sum_duplicates()
    return m, int((~ok).sum())


@dataclass
class FallbackLog:
    """What fell back in one call, and why: per row (``row``) and in counts (``counts``).

    Created for each call and returned with its result — never stored on the model — so that
    concurrent requests cannot mix their records.
    """

    n_rows: int = 0
    row: np.ndarray = field(default=None)  # type: ignore[assignment]
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self):
        if self.row is None:
            self.row = np.full(self.n_rows, None, dtype=object)

    def mark(self, reason: str, rows) -> None:
        """Rows (indices or a boolean mask over this call's rows) that fell back for ``reason``."""
        rows = np.asarray(rows)
        idx = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64).ravel()
        if idx.size == 0:
            return
        self.counts[reason] += int(idx.size)
        fresh = idx[np.equal(self.row[idx], None)]
        self.row[fresh] = reason

    def count(self, reason: str, n: int) -> None:
        """``n`` fallbacks not tied to rows (predicted pairs, dropped history entries)."""
        if n:
            self.counts[reason] += int(n)

    def absorb(self, other: FallbackLog, rows: np.ndarray | None = None) -> None:
        """Add ``other`` (a log over a subset of this call's rows, ``rows``) into this one."""
        self.counts.update(other.counts)
        if rows is not None and other.row.size:
            rows = np.asarray(rows, dtype=np.int64)
            has = ~np.equal(other.row, None)
            target = rows[has]
            free = np.equal(self.row[target], None)
            self.row[target[free]] = other.row[has][free]

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.counts.items() if v}
