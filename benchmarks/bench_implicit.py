"""Implicit-feedback models side by side with the ``implicit`` library (0.7.x).

Prints one JSON object per line:

* ``loo``: ML-100K as implicit feedback (every rating = 1), leave-one-out (latest), full
  ranking, training items excluded; seeds 0, 1, 2 and 1 and 2 threads::

    {"algo": "ALS", "impl": "recforge"|"implicit", "dataset": "ml-100k-loo", "threads": 1,
     "seed": 0, "hr@10": ..., "ndcg@10": ..., "seconds_per_iteration": ...}

  (``BPR`` and ``LMF`` with ``seconds_per_epoch``; ``EASE``, ``SLIM``, ``MostPopular``,
  ``ItemKNN``, ``item2vec`` with ``seconds``); after the seeds a line with ``"seed": "mean"``.
* ``synthetic``: :func:`recforge.data.synthetic.generate_implicit` at 6,040 users x 3,706 items
  x 1,000,209 events; ALS and BPR timings per iteration / epoch at 1 and 2 threads.
* ``random80``: ML-100K, a random 80/20 split of all ratings taken as implicit, the protocol of
  the Recommenders.jl README table (yng87/Recommenders.jl: every user with a test rating is
  evaluated, every test rating is relevant, training items are dropped from the lists,
  precision = hits / 10, recall = hits / |test items|, NDCG with IDCG over min(10, |test|)
  items). Hyperparameters are chosen on a validation split carved from the training part
  (a seeded random search over a small grid, NDCG@10), then the model is refitted on the whole
  training part and evaluated on the test part::

    {"algo": ..., "impl": ..., "dataset": "ml-100k-random80", "p@10": ..., "r@10": ...,
     "ndcg@10": ..., "params": {...}, "table": {...}}

* ``lastfm``: lastfm-2k play counts, 80/20 holdout: ALS with and without BM25 weighting,
  item2vec (``"weighting": "bm25"|"none"``).
* ``foldin``: 10 % of the users removed from training; their training rows given back as
  history at query time (``hr@10_fold_in``) against the model trained with them
  (``hr@10_trained``), on the same users.
* ``partial``: fitted without 10 % of the users and 10 % of the items, then ``partial_fit``
  with the rest, against a full refit (``hr@10_partial``, ``hr@10_refit``, ``seconds_partial``,
  ``seconds_refit``).

Both libraries' lists are scored by the same recforge metric functions on the same split. The
``implicit`` side runs in its own virtual environment (``--implicit-python``, default
``.bench-envs/implicit/bin/python``; create it with ``python -m venv .bench-envs/implicit &&
.bench-envs/implicit/bin/pip install implicit==0.7.2``) through ``_implicit_worker.py``, data
passing through ``.npz`` files; without it only recforge runs. A recforge model that is not
registered is skipped with a note on stderr. BLAS is limited to the benchmark's thread count
on both sides. implicit's BPR keeps an item-bias column beside its ``factors`` latent ones
(``factors=64`` gives 65 columns, the users' last one fixed at 1); implicit's ItemKNN is its
``CosineRecommender`` (``K`` neighbours). Seconds per iteration / epoch come from implicit's
per-iteration callback and from recforge's ``iteration_seconds_`` / ``epoch_seconds_`` (else
the fit time over the iterations); compilation is done on tiny data before any timing.

Usage::

    python benchmarks/bench_implicit.py [--sections loo synthetic random80 lastfm foldin partial]
        [--quick] [--no-implicit] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTIONS = ("loo", "synthetic", "random80", "lastfm", "foldin", "partial")

#: recforge hyperparameters of each benchmarked model, in recforge's names; the ``implicit``
#: side gets the same values through IMPLICIT_NAMES. Adjust here when a model's names change.
RECFORGE_PARAMS: dict[str, dict] = {
    "ALS": {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15,
            "weighting": "none"},
    "BPR": {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
    "LMF": {"factors": 30, "learning_rate": 1.0, "regularization": 0.6, "iterations": 30},
    "EASE": {"l2": 500.0},
    "SLIM": {"alpha": 0.01, "l1_ratio": 0.1},
    "item2vec": {"vector_size": 64, "contexts": 5, "epochs": 10},
    "MostPopular": {},
    "ItemKNN": {"k": 50, "sim": "jaccard"},
}
#: registered recforge name of each benchmarked algorithm
RECFORGE_NAMES = {"ItemKNN": "ItemKNNTopN"}
#: algorithms with an iteration count, and how each side names the per-iteration time
ITERATIVE = {"ALS": "seconds_per_iteration", "BPR": "seconds_per_epoch", "LMF": "seconds_per_epoch"}
#: algorithms the ``implicit`` library has (its ItemKNN: cosine over the training rows)
IMPLICIT_ALGOS = {"ALS": "ALS", "BPR": "BPR", "LMF": "LMF", "ItemKNN": "ItemKNN-cosine"}
#: recforge hyperparameter -> implicit constructor argument (others are not passed)
IMPLICIT_NAMES = {"factors": "factors", "regularization": "regularization", "alpha": "alpha",
                  "iterations": "iterations", "learning_rate": "learning_rate",
                  "weighting": "weighting", "k": "K"}
#: the Recommenders.jl README, "Movielens 100k, random 80/20 split": p@10, r@10, ndcg@10
RECOMMENDERS_JL = {"MostPopular": (0.1897, 0.1182, 0.2197), "ItemKNN": (0.3284, 0.2180, 0.3986),
                   "ALS": (0.3657, 0.2416, 0.4402), "BPR": (0.3421, 0.2198, 0.4004)}
#: random80 search spaces (recforge names). Each is searched whole when it has at most
#: TUNE_DRAWS points, else by a seeded random draw of TUNE_DRAWS of them. The ranges were set
#: from sweeps on the validation split only (ALS: the validation NDCG@10 peaks at
#: regularization 30-50 and alpha 1-2; BPR: at 128-256 factors, learning rate 0.01-0.03).
TUNE_GRIDS: dict[str, dict] = {
    "ALS": {"factors": [64, 128, 256], "regularization": [10.0, 30.0, 50.0],
            "alpha": [1.0, 2.0, 5.0], "iterations": [15], "weighting": ["none", "bm25"]},
    "BPR": {"factors": [64, 128, 256], "learning_rate": [0.01, 0.03],
            "regularization": [0.0001, 0.001, 0.01], "iterations": [100]},
    "EASE": {"l2": [10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]},
    "SLIM": {"alpha": [0.001, 0.01, 0.1], "l1_ratio": [0.01, 0.1, 0.5]},
    "ItemKNN": {"k": [10, 20, 50, 100, 200, 400], "sim": ["cosine", "jaccard"]},
    "MostPopular": {},
}
TUNE_DRAWS = 60
K = 10


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def note(msg: str) -> None:
    print(f"bench_implicit: {msg}", file=sys.stderr, flush=True)


def r4(x) -> float | None:
    return None if x is None else round(float(x), 4)


# ---------------------------------------------------------------------- data
def binary(inter):
    """The same interactions with every value 1 (ratings taken as implicit feedback)."""
    from recforge.data import Interactions

    return Interactions(inter.users, inter.items, np.ones(inter.nnz), user_map=inter.user_map,
                        item_map=inter.item_map, timestamps=inter.timestamps, kind="implicit",
                        name=inter.name)


def load_ml100k(data_dir: Path):
    from recforge.data import load

    path = data_dir / "ml-100k"
    if not path.exists():
        return None
    return binary(load(path).interactions)


def csr_of(inter) -> sp.csr_matrix:
    """users x items CSR (float32) in the full data's id space."""
    m = sp.csr_matrix((inter.values.astype(np.float32), (inter.users, inter.items)),
                      shape=(len(inter.user_map), len(inter.item_map)))
    m.sum_duplicates()
    return m


def eval_context(train, test) -> tuple[np.ndarray, sp.csr_matrix]:
    """Users with a test item and their relevant (test) rows, as the top-N protocols take them."""
    from recforge.evaluation.protocols import topn_context

    ctx = topn_context(train, test)
    return ctx["users"], ctx["relevant"]


def list_metrics(rec: np.ndarray, relevant: sp.csr_matrix, k: int = K) -> dict:
    """recforge's metric functions on top-k lists (rows aligned to ``relevant``)."""
    import recforge.metrics as M

    rec = np.ascontiguousarray(rec[:, :k])
    return {f"hr@{k}": float(np.nanmean(M.hit_rate(rec, relevant))),
            f"ndcg@{k}": float(np.nanmean(M.ndcg_at_k(rec, relevant))),
            f"p@{k}": float(np.nanmean(M.precision_at_k(rec, relevant, k=k))),
            f"r@{k}": float(np.nanmean(M.recall_at_k(rec, relevant)))}


def dedupe_rows(rec: np.ndarray) -> np.ndarray:
    """Lists with repeated items (a library padding a short list) keep each item once."""
    out = np.array(rec, dtype=np.int64, copy=True)
    for row in out:
        _, first = np.unique(row, return_index=True)
        mask = np.ones(row.size, dtype=bool)
        mask[first] = False
        row[mask] = -1
    return out


# ---------------------------------------------------------------------- recforge side
_AVAILABLE: dict | None = None


def recforge_class(algo: str):
    """The registered recforge class of ``algo``, or None (noted on stderr once)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        from recforge.models import available_models

        _AVAILABLE = available_models()
    name = RECFORGE_NAMES.get(algo, algo)
    cls = _AVAILABLE.get(name)
    if cls is None and name not in _SKIPPED:
        _SKIPPED.add(name)
        note(f"recforge model {name!r} is not registered; skipped")
    return cls


_SKIPPED: set[str] = set()


def recforge_params(cls, algo: str, params: dict, seed: int | None, threads: int | None,
                    implicit_input: bool = True) -> dict:
    """``params`` plus seed / threads / binarize, kept to the names ``cls`` accepts."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    full = dict(params)
    if seed is not None:
        full["random_state"] = seed
    if threads is not None:
        full["num_threads"] = threads
    if implicit_input and "binarize" in accepted:
        full.setdefault("binarize", False)  # the data are already 1s or counts
    dropped = sorted(set(full) - accepted)
    if dropped:
        key = (algo, tuple(dropped))
        if key not in _DROPPED_NOTED:
            _DROPPED_NOTED.add(key)
            note(f"{cls.__name__} has no hyperparameter(s) {', '.join(dropped)}; not passed")
    return {k: v for k, v in full.items() if k in accepted}


_DROPPED_NOTED: set = set()


def blas_threads(n: int):
    """Limit BLAS/OpenMP pools to ``n`` threads while a recforge model fits (a no-op without
    threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


_WARMED: set = set()


def warm_up(cls, params: dict) -> None:
    """One fit on tiny data so Numba compilation is not timed."""
    key = cls.__name__
    if key in _WARMED:
        return
    _WARMED.add(key)
    from recforge.data import Interactions

    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 40, 600), rng.integers(0, 30, 600)
    tiny = Interactions.from_arrays(u, i, np.ones(600), kind="implicit")
    small = {k: (min(v, 2) if k in ("iterations", "epochs") else v) for k, v in params.items()}
    try:
        m = cls(**small).fit(tiny)
        m.recommend_inner(np.arange(5, dtype=np.int32), 5,
                          history=_history(tiny_csr(tiny)[:5]), exclude_seen=True)
    except Exception as exc:  # the timed fit will report the real error
        note(f"warm-up of {key} failed: {type(exc).__name__}: {exc}")


def tiny_csr(inter) -> sp.csr_matrix:
    return inter.csr.tocsr()


def _history(rows: sp.csr_matrix):
    from recforge.models.query import History

    return History.from_csr(rows)


def recforge_fit(algo: str, train, *, params: dict | None = None, seed: int | None = 0,
                 threads: int = 1):
    """Fit recforge's ``algo`` -> (model, fit seconds, seconds per iteration or None), or None."""
    cls = recforge_class(algo)
    if cls is None:
        return None
    kw = recforge_params(cls, algo, {**RECFORGE_PARAMS[algo], **(params or {})}, seed, threads)
    warm_up(cls, kw)
    with blas_threads(threads):
        t0 = time.perf_counter()
        model = cls(**kw).fit(train)
        seconds = time.perf_counter() - t0
    per = None
    if algo in ITERATIVE:
        attr = "iteration_seconds_" if algo == "ALS" else "epoch_seconds_"
        got = getattr(model, attr, None)
        n_iter = kw.get("iterations") or kw.get("epochs") or 1
        per = float(np.mean(got)) if got is not None and len(got) else seconds / n_iter
    return model, seconds, per


def recforge_lists(model, users: np.ndarray, history: sp.csr_matrix, k: int = K,
                   anonymous: bool = False) -> np.ndarray:
    """Top-k inner ids of ``users`` with ``history`` rows scored from and excluded (the
    evaluator's path); ``anonymous`` queries them as unknown rows (fold-in)."""
    q = np.full(users.size, -1, dtype=np.int32) if anonymous else users.astype(np.int32)
    rec = model.recommend_inner(q, k, history=_history(history), exclude_seen=True)
    return np.asarray(rec.inner)


# ---------------------------------------------------------------------- implicit side
class ImplicitRunner:
    """Runs ``_implicit_worker.py`` in the ``implicit`` virtual environment."""

    def __init__(self, python: Path | None):
        self.python = python
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-implicit-"))
        self.n = 0
        self.version = None

    @property
    def ok(self) -> bool:
        return self.python is not None

    def save_csr(self, name: str, **mats) -> Path:
        arrays = {}
        for prefix, m in mats.items():
            if isinstance(m, sp.spmatrix | sp.sparray):
                m = sp.csr_matrix(m)
                arrays.update({f"{prefix}_data": m.data.astype(np.float32),
                               f"{prefix}_indices": m.indices.astype(np.int32),
                               f"{prefix}_indptr": m.indptr.astype(np.int64),
                               f"{prefix}_shape": np.array(m.shape, dtype=np.int64)})
            else:
                arrays[prefix] = np.asarray(m)
        path = self.tmp / f"{name}.npz"
        np.savez(path, **arrays)
        return path

    def run(self, algo: str, params: dict, train: sp.csr_matrix, users: np.ndarray,
            history: sp.csr_matrix, *, threads: int, seed: int | None = 0, k: int = K,
            recalculate: bool = False, partial: dict | None = None) -> tuple[np.ndarray, dict]:
        """Fit ``algo`` on ``train`` and rank ``users`` (``history`` rows filtered) -> (ids, timings)."""
        self.n += 1
        job_id = f"job{self.n}"
        kw = {IMPLICIT_NAMES[k_]: v for k_, v in params.items() if k_ in IMPLICIT_NAMES}
        if algo in ("ALS", "BPR", "LMF"):
            kw["num_threads"] = threads
            kw["random_state"] = seed
        else:
            kw["num_threads"] = threads
            kw.pop("weighting", None)
        job = {"algo": IMPLICIT_ALGOS[algo], "params": kw, "k": k, "recalculate": recalculate,
               "train": str(self.save_csr(f"{job_id}-train", train=train)),
               "query": str(self.save_csr(f"{job_id}-query", users=users, history=history)),
               "out": str(self.tmp / f"{job_id}-out.npz")}
        if partial is not None:
            job["partial"] = str(self.save_csr(f"{job_id}-partial", **partial))
        jpath = self.tmp / f"{job_id}.json"
        jpath.write_text(json.dumps(job))
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            env[var] = "1"  # implicit's own advice: BLAS threads off, num_threads does the work
        res = subprocess.run([str(self.python), str(HERE / "_implicit_worker.py"), str(jpath)],
                             capture_output=True, text=True, env=env, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"implicit worker failed on {algo}: {res.stderr[-2000:]}")
        out = json.loads(res.stdout.strip().splitlines()[-1])
        self.version = out.get("implicit_version")
        ids = np.load(job["out"])["ids"]
        for p in (job["train"], job["query"], job["out"], jpath, job.get("partial")):
            if p:
                Path(p).unlink(missing_ok=True)
        return dedupe_rows(ids), out


def implicit_per_iteration(algo: str, timing: dict, params: dict) -> float | None:
    if algo not in ITERATIVE:
        return None
    its = timing.get("iteration_seconds") or []
    if its:
        return float(np.mean(its))
    return timing["fit_seconds"] / max(1, int(params.get("iterations", 1)))


def find_implicit_python(arg: str | None, disabled: bool) -> Path | None:
    if disabled:
        return None
    path = Path(arg) if arg else REPO / ".bench-envs" / "implicit" / "bin" / "python"
    if not path.exists():
        note(f"no implicit environment at {path}; running recforge only "
             "(python -m venv .bench-envs/implicit && .bench-envs/implicit/bin/pip install implicit==0.7.2)")
        return None
    return path


# ---------------------------------------------------------------------- one comparison row
def run_pair(algo: str, impl: str, train, users, relevant, *, seed: int, threads: int,
             params: dict | None = None, runner: ImplicitRunner | None = None,
             train_csr: sp.csr_matrix | None = None) -> dict | None:
    """Fit ``algo`` with one library on ``train`` and score its lists -> metrics + timings."""
    params = {**RECFORGE_PARAMS[algo], **(params or {})}
    csr = train_csr if train_csr is not None else csr_of(train)
    hist = csr[users]
    if impl == "recforge":
        got = recforge_fit(algo, train, params=params, seed=seed, threads=threads)
        if got is None:
            return None
        model, seconds, per = got
        t0 = time.perf_counter()
        rec = recforge_lists(model, users, hist)
        rec_seconds = time.perf_counter() - t0
    else:
        if runner is None or not runner.ok or algo not in IMPLICIT_ALGOS:
            return None
        rec, timing = runner.run(algo, params, csr, users, hist, threads=threads, seed=seed)
        seconds, rec_seconds = timing["fit_seconds"], timing["recommend_seconds"]
        per = implicit_per_iteration(algo, timing, params)
    out = list_metrics(rec, relevant)
    out["fit_seconds"] = seconds
    out["recommend_seconds"] = rec_seconds
    if per is not None:
        out[ITERATIVE[algo]] = per
    return out


def takes(algo: str, impl: str, name: str) -> bool:
    """Whether ``algo`` of ``impl`` has the hyperparameter ``name`` (seed / threads)."""
    if impl == "implicit":
        return algo in ITERATIVE or name == "num_threads"
    cls = recforge_class(algo)
    return cls is not None and name in inspect.signature(cls.__init__).parameters


def used_params(algo: str, impl: str, params: dict) -> dict:
    """The hyperparameters a run of ``impl`` was given (recforge names)."""
    full = {**RECFORGE_PARAMS[algo], **params}
    if impl == "implicit":
        full = {k: v for k, v in full.items() if k in IMPLICIT_NAMES}
    return full


def impls(runner: ImplicitRunner | None, algo: str) -> list[str]:
    out = ["recforge"]
    if runner is not None and runner.ok and algo in IMPLICIT_ALGOS:
        out.append("implicit")
    return out


# ---------------------------------------------------------------------- sections
def section_loo(args, runner) -> None:
    from recforge.split import leave_one_out

    data = load_ml100k(args.data_dir)
    if data is None:
        emit({"section": "loo", "skipped": "ml-100k not found"})
        return
    split = leave_one_out(data, mode="latest", seed=0)
    train, test = split.train, split.test
    users, relevant = eval_context(train, test)
    csr = csr_of(train)
    seeds = [0] if args.quick else [0, 1, 2]
    threads_list = [1] if args.quick else [1, 2]
    algos = ["ALS", "BPR", "LMF", "EASE", "SLIM", "MostPopular", "ItemKNN", "item2vec"]
    for algo in algos:
        params = dict(RECFORGE_PARAMS[algo])
        if args.quick and "iterations" in params:
            params["iterations"] = min(params["iterations"], 10)
        for impl in impls(runner, algo):
            # a model without a seed runs once, one without threads at 1 thread
            seeded, threaded = takes(algo, impl, "random_state"), takes(algo, impl, "num_threads")
            for threads in threads_list if threaded else threads_list[:1]:
                rows = []
                for seed in seeds if seeded else seeds[:1]:
                    res = run_pair(algo, impl, train, users, relevant, seed=seed, threads=threads,
                                   params=params, runner=runner, train_csr=csr)
                    if res is None:
                        break
                    row = {"algo": algo, "impl": impl, "dataset": "ml-100k-loo",
                           "threads": threads, "seed": seed, "hr@10": r4(res["hr@10"]),
                           "ndcg@10": r4(res["ndcg@10"])}
                    if algo in ITERATIVE:
                        row[ITERATIVE[algo]] = round(res[ITERATIVE[algo]], 5)
                    row["seconds"] = round(res["fit_seconds"], 3)
                    row["users"] = int(users.size)
                    emit(row)
                    rows.append(row)
                if len(rows) > 1:
                    mean = {key: (r4(np.mean([r[key] for r in rows])) if key in ("hr@10", "ndcg@10")
                                  else round(float(np.mean([r[key] for r in rows])), 5))
                            for key in ("hr@10", "ndcg@10", ITERATIVE.get(algo, "seconds"), "seconds")}
                    emit({"algo": algo, "impl": impl, "dataset": "ml-100k-loo", "threads": threads,
                          "seed": "mean", "seeds": seeds, **mean,
                          "hr@10_std": r4(np.std([r["hr@10"] for r in rows])),
                          "params": used_params(algo, impl, params)})


def section_synthetic(args, runner) -> None:
    from recforge.data.synthetic import generate_implicit

    sizes = (6040, 3706, 1_000_209) if not args.quick else (604, 371, 100_021)
    name = "synthetic-1m" if not args.quick else "synthetic-100k"
    data = generate_implicit(n_users=sizes[0], n_items=sizes[1], n_events=sizes[2], seed=0).interactions
    csr = csr_of(data)
    users = np.arange(0, min(100, csr.shape[0]), dtype=np.int32)
    relevant = csr[users]  # only the timings count here
    iters = {"ALS": 3, "BPR": 3} if not args.quick else {"ALS": 2, "BPR": 2}
    for algo in ("ALS", "BPR"):
        params = {"iterations": iters[algo]}
        for impl in impls(runner, algo):
            for threads in ([1] if args.quick else [1, 2]):
                res = run_pair(algo, impl, data, users, relevant, seed=0, threads=threads,
                               params=params, runner=runner, train_csr=csr)
                if res is None:
                    continue
                emit({"algo": algo, "dataset": name, "impl": impl, "threads": threads,
                      ITERATIVE[algo]: round(res[ITERATIVE[algo]], 4),
                      "iterations": iters[algo], "fit_seconds": round(res["fit_seconds"], 3),
                      "events": sizes[2], "pairs": int(data.nnz)})


def random_draws(grid: dict, n: int, seed: int) -> list[dict]:
    """``n`` distinct points of ``grid`` drawn with ``seed`` (the whole grid when smaller)."""
    from recforge.evaluation.tuning import expand_grid

    points = expand_grid(grid) if grid else [{}]
    if len(points) <= n:
        return points
    idx = np.random.default_rng(seed).choice(len(points), size=n, replace=False)
    return [points[i] for i in sorted(idx)]


def section_random80(args, runner) -> None:
    from recforge.split import holdout

    data = load_ml100k(args.data_dir)
    if data is None:
        emit({"section": "random80", "skipped": "ml-100k not found"})
        return
    split = holdout(data, test_ratio=0.2, seed=args.seed)
    train, test = split.train, split.test
    inner = holdout(train, test_ratio=0.2, seed=args.seed + 1)  # validation carved from train
    fit_part, valid = inner.train, inner.validation if inner.validation is not None else inner.test
    users, relevant = eval_context(train, test)
    vusers, vrelevant = eval_context(fit_part, valid)
    draws = 2 if args.quick else TUNE_DRAWS
    for algo in ("MostPopular", "ItemKNN", "ALS", "BPR", "EASE", "SLIM"):
        grid = TUNE_GRIDS.get(algo, {})
        if args.quick:
            grid = {k: (v[:1] if k == "iterations" else v) for k, v in grid.items()}
        for impl in impls(runner, algo):
            if impl == "recforge" and recforge_class(algo) is None:
                continue
            space = grid if impl == "recforge" else {k: v for k, v in grid.items() if k in IMPLICIT_NAMES}
            t0 = time.perf_counter()
            tried = []
            for point in random_draws(space, draws, seed=args.seed):
                if args.quick and "iterations" in point:
                    point = {**point, "iterations": min(point["iterations"], 10)}
                res = run_pair(algo, impl, fit_part, vusers, vrelevant, seed=args.seed,
                               threads=args.threads, params=point, runner=runner)
                if res is None:
                    break
                tried.append((res["ndcg@10"], point))
            if not tried:
                continue
            best_val, best = max(tried, key=lambda t: t[0])
            res = run_pair(algo, impl, train, users, relevant, seed=args.seed,
                           threads=args.threads, params=best, runner=runner)
            row = {"algo": algo, "impl": impl, "dataset": "ml-100k-random80",
                   "p@10": r4(res["p@10"]), "r@10": r4(res["r@10"]), "ndcg@10": r4(res["ndcg@10"]),
                   "hr@10": r4(res["hr@10"]),
                   "params": used_params(algo, impl, best), "validation_ndcg@10": r4(best_val),
                   "candidates": len(tried), "users": int(users.size),
                   "tuning_seconds": round(time.perf_counter() - t0, 1)}
            if algo in RECOMMENDERS_JL:
                p, r, n = RECOMMENDERS_JL[algo]
                row["table"] = {"p@10": p, "r@10": r, "ndcg@10": n}
                if algo == "MostPopular" and impl == "recforge":
                    # the protocol check: the non-personalised row must match the table
                    row["protocol_check"] = bool(max(abs(res["p@10"] - p), abs(res["r@10"] - r),
                                                     abs(res["ndcg@10"] - n)) <= 0.01)
            emit(row)


def section_lastfm(args, runner) -> None:
    from recforge.data import load
    from recforge.split import holdout

    path = args.data_dir / "lastfm-2k"
    if not path.exists():
        emit({"section": "lastfm", "skipped": f"{path} not found"})
        return
    data = load(path).interactions
    split = holdout(data, test_ratio=0.2, seed=args.seed)
    train, test = split.train, split.test
    users, relevant = eval_context(train, test)
    csr = csr_of(train)
    runs = [("ALS", "bm25"), ("ALS", "none"), ("item2vec", "none"), ("MostPopular", "none")]
    for algo, weighting in runs:
        params = {"weighting": weighting} if algo == "ALS" else {}
        if args.quick and algo == "ALS":
            params["iterations"] = 5
        for impl in impls(runner, algo):
            res = run_pair(algo, impl, train, users, relevant, seed=args.seed,
                           threads=args.threads, params=params, runner=runner, train_csr=csr)
            if res is None:
                continue
            emit({"algo": algo, "impl": impl, "dataset": "lastfm-2k-holdout80",
                  "weighting": weighting, "hr@10": r4(res["hr@10"]), "p@10": r4(res["p@10"]),
                  "r@10": r4(res["r@10"]), "ndcg@10": r4(res["ndcg@10"]),
                  "fit_seconds": round(res["fit_seconds"], 3), "users": int(users.size),
                  "params": used_params(algo, impl, params)})


def section_foldin(args, runner) -> None:
    from recforge.split import leave_one_out

    data = load_ml100k(args.data_dir)
    if data is None:
        emit({"check": "fold-in", "skipped": "ml-100k not found"})
        return
    split = leave_one_out(data, mode="latest", seed=0)
    train, test = split.train, split.test
    users, relevant = eval_context(train, test)
    rng = np.random.default_rng(args.seed)
    held = np.sort(rng.choice(users, size=max(1, users.size // 10), replace=False))
    rows = np.searchsorted(users, held)
    rel_held = relevant[rows]
    reduced = train.subset(~np.isin(train.users, held))
    csr, csr_reduced = csr_of(train), csr_of(reduced)
    hist = csr[held]
    for algo in ("ALS", "BPR", "EASE", "SLIM", "item2vec", "ItemKNN", "MostPopular"):
        params = dict(RECFORGE_PARAMS[algo])
        if args.quick and "iterations" in params:
            params["iterations"] = min(params["iterations"], 10)
        for impl in impls(runner, algo):
            if impl == "implicit" and algo != "ALS":
                continue  # implicit 0.7 recalculates users for ALS only
            if impl == "recforge":
                got = recforge_fit(algo, train, params=params, seed=args.seed, threads=args.threads)
                if got is None:
                    continue
                trained = recforge_lists(got[0], held, hist)
                model = recforge_fit(algo, reduced, params=params, seed=args.seed,
                                     threads=args.threads)[0]
                folded = recforge_lists(model, held, hist, anonymous=True)
            else:
                trained, _ = runner.run(algo, params, csr, held, hist, threads=args.threads,
                                        seed=args.seed)
                folded, _ = runner.run(algo, params, csr_reduced, held, hist,
                                       threads=args.threads, seed=args.seed, recalculate=True)
            a, b = list_metrics(folded, rel_held), list_metrics(trained, rel_held)
            emit({"algo": algo, "impl": impl, "check": "fold-in", "dataset": "ml-100k-loo",
                  "hr@10_fold_in": r4(a["hr@10"]), "hr@10_trained": r4(b["hr@10"]),
                  "ndcg@10_fold_in": r4(a["ndcg@10"]), "ndcg@10_trained": r4(b["ndcg@10"]),
                  "users": int(held.size)})


def section_partial(args, runner) -> None:
    from recforge.data import Interactions
    from recforge.models.base import INCREMENTAL
    from recforge.split import leave_one_out

    data = load_ml100k(args.data_dir)
    if data is None:
        emit({"check": "partial-fit", "skipped": "ml-100k not found"})
        return
    split = leave_one_out(data, mode="latest", seed=0)
    train, test = split.train, split.test
    users, relevant = eval_context(train, test)
    rng = np.random.default_rng(args.seed)
    n_u, n_i = len(train.user_map), len(train.item_map)
    new_u = np.zeros(n_u, dtype=bool)
    new_u[rng.choice(n_u, n_u // 10, replace=False)] = True
    new_i = np.zeros(n_i, dtype=bool)
    new_i[rng.choice(n_i, n_i // 10, replace=False)] = True
    is_new = new_u[train.users] | new_i[train.items]

    def raw_part(mask):  # own id maps: the old part does not know the new users and items
        return Interactions.from_arrays(train.user_map.raw[train.users[mask]],
                                        train.item_map.raw[train.items[mask]],
                                        train.values[mask], timestamps=train.timestamps[mask],
                                        kind="implicit")

    old, new, full = raw_part(~is_new), raw_part(is_new), raw_part(np.ones(train.nnz, bool))
    raw_users = train.user_map.raw[users]
    for algo in ("ALS", "BPR", "EASE", "SLIM", "item2vec", "MostPopular"):
        params = dict(RECFORGE_PARAMS[algo])
        if args.quick and "iterations" in params:
            params["iterations"] = min(params["iterations"], 10)
        for impl in impls(runner, algo):
            if impl == "implicit":
                if algo != "ALS":
                    continue  # implicit 0.7 has partial_fit_users / _items for ALS only
                res = implicit_partial(runner, params, train, users, relevant, new_u, new_i, args)
            else:
                cls = recforge_class(algo)
                if cls is None:
                    continue
                if INCREMENTAL not in getattr(cls, "capabilities", ()):
                    note(f"{cls.__name__} is not INCREMENTAL; no partial-fit check")
                    continue
                res = recforge_partial(algo, params, old, new, full, raw_users, relevant, train, args)
            emit({"algo": algo, "impl": impl, "check": "partial-fit", "dataset": "ml-100k-loo",
                  **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()},
                  "new_users": int(new_u.sum()), "new_items": int(new_i.sum()),
                  "new_interactions": int(is_new.sum())})


def recforge_partial(algo, params, old, new, full, raw_users, relevant, train, args) -> dict:
    def lists(model):
        rec = model.recommend(raw_users, k=K, history=full)
        items = np.asarray(rec.items)
        ok = np.asarray(rec.inner) >= 0
        out = np.full(items.shape, -1, dtype=np.int64)
        out[ok] = train.item_map.to_inner(items[ok])
        return out

    model, _, _ = recforge_fit(algo, old, params=params, seed=args.seed, threads=args.threads)
    with blas_threads(args.threads):
        t0 = time.perf_counter()
        model.partial_fit(new)
        seconds_partial = time.perf_counter() - t0
    hr_partial = list_metrics(lists(model), relevant)["hr@10"]
    refit, seconds_refit, _ = recforge_fit(algo, full, params=params, seed=args.seed,
                                           threads=args.threads)
    hr_refit = list_metrics(lists(refit), relevant)["hr@10"]
    return {"hr@10_partial": hr_partial, "hr@10_refit": hr_refit,
            "seconds_partial": seconds_partial, "seconds_refit": seconds_refit}


def implicit_partial(runner, params, train, users, relevant, new_u, new_i, args) -> dict:
    """implicit's ALS: old users and items first in a relabelled id space, fit on that block,
    then partial_fit_users / partial_fit_items with the rest."""
    u_order = np.concatenate([np.flatnonzero(~new_u), np.flatnonzero(new_u)])
    i_order = np.concatenate([np.flatnonzero(~new_i), np.flatnonzero(new_i)])
    u_pos = np.empty_like(u_order)
    u_pos[u_order] = np.arange(u_order.size)
    csr = csr_of(train)[u_order][:, i_order].tocsr()
    nu, ni = int((~new_u).sum()), int((~new_i).sum())
    base = csr[:nu, :ni]
    q = u_pos[users]
    rec, timing = runner.run("ALS", params, csr, q, csr[q], threads=args.threads, seed=args.seed,
                             partial={"base": base, "n_users": np.array(nu), "n_items": np.array(ni)})
    rec = np.where(rec >= 0, i_order[np.maximum(rec, 0)], -1)
    hr_partial = list_metrics(rec, relevant)["hr@10"]
    rec2, timing2 = runner.run("ALS", params, csr, q, csr[q], threads=args.threads, seed=args.seed)
    rec2 = np.where(rec2 >= 0, i_order[np.maximum(rec2, 0)], -1)
    return {"hr@10_partial": hr_partial, "hr@10_refit": list_metrics(rec2, relevant)["hr@10"],
            "seconds_partial": timing["fit_seconds"], "seconds_refit": timing2["fit_seconds"]}


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data")))
    ap.add_argument("--implicit-python", help="python of the environment with implicit installed")
    ap.add_argument("--no-implicit", action="store_true", help="run recforge only")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads of the sections that do not sweep them (random80, lastfm, ...)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    args = ap.parse_args(argv)
    runner = ImplicitRunner(find_implicit_python(args.implicit_python, args.no_implicit))
    for name in args.sections:
        t0 = time.perf_counter()
        globals()[f"section_{name}"](args, runner)
        note(f"section {name}: {time.perf_counter() - t0:.1f}s")
    if runner.version:
        emit({"implicit_version": runner.version, "cpu_count": os.cpu_count()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
