"""bench_deep section ``autorec``: I-AutoRec and U-AutoRec (Sedhain et al. 2015).

* **ml-100k-90-10** — the paper's protocol on ML-100K: a random 90/10 split of the ratings
  (:func:`recforge.split.holdout`, ``test_ratio=0.1``, seed 0), RMSE of the test ratings
  (predictions clipped to 1-5; users or items without training ratings get means, as the paper's
  default rating), beside recforge's SVD (Surprise's defaults) on the same split. The L2 weight
  and the epochs are chosen on a validation split carved from the training part (10 % of it,
  validation RMSE, early stopping), then the model is refitted on the whole training part::

      {"algo": "AutoRec-I"|"AutoRec-U", "dataset": "ml-100k-90-10", "rmse": ...,
       "svd_rmse": ..., "params": {...}}

  followed by ``{"summary": "ml-100k-90-10", "i_beats_u": ...}``.
* **ml-100k-msr75** — the Microsoft Recommenders protocol (``_deep_common``): every rating is
  implicit feedback (1), so the masked loss alone would only learn to output 1; the rows use
  AutoRec's implicit variant (``unobserved_weight`` > 0: unobserved entries reconstructed as 0
  with that weight), its weight, L2 and epochs chosen on the first seed's validation split.

Runnable on its own: ``python benchmarks/_deep_autorec.py [--quick] [--protocols rating msr75]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _deep_common import (  # noqa: E402
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

RATING_DATASET = "ml-100k-90-10"
ALGOS = {"AutoRec-I": "IAutoRec", "AutoRec-U": "UAutoRec"}
#: the paper's network (500 hidden units); Adam instead of L-BFGS / Rprop
BASE = {"hidden": 500, "learning_rate": 0.001, "batch_size": 64}
#: L2 weights searched on the validation split (the paper searched 0.001 ... 1000)
REG_GRID = [30.0, 100.0, 300.0, 1000.0]
MAX_EPOCHS = 80
PATIENCE = 8
#: msr75 (implicit): (unobserved_weight, reg) pairs searched on the validation split
MSR_GRID = [(1.0, 10.0), (0.25, 10.0)]
MSR_MAX_EPOCHS = 40
#: a larger step than on ratings: the implicit targets are all 0/1 and the runs are short
MSR_LEARNING_RATE = 0.003


def _cls(algo: str):
    from recforge.models import get_model_class

    return get_model_class(ALGOS[algo])


def _rmse(model, test) -> float:
    pred = model.predict_inner(test.users, test.items, clip=True)
    return float(np.sqrt(np.mean((pred - test.values) ** 2)))


def rating_rows(args):
    from recforge.models import get_model_class
    from recforge.split import holdout

    data = load_ml100k(args.data_dir, implicit=False)
    if data is None:
        return
    quick = bool(getattr(args, "quick", False))
    parts = holdout(data, test_ratio=0.1, seed=0)
    train, test = parts.train, parts.test
    vparts = holdout(train, test_ratio=0.1, seed=1)
    common = {"random_state": 0, "device": getattr(args, "device", "cpu"),
              "n_threads": getattr(args, "threads", 1)}
    svd = get_model_class("SVD")(random_state=0).fit(train)
    svd_rmse = _rmse(svd, test)
    grid = REG_GRID[:1] if quick or getattr(args, "no_tune", False) else REG_GRID
    results = {}
    for algo in ALGOS:
        if getattr(args, "algos", None) and algo not in args.algos:
            continue
        cls = _cls(algo)
        tried, best = [], None
        for reg in grid:
            m = cls(**BASE, **common, reg=reg, epochs=2 if quick else MAX_EPOCHS,
                    patience=PATIENCE).fit(vparts.train, validation=vparts.test)
            val = min(v for v in m.history_["val_rmse"] if v is not None)
            tried.append({"reg": reg, "epochs": m.best_epoch_, "val_rmse": r4(val)})
            if best is None or val < best[0]:
                best = (val, reg, int(m.best_epoch_))
        _, reg, epochs = best
        t0 = time.perf_counter()
        model = cls(**BASE, **common, reg=reg, epochs=epochs).fit(train)
        note(f"autorec: {algo} refit {time.perf_counter() - t0:.0f}s")
        results[algo] = _rmse(model, test)
        yield {"algo": algo, "dataset": RATING_DATASET, "rmse": r4(results[algo]), "svd_rmse": r4(svd_rmse),
               "params": {**BASE, "reg": reg, "epochs": epochs}, "seconds_per_epoch": r4(seconds_per_epoch(model)),
               "validation": tried, "svd_params": {"n_factors": 100, "n_epochs": 20, "lr_all": 0.005,
                                                   "reg_all": 0.02}}
    if len(results) == len(ALGOS):
        yield {"summary": RATING_DATASET, "autorec_i_rmse": r4(results["AutoRec-I"]),
               "autorec_u_rmse": r4(results["AutoRec-U"]), "svd_rmse": r4(svd_rmse),
               "i_beats_u": bool(results["AutoRec-I"] < results["AutoRec-U"])}


def msr75_rows(args):
    data = load_ml100k(args.data_dir, implicit=True)
    if data is None:
        return
    quick = bool(getattr(args, "quick", False))
    seeds = seeds_of(args)
    train0, _ = msr_split(data, seeds[0])
    fit_part, val_part = validation_split(train0, seeds[0])
    grid = MSR_GRID[:1] if quick or getattr(args, "no_tune", False) else MSR_GRID
    chosen = {}
    for algo in ALGOS:
        cls = _cls(algo)
        common = {"random_state": seeds[0], "device": getattr(args, "device", "cpu"),
                  "n_threads": getattr(args, "threads", 1)}
        tried, best = [], None
        for w0, reg in grid:
            m = cls(**{**BASE, "learning_rate": MSR_LEARNING_RATE}, **common, reg=reg, unobserved_weight=w0,
                    epochs=2 if quick else MSR_MAX_EPOCHS,
                    patience=PATIENCE // 2).fit(fit_part, validation=val_part)
            val = max(v for v in m.history_["val_ndcg@10"] if v is not None)
            tried.append({"unobserved_weight": w0, "reg": reg, "epochs": m.best_epoch_, "val_ndcg@10": r4(val)})
            if best is None or val > best[0]:
                best = (val, {"unobserved_weight": w0, "reg": reg, "epochs": int(m.best_epoch_),
                              "learning_rate": MSR_LEARNING_RATE})
        chosen[algo] = (best[1], tried)
    note(f"autorec msr75: validation {chosen}")
    per_algo = {a: [] for a in ALGOS}
    for seed in seeds:
        train, test = msr_split(data, seed)
        for algo in ALGOS:
            params, tried = chosen[algo]
            model = _cls(algo)(**{**BASE, **params}, random_state=seed, device=getattr(args, "device", "cpu"),
                               n_threads=getattr(args, "threads", 1)).fit(train)
            row = msr_row(algo, "recforge", seed, evaluate_recforge(model, train, test),
                          seconds_per_epoch(model), {**BASE, **params})
            row["validation"] = tried
            per_algo[algo].append(row)
            yield row
    for rows_ in per_algo.values():
        mean = mean_row(rows_)
        if mean is not None:
            yield mean


def rows(args):
    """The section's rows (``bench_deep.py --sections autorec``)."""
    protocols = getattr(args, "autorec_protocols", None) or ("rating", "msr75")
    if "rating" in protocols:
        yield from rating_rows(args)
    if "msr75" in protocols:
        yield from msr75_rows(args)


if __name__ == "__main__":
    import argparse
    import os

    from _deep_common import emit

    ap = argparse.ArgumentParser(description="AutoRec benchmark section (also run by bench_deep.py)")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-tune", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--algos", nargs="*", choices=tuple(ALGOS))
    ap.add_argument("--protocols", dest="autorec_protocols", nargs="*", choices=("rating", "msr75"))
    a = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, str(a.threads))
    for r in rows(a):
        emit(r)
