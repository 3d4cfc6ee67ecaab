"""``recforge spark``: the Spark scale-out path from the command line (extra ``spark``).

* ``recforge spark recommend MODEL_DIR --interactions PATH --out PATH [--master URL]
  [--partitions N] [--k K] [--users PATH] [--ship-model]``: top-K lists of every user (or of
  the users in ``--users``) from any saved recforge model, computed across the executors, written
  as Parquet (``user, rank, item, score, fallback``);
* ``recforge spark train-als --interactions PATH --out DIR [--master URL] [--factors F]
  [--iterations N] [--regularization L] [--alpha A] [--explicit]``: MLlib ALS on the cluster,
  saved as a recforge model (a serving bundle) that ``recforge serve`` serves.

``--interactions`` is a Parquet file or directory (e.g. written by
:func:`recforge.scale.spark.save_parquet`, or any with ``user``, ``item`` and optionally
``value`` / ``timestamp`` columns; ``--user-col`` etc. rename). Without ``--master`` the master
is what ``spark-submit`` set (or ``local[*]``); under spark-submit run it as::

    spark-submit --master spark://HOST:7077 "$(python -m recforge.cli.spark_submit --path)" \\
        recommend MODEL_DIR --interactions events.parquet --out recs.parquet

The driver binds to 127.0.0.1 unless ``--driver-host`` names an address executors on other
machines can reach.
"""

from __future__ import annotations

import argparse
import json
import time


def _session(args):
    from pyspark.sql import SparkSession

    from ..scale.spark import spark_session

    existed = SparkSession.getActiveSession() is not None
    spark = spark_session(args.master, app_name=f"recforge-spark-{args.spark_command}",
                          partitions=args.partitions, driver_host=args.driver_host)
    return spark, not existed


def _read(spark, args):
    from ..scale.spark.data import load_parquet

    return load_parquet(args.interactions, spark, user=args.user_col, item=args.item_col,
                        value=args.value_col, timestamp=args.time_col)


def _check_input(args) -> None:
    from pathlib import Path

    from .main import UsageError

    if not Path(args.interactions).exists():
        raise UsageError(f"--interactions {args.interactions}: no such file or directory")
    if args.partitions is not None and args.partitions < 1:
        raise UsageError("--partitions must be >= 1")


def _cmd_recommend(args: argparse.Namespace) -> int:
    from ..scale.spark import recommend_batch
    from .main import UsageError

    _check_input(args)
    if args.k < 1:
        raise UsageError("--k must be >= 1")
    spark, own = _session(args)
    try:
        t0 = time.perf_counter()
        data = spark.read.parquet(args.interactions)
        users = spark.read.parquet(args.users) if args.users else None
        try:
            recs = recommend_batch(data, args.model_dir, k=args.k, users=users,
                                   partitions=args.partitions, ship_model=args.ship_model,
                                   user=args.user_col, item=args.item_col,
                                   value=args.value_col, timestamp=args.time_col)
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from None
        recs.write.mode("overwrite").parquet(args.out)
        seconds = time.perf_counter() - t0
        n_users = spark.read.parquet(args.out).select("user").distinct().count()
        print(json.dumps({"model": args.model_dir, "out": args.out, "users": n_users, "k": args.k,
                          "partitions": args.partitions, "seconds": round(seconds, 3)}))
    finally:
        if own:
            spark.stop()
    return 0


def _cmd_train_als(args: argparse.Namespace) -> int:
    from ..scale.spark import SparkALS, to_interactions
    from ..serving.bundle import save_bundle
    from .main import UsageError

    _check_input(args)
    spark, own = _session(args)
    try:
        est = SparkALS(factors=args.factors, regularization=args.regularization, alpha=args.alpha,
                       iterations=args.iterations, implicit=not args.explicit,
                       random_state=args.seed, blocks=args.blocks)
        try:
            est._check()
        except ValueError as e:
            raise UsageError(str(e)) from None
        data = _read(spark, args)
        if not args.explicit:
            data.kind, data.rating_scale = "implicit", None
        model = est.fit(data)
        history = to_interactions(data) if args.bundle_history else None
        path = save_bundle(model, args.out, history=history)
        params = {k: getattr(est, k) for k in ("factors", "regularization", "alpha", "iterations",
                                               "implicit", "random_state", "blocks")}
        print(json.dumps({"model": model.name, "params": params,
                          "users": model.n_users_, "items": model.n_items_,
                          "fit_seconds": round(est.fit_seconds_, 3), "out": str(path)},
                         default=str))
    finally:
        if own:
            spark.stop()
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interactions", required=True, metavar="PATH",
                   help="Parquet file or directory of interactions (user, item[, value, timestamp])")
    p.add_argument("--master", default=None, metavar="URL",
                   help="Spark master, e.g. local[4] or spark://127.0.0.1:7077 "
                        "(default: what spark-submit set, else local[*])")
    p.add_argument("--partitions", type=int, default=None, metavar="N",
                   help="partitions the work is spread over (Spark shuffle partitions)")
    p.add_argument("--driver-host", default="127.0.0.1", metavar="ADDR",
                   help="address the driver binds to and advertises (default 127.0.0.1)")
    cols = p.add_argument_group("columns")
    cols.add_argument("--user-col", default="user")
    cols.add_argument("--item-col", default="item")
    cols.add_argument("--value-col", default="value")
    cols.add_argument("--time-col", default="timestamp")


def add_parser(subparsers) -> None:
    """Add ``spark`` with its ``recommend`` and ``train-als`` subcommands."""
    p = subparsers.add_parser(
        "spark", help="batch top-N and ALS training on Apache Spark (extra 'spark')",
        description="Scale-out on Apache Spark: batch top-N for any saved model, MLlib ALS "
                    "saved as a recforge model. Usable under spark-submit.")
    p.set_defaults(group_parser=p)
    sub = p.add_subparsers(dest="spark_command", metavar="SPARK_COMMAND")

    r = sub.add_parser("recommend", help="top-K lists of every user from a saved model",
                       description="Top-K lists of every user of --interactions (or of --users) "
                                   "from a saved recforge model, across the Spark executors; "
                                   "written as Parquet: user, rank, item, score, fallback.")
    r.add_argument("model_dir", metavar="MODEL_DIR", help="a saved model (or serving bundle)")
    r.add_argument("--out", required=True, metavar="PATH", help="output Parquet directory")
    r.add_argument("--k", type=int, default=10, help="list length (default 10)")
    r.add_argument("--users", default=None, metavar="PATH",
                   help="Parquet with a user column: recommend for these users only")
    r.add_argument("--ship-model", action="store_true",
                   help="send the model directory with the job (no shared file system)")
    _common(r)
    r.set_defaults(func=_cmd_recommend)

    t = sub.add_parser("train-als", help="MLlib ALS saved as a recforge model",
                       description="Train Spark MLlib ALS (implicit by default) on the cluster and "
                                   "save it as a recforge ALS (implicit) or PMF (explicit) model, "
                                   "ready for `recforge serve`.")
    t.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    t.add_argument("--factors", type=int, default=64)
    t.add_argument("--iterations", type=int, default=15)
    t.add_argument("--regularization", type=float, default=0.1)
    t.add_argument("--alpha", type=float, default=1.0)
    t.add_argument("--explicit", action="store_true", help="explicit ratings (default implicit)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--blocks", type=int, default=None, help="MLlib user and item blocks")
    t.add_argument("--bundle-history", action="store_true",
                   help="also write the training interactions into the bundle (collected to the "
                        "driver: for data that fits one machine)")
    _common(t)
    t.set_defaults(func=_cmd_train_als)
