"""MovieLens, every edition (100K, 1M, 10M, and the CSV releases 20M / 25M / 32M / latest).

Harper & Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4):19, 2015.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..errors import DataError, DropReport
from ..features import ItemFeatures
from ..idmap import IdMap
from ._common import (
    PathLike,
    _add_tags,
    _check_args,
    _check_values,
    _collect_drops,
    _interactions,
    _multi_hot_flags,
    _read_delimited,
    _Table,
    with_zip_prefix,
)

#: Genres of MovieLens 100K in the column order of ``u.item`` (used when ``u.genre`` is absent).
ML100K_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western"]

_YEAR_IN_TITLE = r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$"
_NO_GENRES = "(no genres listed)"


def _year_from_title(titles: pd.Series) -> np.ndarray:
    """Release year from a MovieLens title such as ``'Toy Story (1995)'`` (NaN if absent)."""
    years = titles.astype("string").str.strip().str.extract(_YEAR_IN_TITLE, expand=False)
    return pd.to_numeric(years, errors="coerce").to_numpy(dtype=np.float64)


def read_movielens(path: PathLike, *, rating_scale=None, duplicates: str = "last",
                   on_error: str = "raise", features: bool = True,
                   name: str | None = None) -> Dataset:
    """Read a MovieLens release from its directory (GroupLens layout).

    Editions are recognised by their files (Harper & Konstan, "The MovieLens Datasets: History
    and Context", ACM TiiS 5(4):19, 2015):

    * **100K**: ``u.data`` (tab-separated ``user item rating timestamp``, no header), ``u.item``
      (``|``-separated, Latin-1: id, title, release date, video date, IMDb URL, 19 genre flags),
      ``u.user`` (id, age, gender, occupation, zip), ``u.genre``. Scale 1–5.
      User features keep the zip code and add ``zip_prefix`` (its first three characters).
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
        ds.user_features = with_zip_prefix(u.df.set_index("user"))
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
        ds.user_features = with_zip_prefix(u.df.set_index("user"))
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
