"""NMF beside Surprise 1.1.5's NMF, and NSVD1, on ML-100K 5-fold (the same folds on both sides).

Emits::

    {"algo": "NMF", "dataset": "ml-100k", "rmse", "surprise_rmse", "seconds",
     "surprise_seconds", "speedup"}
    {"algo": "NSVD1", "dataset": "ml-100k", "rmse", "seconds"}

Defaults on both sides (Surprise's NMF defaults are ours); ``seconds`` is the total 5-fold
fit + test time, the compiled kernels loaded once on a tiny data set beforehand.
"""

from __future__ import annotations

import time

import numpy as np
from bench_neighborhood import fresh, surprise_fold

from recforge.data import Interactions, load
from recforge.models.factorization import NMF, NSVD1
from recforge.split import kfold


def _warm_up() -> None:
    rng = np.random.default_rng(0)
    tiny = Interactions.from_arrays(rng.integers(0, 30, 400), rng.integers(0, 20, 400),
                                    rng.integers(1, 6, 400).astype(float), rating_scale=(1, 5))
    for model in (NMF(n_epochs=1), NMF(n_epochs=1, biased=True), NSVD1(n_epochs=1)):
        model.fit(tiny).recommend(history=[{tiny.item_map.raw[0]: 4.0}], k=3)


def _ours(factory, folds) -> tuple[float, float]:
    rmses, seconds = [], 0.0
    for fold in folds:
        train, test = fresh(fold.train), fold.test
        users, items = test.user_map.to_raw(test.users), test.item_map.to_raw(test.items)
        t = time.perf_counter()
        pred = factory().fit(train).predict(users, items)
        seconds += time.perf_counter() - t
        rmses.append(float(np.sqrt(np.mean((pred - test.values.astype(np.float64)) ** 2))))
    return float(np.mean(rmses)), seconds


def _surprise(factory, folds) -> tuple[float, float]:
    rmses, seconds = [], 0.0
    for fold in folds:
        trainset, testset = surprise_fold(fold)
        t = time.perf_counter()
        preds = factory().fit(trainset).test(testset)
        seconds += time.perf_counter() - t
        rmses.append(float(np.sqrt(np.mean([(p.est - p.r_ui) ** 2 for p in preds]))))
    return float(np.mean(rmses)), seconds


def run(args, emit) -> None:
    path = args.data_dir / "ml-100k"
    if not path.is_dir():
        emit({"section": "nmf", "skipped": f"no data at {path}"})
        return
    folds = kfold(load(path).interactions, n_folds=args.folds, seed=args.seed)
    _warm_up()
    seed = args.seed
    rmse, seconds = _ours(lambda: NMF(random_state=seed), folds)
    rec = {"algo": "NMF", "dataset": "ml-100k", "rmse": round(rmse, 5),
           "seconds": round(seconds, 3)}
    if not args.no_surprise:
        import surprise

        s_rmse, s_seconds = _surprise(lambda: surprise.NMF(random_state=seed), folds)
        rec.update(surprise_rmse=round(s_rmse, 5), surprise_seconds=round(s_seconds, 3),
                   speedup=round(s_seconds / max(seconds, 1e-9), 1))
    emit({k: rec[k] for k in ("algo", "dataset", "rmse", "surprise_rmse", "seconds",
                              "surprise_seconds", "speedup") if k in rec})
    rmse, seconds = _ours(lambda: NSVD1(random_state=seed), folds)
    emit({"algo": "NSVD1", "dataset": "ml-100k", "rmse": round(rmse, 5),
          "seconds": round(seconds, 3)})
