"""Generic tables: CSV / TSV / Parquet files with a column mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..errors import DataError, DropReport
from ._common import (
    PathLike,
    _check_args,
    _collect_drops,
    _filter,
    _interactions,
    _read_bytes,
    _read_delimited,
    _sessions,
    _Table,
    _unix_seconds,
)


def _sep_for(path: Path, sep: str | None) -> str:
    if sep is not None:
        return "\t" if sep in ("\\t", "tab") else sep
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab", ".txt", ".inter"):
        return "\t"
    return ","


def read_table(path: PathLike, *, user: str = "user", item: str = "item",
               rating: str | None = "rating", timestamp: str | None = "timestamp",
               session: str | None = None, sep: str | None = None, header: bool = True,
               names: list[str] | None = None, kind: str | None = None, rating_scale=None,
               duplicates: str = "last", on_error: str = "raise", encoding: str = "utf-8",
               name: str | None = None) -> Dataset:
    """Read a generic CSV / TSV / Parquet file with a column mapping.

    Parameters
    ----------
    path : str or Path
        ``.parquet`` / ``.pq`` files are read with pyarrow; anything else as delimited text
        (``sep`` defaults to tab for ``.tsv``/``.tab``/``.txt``, comma otherwise).
    user, item : str
        Id columns (default ``user``, ``item``).
    rating : str or None
        Rating column; when ``None`` or absent from the file the data are implicit (value 1
        per event, then merged by ``duplicates``). A rating column with ``kind='implicit'`` is
        read as an event weight.
    timestamp : str or None
        Time column, used when present: unix seconds, or ISO-8601 date-times.
    session : str, optional
        When given, the file is a session log: ``Dataset.sessions`` is built from
        ``session``, ``item`` and ``timestamp`` (required) and no interactions.
    sep : str, optional
        Field separator (one character; ``'\\t'`` or ``'tab'`` for tab).
    header : bool
        Whether line 1 names the columns; without it pass ``names``.
    kind : {'explicit', 'implicit'}, optional
    rating_scale : (float, float), optional
        Declared scale; ratings outside it are errors (or skipped and counted). Without it the
        scale is the observed (min, max).
    duplicates : {'last', 'first', 'mean', 'sum', 'count'}
        Merge rule for repeated (user, item) pairs; ``'last'`` (default) keeps the latest by
        timestamp (or the last row without timestamps).
    on_error : {'raise', 'skip'}
    encoding : str
        Text encoding (default UTF-8; ``'auto'`` falls back to Latin-1).

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = read_table("ratings.csv", user="uid", item="iid", rating="stars",
    ...                 rating_scale=(1, 5))  # doctest: +SKIP
    """
    _check_args(duplicates, on_error)
    p = Path(path)
    drops = DropReport()
    if p.suffix.lower() in (".parquet", ".pq"):
        if not p.exists():
            raise DataError("file not found", path=str(p))
        try:
            df = pd.read_parquet(p)
        except Exception as e:  # pyarrow raises several types for a corrupt file
            raise DataError(f"cannot read Parquet: {e}", path=str(p)) from None
        if len(df) == 0:
            raise DataError("no data rows", path=str(p))
        # Parquet has no lines: errors name the 1-based row instead
        t = _Table(df.reset_index(drop=True), np.arange(1, len(df) + 1),
                   f"{p} (Parquet: line = row number)")
    else:
        sep = _sep_for(p, sep)
        if not header and names is None:
            # without a header the columns are user, item[, rating[, timestamp]] by position
            first_line = _read_bytes(p).split(b"\n", 1)[0].rstrip(b"\r")
            n_fields = first_line.count(sep.encode("ascii")) + 1
            if not 2 <= n_fields <= 4:
                raise DataError(f"{n_fields} fields in a file without a header; pass names=",
                                path=str(p), line=1)
            names = ["user", "item", "rating", "timestamp"][:n_fields]
        t = _read_delimited(p, sep=sep, header=header, names=names,
                            id_columns=[c for c in (user, item, session) if c is not None],
                            encoding=encoding, on_error=on_error, drops=drops)
    cols = list(t.df.columns)
    for role, col in (("user", user), ("item", item)):
        if session is None or role == "item":
            if col not in cols:
                raise DataError(f"missing {role} column '{col}' (columns: {cols})",
                                path=t.source, field=col)
    if kind == "explicit" and (rating is None or rating not in cols):
        raise DataError(f"missing rating column '{rating}' (columns: {cols})", path=t.source,
                        field=rating)
    if timestamp is not None and timestamp in cols:
        t = _parse_time(t, timestamp, on_error, drops)
    ds_name = name or p.stem
    if session is not None:
        if session not in cols:
            raise DataError(f"missing session column '{session}' (columns: {cols})",
                            path=t.source, field=session)
        if timestamp is None or timestamp not in cols:
            raise DataError(f"missing timestamp column '{timestamp}' (columns: {cols})",
                            path=t.source, field=timestamp)
        ev = _sessions(t, session=session, item=item, timestamp=timestamp,
                       user=user if user in cols else None, on_error=on_error,
                       file_drops=drops, name=ds_name)
        return Dataset(name=ds_name, sessions=ev, drops=_collect_drops(ev.drops), source=str(p))
    inter = _interactions(t, user=user, item=item,
                          rating=rating if rating is not None and rating in cols else None,
                          timestamp=timestamp if timestamp is not None and timestamp in cols else None,
                          kind=kind, rating_scale=rating_scale, duplicates=duplicates,
                          on_error=on_error, file_drops=drops, name=ds_name)
    return Dataset(name=ds_name, interactions=inter, drops=_collect_drops(inter.drops),
                   source=str(p))


def _parse_time(t: _Table, col: str, on_error: str, drops: DropReport) -> _Table:
    """Numeric time stays; text time is parsed as ISO 8601 (UTC) into unix seconds."""
    s = t.df[col]
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return t
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().sum() >= s.notna().sum():
        t.df[col] = num
        return t
    dt = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
    if dt.notna().sum() < num.notna().sum():
        return t  # mostly numbers: leave it for the numeric check to name the bad line
    bad = dt.isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        if on_error == "raise":
            r = int(rows[0])
            raise DataError(f"unparseable timestamp {s.iloc[r]!r}", path=t.source,
                            line=int(t.lines[r]), field=col)
        drops.add(f"rows with unparseable timestamp in '{col}'", rows.size, t.lines[rows])
        t = _filter(t, ~bad)
        dt = dt[~bad].reset_index(drop=True)
    t.df[col] = _unix_seconds(dt)
    return t
