"""Matrix factorization side by side with scikit-surprise 1.1.5 on the same folds.

Prints one JSON object per line (the contract of the factorization issue)::

    {"algo": "SVD", "dataset": "ml-100k", "rmse": ..., "surprise_rmse": ..., "seconds": ...,
     "surprise_seconds": ..., "speedup": ...}                      # SVD, PMF, SVDpp, NMF
    {"algo": "SVDpp", "dataset": "synthetic-1m", "seconds": ..., "rmse": ...}   # and SVD
    {"algo": "timeSVDpp", "dataset": "ml-latest-small-temporal", "rmse": ..., "svdpp_rmse": ...}
    {"algo": "PureSVD", "dataset": "ml-100k-loo", "hr@10": ..., "mostpopular_hr@10": ...}
    {"algo": "SVD", "check": "fold-in", "rmse_fold_in": ..., "rmse_trained": ...}  # and SVDpp

Each section lives in a module ``benchmarks/_factorization_<section>.py`` exposing
``run(args, emit)``; ``--sections`` picks some (default: all present).

Usage::

    python benchmarks/bench_factorization.py [--sections svd svdpp nmf temporal puresvd]
        [--data-dir ../shared/data] [--no-surprise]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTIONS = ("svd", "svdpp", "nmf", "temporal", "puresvd")


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-surprise", action="store_true", help="run recforge only")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3,
                    help="section svd: timed repeats per fold and library, fastest counted")
    ap.add_argument("--sgd-threads", type=int, default=2,
                    help="section svd: SVD/PMF n_threads of the contract's rows (1: Surprise's "
                         "order; more: stratified SGD), single-threaded printed beside")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    for name in args.sections:
        try:
            module = importlib.import_module(f"_factorization_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"_factorization_{name}":
                raise
            emit({"section": name, "skipped": "not built yet"})
            continue
        module.run(args, emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
