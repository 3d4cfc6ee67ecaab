"""The neural base: seeds, the epoch loop (early stopping, non-finite guard, clipping, history),
persistence and isolation from the global random generators, on a tiny torch model."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recforge.data import SessionEvents
from recforge.models.base import Recommender, SessionRecommender, register
from recforge.models.neural import (
    GeneratorDropout,
    NeuralModel,
    SeedStreams,
    TrainingLoop,
    attach_generator,
    clip_and_step,
    init_parameters,
    isolated_global_rng,
    resolve_device,
)

N_ITEMS = 6


class _BigramNet(nn.Module):
    def __init__(self, n_items: int, dim: int, dropout: float):
        super().__init__()
        self.emb = nn.Embedding(n_items, dim)
        self.drop = GeneratorDropout(dropout)
        self.out = nn.Linear(dim, n_items)

    def forward(self, last: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.emb(last)))


@register("_TinyBigram")
class TinyBigram(NeuralModel, SessionRecommender):
    """Next item from the last item only: softmax(W e_last + b), Adam on cross-entropy."""

    _torch_modules = ("net_",)

    def __init__(self, dim: int = 4, epochs: int = 5, lr: float = 0.05, dropout: float = 0.2,
                 patience: int | None = None, max_grad_norm: float | None = None,
                 on_nonfinite: str = "raise", random_state=None, device: str = "cpu"):
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.dropout = dropout
        self.patience = patience
        self.max_grad_norm = max_grad_norm
        self.on_nonfinite = on_nonfinite
        self.random_state = random_state
        self.device = device

    def _build_modules(self) -> None:
        self.net_ = self._new_net(torch.Generator().manual_seed(0))

    def _new_net(self, gen):
        with isolated_global_rng():
            net = _BigramNet(self.n_items_, self.dim, self.dropout)
        init_parameters(net, gen)
        return net.to(self._device())

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        streams = self._seed_streams()
        self.net_ = self._new_net(streams.torch("cpu"))
        attach_generator(self.net_, streams.torch(self._device()))
        rng = streams.numpy()
        ends = train.offsets[1:]
        pos = np.setdiff1d(np.arange(train.n_events), ends - 1)  # events with a successor
        x_all = torch.from_numpy(train.items[pos].astype(np.int64))
        y_all = torch.from_numpy(train.items[pos + 1].astype(np.int64))
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        self.grad_norms_ = []

        def train_epoch(epoch, loop):
            self.net_.train()
            order = torch.from_numpy(rng.permutation(pos.size))
            total = 0.0
            for b in range(0, pos.size, 16):
                idx = order[b:b + 16]
                loss = nn.functional.cross_entropy(self.net_(x_all[idx]), y_all[idx])
                total += loop.step(loss, opt, self.net_.parameters()) * idx.numel()
                if loop.last_grad_norm is not None:
                    self.grad_norms_.append(loop.last_grad_norm)
            return total / pos.size

        loop = self._training_loop(self.epochs, validation, patience=self.patience,
                                   max_grad_norm=self.max_grad_norm, on_nonfinite=self.on_nonfinite)
        self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                 set_state=self._set_torch_state)
        self.best_epoch_ = loop.best_epoch
        self.net_.eval()

    def _score_next(self, sessions):
        last = torch.tensor([int(s[-1]) for s in sessions])
        with torch.no_grad():
            return self.net_(last.to(self._device())).cpu().numpy()


def _sessions(seed: int, n: int = 60) -> SessionEvents:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        start = int(rng.integers(N_ITEMS))
        rows += [(s, (start + t) % N_ITEMS, float(10 * s + t)) for t in range(4)]
    return SessionEvents.from_dataframe(pd.DataFrame(rows, columns=["session", "item", "timestamp"]))


def _weights(model):
    return {k: v.clone() for k, v in model.net_.state_dict().items()}


# ---------------------------------------------------------------------- seeds and devices
def test_same_seed_same_weights_and_history():
    train = _sessions(0)
    a = TinyBigram(random_state=3).fit(train)
    b = TinyBigram(random_state=3).fit(train)
    c = TinyBigram(random_state=4).fit(train)
    for k, v in _weights(a).items():
        assert torch.equal(v, _weights(b)[k]), k
    assert a.history_["train_loss"] == b.history_["train_loss"]
    assert a.history_["epoch"] == [1, 2, 3, 4, 5]
    assert a.history_["train_loss"] != c.history_["train_loss"]
    assert a.history_["train_loss"][-1] < a.history_["train_loss"][0]


def test_fit_touches_no_global_generator():
    train = _sessions(0)
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking the legacy global state)
    TinyBigram(random_state=0, dropout=0.5).fit(train, validation=_sessions(1, 10))
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    # and the draws are independent of the global state
    torch.manual_seed(123)
    a = TinyBigram(random_state=0, dropout=0.5).fit(train)
    torch.manual_seed(456)
    b = TinyBigram(random_state=0, dropout=0.5).fit(train)
    assert a.history_["train_loss"] == b.history_["train_loss"]


def test_seed_streams_are_reproducible_and_distinct():
    s, t = SeedStreams(7), SeedStreams(7)
    assert s.numpy().integers(1 << 30, size=4).tolist() == t.numpy().integers(1 << 30, size=4).tolist()
    g1, g2 = s.torch(), t.torch()
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    # successive children differ
    u = SeedStreams(7)
    assert not np.array_equal(u.numpy().random(4), u.numpy().random(4))
    with pytest.raises(TypeError, match="random_state"):
        SeedStreams("seven")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_generator_dropout_scales_and_follows_its_generator():
    drop = GeneratorDropout(0.25)
    drop.generator = torch.Generator().manual_seed(1)
    x = torch.ones(20000)
    y = drop(x)
    assert set(torch.unique(y).tolist()) == {0.0, float(np.float32(1.0 / 0.75))}
    assert abs(float((y == 0).float().mean()) - 0.25) < 0.02
    drop.generator = torch.Generator().manual_seed(1)
    assert torch.equal(drop(x), y)
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        GeneratorDropout(1.0)


# ---------------------------------------------------------------------- the loop
def _scripted_loop(val_scores, losses=None, **kw):
    """A loop whose 'weights' are one number set to the epoch, validated by a fixed script."""
    state = {"w": 0}
    loop = TrainingLoop(len(val_scores), validate=lambda e: {"mrr@20": val_scores[e - 1]}, **kw)

    def train_epoch(epoch, loop):
        state["w"] = epoch
        return 1.0 / epoch if losses is None else losses[epoch - 1]

    history = loop.run(train_epoch, get_state=lambda: dict(state), set_state=state.update)
    return loop, history, state


def test_early_stopping_stops_at_the_right_epoch_and_restores_best():
    loop, history, state = _scripted_loop([0.1, 0.3, 0.2, 0.25, 0.5, 0.6], patience=2)
    assert history["epoch"] == [1, 2, 3, 4]  # epochs 3 and 4 do not beat epoch 2
    assert history["val_mrr@20"] == [0.1, 0.3, 0.2, 0.25]
    assert loop.best_epoch == 2 and loop.stopped_early
    assert state["w"] == 2  # the best epoch's weights are back
    _, _, state = _scripted_loop([0.1, 0.3, 0.2, 0.25, 0.5, 0.6], patience=2, restore_best=False)
    assert state["w"] == 4
    loop, history, state = _scripted_loop([0.1, 0.3, 0.2], patience=None)
    assert history["epoch"] == [1, 2, 3] and state["w"] == 2 and not loop.stopped_early
    loop, _, state = _scripted_loop([0.5, 0.3, 0.2], monitor="val_mrr@20", mode="min", patience=5)
    assert loop.best_epoch == 3 and state["w"] == 3
    with pytest.raises(KeyError, match="recall@20"):
        _scripted_loop([0.1], monitor="recall@20")


def test_history_layout():
    _, history, _ = _scripted_loop([0.1, 0.2])
    assert set(history) == {"epoch", "train_loss", "seconds", "val_mrr@20"}
    assert history["train_loss"] == [1.0, 0.5]
    assert all(s >= 0 for s in history["seconds"])


def test_nonfinite_guard_raises_naming_the_epoch_or_stops():
    with pytest.raises(FloatingPointError, match="epoch 3"):
        _scripted_loop([0.1, 0.2, 0.3, 0.4], losses=[1.0, 0.5, math.nan, 0.1])
    loop, history, state = _scripted_loop([0.1, 0.2, 0.3, 0.4], losses=[1.0, 0.5, math.inf, 0.1],
                                          on_nonfinite="stop", restore_best=False)
    assert history["epoch"] == [1, 2] and loop.stopped_early and "inf" in loop.stop_reason
    assert state["w"] == 2  # the weights of the last finite epoch
    # inside an epoch, on a real model: a huge learning rate overflows
    with pytest.raises(FloatingPointError, match="at epoch 1"):
        TinyBigram(lr=1e30, epochs=3, random_state=0).fit(_sessions(0))


def test_clipping_bounds_the_gradient_norm():
    gen = torch.Generator().manual_seed(0)
    w = nn.Parameter(torch.randn(50, generator=gen))
    opt = torch.optim.SGD([w], lr=0.0)
    norm = clip_and_step((1000.0 * w).square().sum(), opt, [w], max_grad_norm=0.5)
    assert norm > 100  # before clipping
    assert float(w.grad.norm()) == pytest.approx(0.5, rel=1e-5)
    model = TinyBigram(lr=0.5, max_grad_norm=0.01, random_state=0).fit(_sessions(0))
    assert len(model.grad_norms_) > 0 and max(model.grad_norms_) > 0.01
    assert TinyBigram(lr=0.5, random_state=0).fit(_sessions(0)).grad_norms_ == []


def test_validation_callback_and_early_stopping_on_a_model():
    train, valid = _sessions(0), _sessions(1, 12)
    model = TinyBigram(epochs=8, lr=0.0, patience=2, random_state=0).fit(train, validation=valid)
    # nothing changes with a zero learning rate: stop after patience epochs, best is epoch 1
    assert model.history_["epoch"] == [1, 2, 3] and model.best_epoch_ == 1
    assert len(set(model.history_["val_mrr@20"])) == 1
    assert {"val_recall@20", "val_mrr@20"} <= set(model.history_)


# ---------------------------------------------------------------------- persistence
def test_save_load_round_trip_gives_identical_scores(tmp_path):
    model = TinyBigram(random_state=2).fit(_sessions(0))
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "weights.safetensors").exists()
    loaded = Recommender.load(tmp_path / "m")
    assert isinstance(loaded, TinyBigram)
    sessions = [[0, 1], [3], [5, 2, 4]]
    a, b = model.recommend_next(sessions, k=3), loaded.recommend_next(sessions, k=3)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert loaded.history_ == model.history_
    torch.nn.init.zeros_(loaded.net_.out.bias)  # the loaded copy owns its weights
    assert not torch.equal(loaded.net_.out.bias, model.net_.out.bias)
    # a file that does not match the hyperparameters is rejected
    (tmp_path / "m" / "config.json").write_text(
        (tmp_path / "m" / "config.json").read_text().replace('"dim": 4', '"dim": 5'))
    with pytest.raises(ValueError, match="wrong shape"):
        Recommender.load(tmp_path / "m")


def test_base_and_non_neural_session_models_do_not_import_torch():
    code = ("import sys, recforge.models.base, recforge.models.baseline\n"
            "from recforge.models.session import SKNN, MarkovChain\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "from recforge.models.session import GRU4Rec\n"
            "assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_training_loop_batches_stop_on_a_stop_request():
    """``loop.batches(n)`` checks for SIGINT / SIGTERM before every batch: a stop request made
    inside an epoch ends training at the next batch with Interrupted (exit code 130)."""
    from recforge import interrupt
    from recforge.models.neural import TrainingLoop

    seen = []

    def epoch(e, loop):
        for b in loop.batches(5):
            seen.append((e, b))
            if (e, b) == (2, 1):
                interrupt._state["signum"] = 2  # as the signal handler records it
        return 1.0

    loop = TrainingLoop(4, name="tiny")
    try:
        with pytest.raises(interrupt.Interrupted) as info:
            loop.run(epoch)
    finally:
        interrupt.reset()
    assert info.value.exit_code == 130
    assert seen[-1] == (2, 1) and len(seen) == 7
    assert loop.history["epoch"] == [1]
