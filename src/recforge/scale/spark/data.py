"""Interactions to and from Spark DataFrames and Parquet, with recforge's id maps.

The frame layout is one row per interaction: ``user, item, value[, timestamp]`` (raw ids) and,
once mapped, ``user_idx, item_idx`` (int32 inner indices). Raw ids are mapped **on the
cluster**: the distinct ids of a column are range-partitioned and sorted by Spark, each
partition counts its ids (one number per partition comes back to the driver), and an id's inner
index is its rank within its partition plus the ids of the partitions before it — the position
of the id among the sorted distinct ids, which is exactly what :meth:`IdMap.from_values` gives
(ascending int64, or text in code-point order, which is UTF-8 byte order: Spark's string
order). The interactions are then joined to these (id, index) tables on the cluster and never
travel to the driver. What does come back is the id maps themselves (one entry per distinct
user or item), because a model keeps them.

On disk (:func:`save_parquet` / :func:`load_parquet`) a data set is a directory of Parquet
files in that layout plus ``_user_map.parquet`` and ``_item_map.parquet`` (raw ids in inner
order) and ``_meta.json`` (kind, rating scale); Spark skips names starting with ``_`` when it
reads the directory, so the same directory is read by Spark and by recforge alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ...data.idmap import IdMap
from ...data.interactions import Interactions

USER, ITEM, VALUE, TIME = "user", "item", "value", "timestamp"
USER_IDX, ITEM_IDX = "user_idx", "item_idx"
_META = "_meta.json"
_MAPS = {"user": "_user_map.parquet", "item": "_item_map.parquet"}


@dataclass
class IndexedInteractions:
    """A Spark DataFrame of interactions with inner indices, and the id maps they index.

    ``frame`` has columns ``user, item, value[, timestamp], user_idx, item_idx``;
    ``user_map`` / ``item_map`` are recforge :class:`IdMap` objects (the maps an
    :class:`Interactions` built from the same rows would have). ``kind`` and
    ``rating_scale`` describe the values as :class:`Interactions` does.
    """

    frame: object
    user_map: IdMap
    item_map: IdMap
    kind: str = "explicit"
    rating_scale: tuple[float, float] | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)


# ---------------------------------------------------------------------- Interactions <-> Spark
def interactions_frame(interactions: Interactions) -> pd.DataFrame:
    """The Spark layout of ``interactions`` as a pandas DataFrame (raw and inner ids)."""
    data = {USER: interactions.user_map.to_raw(interactions.users),
            ITEM: interactions.item_map.to_raw(interactions.items),
            VALUE: interactions.values.astype(np.float64)}
    if interactions.timestamps is not None:
        data[TIME] = interactions.timestamps
    data[USER_IDX] = interactions.users.astype(np.int32)
    data[ITEM_IDX] = interactions.items.astype(np.int32)
    return pd.DataFrame(data)


def to_spark(spark, interactions: Interactions, partitions: int | None = None) -> IndexedInteractions:
    """Distribute local ``interactions`` (with their inner indices and id maps)."""
    from .session import require_pyspark

    require_pyspark()
    frame = spark.createDataFrame(interactions_frame(interactions))
    if partitions:
        frame = frame.repartition(int(partitions))
    return IndexedInteractions(frame, interactions.user_map, interactions.item_map,
                               interactions.kind, interactions.rating_scale)


def to_interactions(data: IndexedInteractions, duplicates: str = "last",
                    name: str | None = None) -> Interactions:
    """Collect ``data`` to the driver as :class:`Interactions` with the same id maps (for data
    that fits one machine: a test fold, a sample)."""
    cols = [USER, ITEM, VALUE] + ([TIME] if TIME in data.frame.columns else [])
    df = data.frame.select(*cols).toPandas()
    return Interactions.from_dataframe(
        df, user=USER, item=ITEM, rating=VALUE, timestamp=TIME if TIME in cols else None,
        kind=data.kind, rating_scale=data.rating_scale, duplicates=duplicates,
        user_map=data.user_map, item_map=data.item_map, source="<spark>", name=name)


# ---------------------------------------------------------------------- id mapping on the cluster
def _id_column(frame, column: str):
    """``column`` cast to the raw id type recforge keeps: long for integer types, string for
    strings; any other type is an error naming the column."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if column not in frame.columns:
        raise ValueError(f"column {column!r} is missing (columns: {frame.columns})")
    dtype = frame.schema[column].dataType
    if isinstance(dtype, (T.LongType, T.IntegerType, T.ShortType, T.ByteType)):
        return F.col(column).cast("long")
    if isinstance(dtype, T.StringType):
        return F.col(column)
    raise ValueError(f"column {column!r}: ids must be integers or strings, got {dtype.simpleString()}")


def index_ids(frame, column: str, partitions: int | None = None):
    """``(raw, idx)`` DataFrame of the sorted distinct values of ``column``, computed on the
    cluster (see the module docstring). Checkpointed, so the indices are fixed."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    n = int(partitions or spark.conf.get("spark.sql.shuffle.partitions"))
    ids = (frame.select(_id_column(frame, column).alias("raw")).where(F.col("raw").isNotNull())
           .distinct().repartitionByRange(n, "raw").sortWithinPartitions("raw")
           .withColumn("_pid", F.spark_partition_id()).localCheckpoint(eager=True))
    counts = {int(r["_pid"]): int(r["count"]) for r in ids.groupBy("_pid").count().collect()}
    offsets, total = [], 0
    for pid in range(max(counts, default=-1) + 1):
        offsets.append((pid, total))
        total += counts.get(pid, 0)
    off = spark.createDataFrame(offsets or [(0, 0)], "_pid int, _off long")
    w = Window.partitionBy("_pid").orderBy("raw")
    return (ids.join(F.broadcast(off), "_pid")
            .select("raw", (F.row_number().over(w) - 1 + F.col("_off")).cast("int").alias("idx"))
            .localCheckpoint(eager=True))


def idmap_frame(spark, id_map: IdMap):
    """An :class:`IdMap` as a ``(raw, idx)`` Spark DataFrame."""
    raw = id_map.raw
    pdf = pd.DataFrame({"raw": raw if raw.dtype.kind == "i" else raw.astype(object),
                        "idx": np.arange(len(raw), dtype=np.int32)})
    schema = f"raw {'long' if raw.dtype.kind == 'i' else 'string'}, idx int"
    return spark.createDataFrame(pdf, schema)


def collect_idmap(ids) -> IdMap:
    """The :class:`IdMap` of a ``(raw, idx)`` frame (one entry per distinct id comes back)."""
    table = ids.orderBy("idx").select("raw").toArrow()
    raw = table.column("raw").to_numpy(zero_copy_only=False)
    return IdMap(raw)


def index_interactions(frame, *, user: str = USER, item: str = ITEM, value: str | None = VALUE,
                       timestamp: str | None = TIME, user_map: IdMap | None = None,
                       item_map: IdMap | None = None, unknown: str = "drop",
                       kind: str | None = None, rating_scale=None,
                       partitions: int | None = None) -> IndexedInteractions:
    """Map the raw ids of a Spark DataFrame of interactions to inner indices, on the cluster.

    Parameters
    ----------
    frame : pyspark.sql.DataFrame
        One row per interaction.
    user, item : str
        Raw id columns (integers or strings).
    value : str or None, default "value"
        Rating / weight column; ``None`` or a missing column: implicit data, value 1.
    timestamp : str or None, default "timestamp"
        Kept when present.
    user_map, item_map : IdMap, optional
        Map with these (a trained model's maps) instead of building new ones; rows with an id
        the map lacks are dropped (``unknown="drop"``) or kept with index -1 (``"keep"``).
    kind : {"explicit", "implicit"}, optional
        Default: explicit when a value column is present.
    rating_scale : (lo, hi), optional
        Explicit data: default (min, max) of the values, computed on the cluster.
    partitions : int, optional
        Partitions of the id tables (default ``spark.sql.shuffle.partitions``).

    Returns
    -------
    IndexedInteractions
    """
    from pyspark.sql import functions as F

    if unknown not in ("drop", "keep"):
        raise ValueError(f"unknown must be 'drop' or 'keep', got {unknown!r}")
    spark = frame.sparkSession
    has_value = value is not None and value in frame.columns
    cols = [_id_column(frame, user).alias(USER), _id_column(frame, item).alias(ITEM),
            (F.col(value).cast("double") if has_value else F.lit(1.0)).alias(VALUE)]
    if timestamp is not None and timestamp in frame.columns:
        cols.append(F.col(timestamp).cast("double").alias(TIME))
    df = frame.select(*cols)
    kind = kind or ("explicit" if has_value else "implicit")
    maps = {}
    for col, given, idx_col in ((USER, user_map, USER_IDX), (ITEM, item_map, ITEM_IDX)):
        if given is None:
            ids = index_ids(df, col, partitions)
            maps[col] = collect_idmap(ids)
        else:
            ids = idmap_frame(spark, given)
            maps[col] = given
        ids = ids.withColumnRenamed("raw", col).withColumnRenamed("idx", idx_col)
        if given is not None and unknown == "keep":
            df = df.join(ids, col, "left").fillna({idx_col: -1})
        else:
            df = df.join(ids, col, "inner")
    if kind == "explicit" and rating_scale is None:
        row = df.agg(F.min(VALUE).alias("lo"), F.max(VALUE).alias("hi")).first()
        rating_scale = None if row["lo"] is None else (float(row["lo"]), float(row["hi"]))
    return IndexedInteractions(df, maps[USER], maps[ITEM], kind,
                               None if kind != "explicit" else rating_scale)


# ---------------------------------------------------------------------- Parquet
def save_parquet(data: Interactions | IndexedInteractions, path) -> Path:
    """Write ``data`` as a Parquet directory in the Spark layout with its id maps (module
    docstring). Local :class:`Interactions` are written by pyarrow (no Spark needed);
    :class:`IndexedInteractions` by Spark, the maps by the driver."""
    path = Path(path)
    if isinstance(data, Interactions):
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.parquet"):
            old.unlink()
        pq.write_table(pa.Table.from_pandas(interactions_frame(data), preserve_index=False),
                       path / "part-00000.parquet")
        kind, scale = data.kind, data.rating_scale
    else:
        data.frame.write.mode("overwrite").parquet(str(path))
        kind, scale = data.kind, data.rating_scale
    for name, id_map in (("user", data.user_map), ("item", data.item_map)):
        pq.write_table(pa.table({"raw": id_map.raw}), path / _MAPS[name])
    (path / _META).write_text(json.dumps({"kind": kind, "rating_scale": scale}))
    return path


def _read_maps(path: Path) -> tuple[IdMap | None, IdMap | None, dict]:
    maps = []
    for name in ("user", "item"):
        f = path / _MAPS[name]
        maps.append(IdMap(pq.read_table(f).column("raw").to_numpy(zero_copy_only=False))
                    if f.is_file() else None)
    meta = json.loads((path / _META).read_text()) if (path / _META).is_file() else {}
    return maps[0], maps[1], meta


def load_parquet(path, spark=None, *, user: str = USER, item: str = ITEM,
                 value: str | None = VALUE, timestamp: str | None = TIME):
    """Read a Parquet file or directory of interactions.

    With ``spark``: an :class:`IndexedInteractions` (the directory's own id maps when it has
    them, else ids mapped on the cluster). Without: local :class:`Interactions` with the
    directory's id maps (read by pyarrow).
    """
    path = Path(path)
    user_map, item_map, meta = _read_maps(path) if path.is_dir() else (None, None, {})
    kind, scale = meta.get("kind"), meta.get("rating_scale")
    if spark is not None:
        frame = spark.read.parquet(str(path))
        if user_map is not None and {USER_IDX, ITEM_IDX} <= set(frame.columns) \
                and (user, item) == (USER, ITEM):
            keep = [c for c in (USER, ITEM, VALUE, TIME, USER_IDX, ITEM_IDX) if c in frame.columns]
            return IndexedInteractions(frame.select(*keep), user_map, item_map, kind or "explicit",
                                       tuple(scale) if scale else None)
        return index_interactions(frame, user=user, item=item, value=value, timestamp=timestamp,
                                  user_map=user_map, item_map=item_map, kind=kind,
                                  rating_scale=scale)
    files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith(("_", "."))) \
        if path.is_dir() else [path]
    df = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    has_value = value is not None and value in df.columns
    return Interactions.from_dataframe(
        df, user=user, item=item, rating=value if has_value else None,
        timestamp=timestamp if timestamp in df.columns else None, kind=kind,
        rating_scale=scale, user_map=user_map, item_map=item_map, source=str(path))


# ---------------------------------------------------------------------- model state
def inner_counts(frame, column: str, n: int) -> np.ndarray:
    """Rows per inner index of ``column`` (computed on the cluster; ``n`` numbers come back)."""
    table = frame.groupBy(column).count().toArrow()
    out = np.zeros(n, dtype=np.int64)
    out[table.column(column).to_numpy()] = table.column("count").to_numpy()
    return out


def set_base_state(model, data: IndexedInteractions) -> tuple[np.ndarray, np.ndarray, dict]:
    """Give ``model`` the state :meth:`Recommender.fit` records (id maps, counts, popularity,
    mean, rating scale), computed on the cluster from ``data`` (rows with an index of -1 are
    left out). Returns ``(user_counts, item_counts, stats)`` with ``stats`` holding the mean,
    the row count, the largest value and the number of non-positive values."""
    from pyspark.sql import functions as F

    frame = data.frame.where((F.col(USER_IDX) >= 0) & (F.col(ITEM_IDX) >= 0))
    row = frame.agg(F.avg(VALUE).alias("mean"), F.count(F.lit(1)).alias("n"),
                    F.max(VALUE).alias("max"),
                    F.sum((F.col(VALUE) <= 0).cast("long")).alias("nonpositive")).first()
    stats = {"mean": float(row["mean"] or 0.0), "n": int(row["n"]),
             "max": float(row["max"] or 0.0), "nonpositive": int(row["nonpositive"] or 0)}
    user_counts = inner_counts(frame, USER_IDX, data.n_users)
    item_counts = inner_counts(frame, ITEM_IDX, data.n_items)
    model.user_map_, model.item_map_ = data.user_map, data.item_map
    model.n_users_, model.n_items_ = data.n_users, data.n_items
    model.user_counts_ = user_counts
    model.item_popularity_ = item_counts.astype(np.float32)
    model.global_mean_ = stats["mean"]
    model.rating_scale_ = list(data.rating_scale) if data.rating_scale else None
    return user_counts, item_counts, stats
