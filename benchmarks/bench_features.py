"""Models with side features, side by side with reference libraries.

Prints one JSON object per line.

* ``ctr``: ML-100K as a click task — a rating >= 4 is a click, every other rating a
  non-click — on a random 80/20 split of the ratings (``recforge.split.holdout``, seed 0).
  Fields, identical for both libraries (recforge's FeatureSpec encodes them once and
  DeepCTR-Torch gets the same field-local codes): user id, age, gender, occupation, zip prefix
  (the user table's columns as categories), item id, genres (multi-hot, mean pooled), release
  year (10 quantile buckets), hour of day and weekday of the rating. FM, Wide & Deep, DeepFM and
  DCN-v2 are trained with the same embedding size, layer sizes, optimizer (Adam), learning
  rate, batch size, epochs, L2 penalties and initial scale in recforge and in DeepCTR-Torch
  (0.3.x, in its own environment, run through ``_deepctr_worker.py``; FM there is DeepFM
  without its DNN), both on the same number of torch threads::

    {"algo": "DeepFM"|"WideDeep"|"DCNv2"|"FM", "impl": "recforge"|"deepctr-torch",
     "dataset": "ml-100k-ctr", "auc": ..., "logloss": ..., "seconds_per_epoch": ...}

  AUC and log loss are computed by ``recforge.metrics`` on both sides' test probabilities;
  ``seconds_per_epoch`` is the mean training time of an epoch (recforge: the training loop's
  epoch time; DeepCTR-Torch: its ``fit`` for one epoch).

* ``retrieval``: the two-tower model on the same ML-100K random 80/20 split, every training
  rating a positive; full ranking of the items each test user has not rated in training,
  recall@100 = test items in the top 100 / test items, averaged over test users. Beside it the
  TensorFlow Recommenders 0.7.x retrieval model (own environment, ``_tfrs_worker.py``) on the
  same fields and codes (user id, age, gender, occupation, zip prefix; item id, genres, year,
  title tokens), embedding and output sizes, optimizer (Adagrad 0.1), batch size, epochs and
  logQ correction; its vectors come back and are ranked here the same way::

    {"algo": "TwoTower", "impl": "recforge"|"tfrs", "dataset": "ml-100k-random80",
     "recall@100": ..., "seconds_per_epoch": ...}

* ``ranking``: the rating model on the two towers (TFRS "basic ranking" tutorial) on the same
  split and the same fields, embedding and tower sizes as ``retrieval``, a 256-64 ReLU rating
  model over the concatenated tower outputs, mean squared error, Adagrad 0.1, batch 256, the
  same epochs; beside it the same model in TensorFlow Recommenders (``_tfrs_worker.py``, task
  ``multitask`` with weights (1, 0)). Both predict the test ratings, clipped to [1, 5]; RMSE
  is computed here for both. The two run at the same time, each on ``--threads`` threads::

    {"algo": "TwoTowerRanking", "impl": "recforge"|"tfrs", "dataset": "ml-100k-random80",
     "rmse": ..., "seconds_per_epoch": ...}

* ``multitask``: the joint model (TFRS multitask tutorial: rating_weight * ranking loss +
  retrieval_weight * retrieval loss on shared towers) for each pair of ``--weights``, recforge
  and TFRS at the same time as above; RMSE of the rating model and recall@100 of the towers'
  vectors (ranked as in ``retrieval``)::

    {"algo": "TwoTowerMultitask", "impl": "recforge"|"tfrs", "dataset": "ml-100k-random80",
     "rating_weight": ..., "retrieval_weight": ..., "rmse": ..., "recall@100": ...,
     "seconds_per_epoch": ...}

* ``cold``: 10 % of ML-100K's items (seeded) held out of training entirely; the two-tower
  model, trained on the rest, scores the held-out items from their features (id out of
  vocabulary); per user with a held-out interaction, AUC of the held-out items they rated
  against the held-out items they did not, averaged over users, beside genre popularity (an
  item's score: the mean training popularity per item of its genres). A random ranker's
  expected AUC is 0.5::

    {"algo": "TwoTower", "check": "cold-items", "auc": ..., "genre_pop_auc": ...}

* ``loo``: ml-latest-small, leave-one-out (each user's latest rating), full ranking of the items
  the user has not rated, HR@10 and NDCG@10 of YouTube DNN (watch history + example age),
  TwoTower (item features: genres, year, title tokens, tags) beside ALS and EASE (the
  hyperparameters of ``bench_implicit.py``)::

    {"algo": "YouTubeDNN"|"TwoTower"|"ALS"|"EASE", "dataset": "ml-latest-small-loo", "hr@10": ...,
     "ndcg@10": ...}

Usage::

    python benchmarks/bench_features.py --section ctr [--epochs 2] [--threads 2]
        [--algos FM,WideDeep,DeepFM,DCNv2] [--deepctr-python PATH]
    python benchmarks/bench_features.py --section ranking --threads 1 [--tower-epochs 5]
    python benchmarks/bench_features.py --section multitask --threads 1 [--weights "1,0;0,1;1,1"]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
DEEPCTR_PYTHON = Path("/work/main/.bench-envs/deepctr/bin/python")
TFRS_PYTHON = Path("/work/main/.bench-envs/tfrs/bin/python")
ALGOS = ("FM", "WideDeep", "DeepFM", "DCNv2")


def emit(row: dict) -> None:
    print(json.dumps(row), flush=True)


YOUTUBE_DNN = {"embedding_dim": 32, "hidden": [128, 64], "out_dim": 32, "max_history": 50, "n_negatives": 100,
               "learning_rate": 1e-3, "batch_size": 256}
TWO_TOWER = {"embedding_dim": 32, "out_dim": 32, "hidden": [], "learning_rate": 0.1, "optimizer": "adagrad",
             "batch_size": 256, "init_std": 0.05, "n_negatives": 0, "logq_correction": True}
RANKING = {"embedding_dim": 32, "out_dim": 32, "hidden": [], "rating_hidden": [256, 64], "learning_rate": 0.1,
           "optimizer": "adagrad", "batch_size": 256, "init_std": 0.05}


# ---------------------------------------------------------------------- retrieval
def _rank_metrics(model, train, test, k: int) -> dict:
    """Full ranking of the test users (training items excluded): recall, HR, NDCG at k."""
    import scipy.sparse as sp

    from recforge.metrics import hit_rate, ndcg_at_k, recall_at_k
    from recforge.models.query import History

    users = np.unique(test.users)
    rec = model.recommend_inner(users, k, history=History.from_csr(train.csr[users]), exclude_seen=True)
    rel = sp.csr_matrix(test.csr[users])
    return {"recall": float(np.nanmean(recall_at_k(rec.inner, rel, k))),
            "hr": float(np.nanmean(hit_rate(rec.inner, rel, k))),
            "ndcg": float(np.nanmean(ndcg_at_k(rec.inner, rel, k)))}


def section_retrieval(args) -> None:
    from recforge.models import get_model_class

    ds, train, test, users, _, _, _ = ctr_setup()
    model = None
    if "recforge" in args.impls:
        model = get_model_class("TwoTower")(**TWO_TOWER, n_epochs=args.tower_epochs, random_state=0,
                                            n_threads=args.threads)
        model.fit(train, item_features=ds.item_features, user_features=users)
        m = _rank_metrics(model, train, test, 100)
        emit({"algo": "TwoTower", "impl": "recforge", "dataset": "ml-100k-random80",
              "recall@100": round(m["recall"], 4),
              "seconds_per_epoch": round(float(np.mean(model.history_["seconds"])), 2)})
    if "tfrs" in args.impls and Path(args.tfrs_python).exists():
        from recforge.data import FeatureSpec

        spec = FeatureSpec.build(train, user_features=users, item_features=ds.item_features)
        res = run_tfrs_retrieval(spec, ds, train, test, users, args)
        emit({"algo": "TwoTower", "impl": "tfrs", "dataset": "ml-100k-random80",
              "recall@100": round(res["recall"], 4), "seconds_per_epoch": round(res["seconds_per_epoch"], 2)})


def _local_codes(spec, source: str, enc) -> dict:
    out, col = {}, 0
    for f in spec.source_fields(source):
        block = enc.idx[:, col:col + f.width] - f.offset
        out[f.name.replace(".", "_")] = block[:, 0] if f.width == 1 else block
        col += f.width
    return out


class TfrsRun:
    """One run of ``_tfrs_worker.py`` in its own environment, started at once (``Popen``) so
    that it can train at the same time as recforge; :meth:`result` waits for it and returns
    (the worker's JSON line, its output arrays)."""

    def __init__(self, spec, ds, train, users, args, params: dict, task: str = "retrieval", test=None):
        from recforge.data.feature_spec import user_columns

        u = _local_codes(spec, "user", spec.encode("user", user_columns(users), ids=np.arange(train.n_users)))
        it = _local_codes(spec, "item", spec.encode_items(ds.item_features))
        counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        self.tmp = tempfile.TemporaryDirectory()
        tmp = Path(self.tmp.name)
        arrays = {f"user_{k}": v for k, v in u.items()} | {f"item_{k}": v for k, v in it.items()}
        arrays.update(train_users=train.users, train_items=train.items,
                      item_prob=np.maximum(counts / counts.sum(), 1e-12))
        if task == "multitask":
            arrays.update(train_ratings=train.values, test_users=test.users, test_items=test.items)
        np.savez(tmp / "data.npz", **arrays)

        def fields(source):
            return [{"name": f.name.replace(".", "_"), "kind": "varlen" if f.width > 1 else "sparse",
                     "size": f.size, "width": f.width} for f in spec.source_fields(source)]

        job = {"task": task, "params": dict(params, n_epochs=args.tower_epochs, seed=0),
               "user_fields": fields("user"), "item_fields": fields("item"), "data": str(tmp / "data.npz"),
               "out": str(tmp / "out.npz"), "threads": args.threads}
        (tmp / "job.json").write_text(json.dumps(job))
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), TF_USE_LEGACY_KERAS="1",
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        self.proc = subprocess.Popen([args.tfrs_python, str(ROOT / "benchmarks" / "_tfrs_worker.py"),
                                      str(tmp / "job.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)

    def result(self) -> tuple[dict, dict]:
        try:
            stdout, stderr = self.proc.communicate()
            if self.proc.returncode != 0:
                raise RuntimeError(f"tfrs worker failed:\n{stderr[-3000:]}")
            info = json.loads(stdout.strip().splitlines()[-1])
            with np.load(Path(self.tmp.name) / "out.npz") as out:
                arrays = {k: out[k] for k in out.files}
        finally:
            self.tmp.cleanup()
        return info, arrays


def vector_recall(uv, iv, train, test, k: int = 100) -> float:
    """recall@k of dot-product scores of user and item vectors, ranked as recforge's models are
    (full ranking, training items excluded)."""
    import scipy.sparse as sp

    from recforge.metrics import recall_at_k
    from recforge.topk import mask_rows, topk_rows

    rows = np.unique(test.users)
    scores = (uv[rows].astype(np.float64) @ iv.T.astype(np.float64)).astype(np.float32)
    mask_rows(scores, sp.csr_matrix(train.csr[rows]), np.arange(rows.size))
    top, _ = topk_rows(scores, k)
    return float(np.nanmean(recall_at_k(top, sp.csr_matrix(test.csr[rows]), k)))


def run_tfrs_retrieval(spec, ds, train, test, users, args) -> dict:
    """TFRS's retrieval model on the same fields (recforge's codes), vectors back, recall@100
    computed here exactly as for recforge (full ranking, training items excluded)."""
    params = {k: TWO_TOWER[k] for k in ("embedding_dim", "out_dim", "learning_rate", "batch_size", "init_std")}
    info, out = TfrsRun(spec, ds, train, users, args, params).result()
    return {"recall": vector_recall(out["users"], out["items"], train, test),
            "seconds_per_epoch": float(np.mean(info["seconds_per_epoch"]))}


def rmse(pred, test, scale=(1.0, 5.0)) -> float:
    """Root mean squared error of predictions clipped to the rating scale (the same rule for
    both libraries: recforge's ``predict`` clips, TFRS's raw outputs are clipped here)."""
    p = np.clip(np.asarray(pred, dtype=np.float64), *scale)
    return float(np.sqrt(np.mean((p - test.values.astype(np.float64)) ** 2)))


def _joint_run(args, weights):
    """recforge's and TFRS's model for one (rating_weight, retrieval_weight) pair, trained at
    the same time (TFRS in its worker process, recforge here), each on ``args.threads``
    threads. ``weights=None``: the ranking model (TwoTowerRanking; TFRS multitask (1, 0))."""
    from recforge.data import FeatureSpec
    from recforge.models import get_model_class

    ds, train, test, users, _, _, _ = ctr_setup()
    tfrs = None
    tfrs_weights = (1.0, 0.0) if weights is None else weights
    if "tfrs" in args.impls and Path(args.tfrs_python).exists():
        spec = FeatureSpec.build(train, user_features=users, item_features=ds.item_features)
        params = {k: RANKING[k] for k in ("embedding_dim", "out_dim", "learning_rate", "batch_size", "init_std",
                                          "rating_hidden")}
        params.update(rating_weight=tfrs_weights[0], retrieval_weight=tfrs_weights[1])
        tfrs = TfrsRun(spec, ds, train, users, args, params, task="multitask", test=test)
    rows = {}
    try:
        if "recforge" in args.impls:
            if weights is None:
                model = get_model_class("TwoTowerRanking")(**RANKING, n_epochs=args.tower_epochs, random_state=0,
                                                           n_threads=args.threads)
            else:
                model = get_model_class("TwoTowerMultitask")(**RANKING, n_epochs=args.tower_epochs,
                                                             rating_weight=weights[0], retrieval_weight=weights[1],
                                                             random_state=0, n_threads=args.threads)
            model.fit(train, item_features=ds.item_features, user_features=users)
            row = {"rmse": rmse(model.predict_inner(test.users, test.items), test),
                   "seconds_per_epoch": float(np.mean(model.history_["seconds"]))}
            if weights is not None:
                row["recall@100"] = vector_recall(model.query_vectors(np.arange(train.n_users)),
                                                  model.item_vectors(), train, test)
            rows["recforge"] = row
    finally:
        if tfrs is not None:
            info, out = tfrs.result()
            row = {"rmse": rmse(out["pred"], test), "seconds_per_epoch": float(np.mean(info["seconds_per_epoch"]))}
            if weights is not None:
                row["recall@100"] = vector_recall(out["users"], out["items"], train, test)
            rows["tfrs"] = row
    return rows


def section_ranking(args) -> None:
    for impl, row in _joint_run(args, None).items():
        emit({"algo": "TwoTowerRanking", "impl": impl, "dataset": "ml-100k-random80", "rmse": round(row["rmse"], 4),
              "seconds_per_epoch": round(row["seconds_per_epoch"], 2)})


def section_multitask(args) -> None:
    for weights in args.weights:
        for impl, row in _joint_run(args, weights).items():
            emit({"algo": "TwoTowerMultitask", "impl": impl, "dataset": "ml-100k-random80",
                  "rating_weight": weights[0], "retrieval_weight": weights[1], "rmse": round(row["rmse"], 4),
                  "recall@100": round(row["recall@100"], 4), "seconds_per_epoch": round(row["seconds_per_epoch"], 2)})


def genre_popularity(train, item_features) -> np.ndarray:
    """Score of every item: the mean, over its genres, of the genre's training interactions per
    item of that genre (0 for an item without genres)."""
    genres, _ = item_features.categorical["genres"]
    g = genres.tocsr().astype(np.float64)
    per_genre = (g.T @ train.item_counts.astype(np.float64)) / np.maximum(np.asarray(g.sum(axis=0)).ravel(), 1)
    n = np.asarray(g.sum(axis=1)).ravel()
    return np.where(n > 0, (g @ per_genre) / np.maximum(n, 1), 0.0)


def section_cold(args) -> None:
    import scipy.sparse as sp

    from recforge.data import load
    from recforge.metrics import auc
    from recforge.models import get_model_class

    ds = load(str(DATA / "ml-100k"))
    data = ds.interactions
    rng = np.random.default_rng(0)
    cold = np.sort(rng.choice(data.n_items, size=data.n_items // 10, replace=False))
    is_cold = np.isin(data.items, cold)
    train, test = data.subset(~is_cold), data.subset(is_cold)
    users = ds.aligned_user_features(categorical=["age", "gender", "occupation", "zip_prefix"])
    model = get_model_class("TwoTower")(**TWO_TOWER, n_epochs=args.tower_epochs, random_state=0,
                                        n_threads=args.threads)
    model.fit(train, item_features=ds.item_features, user_features=users)
    assert set(cold.tolist()) <= set(model.feature_spec_.field("item_id").unseen_ids)
    rows = np.unique(test.users)
    rel = sp.csr_matrix(test.csr[rows][:, cold])
    tower = model.score_inner(rows)[:, cold]
    pop = np.broadcast_to(genre_popularity(train, ds.item_features)[cold], tower.shape)
    rnd = rng.random(tower.shape)
    print(json.dumps({"random_ranker_auc": round(float(np.nanmean(auc(rnd, rel))), 4)}), file=sys.stderr)
    emit({"algo": "TwoTower", "check": "cold-items", "auc": round(float(np.nanmean(auc(tower, rel))), 4),
          "genre_pop_auc": round(float(np.nanmean(auc(np.ascontiguousarray(pop), rel))), 4)})


def section_loo(args) -> None:
    from recforge.data import load
    from recforge.models import get_model_class
    from recforge.split import leave_one_out

    ds = load(str(DATA / "ml-latest-small"))
    split = leave_one_out(ds.interactions, mode="latest", seed=0)
    train, test = split.train, split.test
    runs = [("YouTubeDNN", dict(YOUTUBE_DNN, n_epochs=args.tower_epochs, random_state=0, n_threads=args.threads)),
            ("TwoTower", dict(TWO_TOWER, n_epochs=args.tower_epochs, random_state=0, n_threads=args.threads)),
            ("ALS", {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15, "random_state": 0}),
            ("EASE", {"l2": 500.0})]
    for algo, params in runs:
        model = get_model_class(algo)(**params)
        kw = {"item_features": ds.item_features} if algo == "TwoTower" else {}
        started = time.perf_counter()
        model.fit(train, **kw)
        m = _rank_metrics(model, train, test, 10)
        emit({"algo": algo, "dataset": "ml-latest-small-loo", "hr@10": round(m["hr"], 4),
              "ndcg@10": round(m["ndcg"], 4)})
        print(json.dumps({"algo": algo, "fit_and_rank_seconds": round(time.perf_counter() - started, 1)}),
              file=sys.stderr)


# ---------------------------------------------------------------------- ctr
def ctr_setup():
    from recforge.data import FeatureSpec, context_features, load
    from recforge.split import holdout

    ds = load(str(DATA / "ml-100k"))
    split = holdout(ds.interactions, test_ratio=0.2, seed=0)
    train, test = split.train, split.test
    users = ds.aligned_user_features(categorical=["age", "gender", "occupation", "zip_prefix"])
    ctx_train = {k: v for k, v in context_features(train).items() if k in ("hour", "weekday")}
    ctx_test = {k: v for k, v in context_features(test, history=train).items() if k in ("hour", "weekday")}
    spec = FeatureSpec.build(train, user_features=users, item_features=ds.item_features, context=ctx_train,
                             columns={"item.title": None})
    return ds, train, test, users, ctx_train, ctx_test, spec


def field_codes(spec, users, items, ds_items, user_feats, ctx) -> dict:
    """Field-local codes (0 = out of vocabulary / padding) of the rows (users[j], items[j], ctx[j])."""
    u = spec.encode("user", _user_table(user_feats), ids=np.arange(len(user_feats.user_map)))
    it = spec.encode_items(ds_items)
    c = spec.encode_context(ctx, len(users))
    idx = np.concatenate([u.idx[users], it.idx[items], c.idx], axis=1)
    out, col = {}, 0
    for f in spec.fields:
        block = idx[:, col:col + f.width] - f.offset
        out[f.name.replace(".", "_")] = block[:, 0] if f.width == 1 else block
        col += f.width
    return out


def _user_table(user_feats):
    from recforge.data.feature_spec import user_columns

    return user_columns(user_feats)


def ctr_params(args) -> dict:
    return {"embedding_dim": 8, "hidden": [256, 128], "n_cross": 2, "learning_rate": 1e-3,
            "batch_size": int(args.batch_size), "n_epochs": int(args.epochs), "l2_embedding": 1e-5,
            "l2_linear": 1e-5, "l2_cross": 1e-5, "init_std": 1e-4, "seed": 1024}


def run_recforge_ctr(algo, p, setup, threads):
    import torch

    from recforge.metrics import log_loss, roc_auc
    from recforge.models import get_model_class

    ds, train, test, users, ctx_train, ctx_test, spec = setup
    torch.set_num_threads(threads)
    kw = dict(embedding_dim=p["embedding_dim"], n_epochs=p["n_epochs"], batch_size=p["batch_size"],
              learning_rate=p["learning_rate"], l2_embedding=p["l2_embedding"], l2_linear=p["l2_linear"],
              init_std=p["init_std"], context=["hour", "weekday"], random_state=0)
    if algo in ("WideDeep", "DeepFM", "DCNv2"):
        kw["hidden"] = p["hidden"]
    if algo == "DCNv2":
        kw.update(n_cross=p["n_cross"], l2_cross=p["l2_cross"])
    model = get_model_class(algo)(**kw)
    model.fit(train, item_features=ds.item_features, user_features=users, context=ctx_train,
              feature_spec=spec)
    y, prob = model.click_labels_and_probabilities(test, history=train)
    return {"auc": roc_auc(y, prob), "logloss": log_loss(y, prob),
            "seconds_per_epoch": float(np.mean(model.history_["seconds"]))}


def run_deepctr_ctr(algo, p, setup, threads, python: Path):
    from recforge.metrics import log_loss, roc_auc

    ds, train, test, users, ctx_train, ctx_test, spec = setup
    with tempfile.TemporaryDirectory() as tmp:
        tr = field_codes(spec, train.users, train.items, ds.item_features, users, ctx_train)
        te = field_codes(spec, test.users, test.items, ds.item_features, users, ctx_test)
        arrays = {f"train_{k}": v for k, v in tr.items()} | {f"test_{k}": v for k, v in te.items()}
        arrays["train_y"] = (train.values >= 4).astype(np.float32)
        np.savez(Path(tmp) / "data.npz", **arrays)
        fields = [{"name": f.name.replace(".", "_"), "kind": "varlen" if f.width > 1 else "sparse",
                   "size": f.size, "width": f.width} for f in spec.fields]
        job = {"algo": algo, "params": p, "fields": fields, "data": str(Path(tmp) / "data.npz"),
               "out": str(Path(tmp) / "out.npz"), "threads": threads}
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        proc = subprocess.run([str(python), str(ROOT / "benchmarks" / "_deepctr_worker.py"),
                               str(Path(tmp) / "job.json")], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"deepctr worker failed:\n{proc.stderr[-3000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        prob = np.load(Path(tmp) / "out.npz")["p"]
    y = (test.values >= 4).astype(np.float64)
    return {"auc": roc_auc(y, prob), "logloss": log_loss(y, prob),
            "seconds_per_epoch": float(np.mean(info["seconds_per_epoch"]))}


def section_ctr(args) -> None:
    setup = ctr_setup()
    p = ctr_params(args)
    for algo in args.algos:
        for impl in [i for i in args.impls if i in ("recforge", "deepctr-torch")]:
            if impl == "recforge":
                res = run_recforge_ctr(algo, p, setup, args.threads)
            else:
                res = run_deepctr_ctr(algo, p, setup, args.threads, Path(args.deepctr_python))
            emit({"algo": algo, "impl": impl, "dataset": "ml-100k-ctr", "auc": round(res["auc"], 4),
                  "logloss": round(res["logloss"], 4), "seconds_per_epoch": round(res["seconds_per_epoch"], 2)})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--section", default="ctr",
                    choices=["ctr", "retrieval", "ranking", "multitask", "cold", "loo", "all"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--tower-epochs", type=int, default=5, help="epochs of the two-tower model")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--impls", default="recforge,deepctr-torch,tfrs")
    ap.add_argument("--tfrs-python", default=str(TFRS_PYTHON))
    ap.add_argument("--deepctr-python", default=str(DEEPCTR_PYTHON))
    ap.add_argument("--weights", default="1,0;0,1;1,1",
                    help="multitask: rating_weight,retrieval_weight pairs separated by ';'")
    args = ap.parse_args(argv)
    try:
        args.weights = [tuple(float(w) for w in pair.split(",")) for pair in args.weights.split(";") if pair]
    except ValueError:
        ap.error(f"--weights: pairs of numbers 'a,b;c,d', got {args.weights!r}")
    if any(len(w) != 2 for w in args.weights):
        ap.error(f"--weights: each entry is rating_weight,retrieval_weight, got {args.weights!r}")
    args.algos = [a for a in args.algos.split(",") if a]
    args.impls = [i for i in args.impls.split(",") if i]
    bad = sorted(set(args.algos) - set(ALGOS))
    if bad:
        ap.error(f"--algos: unknown {bad}; known: {list(ALGOS)}")
    if not (DATA / "ml-100k").is_dir():
        print(json.dumps({"skipped": "ml-100k not found", "path": str(DATA)}))
        return 0
    if "deepctr-torch" in args.impls and not Path(args.deepctr_python).exists():
        print(json.dumps({"skipped": "deepctr-torch environment not found", "path": args.deepctr_python}),
              file=sys.stderr)
        args.impls = [i for i in args.impls if i != "deepctr-torch"]
    sections = ["ctr", "retrieval", "ranking", "multitask", "cold", "loo"] if args.section == "all" \
        else [args.section]
    for section in sections:
        {"ctr": section_ctr, "retrieval": section_retrieval, "ranking": section_ranking,
         "multitask": section_multitask, "cold": section_cold, "loo": section_loo}[section](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
