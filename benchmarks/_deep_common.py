"""The protocol shared by the deep collaborative-filtering benchmarks (``bench_deep.py``).

**ml-100k-msr75** — the protocol of the Microsoft Recommenders ML-100K benchmark table
(README "Algorithm Comparison"; ``examples/06_benchmarks/movielens.ipynb``):

* ML-100K with every rating taken as implicit feedback (value 1);
* each user's ratings split 75/25 at random (:func:`recforge.split.holdout_per_user`,
  ``test_ratio=0.25``; the split seed is the run's seed, so the 3 seeds vary split and model);
* top-10 over the full catalogue, the user's training items excluded;
* metrics as ``recommenders.evaluation.python_evaluation`` defines them (all relevance binary,
  averaged over the users with a test item):

  - ``p@10`` = hits / 10; ``r@10`` = hits / |test items|;
  - ``ndcg@10`` with binary gains, DCG over the 10 positions, IDCG over
    ``min(10, |test items|)`` (the log base cancels);
  - ``map`` = that library's ``map_at_k`` **as the table was computed**: the sum over hits of
    (hits so far / rank), divided by the number of test items |R_u| (not by ``min(k, |R_u|)``
    as in recforge's :func:`~recforge.metrics.average_precision_at_k` and later versions of
    ``map_at_k``); so with 25 % of a user's ratings held out, MAP stays well below NDCG;

* hyperparameters chosen on a validation split carved from the training part
  (``holdout_per_user`` again, 25 % of each user's training items), then refitted on the whole
  training part; the reported figures are the mean of 3 seeds.

Every section module (``_deep_<section>.py``) yields rows of one contract::

    {"algo": "MultVAE", "impl": "recforge"|"recbole"|"cornac", "dataset": "ml-100k-msr75",
     "seed": 0, "map": ..., "ndcg@10": ..., "p@10": ..., "r@10": ...,
     "seconds_per_epoch": ..., "params": {...}}

(:func:`msr_row`; :func:`mean_row` adds the ``"seed": "mean"`` line). The reference library runs
in its own virtual environment through ``_deep_reference_worker.py``
(:class:`ReferenceRunner`): the same train/test split is written as RecBole atomic files
(``benchmark_filename``), and its top-10 lists come back to be scored by the same functions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATASET = "ml-100k-msr75"
K = 10
METRIC_KEYS = ("map", "ndcg@10", "p@10", "r@10")

#: The Microsoft Recommenders README table, ML-100K, 75/25 stratified split, k = 10
#: (MAP, nDCG@k, Precision@k, Recall@k). The RBM row is the one of the earlier versions of the
#: table (as quoted by the issue: NDCG@10 0.4111, P@10 0.3363; MAP and recall not quoted).
MSR_TABLE: dict[str, dict[str, float | None]] = {
    "BiVAE": {"map": 0.146126, "ndcg@10": 0.475077, "p@10": 0.411771, "r@10": 0.219145},
    "BPR": {"map": 0.132478, "ndcg@10": 0.441997, "p@10": 0.388229, "r@10": 0.212522},
    "LightGCN": {"map": 0.088526, "ndcg@10": 0.419846, "p@10": 0.379626, "r@10": 0.144336},
    "NCF": {"map": 0.107720, "ndcg@10": 0.396118, "p@10": 0.347296, "r@10": 0.180775},
    "SAR": {"map": 0.110591, "ndcg@10": 0.382461, "p@10": 0.330753, "r@10": 0.176385},
    "RBM": {"map": None, "ndcg@10": 0.4111, "p@10": 0.3363, "r@10": None},
}


# ---------------------------------------------------------------------- output
def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def note(msg: str) -> None:
    print(f"bench_deep: {msg}", file=sys.stderr, flush=True)


def r4(x) -> float | None:
    return None if x is None else round(float(x), 4)


def seeds_of(args) -> list[int]:
    """The seeds of a run (``--seeds``; ``--quick``: the first only)."""
    seeds = list(getattr(args, "seeds", None) or [0, 1, 2])
    return seeds[:1] if getattr(args, "quick", False) else seeds


# ---------------------------------------------------------------------- data and split
def binary(inter):
    """The same interactions with every value 1 (ratings taken as implicit feedback)."""
    from recforge.data import Interactions

    return Interactions(inter.users, inter.items, np.ones(inter.nnz), user_map=inter.user_map,
                        item_map=inter.item_map, timestamps=inter.timestamps, kind="implicit",
                        name=inter.name)


def load_ml100k(data_dir: Path | str, implicit: bool = True):
    """ML-100K (``data_dir/ml-100k``) as :class:`~recforge.data.Interactions`, every rating
    taken as implicit feedback unless ``implicit=False``; ``None`` when the folder is absent."""
    from recforge.data import load

    path = Path(data_dir) / "ml-100k"
    if not path.exists():
        note(f"no ML-100K at {path}")
        return None
    inter = load(str(path)).interactions
    return binary(inter) if implicit else inter


def msr_split(data, seed: int):
    """(train, test): each user's interactions split 75/25 at random (the table's protocol)."""
    from recforge.split import holdout_per_user

    parts = holdout_per_user(data, test_ratio=0.25, seed=seed)
    return parts.train, parts.test


def validation_split(train, seed: int):
    """(fit part, validation part) carved from ``train`` the same way (25 % of each user's
    training items), for choosing hyperparameters and epochs without touching the test part."""
    return msr_split(train, seed=10_000 + int(seed))


def csr_of(inter) -> sp.csr_matrix:
    """users x items float32 CSR in the full data's id space (duplicates summed)."""
    m = sp.csr_matrix((inter.values.astype(np.float32), (inter.users, inter.items)),
                      shape=(len(inter.user_map), len(inter.item_map)))
    m.sum_duplicates()
    m.sort_indices()
    return m


def eval_rows(train, test) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    """(users with a test item, their test rows, their training rows): rows aligned."""
    test_csr = csr_of(test)
    users = np.flatnonzero(np.diff(test_csr.indptr) > 0).astype(np.int32)
    return users, test_csr[users], csr_of(train)[users]


# ---------------------------------------------------------------------- metrics
def msr_metrics(rec: np.ndarray, relevant: sp.csr_matrix, k: int = K) -> dict[str, float]:
    """MAP, NDCG@k, P@k and R@k as the Microsoft Recommenders evaluation defines them (see the
    module docstring) on top-``k`` lists ``rec`` (inner ids, ``-1`` padding; rows aligned to
    ``relevant``, users x items, every stored entry relevant). Means over the rows."""
    from recforge.metrics.ranking import hits_matrix, ndcg_at_k, precision_at_k, recall_at_k

    rec = np.ascontiguousarray(np.asarray(rec)[:, :k])
    relevant = sp.csr_matrix(relevant)
    n_rel = np.diff(relevant.indptr).astype(np.float64)
    if (n_rel == 0).any():
        raise ValueError("relevant: every row needs a test item (evaluate users with one only)")
    hit = hits_matrix(rec, relevant, k).astype(np.float64)
    precision_at_rank = np.cumsum(hit, axis=1) / np.arange(1, hit.shape[1] + 1)
    ap = (precision_at_rank * hit).sum(axis=1) / n_rel
    return {"map": float(ap.mean()),
            f"ndcg@{k}": float(np.mean(ndcg_at_k(rec, relevant, k=k))),
            f"p@{k}": float(np.mean(precision_at_k(rec, relevant, k=k))),
            f"r@{k}": float(np.mean(recall_at_k(rec, relevant, k=k)))}


def recforge_topk(model, users: np.ndarray, history: sp.csr_matrix, k: int = K) -> np.ndarray:
    """A fitted recforge model's top-``k`` lists for inner ``users``, each row's ``history``
    (its training items) given as the query's history and excluded from the list."""
    from recforge.models.query import History

    rec = model.recommend_inner(np.asarray(users, dtype=np.int32), k,
                                history=History.from_csr(sp.csr_matrix(history)), exclude_seen=True)
    return np.asarray(rec.inner)


def evaluate_recforge(model, train, test, k: int = K) -> dict[str, float]:
    """:func:`msr_metrics` of a fitted model on (train, test)."""
    users, relevant, seen = eval_rows(train, test)
    return msr_metrics(recforge_topk(model, users, seen, k), relevant, k)


def seconds_per_epoch(model) -> float | None:
    """Mean training seconds of an epoch from a recforge model's ``history_`` (NeuralModel)."""
    hist = getattr(model, "history_", None) or {}
    secs = [s for s in hist.get("seconds", []) if s is not None]
    return float(np.mean(secs)) if secs else None


# ---------------------------------------------------------------------- rows
def msr_row(algo: str, impl: str, seed, metrics: dict, seconds_per_epoch_: float | None,
            params: dict) -> dict:
    """One contract row (values rounded to 4 decimals, seconds to 4 significant places)."""
    row = {"algo": algo, "impl": impl, "dataset": DATASET, "seed": seed}
    row.update({key: r4(metrics.get(key)) for key in METRIC_KEYS})
    row["seconds_per_epoch"] = None if seconds_per_epoch_ is None else float(f"{seconds_per_epoch_:.4g}")
    row["params"] = params
    return row


def mean_row(rows: list[dict]) -> dict | None:
    """The ``"seed": "mean"`` row of several seeds' rows of one (algo, impl)."""
    if not rows:
        return None
    out = dict(rows[0])
    out["seed"] = "mean"
    for key in (*METRIC_KEYS, "seconds_per_epoch"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = (r4(np.mean(vals)) if key != "seconds_per_epoch" else float(f"{np.mean(vals):.4g}")) \
            if vals else None
    return out


def table_rows() -> Iterable[dict]:
    """The published table's rows, labelled ``"impl": "table"``."""
    for algo, vals in MSR_TABLE.items():
        yield {"algo": algo, "impl": "table", "dataset": DATASET, "seed": None,
               **{k: vals[k] for k in METRIC_KEYS}, "seconds_per_epoch": None,
               "params": {"source": "Microsoft Recommenders README, ML-100K benchmark table"}}


# ---------------------------------------------------------------------- tuning
def choose(candidates: list[dict], score: Callable[[dict], tuple[float, dict]]) -> tuple[dict, list]:
    """The candidate with the highest validation score. ``score(params)`` returns (validation
    NDCG@10, extra params learnt on validation, e.g. the best epoch); returns the chosen
    params (extra merged) and every (params, score) tried."""
    tried = []
    best, best_value = None, -np.inf
    for params in candidates:
        value, extra = score(params)
        tried.append({**params, **extra, "val_ndcg@10": r4(value)})
        if value > best_value:
            best, best_value = {**params, **extra}, value
    return best, tried


# ---------------------------------------------------------------------- the reference library
def find_reference_python(args) -> tuple[str, Path] | None:
    """(library, python) of the reference environment: ``--reference recbole|cornac|none`` and
    ``--reference-python``; default RecBole in ``<main checkout>/.bench-envs/recbole``."""
    lib = getattr(args, "reference", "recbole")
    if lib in (None, "none"):
        return None
    arg = getattr(args, "reference_python", None)
    if arg:
        path = Path(arg)
    else:
        candidates = [REPO / ".bench-envs" / lib / "bin" / "python",
                      REPO.parent / "main" / ".bench-envs" / lib / "bin" / "python"]
        path = next((p for p in candidates if p.exists()), candidates[0])
    if not path.exists():
        note(f"no {lib} environment at {path}; running recforge only "
             f"(python3 -m venv .bench-envs/{lib} && pip install torch==2.13.0 {lib})")
        return None
    return lib, path


class ReferenceRunner:
    """Runs ``_deep_reference_worker.py`` in the reference library's virtual environment.

    :meth:`run` writes the split as atomic files (``<name>.train.inter``, ``.valid.inter``,
    ``.test.inter``; tokens are recforge's inner ids), a job file, and reads back the top-k
    lists (recforge inner ids) and the per-epoch training seconds.
    """

    def __init__(self, library: str, python: Path):
        self.library = library
        self.python = python
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-deep-ref-"))
        self.n = 0
        self.version: str | None = None

    def run(self, algo: str, params: dict, train, test, *, seed: int, threads: int,
            epochs: int, k: int = K, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, dict]:
        """Fit reference ``algo`` (its own name: ``MultVAE``, ``MultDAE``, ``CDAE``, ``NeuMF``)
        with its own hyperparameter names ``params`` for ``epochs`` epochs on ``train`` and rank
        the users with a test item -> (users, top-k ids, timing dict). NeuMF (sampled negatives)
        takes e.g. ``{"train_batch_size": 256, "mf_embedding_size": 8, "mlp_embedding_size": 8,
        "mlp_hidden_size": [64, 32, 16], "train_neg_sample_args": {"distribution": "uniform",
        "sample_num": 4}}`` and is scored with ``predict`` on every item (RecBole's NeuMF has no
        ``full_sort_predict``)."""
        self.n += 1
        name = f"msr{self.n}"
        folder = self.tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        for part, inter in (("train", train), ("valid", test), ("test", test)):
            write_atomic(folder / f"{name}.{part}.inter", inter)
        users, _, _ = eval_rows(train, test)
        query = self.tmp / f"{name}-query.npz"
        seen = csr_of(train)
        np.savez(query, users=users, seen_indptr=seen.indptr, seen_indices=seen.indices,
                 n_users=len(train.user_map), n_items=len(train.item_map))
        out = self.tmp / f"{name}-out.npz"
        job = {"library": self.library, "algo": algo, "params": params, "seed": int(seed),
               "threads": int(threads), "epochs": int(epochs), "k": int(k), "device": device,
               "data_path": str(self.tmp), "dataset": name, "query": str(query), "out": str(out)}
        jpath = self.tmp / f"{name}.json"
        jpath.write_text(json.dumps(job))
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
            env[var] = str(threads)
        t0 = time.perf_counter()
        res = subprocess.run([str(self.python), str(HERE / "_deep_reference_worker.py"), str(jpath)],
                             capture_output=True, text=True, env=env, check=False, cwd=str(self.tmp))
        if res.returncode != 0:
            raise RuntimeError(f"{self.library} worker failed on {algo}: "
                               f"{res.stderr[-3000:]}{res.stdout[-1000:]}")
        timing = json.loads(res.stdout.strip().splitlines()[-1])
        timing["wall_seconds"] = time.perf_counter() - t0
        self.version = timing.get("version")
        ids = np.load(out)["ids"]
        return users, ids, timing


def write_atomic(path: Path, inter) -> None:
    """Interactions as a RecBole atomic ``.inter`` file (``user_id:token item_id:token``;
    tokens = recforge inner ids, so lists map back without a lookup)."""
    lines = ["user_id:token\titem_id:token"]
    lines += [f"{u}\t{i}" for u, i in zip(inter.users.tolist(), inter.items.tolist(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
