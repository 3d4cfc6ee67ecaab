"""Data loading and generation speed.

Prints one JSON object per line::

    {"name": "load_ml100k", "seconds": 0.25, "target_seconds": 1.0, "ok": true,
     "ratings": 100000, "users": 943, "items": 1682,
     "reference": "pandas.read_csv", "reference_seconds": 0.04, "ratio": 6.2}

``seconds`` is the best of ``--repeat`` full loads (parse, validate every value with line
numbers, build id maps and the sorted arrays, item features). ``reference_seconds`` is a bare
``pandas.read_csv`` of the same rating file with no validation and nothing built; ``ratio`` =
seconds / reference_seconds shows what the checks and structures cost on top of parsing.

Cases: ``load_ml100k``, ``load_ml1m`` (skipped with a reason when ``<data-dir>/ml-1m`` is
absent), ``load_ml_latest_small``, ``load_rsc15_100k``, ``synthetic_1m``.

Usage: ``python benchmarks/bench_data.py [--data-dir DIR] [--repeat N]``; the data directory
defaults to ``../shared/data`` beside the repository (or ``$RECFORGE_SHARED_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

from recforge.data.readers import load

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def best_of(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def counts(ds) -> dict:
    if ds.interactions is not None:
        s = ds.interactions.summary()
        return {"ratings": s["interactions"], "users": s["users"], "items": s["items"]}
    s = ds.sessions.summary()
    return {"events": s["events"], "sessions": s["sessions"], "items": s["items"],
            "parts": {k: v.n_events for k, v in ds.parts.items()}}


def bench_load(name: str, path: Path, target: float, reference_file: Path, read_kw: dict,
               repeat: int) -> dict:
    if not path.exists():
        return {"name": name, "skipped": f"{path} not present", "target_seconds": target}
    load(path)  # warm-up: imports and file cache
    seconds, ds = best_of(lambda: load(path), repeat)
    ref, _ = best_of(lambda: pd.read_csv(reference_file, **read_kw), repeat)
    return {"name": name, "seconds": round(seconds, 4), "target_seconds": target,
            "ok": seconds < target, **counts(ds), "reference": "pandas.read_csv",
            "reference_seconds": round(ref, 4), "ratio": round(seconds / ref, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    d = args.data_dir
    tab = {"sep": "\t"}
    cases = [
        ("load_ml100k", d / "ml-100k", 1.0, d / "ml-100k" / "ml-100k.inter", tab),
        ("load_ml1m", d / "ml-1m", 3.0, d / "ml-1m" / "ratings.dat",
         {"sep": ":", "header": None, "usecols": [0, 2, 4, 6]}),
        ("load_ml_latest_small", d / "ml-latest-small", 1.0,
         d / "ml-latest-small" / "ratings.csv", {}),
        ("load_rsc15_100k", d / "rsc15-100k", 1.0,
         d / "rsc15-100k" / "yoochoose-clicks-100k_train_full.txt", tab),
    ]
    for name, path, target, ref_file, kw in cases:
        if name == "load_ml100k" and not (path / "ml-100k.inter").exists() and (path / "u.data").exists():
            ref_file, kw = path / "u.data", {"sep": "\t", "header": None}
        print(json.dumps(bench_load(name, path, target, ref_file, kw, args.repeat)), flush=True)

    from recforge.data.synthetic import generate_ratings

    seconds, ds = best_of(lambda: generate_ratings(n_users=6040, n_items=3706,
                                                   n_ratings=1_000_000, seed=0), 1)
    print(json.dumps({"name": "synthetic_1m", "seconds": round(seconds, 4), "target_seconds": 10.0,
                      "ok": seconds < 10.0, **counts(ds)}), flush=True)


if __name__ == "__main__":
    main()
