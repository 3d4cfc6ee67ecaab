"""HetRec 2011 Last.fm 2K (Cantador, Brusilovsky, Kuflik, RecSys 2011)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..errors import DataError, DropReport
from ..features import ItemFeatures
from ._common import (
    PathLike,
    _add_tags,
    _check_args,
    _check_values,
    _collect_drops,
    _interactions,
    _read_delimited,
)


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
