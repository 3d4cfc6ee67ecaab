"""Deep collaborative filtering (issue 11): recforge beside published figures and a reference
library (RecBole 1.2.x, or Cornac where RecBole cannot run).

Prints one JSON object per line. Each section lives in ``benchmarks/_deep_<section>.py`` and
exposes ``rows(args)`` yielding dicts; sections whose module is absent are skipped with a note.
The shared protocol (ML-100K, the Microsoft Recommenders 75/25 per-user split, MAP / NDCG@10 /
P@10 / R@10 as that library defines them, validation-chosen hyperparameters, 3 seeds) and the
reference runner are in ``_deep_common.py``. Rows of the ``ml-100k-msr75`` protocol::

    {"algo": "MultVAE", "impl": "recforge"|"recbole"|"cornac", "dataset": "ml-100k-msr75",
     "seed": 0, "map": ..., "ndcg@10": ..., "p@10": ..., "r@10": ...,
     "seconds_per_epoch": ..., "params": {...}}

followed per (algo, impl) by a ``"seed": "mean"`` row. At the end the published table's rows
(``"impl": "table"``) and a summary line naming recforge's best model on that protocol beside
the table's best row (BiVAE)::

    {"summary": "ml-100k-msr75", "best_recforge": "MultVAE", "ndcg@10": ..., "map": ...,
     "table_best": "BiVAE", "table_best_ndcg@10": 0.475077, "table_bpr_ndcg@10": 0.441997}

Sections (``--sections``): ``msr75`` (Mult-VAE, Mult-DAE, CDAE), ``ncf`` (GMF, MLP, NeuMF),
``autorec``, ``rbm`` (RBM, CF-NADE), ``metaprod2vec``.

Usage::

    python benchmarks/bench_deep.py [--sections msr75 ncf ...] [--seeds 0 1 2] [--threads 1]
        [--reference recbole|cornac|none] [--reference-python PATH] [--device cpu] [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _deep_common import DATASET, MSR_TABLE, emit, note, table_rows  # noqa: E402

SECTIONS = ("msr75", "ncf", "autorec", "rbm", "metaprod2vec")


def available_sections() -> list[str]:
    return [s for s in SECTIONS if (HERE / f"_deep_{s}.py").exists()]


def summary(rows: list[dict]) -> dict | None:
    """recforge's best model on ml-100k-msr75 (by mean NDCG@10) beside the table's best row."""
    ours = [r for r in rows if r.get("dataset") == DATASET and r.get("impl") == "recforge"
            and r.get("seed") == "mean" and r.get("ndcg@10") is not None]
    if not ours:
        return None
    best = max(ours, key=lambda r: r["ndcg@10"])
    top = max((a for a in MSR_TABLE if MSR_TABLE[a]["ndcg@10"] is not None),
              key=lambda a: MSR_TABLE[a]["ndcg@10"])
    return {"summary": DATASET, "best_recforge": best["algo"], "ndcg@10": best["ndcg@10"],
            "map": best["map"], "p@10": best["p@10"], "r@10": best["r@10"],
            "table_best": top, "table_best_ndcg@10": MSR_TABLE[top]["ndcg@10"],
            "table_best_map": MSR_TABLE[top]["map"],
            "table_bpr_ndcg@10": MSR_TABLE["BPR"]["ndcg@10"],
            "reaches_bpr": best["ndcg@10"] >= round(MSR_TABLE["BPR"]["ndcg@10"], 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", nargs="*", default=None, choices=SECTIONS,
                    help="default: every section whose module exists")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1,
                    help="torch / BLAS threads of both libraries (the same on both sides)")
    ap.add_argument("--device", default="cpu", help="recforge device (cpu, cuda, auto)")
    ap.add_argument("--reference", default="recbole", choices=("recbole", "cornac", "none"))
    ap.add_argument("--reference-python", help="python of the reference library's environment")
    ap.add_argument("--no-tune", action="store_true",
                    help="skip the validation search; use each section's chosen defaults")
    ap.add_argument("--algos", nargs="*", help="restrict sections to these algorithms")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (one seed, few epochs)")
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    sections = args.sections if args.sections is not None else available_sections()
    rows: list[dict] = []
    for name in sections:
        try:
            module = importlib.import_module(f"_deep_{name}")
        except ModuleNotFoundError as err:
            if err.name == f"_deep_{name}":
                note(f"section {name}: no module benchmarks/_deep_{name}.py; skipped")
                continue
            raise
        t0 = time.perf_counter()
        for row in module.rows(args):
            rows.append(row)
            emit(row)
        note(f"section {name}: {time.perf_counter() - t0:.1f}s")
    if any(r.get("dataset") == DATASET for r in rows):
        for row in table_rows():
            emit(row)
        line = summary(rows)
        if line is not None:
            emit(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
