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

Modules
-------
``_common`` (delimited-text parsing with line numbers, validation, drop bookkeeping),
``movielens``, ``recbole``, ``sessions`` (GRU4Rec, YOOCHOOSE, DIGINETICA, Retailrocket),
``lastfm``, ``tabular`` (CSV / TSV / Parquet); this module picks the reader.

Entry points
------------
:func:`load` (a catalog name, a directory or a file), :func:`read_movielens`,
:func:`read_recbole`, :func:`read_gru4rec_sessions`, :func:`read_yoochoose_clicks`,
:func:`read_diginetica`, :func:`read_retailrocket`, :func:`read_lastfm_hetrec`,
:func:`read_table` (generic CSV / TSV / Parquet with a column mapping).
"""

from __future__ import annotations

import inspect
from pathlib import Path

# re-exported (``X as X``): ``from recforge.data.readers import Dataset, DataError, ...`` works
from ..dataset import Dataset as Dataset
from ..errors import DataError as DataError
from ..errors import DropReport as DropReport
from ..features import ItemFeatures as ItemFeatures
from ..idmap import IdMap as IdMap
from ..interactions import Interactions as Interactions
from ..sessions import SessionEvents as SessionEvents
from ._common import PathLike as PathLike
from .lastfm import read_lastfm_hetrec
from .movielens import ML100K_GENRES as ML100K_GENRES
from .movielens import read_movielens
from .recbole import read_recbole
from .sessions import (
    read_diginetica,
    read_gru4rec_sessions,
    read_retailrocket,
    read_yoochoose_clicks,
)
from .tabular import read_table

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
    inner = _lone_subdir(p)
    if inner is not None:
        return detect_format(inner)
    raise DataError("cannot recognise the data format of this directory (files: "
                    f"{sorted(names)[:10]})", path=str(p))


def _lone_subdir(p: Path) -> Path | None:
    """The one sub-directory of a directory that holds no other (non-hidden) file or folder."""
    subdirs = [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")]
    files = [c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")]
    return subdirs[0] if len(subdirs) == 1 and not files else None


def _inner_dir(p: Path) -> Path:
    """Descend into a lone sub-directory (the usual shape of an extracted archive)."""
    if p.is_dir():
        names = {c.name for c in p.iterdir()}
        inner = _lone_subdir(p)
        if inner is not None and not names & {"u.data", "ratings.dat"}:
            return _inner_dir(inner)
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
    try:
        ds = reader(p, **kw) if name is None else reader(p, name=name, **kw)
    except (DataError, OSError, TypeError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - malformed input must surface as DataError
        # the readers name file, line and field for every problem they know of; anything a
        # parser underneath raises on input nobody anticipated is still the data's fault
        raise DataError(f"cannot be read as {fmt}: {type(exc).__name__}: {exc}", path=str(p)) from exc
    if ds.source is None:
        ds.source = str(p)
    return ds


def load(name_or_path: PathLike | None = None, data_dir: PathLike | None = None, *,
         train: PathLike | None = None, test: PathLike | None = None, download: bool = False,
         cache_dir: PathLike | None = None, **kwargs) -> Dataset:
    """Load a data set by catalog name, directory or file, or a session train and test file.

    Resolution order for a name known to :mod:`recforge.data.catalog`:

    1. ``data_dir / name`` when ``data_dir`` is given and holds it;
    2. the download cache (``$RECFORGE_DATA`` or the user cache directory), if the data set
       was downloaded completely;
    3. with ``download=True``, download it now (see :func:`recforge.data.download.download`).

    ``'synthetic'``, ``'synthetic-implicit'`` and ``'synthetic-sessions'`` call the seeded
    generators of :mod:`recforge.data.synthetic` (``kwargs`` go to them), so everything works
    offline. Any other string is a path: a directory in a known format (see
    :func:`detect_format`) or a single file (CSV / TSV / Parquet via :func:`read_table`).

    ``load(train="a.txt", test="b.txt")`` (no ``name_or_path``) reads two session files in the
    GRU4Rec format, whatever their names, as a directory of ``{prefix}_train_full.txt`` and
    ``{prefix}_test.txt`` is read (see :func:`read_gru4rec_sessions`): ``parts["train_full"]``
    (also ``sessions``) and ``parts["test"]`` share the training item index, and test events
    on items unseen in training are dropped and counted in ``drops``.

    Parameters
    ----------
    name_or_path : str or Path, optional
        Required unless ``train`` and ``test`` are given.
    data_dir : str or Path, optional
        A folder holding data sets under their catalog names.
    train, test : str or Path, optional
        A session training file and test file, given together instead of ``name_or_path``.
    download : bool
        Download a known data set that is not cached.
    cache_dir : str or Path, optional
        Overrides the cache location.
    **kwargs
        Passed to the reader (e.g. ``duplicates``, ``on_error``, ``rating_scale``; with
        ``train``/``test``: ``session``, ``item``, ``time``, ``unknown_items``, ``on_error``).

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load("ml-100k", download=True)                            # doctest: +SKIP
    >>> ds = load(train="clicks_train.txt", test="clicks_test.txt")    # doctest: +SKIP
    >>> ds.parts["test"].item_map is ds.parts["train_full"].item_map   # doctest: +SKIP
    True
    """
    if train is not None or test is not None:
        if name_or_path is not None or data_dir is not None or download or cache_dir is not None:
            raise ValueError("train= and test= name local files; name_or_path, data_dir, "
                             "download and cache_dir do not go with them")
        if train is None or test is None:
            raise ValueError(f"train= and test= go together; {'train' if train is None else 'test'}"
                             "= is missing")
        return read_path(train, format="gru4rec", test=test, **kwargs)
    if name_or_path is None:
        raise TypeError("load() needs a catalog name, a directory or a file, or train= and test=")
    key = str(name_or_path)
    if key in SYNTHETIC:
        from .. import synthetic
        gen = {"synthetic": synthetic.generate_ratings,
               "synthetic-implicit": synthetic.generate_implicit,
               "synthetic-sessions": synthetic.generate_sessions}[key]
        return gen(**kwargs)
    from .. import catalog
    from .. import download as dl
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
