"""Neighbourhood and content-based models side by side with scikit-surprise 1.1.5.

Prints one JSON object per line:

* per algorithm on ``--dataset`` (5-fold CV, the same folds for both libraries):
  ``{"algo", "dataset", "rmse", "surprise_rmse", "rmse_diff", "seconds", "surprise_seconds",
  "speedup", ...}``; seconds are the total fit + test time over the folds (Surprise: ``fit`` and
  ``test`` on its own trainset built from the same fold, building excluded; recforge: ``fit`` on
  a fresh copy of the fold, CSR building included, and ``predict`` on raw ids);
* on ml-latest-small (``--content``), the course's content exercise: ``ContentKNN-genre``,
  ``ContentKNN-year``, ``ContentKNN-mise-en-scene`` with their RMSE on a 75/25 holdout (seed 1)
  and the top-10 titles for user 85.

Usage::

    python benchmarks/bench_neighborhood.py                      # ml-100k, all algorithms, content
    python benchmarks/bench_neighborhood.py --dataset ml-1m      # 1M size (synthetic if absent)
    python benchmarks/bench_neighborhood.py --algos SlopeOne --no-content

Data come from ``../shared/data`` beside the repository (override with RECFORGE_SHARED_DATA).
The Numba kernels are compiled (or loaded from their cache) once before any timing; that time
is printed on its own line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from recforge.data import Interactions
from recforge.models.content import ContentKNN
from recforge.models.neighborhood import (
    CoClustering,
    KNNBaseline,
    KNNBasic,
    KNNWithMeans,
    KNNWithZScore,
    SlopeOne,
)
from recforge.models.query import FallbackLog
from recforge.split import holdout, kfold

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


# name -> (recforge factory, surprise factory(seed))
def algorithms():
    import surprise as S

    def knn(cls, scls, sim, user_based, **kw):
        return (lambda seed: cls(sim=sim, user_based=user_based, **kw),
                lambda seed: scls(sim_options={"name": sim, "user_based": user_based},
                                  verbose=False, **kw))

    table = {
        "KNNBasic-user-msd": knn(KNNBasic, S.KNNBasic, "msd", True),
        "KNNWithMeans-user-msd": knn(KNNWithMeans, S.KNNWithMeans, "msd", True),
        "KNNWithZScore-user-msd": knn(KNNWithZScore, S.KNNWithZScore, "msd", True),
        "KNNBaseline-user-msd": knn(KNNBaseline, S.KNNBaseline, "msd", True),
        "KNNBaseline-item-pearson_baseline": knn(KNNBaseline, S.KNNBaseline, "pearson_baseline", False),
        "KNNBasic-item-cosine": knn(KNNBasic, S.KNNBasic, "cosine", False),
        "KNNBasic-user-pearson": knn(KNNBasic, S.KNNBasic, "pearson", True),
        "KNNWithMeans-item-pearson": knn(KNNWithMeans, S.KNNWithMeans, "pearson", False),
        "KNNWithMeans-user-cosine": knn(KNNWithMeans, S.KNNWithMeans, "cosine", True),
        "KNNBaseline-user-pearson_baseline": knn(KNNBaseline, S.KNNBaseline, "pearson_baseline", True),
        "SlopeOne": (lambda seed: SlopeOne(), lambda seed: S.SlopeOne()),
        "CoClustering": (lambda seed: CoClustering(random_state=seed),
                         lambda seed: S.CoClustering(random_state=seed)),
    }
    return table


def load(dataset: str) -> tuple[Interactions, str]:
    root = shared_data()
    if dataset == "ml-100k":
        from recforge.data.readers import read_recbole

        return read_recbole(root / "ml-100k").interactions, "ml-100k"
    if dataset == "ml-1m":
        if (root / "ml-1m").is_dir():
            from recforge.data.readers import read_movielens

            return read_movielens(root / "ml-1m", features=False).interactions, "ml-1m"
        from recforge.data.synthetic import generate_ratings

        data = generate_ratings(n_users=6040, n_items=3706, n_ratings=1_000_209, seed=0)
        return data.interactions, "synthetic-ml-1m-size"
    raise SystemExit(f"unknown dataset {dataset!r}")


def fresh(part: Interactions) -> Interactions:
    """A copy with no cached CSR views, so that every fit pays for building them."""
    return part.subset(np.ones(part.nnz, dtype=bool))


def warm_up() -> float:
    """Compile (or load from cache) every kernel on a tiny data set."""
    t = time.perf_counter()
    rng = np.random.default_rng(0)
    u = rng.integers(0, 30, 400)
    i = rng.integers(0, 20, 400)
    tiny = Interactions.from_arrays(u, i, rng.integers(1, 6, 400).astype(float), rating_scale=(1, 5))
    for model in (KNNBasic(), KNNBaseline(sim="pearson_baseline", user_based=False),
                  KNNBasic(sim="cosine", similarity_top_k=5), KNNWithMeans(sim="pearson"),
                  KNNBasic(sim="jaccard"), SlopeOne(), CoClustering(random_state=0)):
        model.fit(tiny).predict(tiny.user_map.raw[u[:10]], tiny.item_map.raw[i[:10]])
    return time.perf_counter() - t


def run_recforge(factory, folds, seed):
    rmses, seconds, fallbacks, extra = [], 0.0, {}, {}
    for fold in folds:
        train = fresh(fold.train)
        test = fold.test
        users = test.user_map.to_raw(test.users)
        items = test.item_map.to_raw(test.items)
        t = time.perf_counter()
        model = factory(seed).fit(train)
        pred, fold_fallbacks = model.predict(users, items, return_fallbacks=True)
        seconds += time.perf_counter() - t
        rmses.append(float(np.sqrt(np.mean((pred - test.values.astype(np.float64)) ** 2))))
        for k, v in fold_fallbacks.items():
            fallbacks[k] = fallbacks.get(k, 0) + v
        if hasattr(model, "similarity_nbytes_"):
            extra["similarity_mb"] = round(model.similarity_nbytes_ / 1e6, 2)
    return rmses, seconds, fallbacks, extra


def surprise_fold(fold):
    from surprise import Dataset, Reader

    train_df = fold.train.to_dataframe()[["user", "item", "rating"]]
    scale = fold.train.rating_scale or (float(train_df.rating.min()), float(train_df.rating.max()))
    trainset = Dataset.load_from_df(train_df, Reader(rating_scale=scale)).build_full_trainset()
    test_df = fold.test.to_dataframe()
    testset = list(zip(test_df.user.tolist(), test_df.item.tolist(),
                       test_df.rating.astype(float).tolist(), strict=True))
    return trainset, testset


def run_surprise(factory, sfolds, seed):
    rmses, seconds = [], 0.0
    for trainset, testset in sfolds:
        t = time.perf_counter()
        algo = factory(seed)
        algo.fit(trainset)
        preds = algo.test(testset)
        seconds += time.perf_counter() - t
        err = np.array([p.est - p.r_ui for p in preds])
        rmses.append(float(np.sqrt(np.mean(err ** 2))))
    return rmses, seconds


def bench_cf(args) -> None:
    data, name = load(args.dataset)
    folds = kfold(data, n_folds=args.folds, seed=args.split_seed)
    table = algorithms()
    chosen = args.algos or (["KNNBaseline-item-pearson_baseline"] if args.dataset == "ml-1m"
                            else [a for a in table if a in DEFAULT_100K])
    sfolds = None if args.no_surprise else [surprise_fold(f) for f in folds[: args.surprise_folds or None]]
    for algo in chosen:
        ours, theirs = table[algo]
        seeds = list(range(args.coclustering_seeds)) if algo == "CoClustering" else [0]
        rec = {"algo": algo, "dataset": name, "folds": len(folds)}
        r_rmse, r_sec, r_fb, r_sur, s_sec, r_same = [], [], {}, [], [], []
        for seed in seeds:
            rm, sec, fb, extra = run_recforge(ours, folds, seed)
            r_rmse.append(float(np.mean(rm)))
            if sfolds is not None:
                r_same.append(float(np.mean(rm[: len(sfolds)])))
            r_sec.append(sec)
            for k, v in fb.items():
                r_fb[k] = r_fb.get(k, 0) + v
            rec.update(extra)
            if sfolds is not None:
                srm, ssec = run_surprise(theirs, sfolds, seed)
                r_sur.append(float(np.mean(srm)))
                # Surprise may run on fewer folds (ML-1M): scale its time to all folds
                s_sec.append(ssec * len(folds) / len(sfolds))
        rec["rmse"] = round(float(np.mean(r_rmse)), 5)
        rec["seconds"] = round(float(np.mean(r_sec)), 3)
        if r_sur:
            rec["surprise_rmse"] = round(float(np.mean(r_sur)), 5)
            same = round(float(np.mean(r_same)), 5)
            rec["rmse_diff"] = round(same - rec["surprise_rmse"], 5)
            rec["surprise_seconds"] = round(float(np.mean(s_sec)), 3)
            rec["speedup"] = round(rec["surprise_seconds"] / max(rec["seconds"], 1e-9), 1)
            if len(sfolds) != len(folds):
                # Surprise ran on the first folds only: its RMSE is compared with ours on those
                rec["surprise_folds_run"] = len(sfolds)
                rec["rmse_on_surprise_folds"] = same
        if len(seeds) > 1:
            rec["seeds"] = len(seeds)
            rec["rmse_per_seed"] = [round(x, 5) for x in r_rmse]
            if r_sur:
                rec["surprise_rmse_per_seed"] = [round(x, 5) for x in r_sur]
        rec["fallbacks"] = r_fb
        emit(rec)
    if args.dataset == "ml-1m" and args.sparse_top_k:
        def factory(seed):
            return KNNBaseline(sim="pearson_baseline", user_based=False,
                               similarity_top_k=args.sparse_top_k)

        rm, sec, fb, extra = run_recforge(factory, folds, 0)
        emit({"algo": f"KNNBaseline-item-pearson_baseline-top{args.sparse_top_k}", "dataset": name,
              "folds": len(folds), "rmse": round(float(np.mean(rm)), 5), "seconds": round(sec, 3),
              **extra, "fallbacks": fb})


DEFAULT_100K = ("KNNBasic-user-msd", "KNNWithMeans-user-msd", "KNNWithZScore-user-msd",
                "KNNBaseline-user-msd", "KNNBaseline-item-pearson_baseline", "KNNBasic-item-cosine",
                "SlopeOne", "CoClustering")


def bench_content(args) -> None:
    from recforge.data.readers import read_movielens

    path = shared_data() / "ml-latest-small"
    if not path.is_dir():
        emit({"algo": "ContentKNN", "skipped": f"{path} not found"})
        return
    ds = read_movielens(path)
    split = holdout(ds.interactions, test_ratio=0.25, seed=1)
    train, test = split.train, split.test
    variants = {"ContentKNN-genre": {"genres": 1.0}, "ContentKNN-year": {"year": 1.0},
                "ContentKNN-mise-en-scene": {"mise_en_scene": 1.0},
                "ContentKNN-genre-year": {"genres": 1.0, "year": 1.0}}
    for algo, components in variants.items():
        t = time.perf_counter()
        # the course's protocol: a prediction without neighbours is the global mean
        model = ContentKNN(k=40, components=components, fallback="global_mean")
        model.fit(train, item_features=ds.item_features)
        log = FallbackLog()
        pred = model.predict_inner(test.users, test.items, fallbacks=log)
        seconds = time.perf_counter() - t
        fallbacks = log.as_dict()
        rmse = float(np.sqrt(np.mean((pred - test.values.astype(np.float64)) ** 2)))
        recs = model.recommend([85], k=10)
        titles = ds.item_features.title(recs.inner[0]).tolist()
        emit({"algo": algo, "dataset": "ml-latest-small", "protocol": "holdout 25% seed 1",
              "rmse": round(rmse, 5), "seconds": round(seconds, 3),
              "fallbacks": fallbacks, "top10_user_85": titles,
              "top10_scores": [round(float(x), 3) for x in recs.scores[0]]})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--algos", nargs="*", help="subset of algorithm names (default: the issue's list)")
    p.add_argument("--no-surprise", action="store_true", help="run recforge only")
    p.add_argument("--surprise-folds", type=int, default=0,
                   help="run Surprise on the first N folds only (0 = all); its time is scaled")
    p.add_argument("--coclustering-seeds", type=int, default=5)
    p.add_argument("--sparse-top-k", type=int, default=100,
                   help="ML-1M: also run item KNNBaseline with a sparse top-k similarity")
    p.add_argument("--no-content", action="store_true")
    p.add_argument("--no-cf", action="store_true")
    args = p.parse_args(argv)
    emit({"jit_warmup_seconds": round(warm_up(), 2)})
    if not args.no_cf:
        bench_cf(args)
    if not args.no_content and args.dataset == "ml-100k":
        bench_content(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
