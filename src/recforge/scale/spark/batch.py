"""Distributed batch scoring of any saved recforge model: top-N lists and rating predictions.

:func:`recommend_batch` partitions the users across the executors (a hash partitioning on the
user column, so each user's whole history lands in one partition), loads the model **once per
Python worker** from its saved directory (:func:`~recforge.models.load_model`, every file's
sha256 checked against ``config.json``), and calls the model's own
:meth:`~recforge.models.base.Recommender.recommend` on the partition's users with their
histories joined in — so the lists, their order and their tie-breaking (ties to the lower item
index) are those of a single-process ``recommend(users, history=...)`` with the same rows. The
result is a DataFrame ``user, rank, item, score, fallback`` (one row per list entry, rank from
1; ``fallback`` names the popularity fallback a row got, else null), ready to write as Parquet.

The model directory must be readable by the executors: a shared path (what a local or
single-machine standalone cluster has), or shipped with the job (``ship_model=True``: a zip
of it goes out with ``SparkContext.addArchive``, each executor unpacks it once and loads its
local copy, checksums verified there).

:func:`predict_batch` does the same for rating predictions of (user, item) pairs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ...models.base import ModelFileError, read_model_config
from .data import ITEM, TIME, USER, VALUE, IndexedInteractions

#: Models loaded in this Python worker: path -> (config.json mtime, model). Spark reuses its
#: Python workers between tasks, so an executor loads a model once, not once per partition.
_MODELS: dict[str, tuple[float, object]] = {}


def cached_model(path: str):
    """The saved model at ``path``, loaded (checksums verified) once per process."""
    from ...models import load_model

    stamp = os.stat(os.path.join(path, "config.json")).st_mtime
    hit = _MODELS.get(path)
    if hit is None or hit[0] != stamp:
        _MODELS[path] = (stamp, load_model(path))
    return _MODELS[path][1]


def _model_info(model_dir) -> tuple[str, str, bool]:
    """(model name, Spark type of its raw item ids, whether it has users) from the verified
    saved directory, without rebuilding the model on the driver."""
    config = read_model_config(model_dir)
    with np.load(Path(model_dir) / "arrays.npz", allow_pickle=False) as npz:
        kind = npz["item_map_"].dtype.kind
    return config["model"], ("long" if kind in "iu" else "string"), "user_map_" in config["state"]


def _spark_type(frame, column: str) -> str:
    from pyspark.sql import types as T

    dtype = frame.schema[column].dataType
    if isinstance(dtype, (T.LongType, T.IntegerType, T.ShortType, T.ByteType)):
        return "long"
    if isinstance(dtype, T.StringType):
        return "string"
    raise ValueError(f"column {column!r}: ids must be integers or strings, got {dtype.simpleString()}")


def _ids(values: pd.Series, kind: str) -> np.ndarray:
    """Raw ids of a pandas column as the model's maps keep them (int64 or text)."""
    if kind == "long":
        return values.to_numpy().astype(np.int64)
    return values.astype(str).to_numpy(dtype=object)


def _ship(spark, model_dir: str) -> str:
    """Send the model directory with the job as a zip archive (Spark adds a local directory
    only in local mode); each executor unpacks it once. Named by the sha256 of its
    ``config.json``, which lists every file's sha256: one archive per model version."""
    import hashlib
    import shutil
    import tempfile

    digest = hashlib.sha256((Path(model_dir) / "config.json").read_bytes()).hexdigest()[:16]
    name = f"recforge-model-{digest}"
    base = Path(tempfile.mkdtemp(prefix="recforge-ship-")) / name
    archive = shutil.make_archive(str(base), "zip", root_dir=model_dir)
    spark.sparkContext.addArchive(archive)
    return os.path.basename(archive)


def _resolve(model_dir: str, shipped: str | None) -> str:
    if shipped is None:
        return model_dir
    from pyspark import SparkFiles

    return SparkFiles.get(shipped)


def _recommend_partition(model_dir: str, shipped: str | None, k: int, exclude_seen: bool,
                         batch_size: int, user_kind: str, item_kind: str, has_time: bool):
    """The function each partition runs (all of the partition's rows at once: a user's rows
    may span Arrow batches, never partitions)."""

    def run(batches):
        frames = [b for b in batches if len(b)]
        if not frames:
            return
        df = pd.concat(frames, ignore_index=True)
        model = cached_model(_resolve(model_dir, shipped))
        users = _ids(df[USER], user_kind)
        uniq, row = np.unique(users, return_inverse=True)
        has_item = df[ITEM].notna().to_numpy()
        hist = {"row": row[has_item], "item": _ids(df[ITEM][has_item], item_kind),
                "value": df[VALUE].to_numpy(dtype=np.float64)[has_item]}
        if has_time:
            hist["timestamp"] = df[TIME].to_numpy(dtype=np.float64)[has_item]
        rec = model.recommend(users=uniq, k=k, history=pd.DataFrame(hist),
                              exclude_seen=exclude_seen, batch_size=batch_size)
        inner = np.asarray(rec.inner)
        ok = inner >= 0
        n_per = ok.sum(axis=1)
        ranks = np.broadcast_to(np.arange(1, inner.shape[1] + 1), inner.shape)[ok]
        fallback = np.asarray([None if f is None else str(f) for f in rec.fallback], dtype=object)
        items = model.item_map_.to_raw(inner[ok])
        out = pd.DataFrame({
            USER: np.repeat(uniq, n_per),
            "rank": ranks.astype(np.int32),
            ITEM: items if item_kind == "long" else items.astype(str).astype(object),
            "score": np.asarray(rec.scores, dtype=np.float64)[ok],
            "fallback": np.repeat(fallback, n_per),
        })
        yield out

    return run


def recommend_batch(data, model_dir, *, k: int = 10, users=None, partitions: int | None = None,
                    exclude_seen: bool = True, ship_model: bool = False, batch_size: int = 1024,
                    user: str = USER, item: str = ITEM, value: str | None = VALUE,
                    timestamp: str | None = TIME):
    """Top-``k`` lists of every user of ``data`` (or of ``users``) from a saved model, on the
    cluster (see the module docstring).

    Parameters
    ----------
    data : pyspark.sql.DataFrame or IndexedInteractions
        The users' histories (raw ids): scored from (models that fold in) and excluded from
        the lists (``exclude_seen``).
    model_dir : str or Path
        A directory written by ``model.save`` (or a serving bundle).
    k : int, default 10
    users : pyspark.sql.DataFrame, optional
        A ``user`` column: the users to recommend for (a user without history gets what
        ``recommend`` gives one: the model's factors, or the popularity fallback). Default:
        every user in ``data``.
    partitions : int, optional
        Number of partitions the users are spread over (default: Spark's shuffle partitions).
    exclude_seen : bool, default True
    ship_model : bool, default False
        Send the model directory with the job instead of reading it from a shared path.
    batch_size : int, default 1024
        Rows the model scores at once inside a partition.
    user, item, value, timestamp : str
        Column names of ``data``.

    Returns
    -------
    pyspark.sql.DataFrame
        ``user, rank, item, score, fallback``, lazily evaluated; write it with
        ``.write.parquet(path)``.
    """
    from pyspark.sql import functions as F

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if partitions is not None and (not isinstance(partitions, (int, np.integer)) or partitions < 1):
        raise ValueError(f"partitions must be an integer >= 1, got {partitions!r}")
    model_dir = str(Path(model_dir).resolve())
    try:
        name, item_kind, has_users = _model_info(model_dir)
    except (OSError, KeyError) as exc:
        raise ModelFileError(f"{model_dir}: cannot read the saved model ({exc})") from None
    if not has_users:
        raise TypeError(f"{model_dir} holds a {name}, a session model without users; batch "
                        "top-N needs a model that knows users")
    frame = data.frame if isinstance(data, IndexedInteractions) else data
    for col in (user, item):
        if col not in frame.columns:
            raise ValueError(f"data: column {col!r} is missing (columns: {frame.columns})")
    user_kind = _spark_type(frame, user)
    has_time = timestamp is not None and timestamp in frame.columns
    cols = [F.col(user).cast(user_kind).alias(USER), F.col(item).cast(item_kind).alias(ITEM),
            (F.col(value).cast("double") if value and value in frame.columns
             else F.lit(1.0)).alias(VALUE)]
    if has_time:
        cols.append(F.col(timestamp).cast("double").alias(TIME))
    rows = frame.select(*cols)
    if users is not None:
        if user not in users.columns:
            raise ValueError(f"users: column {user!r} is missing (columns: {users.columns})")
        targets = users.select(F.col(user).cast(user_kind).alias(USER)).distinct()
        rows = targets.join(rows, USER, "left")
    spark = frame.sparkSession
    n = int(partitions or spark.conf.get("spark.sql.shuffle.partitions"))
    rows = rows.repartition(n, USER)
    shipped = _ship(spark, model_dir) if ship_model else None
    schema = (f"{USER} {user_kind}, rank int, {ITEM} {item_kind}, score double, "
              "fallback string")
    fn = _recommend_partition(model_dir, shipped, int(k), bool(exclude_seen), int(batch_size),
                              user_kind, item_kind, has_time)
    return rows.mapInPandas(fn, schema)


def _predict_partition(model_dir: str, shipped: str | None, user_kind: str, item_kind: str):
    def run(batches):
        model = None
        for df in batches:
            if not len(df):
                continue
            if model is None:
                model = cached_model(_resolve(model_dir, shipped))
            out = df.copy()
            out["prediction"] = model.predict(_ids(df[USER], user_kind), _ids(df[ITEM], item_kind))
            yield out

    return run


def predict_batch(pairs, model_dir, *, user: str = USER, item: str = ITEM,
                  ship_model: bool = False):
    """Rating predictions of a saved rating model for the (user, item) rows of ``pairs`` (a
    Spark DataFrame with raw ids), on the cluster: ``pairs`` with a ``prediction`` column
    (unknown users or items get the training mean, as ``predict`` gives them). The ``user``
    and ``item`` columns come back as ``user`` and ``item``."""
    from pyspark.sql import functions as F

    from ...models import RATING, get_model_class

    model_dir = str(Path(model_dir).resolve())
    name, item_kind, _ = _model_info(model_dir)
    if RATING not in get_model_class(name).capabilities:
        raise TypeError(f"{model_dir} holds a {name}, which does not predict ratings")
    frame = pairs.frame if isinstance(pairs, IndexedInteractions) else pairs
    user_kind = _spark_type(frame, user)
    rest = [c for c in frame.columns if c not in (user, item, USER, ITEM)]
    rows = frame.select(F.col(user).cast(user_kind).alias(USER),
                        F.col(item).cast(item_kind).alias(ITEM), *rest)
    shipped = _ship(frame.sparkSession, model_dir) if ship_model else None
    from pyspark.sql.types import DoubleType, StructField, StructType

    # a new StructType: ``add`` would change the frame's cached schema in place
    schema = StructType([*rows.schema.fields, StructField("prediction", DoubleType())])
    return rows.mapInPandas(_predict_partition(model_dir, shipped, user_kind, item_kind), schema)
