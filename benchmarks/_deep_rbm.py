"""bench_deep section ``rbm``: the RBM (Salakhutdinov et al. 2007) and CF-NADE (Zheng et al.
2016) rating models on ML-100K.

* ``ml-100k-msr75`` (the Microsoft Recommenders table's protocol, see ``_deep_common``): both
  models train on the *ratings* of the 75 % part (as that library's RBM does; relevance in the
  test part is every test item), rank the catalogue by a score of the predicted rating
  distribution (``ranking_score``: the expected rating, or the most probable rating times its
  probability — the deterministic form of that library's RBM score), training items
  excluded. The RBM's search covers the paper's model (``unrated="ignore"``) and our
  ``unrated="level"`` variant (every item a visible unit, "unrated" a state; ranked by the
  probability of a rating, ``"rated"``, or the expected rating counting "unrated" as 0,
  ``"joint"``), and value visible units trained by Adam (``visible="value"``, the Microsoft
  Recommenders RBM's rank-2 units: its quick-start notebook's settings with unrated entries
  ignored, and three settings with "unrated" as the 0 state). Every list is computed from the
  user's *training* ratings (``_deep_rbm_reference.py`` measures that library's own RBM with
  its training and with its test ratings as the input). Hyperparameters (including
  ``ranking_score``) are chosen by NDCG@10 on a
  validation split carved from the training part of seed 0, then every seed refits on its own
  training part. Rows: the contract's, plus ``table_ndcg@10`` / ``table_p@10`` for the RBM.
  ``--rbm-unrated ignore|level`` and ``--rbm-visible softmax|value`` restrict the search.
  CF-NADE's candidate is its ``unrated="level"`` variant (every item a position of the
  ordering, "unrated" the lowest level; ranked by ``"rated"`` or ``"joint"``).
* ``ml-100k-90-10``: rating RMSE of a random 90/10 split (seed 0) beside recforge's SVD;
  hyperparameters chosen by validation RMSE (10 % of the training part).

Run alone: ``python benchmarks/_deep_rbm.py [--quick] [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _deep_common import (  # noqa: E402
    MSR_TABLE,
    emit,
    evaluate_recforge,
    load_ml100k,
    mean_row,
    msr_row,
    msr_split,
    note,
    r4,
    seconds_per_epoch,
    seeds_of,
    validation_split,
)

RANKING_SCORES = ("expected", "mode")
PRESENCE_SCORES = ("rated", "joint")


def _candidates(algo: str, quick: bool) -> list[dict]:
    if algo == "RBM":
        if quick:
            return [{"n_hidden": 100, "epochs": 3, "learning_rate": 0.1}]
        ignore = [{"n_hidden": 100, "epochs": 20, "learning_rate": lr, "cd_k": 1, "cd_k_final": 3,
                   "unrated": "ignore"} for lr in (0.05, 0.2)]
        level = [{"n_hidden": 100, "epochs": 15, "learning_rate": 0.03, "cd_k": 1, "cd_k_final": 3,
                  "unrated": "level"}]
        # smaller batches (more CD updates per epoch) with less momentum
        level += [{"n_hidden": 100, "epochs": 15, "learning_rate": lr, "batch_size": 10,
                   "momentum": 0.5, "cd_k": 1, "cd_k_final": 3, "unrated": "level"}
                  for lr in (0.005, 0.01)]
        # value units (the Microsoft Recommenders RBM's rank-2 units) trained by Adam: first its
        # quick-start notebook's settings (600 hidden units, 30 epochs, mini-batches of 60,
        # keep_prob 0.9, init std 0.1, the library's Adam step 0.004 / 60 and T rising to 5),
        # unrated entries ignored as there; then with "unrated" as the 0 state
        value = [{"n_hidden": 600, "epochs": 30, "batch_size": 60, "learning_rate": 0.004 / 60,
                  "init_std": 0.1, "keep_prob": 0.9, "cd_k": 1, "cd_k_final": 5, "weight_decay": 0.0,
                  "visible": "value", "unrated": "ignore", "optimizer": "adam"}]
        value += [{"n_hidden": f, "epochs": e, "batch_size": b, "learning_rate": lr, "weight_decay": 0.0,
                   "visible": "value", "unrated": "level", "optimizer": "adam"}
                  for f, e, b, lr in ((200, 25, 60, 1e-3), (200, 30, 20, 5e-4), (100, 40, 60, 1e-3))]
        return ignore + level + value
    if quick:
        return [{"n_hidden": 100, "epochs": 2, "learning_rate": 2e-3}]
    # top-N: the "unrated" level variant (every item a position; about 27 s an epoch here, so
    # one setting, from a short exploration on the same validation split); validation picks
    # the ranking score
    return [{"n_hidden": 100, "epochs": 15, "batch_size": 16, "learning_rate": 5e-3,
             "ordinal_weight": 1.0, "unrated": "level"}]


def _rmse_candidates(algo: str, quick: bool) -> list[dict]:
    if quick:
        return _candidates(algo, quick)
    if algo == "RBM":  # the paper's model
        return [{"n_hidden": 100, "epochs": 20, "learning_rate": 0.2, "cd_k": 1, "cd_k_final": 3}]
    # ratings only (the paper's model); the epoch by validation RMSE
    return [{"n_hidden": 100, "epochs": 10, "batch_size": 16, "learning_rate": 5e-3,
             "ordinal_weight": 1.0}]


def _model(algo: str, params: dict, seed: int, device: str):
    from recforge.models.neural_cf.cfnade import CFNADE
    from recforge.models.neural_cf.rbm import RBM

    cls = RBM if algo == "RBM" else CFNADE
    return cls(**params, random_state=seed, device=device)


def _tune(algo: str, data, args) -> tuple[dict, list]:
    """Each candidate fitted on the validation-fit part of seed 0, scored by NDCG@10 with each
    ranking score; the best (params + ranking score)."""
    train, _ = msr_split(data, 0)
    fit_part, val_part = validation_split(train, 0)
    tried, best, best_value = [], None, -np.inf
    mode = getattr(args, "rbm_unrated", "both")
    visible = getattr(args, "rbm_visible", "both") if algo == "RBM" else "both"
    for params in _candidates(algo, args.quick):
        if mode != "both" and params.get("unrated", mode) != mode:
            continue
        if visible != "both" and params.get("visible", "softmax") != visible:
            continue
        model = _model(algo, params, 0, args.device).fit(fit_part)
        scores = PRESENCE_SCORES if params.get("unrated") == "level" else RANKING_SCORES
        for how in scores:
            model.ranking_score = how
            value = evaluate_recforge(model, fit_part, val_part)["ndcg@10"]
            tried.append({**params, "ranking_score": how, "val_ndcg@10": r4(value)})
            if value > best_value:
                best, best_value = {**params, "ranking_score": how}, value
    return best, tried


def msr_rows(algo: str, data, args):
    best, tried = _tune(algo, data, args)
    note(f"{algo}: validation {tried}")
    rows = []
    for seed in seeds_of(args):
        train, test = msr_split(data, seed)
        model = _model(algo, best, seed, args.device).fit(train)
        metrics = evaluate_recforge(model, train, test)
        extra = {"validation": tried} if seed == seeds_of(args)[0] else {}
        if algo == "RBM":
            extra.update({"table_ndcg@10": MSR_TABLE["RBM"]["ndcg@10"],
                          "table_p@10": MSR_TABLE["RBM"]["p@10"]})
        row = msr_row(algo, "recforge", seed, metrics, seconds_per_epoch(model), dict(best))
        row.update(extra)
        rows.append(row)
        yield row
    mean = mean_row(rows)
    mean.pop("validation", None)
    yield mean


def rmse_rows(data, args):
    """RBM and CF-NADE rating RMSE on a random 90/10 split beside SVD's."""
    from recforge.models.factorization.svd import SVD
    from recforge.split import holdout

    parts = holdout(data, test_ratio=0.1, seed=0)
    train, test = parts.train, parts.test
    inner = holdout(train, test_ratio=0.1, seed=1)
    fit_part, val_part = inner.train, inner.test

    def rmse(model, truth_part):
        pred = model.predict(truth_part.user_map.raw[truth_part.users],
                             truth_part.item_map.raw[truth_part.items])
        return float(np.sqrt(np.mean((pred - truth_part.values) ** 2)))

    svd = SVD(random_state=0).fit(train)
    svd_rmse = rmse(svd, test)
    for algo in ("RBM", "CFNADE"):
        if args.algos and algo not in args.algos:
            continue
        cands = _rmse_candidates(algo, args.quick)
        scored = []
        for params in cands:
            model = _model(algo, params, 0, args.device).fit(fit_part, validation=val_part)
            best_epoch = model.best_epoch_ or params["epochs"]
            scored.append((min(model.history_["val_rmse"]), {**params, "epochs": int(best_epoch)}))
        val, params = min(scored, key=lambda t: t[0])
        t0 = time.perf_counter()
        model = _model(algo, params, 0, args.device).fit(train)
        yield {"algo": algo, "dataset": "ml-100k-90-10", "rmse": r4(rmse(model, test)),
               "svd_rmse": r4(svd_rmse), "val_rmse": r4(val), "params": params,
               "fit_seconds": round(time.perf_counter() - t0, 1)}


def rows(args):
    import torch

    torch.set_num_threads(int(getattr(args, "threads", 1) or 1))
    data = load_ml100k(args.data_dir, implicit=False)
    if data is None:
        return
    for algo in ("RBM", "CFNADE"):
        if (args.algos and algo not in args.algos) or getattr(args, "only_rmse", False):
            continue
        yield from msr_rows(algo, data, args)
    if not getattr(args, "skip_rmse", False):
        yield from rmse_rows(data, args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="RBM and CF-NADE on ML-100K (bench_deep section rbm)")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--algos", nargs="*")
    ap.add_argument("--skip-rmse", action="store_true")
    ap.add_argument("--only-rmse", action="store_true")
    ap.add_argument("--rbm-unrated", default="both", choices=("both", "ignore", "level"),
                    help="which RBM variants the validation search tries")
    ap.add_argument("--rbm-visible", default="both", choices=("both", "softmax", "value"),
                    help="which RBM visible units the validation search tries")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    for row in rows(args):
        emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
