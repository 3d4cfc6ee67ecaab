"""Data-parallel training: two CPU processes (gloo, 127.0.0.1) against one process.

One spawn of two processes runs every distributed check (starting processes that import torch
costs most of this file's time); the single-process references run in the test process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recforge.data import SessionEvents
from recforge.data.synthetic import generate_implicit
from recforge.models.base import Recommender
from recforge.models.neural import (
    DistributedContext,
    SeedStreams,
    TrainingLoop,
    distributed_context,
    shard_bounds,
)
from recforge.models.neural_cf.autoencoders import MultDAE, MultVAE
from recforge.models.session.gru4rec import GRU4Rec
from recforge.models.session.sasrec import SASRec
from recforge.scale.distributed import launch

N_ITEMS = 12
# 226 sessions in batches of 25: nine full batches and a last one of a single sequence, which
# leaves rank 0 an empty shard (the step must still take part in the all_reduce)
PARAMS = dict(hidden=16, max_len=8, epochs=4, batch_size=25, learning_rate=5e-3, dropout=0.0,
              random_state=0, n_threads=1, patience=3)
SCORED = [np.array([1, 2, 3]), np.array([7]), np.arange(12)]
# 101 users in batches of 20: the last batch again has one row
AE_PARAMS = dict(hidden_dims=[32, 8], epochs=5, batch_size=20, learning_rate=1e-2, n_threads=1,
                 random_state=0)
DAE_PARAMS = dict(AE_PARAMS, dropout=0.0)
VAE_PARAMS = dict(AE_PARAMS, total_anneal_steps=20)


def _sessions(n_sessions: int, seed: int) -> SessionEvents:
    """Sessions i -> i+1 (mod 12) of 2..7 events: sequences carry different numbers of target
    positions, so the shards' shares of a batch's loss differ from their shares of its rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(2, 8))
        rows += [(s, (start + t) % N_ITEMS, float(100 * s + t)) for t in range(length)]
    return SessionEvents.from_dataframe(pd.DataFrame(rows, columns=["session", "item", "timestamp"]))


def _flat_weights(model: SASRec) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in model.net_.parameters()]).numpy()


def _worker(train: SessionEvents, valid: SessionEvents, rows, out: str) -> dict:
    """Run in each of the two processes: the checks' fits; rank 0 saves the first model."""
    ctx = distributed_context()
    exact = SASRec(**PARAMS).fit(train, validation=valid)
    if ctx.is_main:
        exact.save(Path(out) / "sasrec")
    ce = SASRec(**{**PARAMS, "loss": "ce", "patience": None}).fit(train)
    dropout = SASRec(**{**PARAMS, "dropout": 0.2, "patience": None}).fit(train)
    dae = MultDAE(**DAE_PARAMS).fit(rows)
    vae = MultVAE(**VAE_PARAMS).fit(rows)
    try:
        GRU4Rec(layers=8, batch_size=4, n_sample=0, n_epochs=1, random_state=0).fit(train)
        refusal = None
    except NotImplementedError as err:
        refusal = str(err)
    return {"rank": ctx.rank, "world_size": ctx.world_size, "history": exact.history_,
            "best_epoch": exact.best_epoch_, "weights": _flat_weights(exact),
            "ce_loss": ce.history_["train_loss"], "dropout_loss": dropout.history_["train_loss"],
            "gru4rec": refusal, "dae_loss": dae.history_["train_loss"],
            "vae_loss": vae.history_["train_loss"], "vae_beta": vae.history_["beta"],
            "vae_weights": torch.cat([p.detach().reshape(-1) for p in vae.net_.parameters()]).numpy()}


@pytest.fixture(scope="module")
def data():
    return _sessions(226, seed=0), _sessions(40, seed=1)


@pytest.fixture(scope="module")
def rows():
    return generate_implicit(n_users=101, n_items=60, n_events=1500, seed=0).interactions


@pytest.fixture(scope="module")
def single(data):
    """The same fits in this one process (no group)."""
    train, valid = data
    return {"exact": SASRec(**PARAMS).fit(train, validation=valid),
            "ce": SASRec(**{**PARAMS, "loss": "ce", "patience": None}).fit(train),
            "dropout": SASRec(**{**PARAMS, "dropout": 0.2, "patience": None}).fit(train)}


@pytest.fixture(scope="module")
def two_processes(data, rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    results = launch(_worker, 2, (*data, rows, str(out)), threads=1)
    return results, out


def test_two_processes_form_one_group(two_processes):
    results, _ = two_processes
    assert [r["rank"] for r in results] == [0, 1]
    assert {r["world_size"] for r in results} == {2}


def test_loss_curve_matches_single_process_with_the_same_global_batch(two_processes, single):
    """Tolerance: relative 1e-5 on every epoch's loss and validation score, 1e-4 absolute on the
    scores of the final weights. With dropout off, both runs see the same global batches and the
    same negatives and take the same Adam steps; they differ only in float32 summation order (two
    half-batch gradients summed in the all_reduce instead of one batch), about 1e-7 relative per
    step (measured: at most 6e-8 on the losses after 40 steps). A wrong loss share, a batch that
    differs or weights that drift apart show at 1e-3 or more."""
    results, _ = two_processes
    dist, ref = results[0]["history"], single["exact"].history_
    assert dist["epoch"] == ref["epoch"]
    for key in ("train_loss", "val_mrr@20", "val_recall@20"):
        np.testing.assert_allclose(dist[key], ref[key], rtol=1e-5, atol=0, err_msg=key)
    assert results[0]["best_epoch"] == single["exact"].best_epoch_
    np.testing.assert_allclose(results[0]["ce_loss"], single["ce"].history_["train_loss"], rtol=1e-5)
    # the training really moved: the curve falls
    assert dist["train_loss"][-1] < 0.7 * dist["train_loss"][0]


def test_every_rank_ends_with_the_same_weights_and_rank_zero_saves(two_processes, single):
    results, out = two_processes
    np.testing.assert_array_equal(results[0]["weights"], results[1]["weights"])
    assert results[0]["history"] == results[1]["history"]  # rank 0's record, broadcast
    loaded = Recommender.load(out / "sasrec")
    np.testing.assert_allclose(loaded._score_next(SCORED), single["exact"]._score_next(SCORED), atol=1e-4)
    assert sorted(p.name for p in out.iterdir()) == ["sasrec"]


def test_dropout_masks_per_process_still_train_alike(two_processes, single):
    """With dropout the masks differ (each process draws its own for its shard), so the curve
    matches only in distribution: within 10% per epoch (measured: 2.4%)."""
    results, _ = two_processes
    ref = single["dropout"].history_["train_loss"]
    np.testing.assert_allclose(results[0]["dropout_loss"], ref, rtol=0.10)
    assert results[0]["dropout_loss"] != ref


def test_mult_dae_matches_and_mult_vae_trains_alike(two_processes, rows):
    """Mult-DAE without input dropout has no noise: the same 1e-5 as SASRec. Mult-VAE draws its
    dropout and reparameterisation noise per process, so its curve agrees in distribution only:
    within 5% per epoch (measured: 0.73%); its KL annealing counts global updates, so beta is
    the same."""
    results, _ = two_processes
    dae = MultDAE(**DAE_PARAMS).fit(rows)
    np.testing.assert_allclose(results[0]["dae_loss"], dae.history_["train_loss"], rtol=1e-5)
    vae = MultVAE(**VAE_PARAMS).fit(rows)
    np.testing.assert_allclose(results[0]["vae_loss"], vae.history_["train_loss"], rtol=0.05)
    assert results[0]["vae_beta"] == vae.history_["beta"]
    np.testing.assert_array_equal(results[0]["vae_weights"], results[1]["vae_weights"])


def test_gru4rec_refuses_a_process_group_naming_itself(two_processes):
    for r in two_processes[0]:
        assert r["gru4rec"] is not None
        assert r["gru4rec"].startswith("GRU4Rec does not support distributed data-parallel training")
        assert "row-sparse Adagrad" in r["gru4rec"]


# ---------------------------------------------------------------- without processes
def test_shards_partition_the_batch_and_shares_sum_to_one():
    weights = np.array([3, 1, 4, 1, 5, 9, 2])
    for world in (1, 2, 3, 8):
        parts, shares = [], []
        for rank in range(world):
            loop = TrainingLoop(1, distributed=DistributedContext(rank, world))
            part, share = loop.shard(weights.size, weights)
            assert part == shard_bounds(weights.size, DistributedContext(rank, world))
            parts.append(np.arange(weights.size)[part])
            shares.append(share)
            assert share == pytest.approx(weights[part].sum() / weights.sum())
        np.testing.assert_array_equal(np.concatenate(parts), np.arange(weights.size))
        assert sum(shares) == pytest.approx(1.0)
    # two ranks of 7 rows: 3 and 4; eight ranks: some get none
    assert shard_bounds(7, DistributedContext(0, 2)) == slice(0, 3)
    assert shard_bounds(1, DistributedContext(0, 2)) == slice(0, 0)
    assert TrainingLoop(1).shard(5) == (slice(0, 5), 1.0)


def test_rank_streams_single_process_unchanged_and_distinct_per_rank():
    a = SeedStreams(7).torch_per_rank("cpu", DistributedContext())
    b = SeedStreams(7).torch("cpu")
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    r0 = SeedStreams(7).torch_per_rank("cpu", DistributedContext(0, 2))
    r1 = SeedStreams(7).torch_per_rank("cpu", DistributedContext(1, 2))
    assert not torch.equal(torch.rand(4, generator=r0), torch.rand(4, generator=r1))
    # the streams spawned afterwards are the same on every rank
    s0, s1 = SeedStreams(7), SeedStreams(7)
    s0.torch_per_rank("cpu", DistributedContext(0, 2))
    s1.torch_per_rank("cpu", DistributedContext(1, 2))
    assert s0.numpy().integers(1 << 30) == s1.numpy().integers(1 << 30)


def test_no_group_means_one_process():
    assert distributed_context() == DistributedContext()
    assert not DistributedContext().active and DistributedContext().is_main
