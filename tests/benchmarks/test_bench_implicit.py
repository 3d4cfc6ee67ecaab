"""Helpers of benchmarks/bench_implicit.py, without the ``implicit`` environment."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def bench():
    return _module("bench_implicit")


@pytest.fixture(scope="module")
def worker():
    return _module("_implicit_worker")


def _tiny():
    from recforge.data import Interactions

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(30), 8)
    items = np.concatenate([rng.choice(20, 8, replace=False) for _ in range(30)])
    return Interactions.from_arrays(users, items, np.ones(users.size), kind="implicit")


def test_list_metrics_on_known_lists(bench):
    # user 0: items 1 and 3 relevant, list hits 1 at rank 1; user 1: item 2, missed
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 1, 0]], dtype=float))
    rec = np.array([[1, 0], [0, 1]])
    got = bench.list_metrics(rec, relevant, k=2)
    assert got["hr@2"] == pytest.approx(0.5)
    assert got["p@2"] == pytest.approx((0.5 + 0.0) / 2)
    assert got["r@2"] == pytest.approx((0.5 + 0.0) / 2)
    idcg = 1.0 + 1.0 / np.log2(3)
    assert got["ndcg@2"] == pytest.approx((1.0 / idcg) / 2)


def test_dedupe_rows_keeps_first_occurrence(bench):
    out = bench.dedupe_rows(np.array([[4, 2, 4, 2, 7], [1, 2, 3, -1, -1]]))
    assert out.tolist() == [[4, 2, -1, -1, 7], [1, 2, 3, -1, -1]]


def test_random_draws_seeded_and_capped(bench):
    grid = {"a": [1, 2, 3], "b": [0.1, 0.2, 0.3, 0.4]}
    first = bench.random_draws(grid, 5, seed=3)
    assert first == bench.random_draws(grid, 5, seed=3)
    assert len(first) == 5 and len({tuple(sorted(p.items())) for p in first}) == 5
    assert len(bench.random_draws({"a": [1, 2]}, 5, seed=0)) == 2
    assert bench.random_draws({}, 5, seed=0) == [{}]


def test_params_kept_to_the_model_signature(bench):
    from recforge.models import get_model_class

    cls = get_model_class("ItemKNNTopN")
    kw = bench.recforge_params(cls, "ItemKNN", {"k": 5, "sim": "jaccard"}, seed=1, threads=2)
    assert kw == {"k": 5, "sim": "jaccard"}  # no random_state / num_threads on this model


def test_unregistered_model_is_skipped_with_a_note(bench, capsys):
    assert bench.recforge_class("NoSuchModelAnywhere") is None
    assert "NoSuchModelAnywhere" in capsys.readouterr().err


def test_run_pair_mostpopular_on_tiny_data(bench):
    from recforge.split import leave_one_out

    data = _tiny()
    split = leave_one_out(data, mode="random", seed=0)
    users, relevant = bench.eval_context(split.train, split.test)
    res = bench.run_pair("MostPopular", "recforge", split.train, users, relevant, seed=0, threads=1)
    assert users.size == 30
    # the same figure from the lists of the most popular unseen items, computed directly
    counts = np.bincount(split.train.items, minlength=len(data.item_map)).astype(float)
    csr = bench.csr_of(split.train)
    hits = []
    for row, u in enumerate(users):
        score = counts.copy()
        score[csr[u].indices] = -np.inf
        top = np.argsort(-score, kind="stable")[:10]
        hits.append(bool(set(top) & set(relevant[row].indices)))
    assert res["hr@10"] == pytest.approx(np.mean(hits))
    assert "seconds_per_iteration" not in res


def test_npz_round_trip_with_the_worker(bench, worker, tmp_path):
    runner = bench.ImplicitRunner(None)
    runner.tmp = tmp_path
    m = sp.random(7, 5, density=0.4, format="csr", random_state=0, dtype=np.float32)
    path = runner.save_csr("x", train=m, users=np.arange(3))
    npz = np.load(path, allow_pickle=False)
    back = worker.load_csr(npz, "train")
    assert (back != m).nnz == 0 and back.shape == (7, 5)
    assert npz["users"].tolist() == [0, 1, 2]
    assert not runner.ok
