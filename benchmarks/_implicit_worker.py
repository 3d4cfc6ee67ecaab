"""Runs one job of the ``implicit`` library (0.7.x) for ``bench_implicit.py``.

Started by the python of the virtual environment that has ``implicit`` installed, never
imported by recforge::

    .bench-envs/implicit/bin/python benchmarks/_implicit_worker.py JOB.json

The job file says what to fit and what to return; matrices travel as ``.npz`` files of plain
arrays (CSR parts ``indptr``, ``indices``, ``data``, ``shape``; no pickle). The worker writes
its top-k lists (``ids``, users x k, ``-1`` padding) to ``job["out"]`` and prints one JSON
object on its last stdout line: ``fit_seconds``, ``iteration_seconds`` (one per
iteration/epoch, from the library's callback), ``recommend_seconds``, ``implicit_version``.

Job fields: ``algo`` (``ALS``, ``BPR``, ``LMF``, ``ItemKNN-cosine``, ``ItemKNN-bm25``),
``params`` (constructor arguments; ``weighting: "bm25"`` applies implicit's ``bm25_weight``
to the training matrix first), ``train`` (npz), ``query`` (npz: ``users`` plus the CSR
``history`` rows aligned to them, filtered out and, with ``recalculate``, folded in),
``k``, ``out``, and optionally ``partial`` (npz: ``base`` CSR = the old block, ``n_users`` and
``n_items`` = its size; the model is fitted on the block, then ``partial_fit_users`` and
``partial_fit_items`` bring in the rest of ``train``).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import scipy.sparse as sp


def load_csr(npz, prefix: str) -> sp.csr_matrix:
    return sp.csr_matrix((npz[f"{prefix}_data"], npz[f"{prefix}_indices"], npz[f"{prefix}_indptr"]),
                         shape=tuple(npz[f"{prefix}_shape"]))


def build(algo: str, params: dict):
    import implicit

    params = dict(params)
    params.pop("weighting", None)
    if algo == "ALS":
        return implicit.cpu.als.AlternatingLeastSquares(**params)
    if algo == "BPR":
        return implicit.cpu.bpr.BayesianPersonalizedRanking(**params)
    if algo == "LMF":
        return implicit.cpu.lmf.LogisticMatrixFactorization(**params)
    if algo == "ItemKNN-cosine":
        return implicit.nearest_neighbours.CosineRecommender(**params)
    if algo == "ItemKNN-bm25":
        return implicit.nearest_neighbours.BM25Recommender(**params)
    raise SystemExit(f"unknown algo {algo!r}")


def main(path: str) -> int:
    import implicit
    from implicit.nearest_neighbours import bm25_weight

    job = json.loads(open(path).read())
    train = load_csr(np.load(job["train"]), "train").astype(np.float32)
    if job["params"].get("weighting") == "bm25":
        train = bm25_weight(train, K1=100, B=0.8).tocsr().astype(np.float32)
    model = build(job["algo"], job["params"])
    stamps: list[float] = []

    def callback(*_):  # called after every iteration / epoch
        stamps.append(time.perf_counter())

    kw = {"show_progress": False}
    if job["algo"] in ("ALS", "BPR", "LMF"):
        kw["callback"] = callback
    t0 = time.perf_counter()
    if job.get("partial"):
        part = np.load(job["partial"])
        base = load_csr(part, "base").astype(np.float32)
        model.fit(base, **kw)
        t0 = time.perf_counter()  # the partial fit is what is timed
        nu, ni = int(part["n_users"]), int(part["n_items"])
        new_users = np.arange(nu, train.shape[0])
        new_items = np.arange(ni, train.shape[1])
        # users first (against the old items), then items (against every user)
        model.partial_fit_users(new_users, train[new_users][:, :ni])
        model.partial_fit_items(new_items, train.T.tocsr()[new_items])
        stamps = []
    else:
        model.fit(train, **kw)
    fit_seconds = time.perf_counter() - t0
    iteration_seconds = np.diff([t0, *stamps]).tolist() if stamps else []

    q = np.load(job["query"])
    users = q["users"].astype(np.int32)
    history = load_csr(q, "history").astype(np.float32)
    k = int(job["k"])
    t1 = time.perf_counter()
    ids = np.full((users.size, k), -1, dtype=np.int64)
    recalc = bool(job.get("recalculate"))
    step = 2048
    for s in range(0, users.size, step):
        rows = slice(s, s + step)
        if recalc:  # fold-in: row ids only count rows; the factors come from the history
            got, _ = model.recommend(np.arange(users[rows].size), history[rows], N=k,
                                     filter_already_liked_items=True, recalculate_user=True)
        else:
            got, _ = model.recommend(users[rows], history[rows], N=k,
                                     filter_already_liked_items=True)
        got = np.asarray(got).reshape(users[rows].size, -1)
        ids[rows, :got.shape[1]] = got
    recommend_seconds = time.perf_counter() - t1
    np.savez(job["out"], ids=ids)
    print(json.dumps({"fit_seconds": fit_seconds, "iteration_seconds": iteration_seconds,
                      "recommend_seconds": recommend_seconds,
                      "implicit_version": implicit.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
