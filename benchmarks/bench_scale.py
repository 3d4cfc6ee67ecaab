"""Scale-out benchmarks: Spark MLlib ALS beside recforge ALS and ``implicit``, distributed batch
top-N by partition count, and (when its module exists) PyTorch DDP throughput.

Prints one JSON object per line (the issue's contract):

* ``spark_als``: ML-100K as implicit feedback (every rating = 1), leave-one-out (latest), full
  ranking, training items excluded, rank 64, 15 iterations, regularization 0.01, alpha 1::

    {"name": "spark_als"|"recforge_als"|"implicit_als", "dataset": "ml-100k-loo",
     "hr@10": ..., "ndcg@10": ..., "fit_s": ..., "startup_s": ...}

  Every list is scored by the same recforge metric functions on the same split (the Spark
  model is the recforge ALS that :class:`~recforge.scale.spark.SparkALS` returns, ranked by
  its own ``recommend``). ``startup_s``: Spark — starting the session (JVM, context);
  recforge — importing the model and compiling its kernels on tiny data; implicit — the
  worker process's start and imports (its wall time less fit and recommend). ``fit_s``:
  Spark — ``SparkALS.fit`` end to end (ids mapped on the cluster with the split's maps, MLlib
  fit, factors back);
  MLlib scales each row's penalty by its number of ratings (ALS-WR), recforge and implicit do
  not, so the same ``regularization`` is a different model. The ``implicit`` side runs in its
  own environment through ``bench_implicit.py``'s runner (``--implicit-python``).
* ``batch``: the synthetic generator at 1M interactions (6,040 users x 3,706 items x
  1,000,209 ratings, ML-1M's shape), a recforge ALS (64 factors) saved, then
  :func:`~recforge.scale.spark.recommend_batch` of every user's top 10, written as Parquet,
  with 1, 2, 4 and 8 partitions (after one warm-up run, so every run finds the model loaded in
  the Python workers)::

    {"name": "spark_batch_topn", "dataset": "synthetic-1m", "partitions": 1|2|4|8,
     "seconds": ..., "users": ...}

* ``ddp``: rows from ``benchmarks/_scale_ddp.py`` (its ``rows(args)``) when that file exists,
  else skipped with a note on stderr::

    {"name": "ddp", "processes": 1|2, "model": ..., "events_per_second": ..., "final_loss": ...}

Spark runs on ``--master`` (default ``local[2]``), bound to 127.0.0.1.

Usage::

    python benchmarks/bench_scale.py [--sections spark_als batch ddp] [--master local[2]]
        [--implicit-python PATH] [--no-implicit] [--data-dir ../shared/data] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTIONS = ("spark_als", "batch", "ddp")
ALS_PARAMS = {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15}
PARTITIONS = (1, 2, 4, 8)

sys.path.insert(0, str(HERE))
import bench_implicit as bi  # noqa: E402  (the implicit runner, data and metric helpers)


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def note(msg: str) -> None:
    print(f"bench_scale: {msg}", file=sys.stderr, flush=True)


def r4(x):
    return None if x is None else round(float(x), 4)


def session(args):
    from recforge.scale.spark import spark_session

    t0 = time.perf_counter()
    spark = spark_session(args.master, app_name="recforge-bench-scale", partitions=args.partitions,
                          driver_memory="2g")
    spark.range(1).count()  # the first job starts the executors' side too
    return spark, time.perf_counter() - t0


# ---------------------------------------------------------------------- spark_als
def section_spark_als(args, state: dict) -> None:
    from recforge.scale.spark import SparkALS, index_interactions, to_spark
    from recforge.split import leave_one_out

    data = bi.load_ml100k(args.data_dir)
    if data is None:
        note(f"spark_als: no ml-100k under {args.data_dir}; section skipped")
        return
    split = leave_one_out(data, mode="latest", seed=0)
    train, test = split.train, split.test
    users, relevant = bi.eval_context(train, test)
    csr = bi.csr_of(train)
    hist = csr[users]
    params = dict(ALS_PARAMS)
    if args.quick:
        params["iterations"] = 3

    spark, startup = state.get("spark") or session(args)
    state["spark"] = (spark, 0.0)
    frame = to_spark(spark, train).frame.select("user", "item", "value")
    est = SparkALS(factors=params["factors"], regularization=params["regularization"],
                   alpha=params["alpha"], iterations=params["iterations"], implicit=True,
                   random_state=0)
    t0 = time.perf_counter()
    # mapped on the cluster with the split's id maps (train and test share them), so that the
    # model's inner indices are the evaluation's
    model = est.fit(index_interactions(frame, user_map=train.user_map, item_map=train.item_map,
                                       kind="implicit"))
    fit_s = time.perf_counter() - t0
    rec = bi.recforge_lists(model, users, hist)
    m = bi.list_metrics(rec, relevant)
    emit({"name": "spark_als", "dataset": "ml-100k-loo", "hr@10": r4(m["hr@10"]),
          "ndcg@10": r4(m["ndcg@10"]), "fit_s": r4(fit_s), "startup_s": r4(startup)})

    t0 = time.perf_counter()
    cls = bi.recforge_class("ALS")
    kw = bi.recforge_params(cls, "ALS", {**bi.RECFORGE_PARAMS["ALS"], **params}, 0, args.threads)
    bi.warm_up(cls, kw)
    startup = time.perf_counter() - t0
    model, fit_s, _ = bi.recforge_fit("ALS", train, params=params, seed=0, threads=args.threads)
    m = bi.list_metrics(bi.recforge_lists(model, users, hist), relevant)
    emit({"name": "recforge_als", "dataset": "ml-100k-loo", "hr@10": r4(m["hr@10"]),
          "ndcg@10": r4(m["ndcg@10"]), "fit_s": r4(fit_s), "startup_s": r4(startup)})

    python = bi.find_implicit_python(args.implicit_python, args.no_implicit)
    if python is None:
        note("implicit_als skipped (no implicit environment)")
        return
    runner = bi.ImplicitRunner(python)
    t0 = time.perf_counter()
    rec, timing = runner.run("ALS", {**bi.RECFORGE_PARAMS["ALS"], **params}, csr, users, hist,
                             threads=args.threads, seed=0)
    wall = time.perf_counter() - t0
    m = bi.list_metrics(rec, relevant)
    startup = max(0.0, wall - timing["fit_seconds"] - timing["recommend_seconds"])
    emit({"name": "implicit_als", "dataset": "ml-100k-loo", "hr@10": r4(m["hr@10"]),
          "ndcg@10": r4(m["ndcg@10"]), "fit_s": r4(timing["fit_seconds"]),
          "startup_s": r4(startup)})


# ---------------------------------------------------------------------- batch
def section_batch(args, state: dict) -> None:
    from recforge.data.synthetic import generate_ratings
    from recforge.models.factorization.als import ALS
    from recforge.scale.spark import recommend_batch, to_spark

    size = (604, 371, 100_000) if args.quick else (6040, 3706, 1_000_209)
    data = generate_ratings(n_users=size[0], n_items=size[1], n_ratings=size[2], seed=0).interactions
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        model = ALS(factors=64, iterations=5, random_state=0, num_threads=args.threads).fit(data)
        path = model.save(tmp / "als")
        spark, _ = state.get("spark") or session(args)
        state["spark"] = (spark, 0.0)
        frame = to_spark(spark, data).frame.select("user", "item", "value", "timestamp").cache()
        frame.count()
        out = str(tmp / "recs")
        recommend_batch(frame, path, k=10, partitions=2).write.mode("overwrite").parquet(out)
        for p in PARTITIONS:
            t0 = time.perf_counter()
            recommend_batch(frame, path, k=10, partitions=p).write.mode("overwrite").parquet(out)
            seconds = time.perf_counter() - t0
            users = spark.read.parquet(out).select("user").distinct().count()
            emit({"name": "spark_batch_topn", "dataset": "synthetic-1m" if not args.quick
                  else "synthetic-100k", "partitions": p, "seconds": r4(seconds),
                  "users": int(users)})
        frame.unpersist()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------- ddp
def section_ddp(args, state: dict) -> None:
    path = HERE / "_scale_ddp.py"
    if not path.exists():
        note(f"ddp skipped: {path.name} not found")
        return
    spec = importlib.util.spec_from_file_location("_scale_ddp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for row in module.rows(args):
        emit(row)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    ap.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    ap.add_argument("--partitions", type=int, default=4, help="Spark shuffle partitions")
    ap.add_argument("--threads", type=int, default=2, help="threads of recforge and implicit")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--implicit-python", help="python of the environment with implicit installed")
    ap.add_argument("--no-implicit", action="store_true")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ddp = ap.add_argument_group("ddp section (passed to _scale_ddp.rows)")
    ddp.add_argument("--ddp-models", default=None, help="e.g. SASRec,MultVAE")
    ddp.add_argument("--ddp-processes", default=None, help="e.g. 1,2")
    ddp.add_argument("--ddp-epochs", type=int, default=None)
    ddp.add_argument("--ddp-threads", type=int, default=1,
                     help="torch threads per DDP process (default 1)")
    args = ap.parse_args(argv)
    state: dict = {}
    try:
        for name in args.sections:
            {"spark_als": section_spark_als, "batch": section_batch, "ddp": section_ddp}[name](args, state)
    finally:
        if "spark" in state:
            state["spark"][0].stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
