"""Evaluation speed and agreement with Surprise on the same folds.

Prints one JSON object per line:

* for each rating baseline, 5-fold CV on MovieLens 100K with recforge and, when
  scikit-surprise is installed, with Surprise on exactly the same folds (each fold's train
  part loaded with ``Dataset.load_from_df(...).build_full_trainset()``, its test part as the
  test list; Random = ``NormalPredictor``, BaselineOnly with Surprise's defaults)::

    {"algo": "BaselineOnly", "rmse": 0.944, "mae": 0.748, "seconds": 0.6,
     "surprise_rmse": 0.944, "surprise_mae": 0.748, "surprise_seconds": 1.1, "ratio": 0.55}

  ``seconds`` is recforge's fit + predict time summed over the folds (the folds themselves are
  made once, beforehand, for every model); ``surprise_seconds`` is Surprise's
  ``load_from_df`` + ``build_full_trainset`` + ``fit`` + ``test`` per fold, summed (Surprise has
  to build its own trainset per fold); ``ratio`` = seconds / surprise_seconds (below 1:
  recforge is faster);
* ``{"name": "bakeoff_ml100k_baselines", "seconds": ..., "target_seconds": 30, ...}``: the whole
  bake-off (Random, BaselineOnly and MostPopular; 5-fold rating CV plus leave-one-out top-10
  with full ranking; splits, fits, metrics, bootstrap intervals, paired tests and the JSON, CSV
  and HTML outputs);
* ``{"name": "full_ranking_top10", "users": 6040, "items": 3706, "seconds": ...,
  "target_seconds": 5}``: full-ranking top-10 evaluation at MovieLens 1M's size (synthetic
  interactions of that shape, about 1M training interactions masked) given a score function
  (a dot product of random 64-d factors, computed batch by batch).

Usage: ``python benchmarks/bench_evaluation.py [--data-dir DIR] [--out DIR]``; the data
directory defaults to ``../shared/data`` beside the repository (or
``$RECFORGE_SHARED_DATA``). Without ML-100K the rating cases run on synthetic data of the same
shape and say so in ``dataset``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from recforge.data.readers import load
from recforge.evaluation import Evaluator, RatingCV, TopNLeaveOneOut
from recforge.evaluation.protocols import evaluate_score_function, sample_negatives
from recforge.models import get_model_class

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def load_ml100k(data_dir: Path):
    if (data_dir / "ml-100k").is_dir():
        return load("ml-100k", data_dir=data_dir), "ml-100k"
    return load("synthetic"), "synthetic (ML-100K shape; ml-100k not found)"


def surprise_on_folds(folds, algo_name: str) -> dict | None:
    try:
        import surprise
    except ImportError:
        return None
    reader = surprise.Reader(rating_scale=(1, 5))
    total = 0.0
    fold_rmse, fold_mae = [], []
    for fold in folds:
        train = fold.train.to_dataframe()[["user", "item", "rating"]]
        test = fold.test.to_dataframe()
        testset = list(zip(test["user"], test["item"], test["rating"].astype(float), strict=True))
        algo = surprise.NormalPredictor() if algo_name == "Random" else surprise.BaselineOnly(verbose=False)
        t0 = time.perf_counter()
        trainset = surprise.Dataset.load_from_df(train, reader).build_full_trainset()
        algo.fit(trainset)
        preds = algo.test(testset)
        total += time.perf_counter() - t0
        err = np.array([p.r_ui - p.est for p in preds])
        fold_rmse.append(float(np.sqrt(np.mean(err**2))))
        fold_mae.append(float(np.mean(np.abs(err))))
    return {"surprise_rmse": float(np.mean(fold_rmse)), "surprise_mae": float(np.mean(fold_mae)),
            "surprise_seconds": total}


def bench_baselines(ds, dataset_name: str) -> None:
    proto = RatingCV(n_folds=5, seed=0)
    ev = Evaluator(ds, proto, memory=False, progress=False)
    folds = ev.folds(proto)
    for algo in ("Random", "BaselineOnly"):
        params = {"random_state": 0} if algo == "Random" else {}
        entry = ev.evaluate_model(proto, get_model_class(algo)(**params), algo)
        seconds = float(np.sum(entry.fit_seconds) + np.sum(entry.eval_seconds))
        row = {"algo": algo, "dataset": dataset_name, "folds": len(folds),
               "rmse": entry.value("rmse"), "mae": entry.value("mae"), "seconds": seconds}
        ref = surprise_on_folds(folds, algo)
        if ref is not None:
            row.update(ref)
            row["ratio"] = seconds / ref["surprise_seconds"] if ref["surprise_seconds"] > 0 else None
        else:
            row.update(surprise_rmse=None, surprise_seconds=None, surprise="not installed")
        emit(row)


def bench_bakeoff(ds, dataset_name: str, out: Path) -> None:
    t0 = time.perf_counter()
    ev = Evaluator(ds, [RatingCV(n_folds=5, seed=0), TopNLeaveOneOut(k=10, seed=0)], progress=False)
    for name in ("Random", "BaselineOnly", "MostPopular"):
        ev.add(get_model_class(name)(), name)
    results = ev.run()
    t_run = time.perf_counter() - t0
    results.save(out)
    seconds = time.perf_counter() - t0
    emit({"name": "bakeoff_ml100k_baselines", "dataset": dataset_name, "seconds": seconds,
          "run_seconds": t_run, "write_seconds": seconds - t_run, "target_seconds": 30.0,
          "ok": seconds < 30.0, "models": ["Random", "BaselineOnly", "MostPopular"],
          "protocols": ["5-fold rating CV", "leave-one-out top-10 full ranking"],
          "outputs": str(out)})


def ml1m_shaped(n_users: int = 6040, n_items: int = 3706, n_train: int = 1_000_000, seed: int = 0):
    """Seen (train) CSR with ``n_train`` distinct pairs under a long-tailed item popularity, and
    one held-out item per user drawn among the items the user has not seen."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop /= pop.sum()
    draws = int(n_train * 1.4)
    u = rng.integers(0, n_users, draws)
    i = rng.choice(n_items, draws, p=pop)
    keys = rng.permutation(np.unique(u.astype(np.int64) * n_items + i))[:n_train]
    train = sp.csr_matrix((np.ones(keys.size, np.float32), (keys // n_items, keys % n_items)),
                          shape=(n_users, n_items))
    held = sample_negatives(train, np.arange(n_users), 1, rng)[:, 0]
    test = sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), held)),
                         shape=(n_users, n_items))
    return train, test


def bench_full_ranking() -> None:
    train, test = ml1m_shaped()
    n_users, n_items = train.shape
    rng = np.random.default_rng(1)
    user_f = rng.standard_normal((n_users, 64)).astype(np.float32)
    item_f = rng.standard_normal((n_items, 64)).astype(np.float32)

    def score(users: np.ndarray) -> np.ndarray:
        return user_f[users] @ item_f.T

    t0 = time.perf_counter()
    res = evaluate_score_function(score, train, test, k=10)
    seconds = time.perf_counter() - t0
    emit({"name": "full_ranking_top10", "users": n_users, "items": n_items,
          "train_interactions": int(train.nnz), "seconds": seconds, "target_seconds": 5.0,
          "ok": seconds < 5.0, "hr@10": res["hr@10"], "ndcg@10": res["ndcg@10"],
          "note": "scoring (64-d dot products), masking seen items, top-10 and HR/NDCG/recall/MRR"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=None, help="bake-off outputs (default: a temp dir)")
    args = ap.parse_args()
    ds, name = load_ml100k(args.data_dir)
    bench_baselines(ds, name)
    with tempfile.TemporaryDirectory() as tmp:
        bench_bakeoff(ds, name, args.out or Path(tmp))
    bench_full_ranking()


if __name__ == "__main__":
    main()
