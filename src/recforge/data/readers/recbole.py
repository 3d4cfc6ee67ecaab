"""RecBole atomic files (``.inter``, ``.item``, ``.user``).

Zhao et al., "RecBole: Towards a Unified, Comprehensive and Efficient Framework for
Recommendation Algorithms", CIKM 2021.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..errors import DataError, DropReport
from ..features import ItemFeatures
from ._common import (
    PathLike,
    _check_args,
    _check_values,
    _collect_drops,
    _interactions,
    _read_delimited,
    _Table,
    with_zip_prefix,
)

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
        ds.user_features = with_zip_prefix(uf)
    ds.drops = _collect_drops(inter.drops, fdrops)
    return ds


def _normalize_index(index: pd.Index) -> pd.Index:
    """Integer ids read as text become integers, matching the interactions' id map."""
    try:
        return pd.Index(index.astype(np.int64), name=index.name)
    except (TypeError, ValueError):
        return index
