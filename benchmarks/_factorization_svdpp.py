"""SVD++ section of ``bench_factorization.py``.

Prints (one JSON object per line):

* ``{"algo": "SVDpp", "dataset": "ml-100k", "rmse", "surprise_rmse", "seconds",
  "surprise_seconds", "speedup"}``: 5-fold CV (``kfold``, ``--seed``), Surprise 1.1.5's default
  hyperparameters on both sides (``random_state=0``), the same folds; seconds are the total
  fit + test time over the folds (recforge: fit on a fresh copy of the fold, CSR building
  included, and ``predict`` on raw ids; Surprise: ``fit`` + ``test`` on its trainset built
  from the same fold, building excluded). Numba compilation is done before any timing.
* ``{"algo": "SVDpp", "dataset": "synthetic-1m", "seconds", "rmse", "surprise_rmse_one_fold",
  ...}``: the synthetic generator at ML-1M's size (6,040 x 3,706 x 1,000,209), 5-fold.
  Surprise's SVD++ costs O(|N(u)| k) per rating; its time on one fold is estimated from its
  ML-100K time scaled by sum_u |N(u)|^2, and it is run only when that estimate is under
  ``SURPRISE_BUDGET_S`` (240 s; the environment variable ``RECFORGE_SURPRISE_BUDGET_S``
  overrides it), else ``surprise_rmse_one_fold`` is null and the estimate is printed.
* ``{"algo": "SVDpp", "check": "fold-in", "rmse_fold_in", "rmse_trained", ...}``: on ML-100K
  fold 0, 10 % of the users with test ratings (seeded) are removed from the training data;
  the model trained without them scores their test ratings from their training ratings given
  as an anonymous history (fold-in), against the model trained with them.
"""

from __future__ import annotations

import os
import time

import numpy as np

from recforge.data import Interactions
from recforge.models.factorization import SVDpp
from recforge.split import kfold

SURPRISE_BUDGET_S = float(os.environ.get("RECFORGE_SURPRISE_BUDGET_S", 240.0))


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(truth, float)) ** 2)))


def _fresh(part: Interactions) -> Interactions:
    """A copy with no cached CSR views, so that every fit pays for building them."""
    return part.subset(np.ones(part.nnz, dtype=bool))


def _warm_up() -> None:
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 30, 400), rng.integers(0, 20, 400)
    tiny = Interactions.from_arrays(u, i, rng.integers(1, 6, 400).astype(float), rating_scale=(1, 5))
    model = SVDpp(n_epochs=1, random_state=0).fit(tiny)
    model.score_inner(np.array([-1]), history=tiny.csr[:1])


def _run_ours(folds, seed: int) -> tuple[float, float, list[float]]:
    rmses, seconds = [], 0.0
    for fold in folds:
        train, test = _fresh(fold.train), fold.test
        users, items = test.user_map.to_raw(test.users), test.item_map.to_raw(test.items)
        t = time.perf_counter()
        pred = SVDpp(random_state=seed).fit(train).predict(users, items)
        seconds += time.perf_counter() - t
        rmses.append(_rmse(pred, test.values))
    return float(np.mean(rmses)), seconds, rmses


def _run_surprise(sfolds, seed: int) -> tuple[float, float]:
    import surprise

    rmses, seconds = [], 0.0
    for trainset, testset in sfolds:
        t = time.perf_counter()
        algo = surprise.SVDpp(random_state=seed)
        algo.fit(trainset)
        preds = algo.test(testset)
        seconds += time.perf_counter() - t
        rmses.append(_rmse([p.est for p in preds], [p.r_ui for p in preds]))
    return float(np.mean(rmses)), seconds


def _cost(train: Interactions) -> float:
    """Surprise's SVD++ work per epoch, up to a constant: sum over users of |N(u)|^2."""
    counts = np.asarray(train.user_counts, dtype=np.float64)
    return float((counts ** 2).sum())


def _ml100k(args) -> Interactions | None:
    from recforge.data.readers import read_recbole

    path = args.data_dir / "ml-100k"
    return read_recbole(path).interactions if path.is_dir() else None


def run(args, emit) -> None:
    from bench_neighborhood import surprise_fold  # one helper for both benchmarks

    _warm_up()
    seed = args.seed
    surprise_per_cost = None

    data = _ml100k(args)
    if data is None:
        emit({"algo": "SVDpp", "dataset": "ml-100k", "skipped": f"{args.data_dir / 'ml-100k'} not found"})
    else:
        folds = kfold(data, n_folds=args.folds, seed=seed)
        rmse, seconds, _ = _run_ours(folds, 0)
        rec = {"algo": "SVDpp", "dataset": "ml-100k", "rmse": round(rmse, 5),
               "surprise_rmse": None, "seconds": round(seconds, 3), "surprise_seconds": None,
               "speedup": None}
        if not args.no_surprise:
            s_rmse, s_seconds = _run_surprise([surprise_fold(f) for f in folds], 0)
            rec.update(surprise_rmse=round(s_rmse, 5), surprise_seconds=round(s_seconds, 3),
                       speedup=round(s_seconds / seconds, 1))
            surprise_per_cost = s_seconds / sum(_cost(f.train) for f in folds)
        emit(rec)
        _fold_in_check(data, seed, emit)

    _synthetic_1m(args, seed, surprise_per_cost, emit, surprise_fold)


def _synthetic_1m(args, seed, surprise_per_cost, emit, surprise_fold) -> None:
    from recforge.data.synthetic import generate_ratings

    data = generate_ratings(n_users=6040, n_items=3706, n_ratings=1_000_209, seed=0).interactions
    folds = kfold(data, n_folds=args.folds, seed=seed)
    rmse, seconds, rmses = _run_ours(folds, 0)
    rec = {"algo": "SVDpp", "dataset": "synthetic-1m", "seconds": round(seconds, 3),
           "rmse": round(rmse, 5), "rmse_one_fold": round(rmses[0], 5),
           "surprise_rmse_one_fold": None}
    if not args.no_surprise:
        if surprise_per_cost is None:
            rec["surprise_note"] = "no ML-100K timing to estimate Surprise's time from"
        else:
            estimate = surprise_per_cost * _cost(folds[0].train)
            rec["surprise_seconds_one_fold_estimate"] = round(estimate, 1)
            if estimate <= SURPRISE_BUDGET_S:
                s_rmse, s_seconds = _run_surprise([surprise_fold(folds[0])], 0)
                rec.update(surprise_rmse_one_fold=round(s_rmse, 5),
                           surprise_seconds_one_fold=round(s_seconds, 3))
            else:
                rec["surprise_note"] = (f"not run: estimated {estimate:.0f} s for one fold "
                                        f"(> {SURPRISE_BUDGET_S:.0f} s budget)")
    emit(rec)


def _fold_in_check(data: Interactions, seed: int, emit) -> None:
    fold = kfold(data, n_folds=5, seed=seed)[0]
    train, test = fold.train, fold.test
    rng = np.random.default_rng(seed)
    candidates = np.unique(test.users)
    candidates = candidates[np.asarray(train.user_counts)[candidates] > 0]
    held = np.sort(rng.choice(candidates, size=max(1, candidates.size // 10), replace=False))
    is_held = np.zeros(train.n_users, dtype=bool)
    is_held[held] = True
    trained = SVDpp(random_state=0).fit(train)
    without = SVDpp(random_state=0).fit(train.subset(~is_held[train.users]))
    rows = is_held[test.users]
    tu, ti, tr = test.users[rows], test.items[rows], test.values[rows]
    pred_trained = trained.predict_inner(tu, ti)
    # the held-out users as anonymous rows, their training ratings as history
    history = train.csr[held]
    scores = without.score_inner(np.full(held.size, -1, dtype=np.int32), history=history)
    lo, hi = train.rating_scale
    pred_fold_in = np.clip(scores[np.searchsorted(held, tu), ti].astype(np.float64), lo, hi)
    emit({"algo": "SVDpp", "check": "fold-in", "rmse_fold_in": round(_rmse(pred_fold_in, tr), 5),
          "rmse_trained": round(_rmse(pred_trained, tr), 5), "users": int(held.size),
          "ratings": int(rows.sum()), "method": "user-block SGD, implicit term and item side fixed"})
