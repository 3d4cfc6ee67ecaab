"""GRU4Rec: session-based recommendation with recurrent neural networks.

A GRU reads the items of a session one at a time; after each event, the top layer's state
scores every item as the next one. The model is trained with session-parallel mini-batches,
one-step back-propagation, shared popularity-based negative samples and a choice of losses.

References
----------
Hidasi, Karatzoglou, Baltrunas, Tikk (2016). Session-based recommendations with recurrent
neural networks. ICLR. (GRU4Rec, session-parallel mini-batches, TOP1 and BPR losses.)
Hidasi, Karatzoglou (2018). Recurrent neural networks with top-k gains for session-based
recommendations. CIKM. (Additional shared samples, BPR-max and TOP1-max, ELU final activation,
score regularisation.)
Hidasi, Czapp (2023). The effect of third party implementations on reproducibility. RecSys.
(Constrained embedding, logQ-corrected cross-entropy, the reference hyperparameters.)
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import numpy as np
import torch

from ...data.sessions import SessionEvents
from ..base import FOLD_IN, SESSION, SessionRecommender, register
from ..neural import NeuralModel
from ._gru4rec_net import (
    LOSSES,
    GRU4RecNet,
    NegativeSampleCache,
    _AdagradMomentum,
    session_parallel_schedule,
)

logger = logging.getLogger(__name__)


class GRU4RecState:
    """Hidden states of a batch of slots for :meth:`GRU4Rec.advance` (one tensor per layer)."""

    def __init__(self, hidden: list[torch.Tensor]):
        self.hidden = hidden

    @property
    def n_slots(self) -> int:
        return int(self.hidden[0].shape[0])


@register("GRU4Rec")
class GRU4Rec(NeuralModel, SessionRecommender):
    """GRU4Rec (Hidasi et al. 2016; Hidasi & Karatzoglou 2018; Hidasi & Czapp 2023).

    Training walks ``batch_size`` sessions in parallel, ordered by their first event: each slot
    feeds its session's current item and is trained to predict the next one; a slot whose session
    ends takes the next session and has its hidden state reset to zero. The scores of a step are
    computed only for the mini-batch's targets plus ``n_sample`` shared negatives drawn from
    popularity^``sample_alpha``; each target is ranked against all the other columns. Gradients
    flow back one step; item-indexed weights are updated only on the rows the step used, with
    Adagrad plus momentum.

    Parameters
    ----------
    layers : int or sequence of int, default (100,)
        Units of each GRU layer.
    loss : {"cross-entropy", "bpr-max", "top1-max", "top1", "bpr"}, default "cross-entropy"
        See :func:`recforge.models.session._gru4rec_net.ranking_loss` for the formulas.
    batch_size : int, default 64
        Sessions walked in parallel.
    dropout_p_embed : float, default 0.0
        Dropout on the input embedding (on the first layer's output for one-hot input).
    dropout_p_hidden : float, default 0.0
        Dropout on each GRU layer's output; as in the reference implementation the dropped-out
        output is also the state carried to the next step during training.
    learning_rate : float, default 0.05
    momentum : float, default 0.0
        Momentum of the Adagrad optimizer (0 = plain Adagrad).
    nesterov : bool, default False
        Nesterov momentum (the original Theano GRU4Rec's update) instead of the classic momentum
        of the official PyTorch implementation, whose published figures the default reproduces.
    n_sample : int, default 2048
        Shared negative samples per mini-batch besides the other targets (0 = none).
    sample_alpha : float, default 0.5
        Exponent of popularity in the sampling distribution.
    embedding : int or "layersize", default 0
        Width of a separate input embedding; 0 feeds one-hot vectors (unless
        ``constrained_embedding``).
    constrained_embedding : bool, default True
        Use the output weights :math:`W_y` as the input embedding (overrides ``embedding``).
    n_epochs : int, default 10
    bpreg : float, default 1.0
        Score regularisation :math:`\\lambda` of BPR-max.
    elu_param : float, default 0.5
        ELU parameter of the final activation for the ranking losses (0 = linear).
    logq : float, default 0.0
        Weight of the logQ correction of the cross-entropy loss: the score of column ``j`` is
        reduced by ``logq * log(q_j)``, ``q_j`` being the item's training count for in-batch
        targets and count^``sample_alpha`` for the additional samples.
    sample_cache_size : int, default 10_000_000
        Negative samples drawn at once.
    random_state : int, optional, default 0
        Seed of weight initialisation, dropout and sampling: one ``SeedSequence`` spawned into
        three streams (never the global generators), see :class:`~recforge.models.neural.SeedStreams`.
    device : {"cpu", "auto", "cuda", "cuda:N"}, default "cpu"
        Torch device ("auto": CUDA when available). On CPU the optimizer runs as a compiled
        kernel; elsewhere as torch operations (the same update).
    patience : int, optional
        With ``validation`` given to ``fit``: stop after this many epochs without a better
        validation MRR@20.
    restore_best : bool, default True
        With ``validation``: keep the weights of the epoch with the best validation MRR@20.
    on_nonfinite : {"raise", "stop"}, default "raise"
        A NaN or infinite loss raises ``FloatingPointError`` naming the epoch, or stops training
        with the weights of the last finite epoch.
    verbose : bool, default False
        Show a progress bar over the epochs.

    Attributes
    ----------
    history_ : dict of lists
        Per epoch (see :class:`~recforge.models.neural.TrainingLoop`): ``epoch``, ``train_loss``
        (the mean over mini-batches of the step loss, summed over the rows and divided by
        ``batch_size`` — the official code's figure, see ``docs/models-session.md``),
        ``seconds``, ``events_per_second`` (targets per second) and, with ``validation``,
        ``val_recall@20`` and ``val_mrr@20``.
    n_train_sessions_skipped_ : int
        Training sessions with fewer than two events (nothing to predict).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"session": [1, 1, 1, 2, 2], "item": [10, 11, 12, 11, 12],
    ...                    "timestamp": [0, 1, 2, 3, 4]})
    >>> train = SessionEvents.from_dataframe(df)
    >>> model = GRU4Rec(layers=8, batch_size=2, n_sample=0, n_epochs=2, random_state=0).fit(train)
    >>> model.recommend_next([[10, 11]], k=2).items.shape
    (1, 2)
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({SESSION, FOLD_IN})

    state = ("n_train_sessions_skipped_",)
    supports_distributed = False
    distributed_refusal = (
        "each step ranks every target against the other sessions' targets of the whole "
        "session-parallel mini-batch, the hidden states of a slot carry over between steps, and "
        "its own row-sparse Adagrad updates only the item rows a step touched; splitting a step "
        "across processes would change the loss and the update")

    def __init__(self, layers=(100,), loss: str = "cross-entropy", batch_size: int = 64,
                 dropout_p_embed: float = 0.0, dropout_p_hidden: float = 0.0,
                 learning_rate: float = 0.05, momentum: float = 0.0, nesterov: bool = False,
                 n_sample: int = 2048,
                 sample_alpha: float = 0.5, embedding: int | str = 0,
                 constrained_embedding: bool = True, n_epochs: int = 10, bpreg: float = 1.0,
                 elu_param: float = 0.5, logq: float = 0.0, sample_cache_size: int = 10_000_000,
                 random_state: int | None = 0, device: str = "cpu", patience: int | None = None,
                 restore_best: bool = True, on_nonfinite: str = "raise", verbose: bool = False):
        self.layers = layers
        self.loss = loss
        self.batch_size = batch_size
        self.dropout_p_embed = dropout_p_embed
        self.dropout_p_hidden = dropout_p_hidden
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.n_sample = n_sample
        self.sample_alpha = sample_alpha
        self.embedding = embedding
        self.constrained_embedding = constrained_embedding
        self.n_epochs = n_epochs
        self.bpreg = bpreg
        self.elu_param = elu_param
        self.logq = logq
        self.sample_cache_size = sample_cache_size
        self.random_state = random_state
        self.device = device
        self.patience = patience
        self.restore_best = restore_best
        self.on_nonfinite = on_nonfinite
        self.verbose = verbose

    # ------------------------------------------------------------------ configuration
    def _layer_sizes(self) -> list[int]:
        layers = [self.layers] if isinstance(self.layers, (int, np.integer)) else list(self.layers)
        if not layers or any(int(h) < 1 for h in layers):
            raise ValueError(f"layers must be positive sizes, got {self.layers!r}")
        return [int(h) for h in layers]

    def _input_mode(self, layers: list[int]) -> tuple[str, int]:
        if self.constrained_embedding:
            return "constrained", 0
        emb = layers[0] if self.embedding == "layersize" else int(self.embedding)
        if emb < 0:
            raise ValueError("embedding must be >= 0 or 'layersize'")
        return ("embedding", emb) if emb > 0 else ("onehot", 0)

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("dropout_p_embed", "dropout_p_hidden"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        if int(self.batch_size) < 1 or int(self.n_epochs) < 0 or int(self.n_sample) < 0:
            raise ValueError("batch_size must be >= 1, n_epochs >= 0 and n_sample >= 0")
        if not self.learning_rate > 0 or self.momentum < 0:
            raise ValueError("learning_rate must be > 0 and momentum >= 0")

    def _build_net(self) -> GRU4RecNet:
        layers = self._layer_sizes()
        mode, emb = self._input_mode(layers)
        return GRU4RecNet(self.n_items_, layers, mode, emb, self._device())

    # ------------------------------------------------------------------ training
    def _fit(self, train: SessionEvents, *, item_features=None, validation=None) -> None:
        self._check_params()
        streams = self._seed_streams()  # spawned in a fixed order: init, dropout, sampling
        init_gen = streams.torch("cpu")
        device = self._device()
        dropout_gen = streams.torch(device)
        sample_rng = streams.numpy()
        net = self._build_net()
        net.init_weights(init_gen)
        self._net = net

        n_sample = int(self.n_sample)
        batch_size = int(self.batch_size)
        schedule = session_parallel_schedule(train.offsets, train.order_by_start(), batch_size,
                                             stop_below=1 if n_sample > 0 else 2)
        self.n_train_sessions_skipped_ = schedule.n_sessions_skipped
        if schedule.n_sessions_skipped:
            logger.info("GRU4Rec: %d training sessions with fewer than two events skipped",
                        schedule.n_sessions_skipped)
        if schedule.n_steps == 0:
            raise ValueError("no training session has two or more events")
        counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        items = torch.from_numpy(train.items.astype(np.int64)).to(device)
        events = torch.from_numpy(schedule.events).to(device)
        inputs = items[events]
        targets = items[events + 1]
        reset_pos = np.flatnonzero(schedule.reset)
        resets_by_step = np.searchsorted(schedule.step_offsets, reset_pos, side="right") - 1
        reset_slots = reset_pos - schedule.step_offsets[resets_by_step]
        reset_bounds = np.searchsorted(resets_by_step, np.arange(schedule.n_steps + 1))
        reset_slots_t = torch.from_numpy(reset_slots.astype(np.int64)).to(device)
        keep = {t: torch.from_numpy(k).to(device) for t, k in schedule.keep.items()}
        offs = schedule.step_offsets.tolist()
        rbounds = reset_bounds.tolist()

        sampler = None
        log_q_targets = log_q_samples = None
        if n_sample > 0:
            sampler = NegativeSampleCache(counts, float(self.sample_alpha), n_sample,
                                          int(self.sample_cache_size), sample_rng, device)
        if self.loss == "cross-entropy" and self.logq > 0:
            log_counts = torch.from_numpy(np.log(np.maximum(counts, 1.0)).astype(np.float32)).to(device)
            log_q_targets = float(self.logq) * log_counts[targets]
            log_q_samples = float(self.logq) * float(self.sample_alpha) * log_counts
        # the model's own optimizer step: row-sparse Adagrad with momentum (a compiled kernel)
        opt = _AdagradMomentum(net.params, self.learning_rate, self.momentum, nesterov=self.nesterov)
        kwargs = dict(bpreg=float(self.bpreg), elu_param=float(self.elu_param),
                      dropout_embed=float(self.dropout_p_embed),
                      dropout_hidden=float(self.dropout_p_hidden), gen=dropout_gen)
        n_targets = int(schedule.events.size)

        def train_epoch(epoch: int, loop) -> dict:
            started = time.perf_counter()
            H = net.zero_state(schedule.width(0))
            total = 0.0
            for t in loop.batches(schedule.n_steps):
                a, b = offs[t], offs[t + 1]
                if t in keep:
                    H = [h.index_select(0, keep[t]) for h in H]
                ra, rb = rbounds[t], rbounds[t + 1]
                if rb > ra:
                    rows = reset_slots_t[ra:rb]
                    H = [h.index_fill(0, rows, 0.0) for h in H]
                x = inputs[a:b]
                y = targets[a:b]
                correction = None
                if sampler is not None:
                    sample = sampler.draw()
                    if log_q_targets is not None:
                        correction = torch.cat([log_q_targets[a:b], log_q_samples[sample]])
                    y = torch.cat([y, sample])
                value = net.train_step(x, y, H, opt, self.loss, batch_size,
                                       logq_correction=correction, **kwargs)
                total += loop.check_finite(value, f"step {t}")
            return {"train_loss": total / schedule.n_steps,
                    "events_per_second": n_targets / (time.perf_counter() - started)}

        def log_epoch(record: dict) -> None:
            logger.info("GRU4Rec epoch %d: loss %.6f, %.2fs, %.0f events/s%s", record["epoch"],
                        record["train_loss"], record["seconds"], record["events_per_second"],
                        f", validation MRR@20 {record['val_mrr@20']:.4f}" if "val_mrr@20" in record else "")

        loop = self._training_loop(int(self.n_epochs), validation, patience=self.patience,
                                   monitor="mrr@20", restore_best=self.restore_best,
                                   on_nonfinite=self.on_nonfinite, verbose=self.verbose)
        self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                 set_state=self._set_torch_state, on_epoch_end=log_epoch)
        self.best_epoch_ = loop.best_epoch

    # ------------------------------------------------------------------ inference
    def init_state(self, n_slots: int) -> GRU4RecState:
        """Zero hidden states for ``n_slots`` sessions."""
        self._check_fitted()
        return GRU4RecState(self._net.zero_state(int(n_slots)))

    def advance(self, state: GRU4RecState, items: np.ndarray, reset: np.ndarray) -> np.ndarray:
        """Feed one item per slot (inner indices); slots with ``reset`` start from a zero state.

        Returns the next-item scores, float32 array (n_slots, n_items).
        """
        items = np.asarray(items, dtype=np.int64)
        reset = np.asarray(reset, dtype=bool)
        if items.shape != (state.n_slots,) or reset.shape != items.shape:
            raise ValueError(f"items and reset must have shape ({state.n_slots},)")
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            raise ValueError(f"item indices must be in [0, {self.n_items_})")
        dev = self._net.device
        H = state.hidden
        if reset.any():
            rows = torch.from_numpy(np.flatnonzero(reset)).to(dev)
            H = [h.index_fill(0, rows, 0.0) for h in H]
        top = self._net.step(torch.from_numpy(items).to(dev), H)
        state.hidden = H
        return self._net.scores(top).cpu().numpy()

    def _score_next(self, sessions: list[np.ndarray]) -> np.ndarray:
        """Run each session from a zero state; score the items after its last event."""
        lengths = np.fromiter((len(s) for s in sessions), dtype=np.int64, count=len(sessions))
        n, max_len = lengths.size, int(lengths.max())
        padded = np.zeros((n, max_len), dtype=np.int64)
        for i, s in enumerate(sessions):
            padded[i, :lengths[i]] = s
        dev = self._net.device
        H = self._net.zero_state(n)
        top = torch.zeros((n, self._net.layers[-1]), device=dev)
        order = np.argsort(-lengths, kind="stable")  # active rows form a prefix of this order
        padded_t = torch.from_numpy(padded[order]).to(dev)
        H = [h[torch.from_numpy(order).to(dev)] for h in H]
        sorted_len = lengths[order]
        for t in range(max_len):
            m = int((sorted_len > t).sum())
            sub = [h[:m] for h in H]
            out = self._net.step(padded_t[:m, t], sub)
            for i in range(len(H)):
                H[i] = torch.cat([sub[i], H[i][m:]])
            top[:m] = out
        scores = self._net.scores(top).cpu().numpy()
        result = np.empty_like(scores)
        result[order] = scores
        return result

    # ------------------------------------------------------------------ weights
    def _torch_state(self) -> dict[str, torch.Tensor]:
        return dict(self._net.params)

    def _set_torch_state(self, state: dict[str, torch.Tensor]) -> None:
        # fresh (aligned) storage: the same kernels run as for the trained model, bit for bit
        self._net.params = {k: state[k].to(self._net.device).clone(memory_format=torch.contiguous_format)
                            for k in self._net.params}

    def _build_modules(self) -> None:
        net = self._build_net()
        net.init_weights(torch.Generator().manual_seed(0))  # shapes to check the file against
        self._net = net
