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
