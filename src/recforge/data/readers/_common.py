"""What every reader shares: delimited-text parsing with exact line numbers, validation, drops.

:func:`_read_delimited` checks the field count of every line with NumPy on the raw bytes before
pandas' C engine parses the file, so that a malformed line is reported with its real line number
instead of being padded with NaN or silently skipped. :func:`_check_values`,
:func:`_interactions` and :func:`_sessions` validate the parsed columns and report file line
numbers in every :class:`~recforge.data.errors.DataError` and
:class:`~recforge.data.errors.DropReport`. The format modules of this package build on these.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import DataError, DropReport
from ..features import ItemFeatures
from ..idmap import IdMap
from ..interactions import Interactions
from ..sessions import SessionEvents

log = logging.getLogger(__name__)

PathLike = str | Path


# ====================================================================== low-level table reading
@dataclass
class _Table:
    """A parsed delimited file: the rows and the 1-based file line of each row."""

    df: pd.DataFrame
    lines: np.ndarray
    source: str


def _read_bytes(path: PathLike) -> bytes:
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=str(path))
    if path.is_dir():
        raise DataError("expected a file, found a directory", path=str(path))
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        # a BOM is not part of the first field; replacing it by nothing keeps line numbers
        data = data[len(codecs.BOM_UTF8):]
    if not data.strip():
        raise DataError("empty file", path=str(path))
    return data


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without ``\\r\\n``) byte offsets of every line."""
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [buf.size]))
    if starts[-1] == buf.size:  # file ends with a newline: no extra empty line
        starts, ends = starts[:-1], ends[:-1]
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - has_cr


def _field_counts(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, sep: int,
                  block: int = 1 << 22) -> np.ndarray:
    """Number of fields on every line (separators + 1), in blocks of lines to bound memory."""
    counts = np.empty(starts.size, dtype=np.int64)
    for a in range(0, starts.size, block):
        b = min(a + block, starts.size)
        lo, hi = int(starts[a]), int(ends[b - 1])
        pos = np.flatnonzero(buf[lo:hi] == sep) + lo
        counts[a:b] = np.searchsorted(pos, ends[a:b]) - np.searchsorted(pos, starts[a:b]) + 1
    return counts


def _decode_error(data: bytes, encoding: str, path: str, sep: bytes,
                  columns: list[str] | None) -> DataError:
    """A DataError locating the first byte that ``encoding`` cannot decode."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as e:
        pos = e.start
        line = data.count(b"\n", 0, pos) + 1
        line_start = data.rfind(b"\n", 0, pos) + 1
        k = data.count(sep, line_start, pos) if sep else 0
        field = columns[k] if columns and k < len(columns) else None
        return DataError(f"bytes {data[pos:pos + 4]!r} are not valid {encoding} (wrong encoding? "
                         f"pass encoding='latin-1' or the file's real encoding)",
                         path=path, line=line, field=field)
    return DataError(f"cannot decode as {encoding}", path=path)


def _read_delimited(path: PathLike, *, sep: str, names: list[str] | None = None,
                    header: bool = True, usecols: list[str] | None = None, dtype=None,
                    encoding: str = "utf-8", on_error: str = "raise",
                    drops: DropReport | None = None, quoting: bool = True,
                    data: bytes | None = None, id_columns=()) -> _Table:
    """Read a delimited text file with exact line numbers and field-count checks.

    Parameters
    ----------
    sep : str
        One character, or ``'::'`` (MovieLens ``.dat``), which is rewritten to a control
        character so that the C parser can be used.
    names : list of str, optional
        Column names; required without a header, and override the header when given.
    header : bool
        Whether line 1 is a header.
    usecols : list of str, optional
        Columns to keep (by name).
    encoding : str
        ``'auto'`` tries UTF-8 and falls back to Latin-1 (logged).
    quoting : bool
        Whether double quotes delimit fields (RFC 4180). Formats that never quote (GRU4Rec,
        MovieLens ``.dat``, HetRec) pass ``False`` so a stray quote stays part of the value.
    id_columns : list of str
        Id columns (those present) are read as text and become int64 only when every value is
        an integer that fits int64 and no two texts name one integer (``"01"`` and ``"1"``);
        otherwise they stay the original text, so ``1e30`` and ``2e30`` or integers beyond
        int64 never merge through a float. See :func:`_ids_from_text`.
    """
    source = str(path)
    drops = drops if drops is not None else DropReport()
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    if data is None:
        data = _read_bytes(path)
    if encoding == "auto":
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            log.info("%s is not UTF-8; reading it as Latin-1", source)
            encoding = "latin-1"
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        # line and field boundaries are found on the bytes: recode to an ASCII-compatible form
        try:
            data = data.decode(encoding).encode("utf-8")
        except UnicodeDecodeError:
            raise _decode_error(data, encoding, source, b"", None) from None
        encoding = "utf-8"
    if sep == "::":
        data = data.replace(b"::", b"\x1f")
        sep = "\x1f"
    if len(sep) != 1 or not sep.isascii():
        raise ValueError(f"separator must be one ASCII character or '::', got {sep!r}")
    sep_b = sep.encode("ascii")
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_bounds(buf)
    n_lines = starts.size
    first = 1 if header else 0
    if header:
        try:
            head_text = data[starts[0]:ends[0]].decode(encoding)
        except UnicodeDecodeError:
            raise _decode_error(data, encoding, source, sep_b, None) from None
        head = next(csv.reader([head_text], delimiter=sep)) if quoting else head_text.split(sep)
        head = [h.strip() for h in head]
        if names is None:
            names = head
        elif len(names) != len(head):
            raise DataError(f"header has {len(head)} fields, expected {len(names)} ({names})",
                            path=source, line=1)
    if names is None:
        raise ValueError("names are required for a file without a header")
    expected = len(names)
    if len(set(names)) != len(names):
        raise DataError(f"duplicate column names in header: {names}", path=source, line=1)
    if usecols is not None:
        missing = [c for c in usecols if c not in names]
        if missing:
            raise DataError(f"missing column '{missing[0]}' (columns: {names})", path=source,
                            field=missing[0])

    id_cols = [c for c in id_columns if c in names and (usecols is None or c in usecols)]
    if id_cols:
        dtype = {**({c: dtype for c in names} if dtype is not None and not isinstance(dtype, dict)
                    else (dtype or {})), **{c: str for c in id_cols}}

    quoted = quoting and b'"' in data
    if not quoted:
        counts = _field_counts(buf, starts, ends, sep_b[0])
        blank = ends == starts
        blank[:first] = False
        bad = (counts != expected) & ~blank
        bad[:first] = False
        line_no = np.arange(1, n_lines + 1)
        if blank.any():
            drops.add("blank lines", int(blank.sum()), line_no[blank])
        if bad.any():
            rows = np.flatnonzero(bad)
            if on_error == "raise":
                r = int(rows[0])
                raise DataError(f"expected {expected} fields, found {int(counts[r])}",
                                path=source, line=r + 1)
            drops.add("malformed lines (wrong number of fields)", rows.size, line_no[rows])
        skip = blank | bad
        skip[:first] = True
        if skip.all():
            raise DataError("no data rows" + (" (only a header)" if header else ""), path=source)
        lines = line_no[~skip]
        skiprows = np.flatnonzero(skip).tolist()
        try:
            df = pd.read_csv(io.BytesIO(data), sep=sep, header=None, names=names,
                             usecols=usecols, dtype=dtype, skiprows=skiprows or None,
                             skip_blank_lines=False, keep_default_na=False, na_values=[""],
                             encoding=encoding, quoting=csv.QUOTE_NONE, engine="c")
        except UnicodeDecodeError:
            raise _decode_error(data, encoding, source, sep_b, names) from None
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(f"cannot parse: {e}", path=source) from None
    else:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            raise _decode_error(data, encoding, source, sep_b, names) from None
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        good_lines, bad_lines, blank_lines, good_rows = [], [], [], []
        prev = 0
        try:
            for rec in reader:
                start_line = prev + 1
                prev = reader.line_num
                if start_line <= first:
                    continue
                if not rec:
                    blank_lines.append(start_line)
                elif len(rec) != expected:
                    if on_error == "raise":
                        raise DataError(f"expected {expected} fields, found {len(rec)}",
                                        path=source, line=start_line)
                    bad_lines.append(start_line)
                else:
                    good_lines.append(start_line)
                    good_rows.append(rec)
        except csv.Error as e:
            raise DataError(f"cannot parse: {e}", path=source, line=reader.line_num) from None
        if blank_lines:
            drops.add("blank lines", len(blank_lines), blank_lines)
        if bad_lines:
            drops.add("malformed lines (wrong number of fields)", len(bad_lines), bad_lines)
        if not good_rows:
            raise DataError("no data rows" + (" (only a header)" if header else ""), path=source)
        lines = np.asarray(good_lines, dtype=np.int64)
        if bad_lines:
            # re-serialise the good records so pandas infers column types as for a clean file
            out = io.StringIO()
            csv.writer(out, delimiter=sep, lineterminator="\n").writerows(good_rows)
            out.seek(0)
            src, skip_header = out, None
        else:
            src, skip_header = io.StringIO(text, newline=""), ([0] if header else None)
        del good_rows
        df = pd.read_csv(src, sep=sep, header=None, names=names, usecols=usecols, dtype=dtype,
                         skiprows=skip_header, skip_blank_lines=True, keep_default_na=False,
                         na_values=[""], engine="c")
    if len(df) != lines.size:  # pragma: no cover - guards the line bookkeeping above
        raise DataError(f"internal error: parsed {len(df)} rows for {lines.size} lines", path=source)
    df.columns = [str(c) for c in df.columns]
    for c in id_cols:
        col = df[c]
        ids = _ids_from_text(col)
        df[c] = ids
        if ids is col:
            numeric = pd.to_numeric(df[c], errors="coerce").notna().to_numpy()
            if numeric.any():
                # numbers kept as text: say so, since they will not match integer ids elsewhere
                what = (f"rows with ids in '{c}' kept as text (numbers that are not all int64 "
                        "integers)")
                drops.note(what, int(df[c].notna().sum()))
                log.warning("%s: %d %s", source, int(df[c].notna().sum()), what)
    return _Table(df=df, lines=lines.astype(np.int64), source=source)


_INT_TEXT = r"[+-]?[0-9]+"


def _ids_from_text(s: pd.Series) -> pd.Series:
    """Integer ids where the text allows it without merging two ids, else the text itself.

    ``int64`` when every value is an integer in int64 range; an object column of ints when
    some are missing (NaN stays for the missing-id check); the text unchanged when any value
    is not such an integer or when two texts name the same integer (``"01"``, ``"1"``).
    """
    present = s.notna().to_numpy()
    text = s[present].astype(str).str.strip()
    if not text.str.fullmatch(_INT_TEXT).all():
        return s
    try:
        ints = np.array([int(v) for v in text], dtype=np.int64)
    except OverflowError:
        return s
    if len(np.unique(ints)) != text.nunique():
        return s
    if present.all():
        return pd.Series(ints, index=s.index)
    out = pd.Series(np.full(len(s), np.nan, dtype=object), index=s.index)
    out[present] = ints.astype(object)
    return out


def _relocate_error(err: DataError, lines: np.ndarray) -> DataError:
    """Map a DataError raised with row numbers (``line_offset=0``) to file line numbers."""
    if err.line is not None and 1 <= err.line <= lines.size:
        return DataError(err.message, path=err.path, line=int(lines[err.line - 1]), field=err.field)
    return err


def _relocate_drops(report: DropReport, lines: np.ndarray) -> None:
    for reason, ex in report.examples.items():
        report.examples[reason] = [int(lines[e - 1]) if 1 <= e <= lines.size else e for e in ex]


def _filter(table: _Table, keep: np.ndarray) -> _Table:
    if keep.all():
        return table
    return _Table(table.df.loc[keep].reset_index(drop=True), table.lines[keep], table.source)


def _require_columns(table: _Table, columns) -> None:
    """Raise a DataError naming the first of ``columns`` the table lacks."""
    for c in columns:
        if c not in table.df.columns:
            raise DataError(f"missing column '{c}' (columns: {list(table.df.columns)})",
                            path=table.source, field=c)


def _check_values(table: _Table, *, required: list[str] = (), numeric: list[str] = (),
                  on_error: str, drops: DropReport) -> _Table:
    """Missing values in ``required`` and non-numeric values in ``numeric`` columns.

    Numeric columns are converted to float64 in place. Raises or drops-and-counts per
    ``on_error``.
    """
    df = table.df
    keep = np.ones(len(df), dtype=bool)

    def flag(mask: np.ndarray, what: str, col: str) -> None:
        rows = np.flatnonzero(mask & keep)
        if rows.size == 0:
            return
        if on_error == "raise":
            r = int(rows[0])
            raise DataError(f"{what}: {df[col].iloc[r]!r}", path=table.source,
                            line=int(table.lines[r]), field=col)
        drops.add(f"rows with {what} in '{col}'", rows.size, table.lines[rows])
        keep[rows] = False

    for col in required:
        flag(df[col].isna().to_numpy(), "missing value", col)
    converted = {}
    for col in numeric:
        vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        flag(~np.isfinite(vals), "non-numeric or missing value", col)
        converted[col] = vals
    for col, vals in converted.items():
        df[col] = vals
    return _filter(table, keep)


def _interactions(table: _Table, *, user: str, item: str, rating: str | None,
                  timestamp: str | None, kind: str | None = None, rating_scale=None,
                  duplicates: str = "last", on_error: str = "raise",
                  file_drops: DropReport | None = None, name: str | None = None) -> Interactions:
    """Interactions.from_dataframe on a parsed table, reporting file line numbers."""
    try:
        inter = Interactions.from_dataframe(
            table.df, user=user, item=item, rating=rating, timestamp=timestamp, kind=kind,
            rating_scale=rating_scale, duplicates=duplicates, on_error=on_error,
            source=table.source, line_offset=0, name=name)
    except DataError as e:
        raise _relocate_error(e, table.lines) from None
    _relocate_drops(inter.drops, table.lines)
    if file_drops is not None:
        # file-level drops first, so the report reads in the order things happened
        merged = DropReport().merge(file_drops).merge(inter.drops)
        inter.drops = merged
    return inter


def _sessions(table: _Table, *, session: str, item: str, timestamp: str, user: str | None = None,
              item_map: IdMap | None = None, unknown_items: str = "raise",
              on_error: str = "raise", file_drops: DropReport | None = None,
              name: str | None = None) -> SessionEvents:
    """SessionEvents.from_dataframe on a parsed table, reporting file line numbers."""
    drops = DropReport()
    if file_drops is not None:
        drops.merge(file_drops)
    numeric = [] if pd.api.types.is_datetime64_any_dtype(table.df[timestamp]) else [timestamp]
    table = _check_values(table, required=[session, item], numeric=numeric, on_error=on_error,
                          drops=drops)
    if pd.api.types.is_datetime64_any_dtype(table.df[timestamp]):
        bad = table.df[timestamp].isna().to_numpy()
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            if on_error == "raise":
                raise DataError("missing or unparseable timestamp", path=table.source,
                                line=int(table.lines[r]), field=timestamp)
            drops.add(f"rows with unparseable timestamp in '{timestamp}'", int(bad.sum()),
                      table.lines[bad])
            table = _filter(table, ~bad)
    try:
        ev = SessionEvents.from_dataframe(table.df, session=session, item=item,
                                          timestamp=timestamp, user=user, item_map=item_map,
                                          unknown_items=unknown_items, source=table.source,
                                          line_offset=0, name=name)
    except DataError as e:
        raise _relocate_error(e, table.lines) from None
    _relocate_drops(ev.drops, table.lines)
    ev.drops = drops.merge(ev.drops)
    return ev


def _collect_drops(*reports: DropReport | None) -> DropReport:
    out = DropReport()
    for r in reports:
        if r is not None:
            out.merge(r)
    return out


def _add_tags(features: ItemFeatures, item_ids, tags, name: str = "tags") -> None:
    """Multi-hot tags from one (item, tag) row per assignment; tags lower-cased and stripped.

    Assignments on items outside the index are counted in ``features.unmatched``.
    """
    rows = features.item_map.to_inner(np.asarray(item_ids), missing="mask")
    tag_s = pd.Series(np.asarray(tags, dtype=object)).astype("string").str.strip().str.lower()
    ok = (rows >= 0) & tag_s.notna().to_numpy() & (tag_s.fillna("") != "").to_numpy()
    features.unmatched += int((rows < 0).sum())
    codes, vocab = pd.factorize(tag_s[ok], sort=True)
    m = sp.csr_matrix((np.ones(codes.size, np.float32), (rows[ok], codes)),
                      shape=(features.n_items, len(vocab)))
    m.sum_duplicates()
    m.data[:] = 1.0
    features.categorical[name] = (m, [str(v) for v in vocab])
    features.present[name] = np.diff(m.indptr) > 0


def _multi_hot_flags(features: ItemFeatures, name: str, rows: np.ndarray, flags: np.ndarray,
                     vocab: list[str]) -> None:
    """Multi-hot feature from a 0/1 flag matrix (one row per item row, one column per value)."""
    r, c = np.nonzero(flags)
    m = sp.csr_matrix((np.ones(r.size, np.float32), (rows[r], c)),
                      shape=(features.n_items, len(vocab)))
    m.sum_duplicates()
    m.data[:] = 1.0
    features.categorical[name] = (m, list(vocab))
    features.present[name] = np.diff(m.indptr) > 0


def _check_args(duplicates: str, on_error: str) -> None:
    from ..interactions import DUPLICATE_POLICIES
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")


def _unix_seconds(dt: pd.Series) -> np.ndarray:
    """Unix seconds of a (tz-aware UTC or naive) datetime series, whatever its resolution."""
    epoch = pd.Timestamp(0, tz="UTC") if isinstance(dt.dtype, pd.DatetimeTZDtype) else pd.Timestamp(0)
    return ((dt - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


def with_zip_prefix(users: pd.DataFrame, column: str = "zip_code", length: int = 3) -> pd.DataFrame:
    """A user table with ``zip_prefix`` added when it has a ``zip_code`` column: the first
    ``length`` characters (for US zip codes the sectional centre), a coarser category than
    the zip code itself."""
    if column not in users.columns or "zip_prefix" in users.columns:
        return users
    users = users.copy()
    users["zip_prefix"] = users[column].astype("string").str.strip().str[:length]
    return users
