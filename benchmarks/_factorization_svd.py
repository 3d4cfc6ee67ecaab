"""SVD and PMF beside scikit-surprise 1.1.5 (section ``svd`` of bench_factorization.py).

Prints:

* ``{"algo": "SVD"|"PMF", "dataset": "ml-100k", "rmse", "surprise_rmse", "seconds",
  "surprise_seconds", "speedup"}`` — 5-fold (``--folds``, split seed ``--seed``), Surprise's
  default hyperparameters on both sides, the same folds; seconds = total fit + test over the
  folds (Surprise's trainset is built outside the timing, as our interactions are), each fold
  timed for both libraries in turn, ``--repeats`` times, its fastest repeat counted; ours
  single-threaded (Surprise's update order) and with ``--sgd-threads`` (default 2: stratified
  SGD, ``SVD(n_threads=2)``), the latter in the contract's fields, the former beside it;
* ``{"algo": "SVD", "dataset": "synthetic-1m", "seconds", "rmse", "surprise_rmse_one_fold"}``
  — the synthetic generator at ML-1M's size, 5-fold; Surprise on the first fold only;
* ``{"algo": "SVD", "check": "fold-in", "rmse_fold_in", "rmse_trained"}`` — 10 % of the test
  users of fold 0 lose all their training ratings, the model is fitted without them, and they
  are scored as anonymous rows from those ratings (``score_inner`` with ``history``); beside
  it the same users' test RMSE from the model trained with them.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from bench_neighborhood import fresh, run_surprise, surprise_fold

from recforge.data import Interactions, load
from recforge.models.factorization import PMF, SVD
from recforge.split import kfold


def _rmse(pred, truth) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - np.asarray(truth, np.float64)) ** 2)))


def _warm_up() -> None:
    """Compile (or load from cache) the SGD kernel outside the timings."""
    rng = np.random.default_rng(0)
    tiny = Interactions.from_arrays(rng.integers(0, 30, 300), rng.integers(0, 20, 300),
                                    rng.integers(1, 6, 300).astype(float), rating_scale=(1, 5))
    for cls in (SVD, PMF):
        for n_threads in (1, 2):
            cls(n_factors=4, n_epochs=1, random_state=0, n_threads=n_threads).fit(tiny) \
                .predict_inner(tiny.users, tiny.items)


def _ours(cls, folds, seed):
    rmses, seconds = [], 0.0
    for fold in folds:
        rmse, sec = _ours_fold(cls, fold, seed)
        rmses.append(rmse)
        seconds += sec
    return float(np.mean(rmses)), seconds


def _ours_fold(cls, fold, seed, n_threads=1):
    train, test = fresh(fold.train), fold.test
    t = time.perf_counter()
    model = cls(random_state=seed, n_threads=n_threads).fit(train)
    pred = model.predict_inner(test.users, test.items)
    return _rmse(pred, test.values), time.perf_counter() - t


def _surprise(biased, sfolds, seed):
    import surprise

    rmses, seconds = run_surprise(lambda s: surprise.SVD(biased=biased, random_state=s), sfolds, seed)
    return float(np.mean(rmses)), seconds


def _side_by_side(cls, biased, folds, sfolds, seed, repeats, threads):
    """Per fold, ours (with each thread count of ``threads``) then Surprise's fit + test,
    ``repeats`` times in turn; each one's time on a fold is its fastest repeat (as ``timeit``
    reports), so a burst of load on a shared machine lands on every side alike instead of on
    whichever ran during it. The fits are seeded: the RMSE is the same in every repeat.
    Returns ({n_threads: (rmse, seconds)}, (surprise rmse, seconds) or None)."""
    ours = {n: ([], 0.0) for n in threads}
    their_rmse, their_sec = [], 0.0
    for i, fold in enumerate(folds):
        best = {n: float("inf") for n in threads}
        rmse = {}
        best_theirs = float("inf")
        for _ in range(repeats):
            for n in threads:
                rmse[n], sec = _ours_fold(cls, fold, seed, n)
                best[n] = min(best[n], sec)
            if sfolds is not None:
                srmse, ssec = _surprise(biased, sfolds[i:i + 1], seed)
                best_theirs = min(best_theirs, ssec)
        for n in threads:
            ours[n] = (ours[n][0] + [rmse[n]], ours[n][1] + best[n])
        if sfolds is not None:
            their_rmse.append(srmse)
            their_sec += best_theirs
    out = {n: (float(np.mean(r)), sec) for n, (r, sec) in ours.items()}
    return out, (float(np.mean(their_rmse)), their_sec) if sfolds is not None else None


def _ml100k(args):
    path = args.data_dir / "ml-100k"
    return load(path).interactions if path.exists() else None


def bench_ml100k(args, emit, data) -> None:
    folds = kfold(data, n_folds=args.folds, seed=args.seed)
    sfolds = None if args.no_surprise else [surprise_fold(f) for f in folds]
    repeats = max(1, int(getattr(args, "repeats", 1)))
    threads = sorted({1, max(1, int(getattr(args, "sgd_threads", 2)))})
    for cls, biased in ((SVD, True), (PMF, False)):
        ours, theirs = _side_by_side(cls, biased, folds, sfolds, args.seed, repeats, threads)
        n = threads[-1]  # the contract's row: the SGD on every thread asked for
        rmse, sec = ours[n]
        rec = {"algo": cls.__name__, "dataset": "ml-100k", "rmse": round(rmse, 5),
               "seconds": round(sec, 3), "n_threads": n}
        if theirs is not None:
            srmse, ssec = theirs
            rec.update(surprise_rmse=round(srmse, 5), surprise_seconds=round(ssec, 3),
                       speedup=round(ssec / max(sec, 1e-9), 1))
        if n != 1:
            rmse1, sec1 = ours[1]
            rec.update(rmse_1_thread=round(rmse1, 5), seconds_1_thread=round(sec1, 3))
            if theirs is not None:
                rec["speedup_1_thread"] = round(theirs[1] / max(sec1, 1e-9), 1)
        rec["timing"] = f"per fold, ours and Surprise's in turn, fastest of {repeats}"
        emit(rec)


def bench_synthetic(args, emit) -> None:
    data = load("synthetic", n_users=6040, n_items=3706, n_ratings=1_000_209, seed=0).interactions
    folds = kfold(data, n_folds=args.folds, seed=args.seed)
    rmse, sec = _ours(SVD, folds, args.seed)
    rec = {"algo": "SVD", "dataset": "synthetic-1m", "seconds": round(sec, 3), "rmse": round(rmse, 5)}
    if not args.no_surprise:
        ours_one, _ = _ours(SVD, folds[:1], args.seed)
        srmse, ssec = _surprise(True, [surprise_fold(folds[0])], args.seed)
        rec.update(surprise_rmse_one_fold=round(srmse, 5), rmse_one_fold=round(ours_one, 5),
                   surprise_seconds_one_fold=round(ssec, 3))
    emit(rec)


def bench_fold_in(args, emit, data, share: float = 0.1) -> None:
    fold = kfold(data, n_folds=args.folds, seed=args.seed)[0]
    train, test = fold.train, fold.test
    rng = np.random.default_rng(args.seed)
    candidates = np.unique(test.users)
    held = np.sort(rng.choice(candidates, size=max(1, round(share * candidates.size)), replace=False))
    in_held = np.isin(train.users, held)
    reduced = train.subset(~in_held)
    without = SVD(random_state=args.seed).fit(reduced)
    trained = SVD(random_state=args.seed).fit(train)
    rows = np.searchsorted(held, train.users[in_held])
    history = sp.csr_matrix((train.values[in_held].astype(np.float64), (rows, train.items[in_held])),
                            shape=(held.size, train.n_items))
    # test pairs of the held-out users on items the reduced training still has
    seen = np.bincount(reduced.items, minlength=reduced.n_items) > 0
    mask = np.isin(test.users, held) & seen[test.items]
    scores = without.score_inner(np.full(held.size, -1, dtype=np.int32), history=history)
    lo, hi = train.rating_scale
    folded = np.clip(scores[np.searchsorted(held, test.users[mask]), test.items[mask]], lo, hi)
    known = trained.predict_inner(test.users[mask], test.items[mask])
    emit({"algo": "SVD", "check": "fold-in", "rmse_fold_in": round(_rmse(folded, test.values[mask]), 5),
          "rmse_trained": round(_rmse(known, test.values[mask]), 5), "users": int(held.size),
          "test_ratings": int(mask.sum())})


def run(args, emit) -> None:
    _warm_up()
    data = _ml100k(args)
    if data is None:
        emit({"section": "svd", "skipped": f"no ml-100k under {args.data_dir}"})
    else:
        bench_ml100k(args, emit, data)
    bench_synthetic(args, emit)
    if data is not None:
        bench_fold_in(args, emit, data)
