"""Session logs: GRU4Rec files (YOOCHOOSE / RSC15 preprocessed), YOOCHOOSE clicks, DIGINETICA,
Retailrocket."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..dataset import Dataset
from ..errors import DataError, DropReport
from ..features import ItemFeatures
from ..sessions import SessionEvents
from ._common import (
    PathLike,
    _add_tags,
    _check_args,
    _check_values,
    _collect_drops,
    _filter,
    _interactions,
    _read_delimited,
    _require_columns,
    _sessions,
    _unix_seconds,
)

log = logging.getLogger(__name__)

_GRU4REC_PARTS = ("train_full", "test", "train_tr", "train_valid")


def read_gru4rec_sessions(path: PathLike, *, test: PathLike | None = None,
                          prefix: str | None = None, session: str = "SessionId",
                          item: str = "ItemId", time: str = "Time", unknown_items: str = "drop",
                          on_error: str = "raise", name: str | None = None) -> Dataset:
    """Read session data in the format of the GRU4Rec code (Hidasi et al., ICLR 2016).

    Tab-separated files with a header ``SessionId ItemId Time`` (time in unix seconds). A
    directory holding ``{prefix}_train_full.txt``, ``{prefix}_test.txt`` and optionally
    ``{prefix}_train_tr.txt`` / ``{prefix}_train_valid.txt`` gives ``Dataset.parts`` with
    those keys; ``Dataset.sessions`` is ``train_full``. Items of the other parts are mapped
    into ``train_full``'s item index (the protocol evaluates only items seen in training);
    events on unknown items are dropped and counted (``unknown_items='drop'``, the default) or
    raise (``'raise'``). A single file is read as ``Dataset.sessions`` alone; a single file
    with ``test=`` another file, whatever their names, is read as the ``train_full`` and
    ``test`` parts exactly as the prefix-named files of a directory are.

    Parameters
    ----------
    path : str or Path
        Directory or file (the training file when ``test`` is given).
    test : str or Path, optional
        The test file read onto the item index of the file ``path``.
    prefix : str, optional
        File prefix when the directory holds several data sets.
    session, item, time : str
        Column names.
    unknown_items : {'drop', 'raise'}
    on_error : {'raise', 'skip'}

    Examples
    --------
    >>> ds = read_gru4rec_sessions("rsc15/")                            # doctest: +SKIP
    >>> ds = read_gru4rec_sessions("clicks_a.txt", test="clicks_b.txt")  # doctest: +SKIP
    >>> ds.parts["test"].item_map is ds.parts["train_full"].item_map   # doctest: +SKIP
    True
    """
    p = Path(path)
    if unknown_items not in ("drop", "raise"):
        raise ValueError("unknown_items must be 'drop' or 'raise'")
    read = {"session": session, "item": item, "time": time, "unknown_items": unknown_items,
            "on_error": on_error}
    if test is not None:
        if p.is_dir():
            raise ValueError("test= goes with a training file; a directory's parts are found "
                             "by their names ({prefix}_train_full.txt, {prefix}_test.txt)")
        files = {"train_full": p, "test": Path(test)}
        for part, f in files.items():
            if not f.exists():
                raise DataError(f"{'training' if part == 'train_full' else 'test'} file not found",
                                path=str(f))
        parts, drops = _read_gru4rec_parts(files, **read)
        return Dataset(name=name or p.stem, sessions=parts["train_full"], parts=parts,
                       drops=drops, source=f"train_full={p}, test={files['test']}")
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
    files = {part: p / f"{prefix}_{part}.txt" for part in _GRU4REC_PARTS}
    parts, drops = _read_gru4rec_parts({k: f for k, f in files.items() if f.exists()}, **read)
    if "test" not in parts:
        log.info("%s: no %s_test.txt; only the training part is read", p, prefix)
    return Dataset(name=name or p.name, sessions=parts["train_full"], parts=parts,
                   drops=drops, source=str(p))


def _read_gru4rec_parts(files: dict[str, Path], *, session: str, item: str, time: str,
                        unknown_items: str, on_error: str
                        ) -> tuple[dict[str, SessionEvents], DropReport]:
    """Read GRU4Rec part files (``train_full`` first) onto ``train_full``'s item index.

    Returns the parts by name and one drop report whose reasons are prefixed by the part.
    """
    parts: dict[str, SessionEvents] = {}
    all_drops = DropReport()
    item_map = None
    for part, f in files.items():
        drops = DropReport()
        t = _read_delimited(f, sep="\t", on_error=on_error, drops=drops, quoting=False)
        ev = _sessions(t, session=session, item=item, timestamp=time, item_map=item_map,
                       unknown_items=unknown_items, on_error=on_error, file_drops=drops,
                       name=part)
        if item_map is None:
            item_map = ev.item_map
        parts[part] = ev
        for reason, n in ev.drops.counts.items():
            all_drops.add(f"{part}: {reason}", n, ev.drops.examples.get(reason, ()))
    return parts, all_drops


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
    _require_columns(t, ("sessionId", "itemId", "timeframe", "eventdate"))
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
    _require_columns(t, ("timestamp", "visitorid", "event", "itemid"))
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
