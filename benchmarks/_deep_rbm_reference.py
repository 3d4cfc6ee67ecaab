"""The Microsoft Recommenders RBM on ``ml-100k-msr75``, scored by the table's metrics, with the
training ratings and with the test ratings as the visible input at recommendation time.

Why: that library's RBM quick-start notebook (the source of the table's RBM row) calls
``recommend_k_items(Xtst)`` — the scored users' hidden units are computed from their *test*
ratings. This script measures the reference model both ways on our split (the same
``holdout_per_user`` split and metric functions as ``bench_deep.py``), with the notebook's
hyperparameters (600 hidden units, 30 epochs, mini-batches of 60, keep_prob 0.9, the library's
defaults otherwise). It prints one JSON object per (seed, input) and a mean per input; these rows
are diagnostics, not rows of the ``bench_deep.py`` contract.

Needs a virtual environment with ``recommenders`` 1.2.x and TensorFlow (``--reference-python``,
default ``<main checkout>/.bench-envs/msrrbm/bin/python``; built here as a venv whose
site-packages also reach TensorFlow's through a ``.pth`` file, plus
``pip install --no-deps recommenders==1.2.1`` and ``pip install pandas matplotlib scipy``)::

    python benchmarks/_deep_rbm_reference.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _deep_common as C  # noqa: E402

NOTEBOOK_PARAMS = {"hidden_units": 600, "training_epoch": 30, "minibatch_size": 60, "keep_prob": 0.9}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reference-python", type=Path,
                    default=C.REPO.parent / "main" / ".bench-envs" / "msrrbm" / "bin" / "python")
    args = ap.parse_args(argv)
    data = C.load_ml100k(args.data_dir, implicit=False)
    if data is None:
        return 0
    if not args.reference_python.exists():
        C.note(f"no reference environment at {args.reference_python}")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="msr-rbm-"))
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    for seed in args.seeds:
        train, test = C.msr_split(data, seed)
        users, relevant, _ = C.eval_rows(train, test)
        np.savez(tmp / f"s{seed}.npz", train=C.csr_of(train).toarray(), test=C.csr_of(test).toarray())
        job = {"data": str(tmp / f"s{seed}.npz"), "out": str(tmp / f"o{seed}.npz"), "seed": seed,
               "params": NOTEBOOK_PARAMS, "threads": args.threads}
        (tmp / f"j{seed}.json").write_text(json.dumps(job))
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        res = subprocess.run([str(args.reference_python), str(HERE / "_msr_rbm_worker.py"),
                              str(tmp / f"j{seed}.json")], capture_output=True, text=True, env=env,
                             check=False)
        if res.returncode != 0:
            raise RuntimeError(f"reference RBM failed: {res.stderr[-3000:]}")
        info = json.loads(res.stdout.strip().splitlines()[-1])
        out = np.load(tmp / f"o{seed}.npz")
        for which in ("train", "test"):
            metrics = C.msr_metrics(out[f"ids_{which}_input"][users], relevant)
            row = {"algo": "RBM", "impl": "microsoft-recommenders", "dataset": C.DATASET, "seed": seed,
                   "input_at_recommendation": which, **{k: C.r4(v) for k, v in metrics.items()},
                   "fit_seconds": round(info["fit_seconds"], 1),
                   "params": {**NOTEBOOK_PARAMS, "version": info["version"]}}
            rows[which].append(row)
            C.emit(row)
    for which, group in rows.items():
        if group:
            mean = {k: C.r4(np.mean([r[k] for r in group])) for k in C.METRIC_KEYS}
            C.emit({"algo": "RBM", "impl": "microsoft-recommenders", "dataset": C.DATASET, "seed": "mean",
                    "input_at_recommendation": which, **mean})
    return 0


if __name__ == "__main__":
    sys.exit(main())
