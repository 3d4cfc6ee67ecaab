"""Session baselines and SASRec on rsc15-100k and on synthetic sessions (next-click protocol).

Prints one JSON object per line:

* per model and data set: ``{"model", "dataset", "recall@1" ... "mrr@20", "coverage@20",
  "popularity@20", "n_events", "train_seconds", "eval_seconds"}`` with the next-click
  evaluation of :func:`recforge.evaluation.session_replay.evaluate_next_item` (pessimistic ties, all
  items ranked). rsc15-100k: ``train_full`` -> ``test`` as shipped; synthetic:
  :func:`recforge.data.synthetic.generate_sessions` with its defaults (seed 0);
* with ``--reference``, per kNN model: ``{"model", "reference": "naive-python", "events",
  "max_abs_diff", "seconds", "reference_seconds", "speedup"}`` comparing the vectorised scores
  with a plain dictionary-and-loop implementation of the same definition on the first test
  prefixes.

GRU4Rec is included (by its registered name, default hyperparameters) when it is registered,
so item-kNN and V-SKNN are printed beside it.

Usage::

    python benchmarks/bench_session_baselines.py
    python benchmarks/bench_session_baselines.py --datasets rsc15-100k --models ItemKNNSession VSKNN
    python benchmarks/bench_session_baselines.py --reference
    python benchmarks/bench_session_baselines.py --models SASRec:loss=ce,augment=True

Data come from ``../shared/data`` beside the repository (override with RECFORGE_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from recforge.evaluation.session_replay import evaluate_next_item
from recforge.models.base import available_models, get_model_class

MODELS = ["SPop", "MarkovChain", "ItemKNNSession", "SKNN", "VSKNN", "SASRec", "SASRec:loss=ce", "GRU4Rec"]
KS = (1, 5, 10, 20)


def shared_data() -> Path:
    env = os.environ.get("RECFORGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load(name: str):
    if name == "rsc15-100k":
        from recforge.data.readers import read_gru4rec_sessions

        folder = shared_data() / "rsc15-100k"
        if not folder.exists():
            return None
        parts = read_gru4rec_sessions(folder).parts
        return parts["train_full"], parts["test"]
    if name == "synthetic":
        from recforge.data.synthetic import generate_sessions

        parts = generate_sessions(seed=0).parts
        return parts["train"], parts["test"]
    raise SystemExit(f"unknown data set {name!r}")


def make_model(spec: str):
    """A model from ``Name`` or ``Name:param=value,param=value`` (values parsed as Python literals)."""
    name, _, rest = spec.partition(":")
    cls = get_model_class(name)
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    if "random_state" in cls._param_names():
        params["random_state"] = 0
    if "n_threads" in cls._param_names():
        params["n_threads"] = 1
    return cls(**params)


# ---------------------------------------------------------------------- naive references
def _naive_itemknn_scores(train, prefixes, lmbd=20.0, alpha=0.5, n_neighbors=100):
    """Loops over sessions and item pairs (binary co-occurrence), then the top-n list per item."""
    co: dict = {}
    support = np.zeros(train.n_items)
    for s in range(train.n_sessions):
        items = set(train.session(s).tolist())
        for i in items:
            support[i] += 1
            row = co.setdefault(i, {})
            for j in items:
                if i != j:
                    row[j] = row.get(j, 0) + 1
    out = np.zeros((len(prefixes), train.n_items))
    for r, prefix in enumerate(prefixes):
        i = int(prefix[-1])
        sims = {j: c / ((support[i] + lmbd) ** alpha * (support[j] + lmbd) ** (1 - alpha))
                for j, c in co.get(i, {}).items()}
        for j in sorted(sims, key=lambda j: (-sims[j], j))[:n_neighbors]:
            out[r, j] = sims[j]
    return out


def _naive_vsknn_scores(train, prefixes, k=100, sample_size=1000):
    """Per prefix: candidate sessions through an item index, most recent first, dot products."""
    sessions_of: dict = {}
    sets = []
    for s in range(train.n_sessions):
        items = set(train.session(s).tolist())
        sets.append(items)
        for i in items:
            sessions_of.setdefault(i, set()).add(s)
    last_time = train.timestamps[train.offsets[1:] - 1]
    out = np.zeros((len(prefixes), train.n_items))
    for r, prefix in enumerate(prefixes):
        weights = {int(item): (p + 1) / len(prefix) for p, item in enumerate(prefix)}
        cand = set().union(*(sessions_of.get(i, set()) for i in weights))
        cand = sorted(cand, key=lambda n: (-last_time[n], n))[:sample_size]
        sims = [sum(w for i, w in weights.items() if i in sets[n]) for n in cand]
        for pos in sorted(range(len(cand)), key=lambda q: (-round(sims[q], 9), q))[:k]:
            for i in sets[cand[pos]]:
                out[r, i] += sims[pos]
    return out


def reference_check(name: str, model, train, test, n_prefixes: int) -> dict:
    prefixes = []
    for s in range(test.n_sessions):
        seq = test.session(s)
        prefixes += [seq[:t] for t in range(1, len(seq))]
        if len(prefixes) >= n_prefixes:
            break
    prefixes = prefixes[:n_prefixes]
    started = time.perf_counter()
    got = model._score_next(prefixes)
    ours = time.perf_counter() - started
    naive = _naive_itemknn_scores if name == "ItemKNNSession" else _naive_vsknn_scores
    started = time.perf_counter()
    expected = naive(train, prefixes)
    ref = time.perf_counter() - started
    # rows the naive code leaves all-zero are the model's counted popularity fallbacks
    scored = expected.any(axis=1)
    return {"model": name, "reference": "naive-python", "events": len(prefixes),
            "fallback_rows": int((~scored).sum()),
            "max_abs_diff": float(np.abs(got[scored] - expected[scored]).max()), "seconds": round(ours, 3),
            "reference_seconds": round(ref, 3), "speedup": round(ref / max(ours, 1e-9), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["rsc15-100k", "synthetic"])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--reference", action="store_true",
                        help="compare ItemKNNSession and VSKNN with naive loops on rsc15-100k")
    parser.add_argument("--reference-prefixes", type=int, default=500)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # 2 shared cores: more threads only oversubscribe
    known = available_models()
    for dataset in args.datasets:
        data = load(dataset)
        if data is None:
            print(json.dumps({"dataset": dataset, "skipped": "data not found"}), flush=True)
            continue
        train, test = data
        for name in args.models:
            if name.partition(":")[0] not in known:
                print(json.dumps({"model": name, "dataset": dataset, "skipped": "not registered"}), flush=True)
                continue
            model = make_model(name)
            started = time.perf_counter()
            model.fit(train)
            train_seconds = time.perf_counter() - started
            res = evaluate_next_item(model, test, ks=KS)
            line = {"model": name, "dataset": dataset}
            line.update({k: round(v, 4) for k, v in res.items()
                         if isinstance(v, float) and not math.isnan(v) and "@" in k})
            line.update({"n_events": res["n_events"], "train_seconds": round(train_seconds, 2),
                         "eval_seconds": round(res["seconds"], 2)})
            print(json.dumps(line), flush=True)
            if args.reference and dataset == "rsc15-100k" and name in ("ItemKNNSession", "VSKNN"):
                print(json.dumps(reference_check(name, model, train, test, args.reference_prefixes)),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
