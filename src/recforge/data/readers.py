"""Readers for the rating, implicit-feedback and session formats people have.

Every reader returns a :class:`~recforge.data.dataset.Dataset`. Parsing is done by pandas' C
engine; before it runs, the field count of every line is checked with NumPy on the raw bytes, so
that a malformed line is reported with its real line number instead of being padded with NaN or
silently skipped. Values are then validated column by column (missing ids, non-numeric or NaN
ratings, ratings outside the declared scale, bad timestamps).

Bad input policy (``on_error``):

* ``'raise'`` (default): the first problem raises :class:`~recforge.data.errors.DataError`
  naming the file, the 1-based line (the header is line 1) and the field;
* ``'skip'``: bad rows are dropped and counted in ``Dataset.drops`` by reason, with example line
  numbers. Nothing is dropped without being counted.

Empty files, files with only a header, missing columns and undecodable bytes (wrong encoding)
always raise.

Repeated (user, item) pairs are merged by ``duplicates`` (``'last'`` by default: the latest by
timestamp, or the last row without timestamps; also ``'first'``, ``'mean'``, ``'sum'``,
``'count'``); merged rows are counted in the drop report.

Entry points
------------
:func:`load` (a catalog name, a directory or a file), :func:`read_movielens`,
:func:`read_recbole`, :func:`read_gru4rec_sessions`, :func:`read_yoochoose_clicks`,
:func:`read_diginetica`, :func:`read_retailrocket`, :func:`read_lastfm_hetrec`,
:func:`read_table` (generic CSV / TSV / Parquet with a column mapping).
"""

from __future__ import annotations

import codecs
import csv
import inspect
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .dataset import Dataset
from .errors import DataError, DropReport
from .features import ItemFeatures
from .idmap import IdMap
from .interactions import Interactions
from .sessions import SessionEvents

log = logging.getLogger(__name__)

PathLike = str | Path

__all__ = [
    "detect_format",
    "load",
    "read_diginetica",
    "read_gru4rec_sessions",
    "read_lastfm_hetrec",
    "read_movielens",
    "read_recbole",
    "read_retailrocket",
    "read_table",
    "read_yoochoose_clicks",
]

#: Genres of MovieLens 100K in the column order of ``u.item`` (used when ``u.genre`` is absent).
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]

_YEAR_IN_TITLE = r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$"
_NO_GENRES = "(no genres listed)"


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
                    data: bytes | None = None) -> _Table:
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
    return _Table(df=df, lines=lines.astype(np.int64), source=source)


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
    if file_drops:
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
    if file_drops:
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
        if r:
            out.merge(r)
    return out


def _year_from_title(titles: pd.Series) -> np.ndarray:
    """Release year from a MovieLens title such as ``'Toy Story (1995)'`` (NaN if absent)."""
    years = titles.astype("string").str.strip().str.extract(_YEAR_IN_TITLE, expand=False)
    return pd.to_numeric(years, errors="coerce").to_numpy(dtype=np.float64)


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
    from .interactions import DUPLICATE_POLICIES
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")


# ====================================================================== MovieLens
def read_movielens(path: PathLike, *, rating_scale=None, duplicates: str = "last",
                   on_error: str = "raise", features: bool = True,
                   name: str | None = None) -> Dataset:
    """Read a MovieLens release from its directory (GroupLens layout).

    Editions are recognised by their files (Harper & Konstan, "The MovieLens Datasets: History
    and Context", ACM TiiS 5(4):19, 2015):

    * **100K**: ``u.data`` (tab-separated ``user item rating timestamp``, no header), ``u.item``
      (``|``-separated, Latin-1: id, title, release date, video date, IMDb URL, 19 genre flags),
      ``u.user`` (id, age, gender, occupation, zip), ``u.genre``. Scale 1–5.
    * **1M / 10M**: ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``), ``movies.dat``
      (``MovieID::Title::Genres``, ``|``-separated genres), 1M ``users.dat``, 10M ``tags.dat``.
      Metadata are read as UTF-8 when valid, else Latin-1 (the 1M files are Latin-1).
      Scale 1–5 for 1M (recognised by ``users.dat``), 0.5–5 otherwise.
    * **20M / 25M / 32M / latest / latest-small**: ``ratings.csv``
      (``userId,movieId,rating,timestamp``), ``movies.csv`` (``movieId,title,genres``),
      ``tags.csv`` (``userId,movieId,tag,timestamp``). Scale 0.5–5.

    Item features (aligned to the rated items): ``titles`` as given, ``genres`` (multi-hot;
    ``(no genres listed)`` means none), numeric ``year`` (parsed from the title, e.g.
    ``Toy Story (1995)``; for 100K from the release date when the title has none), ``tags``
    (multi-hot over lower-cased tag strings), and, when ``LLVisualFeatures13K_Log.csv`` sits in
    the directory, the 7-d numeric ``mise_en_scene`` visual features of Deldjoo et al. (2016).
    Movies listed in the metadata but never rated are counted in ``item_features.unmatched``.

    Parameters
    ----------
    path : str or Path
        The release directory (or any file inside it).
    rating_scale : (float, float), optional
        Overrides the edition's scale; ratings outside it are errors.
    duplicates : {'last', 'first', 'mean', 'sum', 'count'}
    on_error : {'raise', 'skip'}
    features : bool
        Read item and user metadata (default True).
    name : str, optional
        Dataset name (default: the directory name).

    Returns
    -------
    Dataset
        ``interactions`` (explicit, with timestamps), ``item_features``, and for 100K / 1M
        ``user_features`` indexed by raw user id.

    Examples
    --------
    >>> ds = read_movielens("ml-100k")          # doctest: +SKIP
    >>> ds.interactions.summary()["interactions"]  # doctest: +SKIP
    100000
    """
    _check_args(duplicates, on_error)
    d = Path(path)
    if d.is_file():
        d = d.parent
    if not d.is_dir():
        raise DataError("directory not found", path=str(d))
    name = name or d.name
    if (d / "u.data").exists():
        return _read_ml100k(d, rating_scale, duplicates, on_error, features, name)
    if (d / "ratings.dat").exists():
        return _read_ml_dat(d, rating_scale, duplicates, on_error, features, name)
    if (d / "ratings.csv").exists():
        return _read_ml_csv(d, rating_scale, duplicates, on_error, features, name)
    raise DataError("not a MovieLens directory (no u.data, ratings.dat or ratings.csv)", path=str(d))


def _read_ml100k(d: Path, rating_scale, duplicates, on_error, features, name) -> Dataset:
    drops = DropReport()
    t = _read_delimited(d / "u.data", sep="\t", header=False,
                        names=["user", "item", "rating", "timestamp"], on_error=on_error,
                        drops=drops, quoting=False)
    inter = _interactions(t, user="user", item="item", rating="rating", timestamp="timestamp",
                          kind="explicit", rating_scale=rating_scale or (1.0, 5.0),
                          duplicates=duplicates, on_error=on_error, file_drops=drops, name=name)
    ds = Dataset(name=name, interactions=inter, source=str(d))
    fdrops = DropReport()
    if features and (d / "u.item").exists():
        genres = ML100K_GENRES
        if (d / "u.genre").exists():
            g = _read_delimited(d / "u.genre", sep="|", header=False, names=["genre", "index"],
                                encoding="latin-1", on_error=on_error, drops=fdrops, quoting=False)
            genres = [str(x) for x in g.df.sort_values("index")["genre"]]
        cols = ["item", "title", "release_date", "video_release_date", "imdb_url"] + genres
        it = _read_delimited(d / "u.item", sep="|", header=False, names=cols, encoding="latin-1",
                             on_error=on_error, drops=fdrops, quoting=False)
        it = _check_values(it, required=["item"], numeric=genres, on_error=on_error, drops=fdrops)
        feats = ItemFeatures.from_dataframe(it.df, inter.item_map, item="item", title="title")
        rows = inter.item_map.to_inner(it.df["item"].to_numpy(), missing="mask")
        ok = rows >= 0
        _multi_hot_flags(feats, "genres", rows[ok], it.df[genres].to_numpy()[ok] > 0, genres)
        year = _year_from_title(it.df["title"])
        date_year = pd.to_datetime(it.df["release_date"], format="%d-%b-%Y", errors="coerce").dt.year
        year = np.where(np.isnan(year), date_year.to_numpy(dtype=np.float64), year)
        y = np.full(feats.n_items, np.nan)
        y[rows[ok]] = year[ok]
        feats.add_numeric("year", y)
        ds.item_features = feats
    if features and (d / "u.user").exists():
        u = _read_delimited(d / "u.user", sep="|", header=False,
                            names=["user", "age", "gender", "occupation", "zip_code"],
                            dtype={"zip_code": str}, encoding="latin-1", on_error=on_error,
                            drops=fdrops, quoting=False)
        ds.user_features = u.df.set_index("user")
    ds.drops = _collect_drops(inter.drops, fdrops)
    return ds


def _read_ml_dat(d: Path, rating_scale, duplicates, on_error, features, name) -> Dataset:
    drops = DropReport()
    is_1m = (d / "users.dat").exists()
    t = _read_delimited(d / "ratings.dat", sep="::", header=False,
                        names=["user", "item", "rating", "timestamp"], on_error=on_error,
                        drops=drops, quoting=False, encoding="latin-1")
    scale = rating_scale or ((1.0, 5.0) if is_1m else (0.5, 5.0))
    inter = _interactions(t, user="user", item="item", rating="rating", timestamp="timestamp",
                          kind="explicit", rating_scale=scale, duplicates=duplicates,
                          on_error=on_error, file_drops=drops, name=name)
    ds = Dataset(name=name, interactions=inter, source=str(d))
    fdrops = DropReport()
    if features and (d / "movies.dat").exists():
        m = _read_delimited(d / "movies.dat", sep="::", header=False,
                            names=["item", "title", "genres"], encoding="auto",
                            on_error=on_error, drops=fdrops, quoting=False)
        ds.item_features = _movie_features(m, inter.item_map, on_error, fdrops)
        if (d / "tags.dat").exists():
            tg = _read_delimited(d / "tags.dat", sep="::", header=False,
                                 names=["user", "item", "tag", "timestamp"], encoding="auto",
                                 on_error=on_error, drops=fdrops, quoting=False)
            _add_tags(ds.item_features, tg.df["item"].to_numpy(), tg.df["tag"].to_numpy())
    if features and is_1m:
        u = _read_delimited(d / "users.dat", sep="::", header=False,
                            names=["user", "gender", "age", "occupation", "zip_code"],
                            dtype={"zip_code": str}, encoding="auto", on_error=on_error,
                            drops=fdrops, quoting=False)
        ds.user_features = u.df.set_index("user")
    ds.drops = _collect_drops(inter.drops, fdrops)
    return ds


def _movie_features(m: _Table, item_map: IdMap, on_error: str, drops: DropReport) -> ItemFeatures:
    """Titles, genres and year from a ``movieId, title, genres`` table."""
    m = _check_values(m, required=["item"], on_error=on_error, drops=drops)
    df = m.df.copy()
    df["genres"] = df["genres"].astype("string").fillna("").replace(_NO_GENRES, "")
    df["year"] = _year_from_title(df["title"])
    return ItemFeatures.from_dataframe(df, item_map, item="item", title="title",
                                       categorical={"genres": "|"}, numeric=["year"])


def _read_ml_csv(d: Path, rating_scale, duplicates, on_error, features, name) -> Dataset:
    drops = DropReport()
    t = _read_delimited(d / "ratings.csv", sep=",", on_error=on_error, drops=drops)
    inter = _interactions(t, user="userId", item="movieId", rating="rating",
                          timestamp="timestamp", kind="explicit",
                          rating_scale=rating_scale or (0.5, 5.0), duplicates=duplicates,
                          on_error=on_error, file_drops=drops, name=name)
    ds = Dataset(name=name, interactions=inter, source=str(d))
    fdrops = DropReport()
    if features and (d / "movies.csv").exists():
        m = _read_delimited(d / "movies.csv", sep=",", usecols=["movieId", "title", "genres"],
                            on_error=on_error, drops=fdrops)
        m.df.columns = ["item", "title", "genres"]
        feats = _movie_features(m, inter.item_map, on_error, fdrops)
        if (d / "tags.csv").exists():
            tg = _read_delimited(d / "tags.csv", sep=",", usecols=["movieId", "tag"],
                                 on_error=on_error, drops=fdrops)
            _add_tags(feats, tg.df["movieId"].to_numpy(), tg.df["tag"].to_numpy())
        visual = d / "LLVisualFeatures13K_Log.csv"
        if visual.exists():
            _add_visual(feats, visual, on_error, fdrops)
        ds.item_features = feats
    ds.drops = _collect_drops(inter.drops, fdrops)
    return ds


def _add_visual(feats: ItemFeatures, path: Path, on_error: str, drops: DropReport) -> None:
    """Mise-en-scène features (``ML_Id,f1..f7``), Deldjoo et al., J. Data Semantics 2016."""
    v = _read_delimited(path, sep=",", on_error=on_error, drops=drops)
    id_col = v.df.columns[0]
    value_cols = list(v.df.columns[1:])
    v = _check_values(v, required=[id_col], numeric=value_cols, on_error=on_error, drops=drops)
    rows = feats.item_map.to_inner(v.df[id_col].to_numpy(), missing="mask")
    ok = rows >= 0
    feats.unmatched += int((~ok).sum())
    arr = np.full((feats.n_items, len(value_cols)), np.nan)
    arr[rows[ok]] = v.df[value_cols].to_numpy(dtype=np.float64)[ok]
    feats.add_numeric("mise_en_scene", arr)


# ====================================================================== RecBole atomic files
_RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


def _recbole_header(table: _Table) -> dict[str, str]:
    """Split ``name:type`` columns, rename them to ``name`` and return {name: type}."""
    types = {}
    new_cols = []
    for col in table.df.columns:
        if ":" not in col:
            raise DataError(f"header field {col!r} is not 'name:type'", path=table.source, line=1,
                            field=col)
        fname, ftype = col.rsplit(":", 1)
        if ftype not in _RECBOLE_TYPES:
            raise DataError(f"unknown field type {ftype!r} (known: {_RECBOLE_TYPES})",
                            path=table.source, line=1, field=col)
        types[fname] = ftype
        new_cols.append(fname)
    table.df.columns = new_cols
    return types


def read_recbole(path: PathLike, name: str | None = None, *, rating_scale=None,
                 duplicates: str = "last", on_error: str = "raise",
                 sep: str = "\t") -> Dataset:
    """Read RecBole atomic files ``{name}.inter``, ``{name}.item``, ``{name}.user``.

    Format (Zhao et al., "RecBole: Towards a Unified, Comprehensive and Efficient Framework for
    Recommendation Algorithms", CIKM 2021): tab-separated, header fields ``name:type`` with
    type ``token``, ``token_seq`` (space-separated tokens), ``float`` or ``float_seq``.

    In ``.inter``, the user is ``user_id`` (else the first token field), the item ``item_id``
    (else the second token field), the rating ``rating`` (else absent: implicit data) and the
    time ``timestamp``. In ``.item``, a ``*title*`` or ``name`` field becomes the titles, a
    ``*year*`` field the numeric ``year``, other ``token`` / ``token_seq`` fields multi-hot
    categorical features, ``float`` fields numeric ones and ``float_seq`` fields numeric
    vectors. ``.user`` becomes ``user_features``.

    Parameters
    ----------
    path : str or Path
        A directory holding ``{name}.inter`` (the only ``.inter`` file when ``name`` is not
        given) or the ``.inter`` file itself.
    name : str, optional
        The atomic-file prefix.
    rating_scale, duplicates, on_error
        As in :func:`read_table`.
    """
    _check_args(duplicates, on_error)
    p = Path(path)
    if p.is_file():
        d, name = p.parent, name or p.stem
    else:
        d = p
        if not d.is_dir():
            raise DataError("directory not found", path=str(d))
        if name is None:
            inters = sorted(d.glob("*.inter"))
            if len(inters) != 1:
                raise DataError(f"expected one .inter file, found {len(inters)}; pass name=",
                                path=str(d))
            name = inters[0].stem
    inter_path = d / f"{name}.inter"
    drops = DropReport()
    t = _read_delimited(inter_path, sep=sep, on_error=on_error, drops=drops, quoting=False)
    types = _recbole_header(t)
    tokens = [c for c, ty in types.items() if ty == "token"]
    user = "user_id" if "user_id" in types else (tokens[0] if tokens else None)
    item = "item_id" if "item_id" in types else (tokens[1] if len(tokens) > 1 else None)
    if user is None or item is None:
        raise DataError("cannot find user and item fields (user_id:token, item_id:token)",
                        path=str(inter_path), line=1)
    rating = "rating" if "rating" in types else None
    timestamp = "timestamp" if "timestamp" in types else None
    inter = _interactions(t, user=user, item=item, rating=rating, timestamp=timestamp,
                          kind="explicit" if rating else "implicit", rating_scale=rating_scale,
                          duplicates=duplicates, on_error=on_error, file_drops=drops, name=name)
    ds = Dataset(name=name, interactions=inter, source=str(d))
    fdrops = DropReport()
    item_path = d / f"{name}.item"
    if item_path.exists():
        it = _read_delimited(item_path, sep=sep, on_error=on_error, drops=fdrops, quoting=False)
        itypes = _recbole_header(it)
        id_col = item if item in itypes else next(c for c, ty in itypes.items() if ty == "token")
        it = _check_values(it, required=[id_col], on_error=on_error, drops=fdrops)
        # RecBole's MovieLens files call the genres 'class'; one name across readers
        for alias in ("class", "genre"):
            if alias in itypes and "genres" not in itypes:
                it.df = it.df.rename(columns={alias: "genres"})
                itypes = {("genres" if k == alias else k): v for k, v in itypes.items()}
        title = next((c for c in itypes if "title" in c or c == "name"), None)
        year = next((c for c in itypes if "year" in c), None)
        categorical, numeric = {}, {}
        vectors = []
        for c, ty in itypes.items():
            if c in (id_col, title, year):
                continue
            if ty == "token":
                categorical[c] = None
            elif ty == "token_seq":
                categorical[c] = " "
            elif ty == "float":
                numeric[c] = [c]
            else:
                vectors.append(c)
        if year is not None:
            numeric["year"] = [year]
        for c in [c for cols in numeric.values() for c in cols]:
            vals = pd.to_numeric(it.df[c], errors="coerce")
            # an empty cell is "unknown" (NaN); text in a numeric field is an error, except
            # placeholders in a token-typed year field, which are unknown years (counted)
            bad = vals.isna().to_numpy() & it.df[c].notna().to_numpy()
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                if on_error == "raise" and c != year:
                    raise DataError(f"non-numeric value {it.df[c].iloc[r]!r}", path=it.source,
                                    line=int(it.lines[r]), field=c)
                fdrops.add(f"non-numeric values in '{c}' read as unknown", int(bad.sum()),
                           it.lines[bad])
            it.df[c] = vals
        feats = ItemFeatures.from_dataframe(it.df, inter.item_map, item=id_col, title=title,
                                            categorical=categorical, numeric=numeric)
        for c in vectors:
            rows = inter.item_map.to_inner(it.df[id_col].to_numpy(), missing="mask")
            ok = rows >= 0
            parts = it.df[c].astype("string").fillna("").str.split(" ")
            lengths = parts.str.len().to_numpy()
            dim = int(lengths[ok].max()) if ok.any() else 0
            arr = np.full((feats.n_items, dim), np.nan)
            for j, (r, vals) in enumerate(zip(rows, parts, strict=True)):
                if r >= 0 and len(vals) == dim and vals != [""]:
                    arr[r] = np.asarray(vals, dtype=np.float64)
                elif r >= 0 and vals != [""]:
                    raise DataError(f"vector of length {len(vals)}, expected {dim}",
                                    path=it.source, line=int(it.lines[j]), field=c)
            feats.add_numeric(c, arr)
        ds.item_features = feats
    user_path = d / f"{name}.user"
    if user_path.exists():
        u = _read_delimited(user_path, sep=sep, on_error=on_error, drops=fdrops, quoting=False,
                            dtype=str)
        utypes = _recbole_header(u)
        id_col = user if user in utypes else next(iter(utypes))
        uf = u.df.set_index(id_col)
        uf.index = _normalize_index(uf.index)
        for c, ty in utypes.items():
            if ty == "float" and c != id_col:
                uf[c] = pd.to_numeric(uf[c], errors="coerce")
        ds.user_features = uf
    ds.drops = _collect_drops(inter.drops, fdrops)
    return ds


def _normalize_index(index: pd.Index) -> pd.Index:
    """Integer ids read as text become integers, matching the interactions' id map."""
    try:
        return pd.Index(index.astype(np.int64), name=index.name)
    except (TypeError, ValueError):
        return index


# ====================================================================== session logs
_GRU4REC_PARTS = ("train_full", "test", "train_tr", "train_valid")


def read_gru4rec_sessions(path: PathLike, *, prefix: str | None = None,
                          session: str = "SessionId", item: str = "ItemId", time: str = "Time",
                          unknown_items: str = "drop", on_error: str = "raise",
                          name: str | None = None) -> Dataset:
    """Read session data in the format of the GRU4Rec code (Hidasi et al., ICLR 2016).

    Tab-separated files with a header ``SessionId ItemId Time`` (time in unix seconds). A
    directory holding ``{prefix}_train_full.txt``, ``{prefix}_test.txt`` and optionally
    ``{prefix}_train_tr.txt`` / ``{prefix}_train_valid.txt`` gives ``Dataset.parts`` with
    those keys; ``Dataset.sessions`` is ``train_full``. Items of the other parts are mapped
    into ``train_full``'s item index (the protocol evaluates only items seen in training);
    events on unknown items are dropped and counted (``unknown_items='drop'``, the default) or
    raise (``'raise'``). A single file is read as ``Dataset.sessions`` alone.

    Parameters
    ----------
    path : str or Path
        Directory or file.
    prefix : str, optional
        File prefix when the directory holds several data sets.
    session, item, time : str
        Column names.
    unknown_items : {'drop', 'raise'}
    on_error : {'raise', 'skip'}
    """
    p = Path(path)
    if unknown_items not in ("drop", "raise"):
        raise ValueError("unknown_items must be 'drop' or 'raise'")
    if p.is_file():
        drops = DropReport()
        t = _read_delimited(p, sep="\t", on_error=on_error, drops=drops, quoting=False)
        ev = _sessions(t, session=session, item=item, timestamp=time, on_error=on_error,
                       file_drops=drops, name=name or p.stem)
        return Dataset(name=name or p.stem, sessions=ev, drops=_collect_drops(ev.drops),
                       source=str(p))
    if not p.is_dir():
        raise DataError("file or directory not found", path=str(p))
    fulls = sorted(p.glob(f"{prefix}_train_full.txt" if prefix else "*_train_full.txt"))
    if len(fulls) != 1:
        raise DataError(f"expected one *_train_full.txt file, found {len(fulls)}"
                        + ("; pass prefix=" if fulls else ""), path=str(p))
    prefix = fulls[0].name[: -len("_train_full.txt")]
    parts: dict[str, SessionEvents] = {}
    all_drops = DropReport()
    item_map = None
    for part in _GRU4REC_PARTS:
        f = p / f"{prefix}_{part}.txt"
        if not f.exists():
            continue
        drops = DropReport()
        t = _read_delimited(f, sep="\t", on_error=on_error, drops=drops, quoting=False)
        ev = _sessions(t, session=session, item=item, timestamp=time, item_map=item_map,
                       unknown_items="drop" if unknown_items == "drop" else "raise",
                       on_error=on_error, file_drops=drops, name=part)
        if item_map is None:
            item_map = ev.item_map
        parts[part] = ev
        for reason, n in ev.drops.counts.items():
            all_drops.add(f"{part}: {reason}", n, ev.drops.examples.get(reason, ()))
    if "test" not in parts:
        log.info("%s: no %s_test.txt; only the training part is read", p, prefix)
    return Dataset(name=name or p.name, sessions=parts["train_full"], parts=parts,
                   drops=all_drops, source=str(p))


def _resolve_file(path: PathLike, candidates: tuple[str, ...]) -> Path:
    p = Path(path)
    if p.is_dir():
        for c in candidates:
            if (p / c).exists():
                return p / c
        raise DataError(f"none of {list(candidates)} found", path=str(p))
    if not p.exists():
        raise DataError("file not found", path=str(p))
    return p


def read_yoochoose_clicks(path: PathLike, *, on_error: str = "raise",
                          name: str | None = None) -> Dataset:
    """Read YOOCHOOSE clicks (RecSys Challenge 2015, Ben-Shimon et al., RecSys 2015).

    ``yoochoose-clicks.dat``: comma-separated, no header: ``SessionID, Timestamp (ISO 8601,
    UTC), ItemID, Category``. The data must be downloaded by hand (licence acceptance); pass
    the file or its directory. Returns ``Dataset.sessions`` (anonymous); the category of each
    click is not kept (it varies per click, it is not an item attribute).
    """
    f = _resolve_file(path, ("yoochoose-clicks.dat",))
    drops = DropReport()
    t = _read_delimited(f, sep=",", header=False, names=["session", "time", "item", "category"],
                        usecols=["session", "time", "item"], dtype={"category": str},
                        on_error=on_error, drops=drops, quoting=False)
    t = _check_values(t, required=["time"], on_error=on_error, drops=drops)
    t.df["time"] = pd.to_datetime(t.df["time"], format="ISO8601", utc=True, errors="coerce")
    ev = _sessions(t, session="session", item="item", timestamp="time", on_error=on_error,
                   file_drops=drops, name="clicks")
    return Dataset(name=name or "yoochoose", sessions=ev, drops=_collect_drops(ev.drops),
                   source=str(f))


def read_diginetica(path: PathLike, *, on_error: str = "raise",
                    name: str | None = None) -> Dataset:
    """Read DIGINETICA ``train-item-views.csv`` (CIKM Cup 2016, track 2).

    Semicolon-separated with header ``sessionId;userId;itemId;timeframe;eventdate``. The event
    time is ``eventdate`` (midnight UTC) plus ``timeframe`` milliseconds, which orders events
    within a day as the preprocessing of Li et al. (NARM, CIKM 2017) and Wu et al. (SR-GNN,
    AAAI 2019) does. ``userId`` is often empty (anonymous sessions); where present it is kept
    as the session's user. ``product-categories.csv`` (``itemId;categoryId``) in the same
    directory becomes the categorical item feature ``category``. Manual download only.
    """
    f = _resolve_file(path, ("train-item-views.csv", "dataset-train-diginetica/train-item-views.csv"))
    drops = DropReport()
    t = _read_delimited(f, sep=";", on_error=on_error, drops=drops, quoting=False)
    needed = ["sessionId", "itemId", "timeframe", "eventdate"]
    for c in needed:
        if c not in t.df.columns:
            raise DataError(f"missing column '{c}' (columns: {list(t.df.columns)})", path=t.source,
                            field=c)
    t = _check_values(t, required=["eventdate"], numeric=["timeframe"], on_error=on_error,
                      drops=drops)
    day = pd.to_datetime(t.df["eventdate"], format="%Y-%m-%d", errors="coerce", utc=True)
    bad = day.isna().to_numpy()
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        if on_error == "raise":
            raise DataError(f"bad date {t.df['eventdate'].iloc[r]!r}", path=t.source,
                            line=int(t.lines[r]), field="eventdate")
        drops.add("rows with a bad date in 'eventdate'", int(bad.sum()), t.lines[bad])
        t = _filter(t, ~bad)
        day = day[~bad].reset_index(drop=True)
    t.df["time"] = _unix_seconds(day) + t.df["timeframe"].to_numpy() / 1000.0
    user = "userId" if "userId" in t.df.columns else None
    ev = _sessions(t, session="sessionId", item="itemId", timestamp="time", user=user,
                   on_error=on_error, file_drops=drops, name="views")
    ds = Dataset(name=name or "diginetica", sessions=ev, source=str(f))
    fdrops = DropReport()
    cats = f.parent / "product-categories.csv"
    if cats.exists():
        c = _read_delimited(cats, sep=";", on_error=on_error, drops=fdrops, quoting=False,
                            dtype=str)
        feats = ItemFeatures(item_map=ev.item_map)
        _add_tags(feats, c.df[c.df.columns[0]].to_numpy(), c.df[c.df.columns[1]].to_numpy(),
                  name="category")
        ds.item_features = feats
    ds.drops = _collect_drops(ev.drops, fdrops)
    return ds


def read_retailrocket(path: PathLike, *, events=("view", "addtocart", "transaction"),
                      session_gap: float = 1800.0, duplicates: str = "last",
                      on_error: str = "raise", name: str | None = None) -> Dataset:
    """Read Retailrocket ``events.csv`` (Kaggle "Retailrocket recommender system dataset").

    Comma-separated with header ``timestamp,visitorid,event,itemid,transactionid``; timestamps
    in milliseconds. Keeps the event types in ``events`` (others are counted as dropped) and
    returns both views of the log:

    * ``interactions``: implicit visitor x item, repeated pairs merged by ``duplicates``
      (``'count'`` gives the number of events, ``'last'`` a binary matrix);
    * ``sessions``: each visitor's events cut into sessions by ``session_gap`` seconds of
      inactivity (30 minutes by default, the usual web-analytics convention); session ids are
      integers in (visitor, time) order and ``sessions.users`` holds the visitor.

    Manual download only.
    """
    _check_args(duplicates, on_error)
    f = _resolve_file(path, ("events.csv",))
    drops = DropReport()
    t = _read_delimited(f, sep=",", on_error=on_error, drops=drops, quoting=False,
                        dtype={"transactionid": str})
    for c in ("timestamp", "visitorid", "event", "itemid"):
        if c not in t.df.columns:
            raise DataError(f"missing column '{c}' (columns: {list(t.df.columns)})", path=t.source,
                            field=c)
    t = _check_values(t, required=["visitorid", "itemid", "event"], numeric=["timestamp"],
                      on_error=on_error, drops=drops)
    wanted = t.df["event"].isin(list(events)).to_numpy()
    if not wanted.all():
        drops.add(f"events not in {list(events)}", int((~wanted).sum()), t.lines[~wanted])
        t = _filter(t, wanted)
    t.df["timestamp"] = t.df["timestamp"] / 1000.0
    inter = _interactions(t, user="visitorid", item="itemid", rating=None, timestamp="timestamp",
                          kind="implicit", duplicates=duplicates, on_error=on_error,
                          file_drops=drops, name=name or "retailrocket")
    vis = t.df["visitorid"].to_numpy()
    tm = t.df["timestamp"].to_numpy(dtype=np.float64)
    order = np.lexsort((np.arange(vis.size), tm, vis))
    new = np.ones(vis.size, dtype=bool)
    new[1:] = (vis[order][1:] != vis[order][:-1]) | (np.diff(tm[order]) > session_gap)
    sid = np.empty(vis.size, dtype=np.int64)
    sid[order] = np.cumsum(new) - 1
    sdf = pd.DataFrame({"session": sid, "item": t.df["itemid"].to_numpy(), "time": tm,
                        "user": vis})
    ev = SessionEvents.from_dataframe(sdf, session="session", item="item", timestamp="time",
                                      user="user", item_map=inter.item_map, source=t.source,
                                      name="sessions")
    return Dataset(name=name or "retailrocket", interactions=inter, sessions=ev,
                   drops=_collect_drops(inter.drops), source=str(f))


# ====================================================================== Last.fm (HetRec 2011)
def read_lastfm_hetrec(path: PathLike, *, duplicates: str = "last", on_error: str = "raise",
                       features: bool = True, name: str | None = None) -> Dataset:
    """Read HetRec 2011 Last.fm 2K (Cantador, Brusilovsky, Kuflik, RecSys 2011).

    ``user_artists.dat`` (``userID artistID weight``, tab-separated, header) gives implicit
    interactions whose value is the play count. ``artists.dat`` gives titles (artist names);
    ``user_taggedartists.dat`` joined with ``tags.dat`` gives the multi-hot ``tags`` feature
    (every tag any user applied to the artist; tag values lower-cased). ``tags.dat`` is read
    as UTF-8 when valid, else Latin-1. Tag assignments on artists without plays are counted in
    ``item_features.unmatched``. The friend graph (``user_friends.dat``) is not read.
    """
    _check_args(duplicates, on_error)
    d = Path(path)
    if d.is_file():
        d = d.parent
    drops = DropReport()
    t = _read_delimited(d / "user_artists.dat", sep="\t", on_error=on_error, drops=drops,
                        quoting=False)
    inter = _interactions(t, user="userID", item="artistID", rating="weight", timestamp=None,
                          kind="implicit", duplicates=duplicates, on_error=on_error,
                          file_drops=drops, name=name or d.name)
    if inter.nnz and inter.values.min() < 0:
        r = int(np.argmin(inter.values))
        raise DataError(f"negative play count {inter.values[r]!r}", path=t.source, field="weight")
    ds = Dataset(name=name or d.name, interactions=inter, source=str(d))
    fdrops = DropReport()
    if features and (d / "artists.dat").exists():
        a = _read_delimited(d / "artists.dat", sep="\t", on_error=on_error, drops=fdrops,
                            quoting=False, encoding="auto")
        a = _check_values(a, required=["id"], on_error=on_error, drops=fdrops)
        feats = ItemFeatures.from_dataframe(a.df, inter.item_map, item="id", title="name",
                                            text=["url"] if "url" in a.df.columns else None)
        if (d / "user_taggedartists.dat").exists() and (d / "tags.dat").exists():
            tags = _read_delimited(d / "tags.dat", sep="\t", on_error=on_error, drops=fdrops,
                                   quoting=False, encoding="auto")
            ua = _read_delimited(d / "user_taggedartists.dat", sep="\t", on_error=on_error,
                                 drops=fdrops, quoting=False, usecols=["artistID", "tagID"])
            ua = _check_values(ua, required=["artistID", "tagID"], on_error=on_error, drops=fdrops)
            tag_map = pd.Series(tags.df["tagValue"].to_numpy(), index=tags.df["tagID"].to_numpy())
            values = tag_map.reindex(ua.df["tagID"].to_numpy()).to_numpy()
            unknown = pd.isna(values)
            if unknown.any():
                fdrops.add("tag assignments with a tagID missing from tags.dat",
                           int(unknown.sum()), ua.lines[unknown])
            _add_tags(feats, ua.df["artistID"].to_numpy()[~unknown], values[~unknown])
        ds.item_features = feats
    ds.drops = _collect_drops(inter.drops, fdrops)
    return ds


# ====================================================================== generic tables
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


def _unix_seconds(dt: pd.Series) -> np.ndarray:
    """Unix seconds of a (tz-aware UTC or naive) datetime series, whatever its resolution."""
    epoch = pd.Timestamp(0, tz="UTC") if isinstance(dt.dtype, pd.DatetimeTZDtype) else pd.Timestamp(0)
    return ((dt - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)


# ====================================================================== dispatch
def detect_format(path: PathLike) -> str:
    """Name of the reader for a directory or file (see :data:`READERS`).

    Directories are recognised by their files; a directory holding exactly one sub-directory
    (an extracted archive) is looked into.
    """
    p = Path(path)
    if p.is_file():
        n = p.name
        if n in ("u.data", "ratings.dat", "ratings.csv") and (
                n != "ratings.csv" or (p.parent / "movies.csv").exists()):
            return "movielens"
        if p.suffix == ".inter":
            return "recbole"
        if n.startswith("yoochoose-clicks"):
            return "yoochoose"
        if n == "train-item-views.csv":
            return "diginetica"
        if n == "events.csv":
            return "retailrocket"
        if n == "user_artists.dat":
            return "lastfm"
        if p.suffix == ".txt":
            with open(p, "rb") as fh:
                head = fh.readline().decode("utf-8", "replace").strip().split("\t")
            if head[:3] == ["SessionId", "ItemId", "Time"]:
                return "gru4rec"
        return "table"
    if not p.is_dir():
        raise DataError("no such file or directory", path=str(p))
    names = {c.name for c in p.iterdir()}
    if names & {"u.data", "ratings.dat"} or {"ratings.csv", "movies.csv"} <= names:
        return "movielens"
    if any(n.endswith(".inter") for n in names):
        return "recbole"
    if any(n.endswith("_train_full.txt") for n in names):
        return "gru4rec"
    if "yoochoose-clicks.dat" in names:
        return "yoochoose"
    if "train-item-views.csv" in names:
        return "diginetica"
    if "events.csv" in names:
        return "retailrocket"
    if "user_artists.dat" in names:
        return "lastfm"
    subdirs = [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")]
    files = [c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
    if len(subdirs) == 1 and not files:
        return detect_format(subdirs[0])
    raise DataError("cannot recognise the data format of this directory (files: "
                    f"{sorted(names)[:10]})", path=str(p))


def _inner_dir(p: Path) -> Path:
    """Descend into a lone sub-directory (the usual shape of an extracted archive)."""
    if p.is_dir():
        names = {c.name for c in p.iterdir()}
        subdirs = [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")]
        files = [c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
        if len(subdirs) == 1 and not files and not names & {"u.data", "ratings.dat"}:
            return _inner_dir(subdirs[0])
    return p


#: Format name -> reader function.
READERS = {
    "movielens": read_movielens,
    "recbole": read_recbole,
    "gru4rec": read_gru4rec_sessions,
    "yoochoose": read_yoochoose_clicks,
    "diginetica": read_diginetica,
    "retailrocket": read_retailrocket,
    "lastfm": read_lastfm_hetrec,
    "table": read_table,
}

SYNTHETIC = ("synthetic", "synthetic-implicit", "synthetic-sessions")


def read_path(path: PathLike, *, format: str | None = None, name: str | None = None,
              **kwargs) -> Dataset:
    """Read a directory or file with the reader of its (detected or given) format."""
    p = _inner_dir(Path(path))
    fmt = format or detect_format(p)
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; known: {sorted(READERS)}")
    reader = READERS[fmt]
    accepted = set(inspect.signature(reader).parameters)
    unused = {k for k, v in kwargs.items() if k not in accepted and v is not None}
    if unused:
        raise TypeError(f"the {fmt} reader does not take {sorted(unused)}")
    kw = {k: v for k, v in kwargs.items() if k in accepted}
    ds = reader(p, **kw) if name is None else reader(p, name=name, **kw)
    if ds.source is None:
        ds.source = str(p)
    return ds


def load(name_or_path: PathLike, data_dir: PathLike | None = None, *, download: bool = False,
         cache_dir: PathLike | None = None, **kwargs) -> Dataset:
    """Load a data set by catalog name, directory or file.

    Resolution order for a name known to :mod:`recforge.data.catalog`:

    1. ``data_dir / name`` when ``data_dir`` is given and holds it;
    2. the download cache (``$RECFORGE_DATA`` or the user cache directory), if the data set
       was downloaded completely;
    3. with ``download=True``, download it now (see :func:`recforge.data.download.download`).

    ``'synthetic'``, ``'synthetic-implicit'`` and ``'synthetic-sessions'`` call the seeded
    generators of :mod:`recforge.data.synthetic` (``kwargs`` go to them), so everything works
    offline. Any other string is a path: a directory in a known format (see
    :func:`detect_format`) or a single file (CSV / TSV / Parquet via :func:`read_table`).

    Parameters
    ----------
    name_or_path : str or Path
    data_dir : str or Path, optional
        A folder holding data sets under their catalog names.
    download : bool
        Download a known data set that is not cached.
    cache_dir : str or Path, optional
        Overrides the cache location.
    **kwargs
        Passed to the reader (e.g. ``duplicates``, ``on_error``, ``rating_scale``).

    Returns
    -------
    Dataset
    """
    key = str(name_or_path)
    if key in SYNTHETIC:
        from . import synthetic
        gen = {"synthetic": synthetic.generate_ratings,
               "synthetic-implicit": synthetic.generate_implicit,
               "synthetic-sessions": synthetic.generate_sessions}[key]
        return gen(**kwargs)
    from . import catalog
    from . import download as dl
    info = catalog.get(key) if not Path(key).exists() else None
    if info is not None:
        candidates = []
        if data_dir is not None:
            candidates.append(Path(data_dir) / key)
        cached = dl.cached_path(key, cache_dir)
        if cached is not None:
            candidates.append(cached)
        where = next((c for c in candidates if c.exists()), None)
        if where is None:
            if download:
                where = dl.download(key, cache_dir=cache_dir)
            else:
                hint = (f"run `recforge datasets download {key}`" if info.url
                        else f"download it by hand ({info.homepage}) and pass its directory")
                raise DataError(f"data set {key!r} is not available locally; {hint}, "
                                f"or pass data_dir= holding a '{key}' folder",
                                path=str(dl.cache_dir(cache_dir) / key))
        if info.rating_scale is not None and "rating_scale" not in kwargs and \
                "rating_scale" in inspect.signature(READERS[detect_format(_inner_dir(where))]).parameters:
            kwargs["rating_scale"] = info.rating_scale
        return read_path(where, name=key, **kwargs)
    p = Path(key)
    if not p.exists():
        known = ", ".join(catalog.names())
        raise DataError(f"no such file or directory, and not a known data set (known: {known}, "
                        f"{', '.join(SYNTHETIC)})", path=key)
    return read_path(p, **kwargs)
