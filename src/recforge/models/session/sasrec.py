"""SASRec: self-attentive sequential recommendation (Kang & McAuley 2018, ICDM).

A stack of causal self-attention blocks over the item sequence of a session. The hidden state
at the last position, dotted with the (shared) item embeddings, scores every item as the next
event. Trained with the paper's binary cross-entropy on one sampled negative per position
(eq. 5), or with full softmax cross-entropy. PyTorch on CPU by default.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
from torch import nn

from ..base import SessionRecommender, register
from ..neural import (
    GeneratorDropout,
    NeuralModel,
    attach_generator,
    init_parameters,
    isolated_global_rng,
)
from .augment import prefix_sequences

logger = logging.getLogger(__name__)


class _SASRecNet(nn.Module):
    """Embedding + ``num_blocks`` pre-norm causal self-attention blocks (Kang & McAuley 2018, §III).

    Input: item indices shifted by one, ``0`` = padding, sequences right-aligned (left padding)
    so the last column is the latest event. Positions count from each sequence's first real
    item, so the output at position ``t`` depends only on items ``<= t`` (causality), whatever
    follows or pads the sequence. Every dropout is a
    :class:`~recforge.models.neural.GeneratorDropout` (attention-weight dropout included: the
    attention is computed here from the ``nn.MultiheadAttention`` weights), so training draws its
    masks from the model's own generator.
    """

    def __init__(self, n_items: int, hidden: int, max_len: int, num_blocks: int, num_heads: int,
                 dropout: float):
        super().__init__()
        self.hidden = hidden
        self.num_heads = num_heads
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_dropout = GeneratorDropout(dropout)
        self.attn_norms = nn.ModuleList([nn.LayerNorm(hidden, eps=1e-8) for _ in range(num_blocks)])
        self.attns = nn.ModuleList([nn.MultiheadAttention(hidden, num_heads, batch_first=True)
                                    for _ in range(num_blocks)])
        self.attn_weight_dropouts = nn.ModuleList([GeneratorDropout(dropout) for _ in range(num_blocks)])
        self.attn_dropouts = nn.ModuleList([GeneratorDropout(dropout) for _ in range(num_blocks)])
        self.ffn_norms = nn.ModuleList([nn.LayerNorm(hidden, eps=1e-8) for _ in range(num_blocks)])
        self.ffns = nn.ModuleList([
            nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), GeneratorDropout(dropout),
                          nn.Linear(hidden, hidden), GeneratorDropout(dropout))
            for _ in range(num_blocks)])
        self.last_norm = nn.LayerNorm(hidden, eps=1e-8)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Initialise every weight from ``generator`` (torch's default schemes, except the
        embeddings: small Xavier-normal ones, since N(0, 1) makes the initial logits, scaled by
        :math:`\\sqrt d`, saturate)."""
        init_parameters(self, generator)
        with torch.no_grad():
            for emb in (self.item_emb, self.pos_emb):
                nn.init.xavier_normal_(emb.weight, generator=generator)
            self.item_emb.weight[0].zero_()

    def _attend(self, block: int, h: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """Multi-head scaled dot-product attention of block ``block`` (Vaswani et al. 2017) on
        ``h`` (B, L, d), query ``q`` seeing key ``k`` where ``allowed[b, q, k]``; dropout on the
        attention weights as in ``nn.MultiheadAttention``."""
        attn = self.attns[block]
        batch, length, d = h.shape
        head = d // self.num_heads
        q, k, v = nn.functional.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(batch, length, self.num_heads, head).transpose(1, 2) for t in (q, k, v))
        logits = (q / math.sqrt(head)) @ k.transpose(-1, -2)  # (B, H, L, L)
        logits = logits.masked_fill(~allowed[:, None], float("-inf"))
        weights = self.attn_weight_dropouts[block](torch.softmax(logits, dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(batch, length, d)
        return attn.out_proj(out)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, L, hidden) of left-padded sequences (B, L)."""
        batch, length = seqs.shape
        valid = seqs > 0
        n_pad = length - valid.sum(dim=1, keepdim=True)
        positions = (torch.arange(length, device=seqs.device)[None, :] - n_pad).clamp(min=0)
        x = self.item_emb(seqs) * math.sqrt(self.hidden) + self.pos_emb(positions)
        keep = valid.unsqueeze(-1).to(x.dtype)
        x = self.emb_dropout(x) * keep
        # query q may attend key k when k <= q and k is a real item; a padding row attends to
        # itself only, so no row is fully masked (its output is zeroed anyway)
        eye = torch.eye(length, dtype=torch.bool, device=seqs.device)
        allowed = torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()[None] \
            & (valid[:, None, :] | eye[None])
        for block, (norm, drop, ffn_norm, ffn) in enumerate(zip(self.attn_norms, self.attn_dropouts,
                                                                self.ffn_norms, self.ffns, strict=True)):
            # residual around each sub-layer on its layer-normalised input (paper, eq. 4 and §III-C)
            a = self._attend(block, norm(x), allowed)
            x = x + drop(a)
            x = x + ffn(ffn_norm(x))
            x = x * keep
        return self.last_norm(x)

    def item_weights(self) -> torch.Tensor:
        """Output embeddings of items 0..n_items-1 (the shared input embeddings, padding dropped)."""
        return self.item_emb.weight[1:]


def _pad_left(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rows of ``items[starts[r]:starts[r]+lengths[r]] + 1``, right-aligned, 0-padded on the left."""
    width = int(lengths.max()) if lengths.size else 0
    out = np.zeros((lengths.size, width), dtype=np.int64)
    rows = np.repeat(np.arange(lengths.size), lengths)
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    within = np.arange(int(lengths.sum())) - np.repeat(first, lengths)
    cols = width - np.repeat(lengths, lengths) + within
    out[rows, cols] = items[np.repeat(starts, lengths) + within] + 1
    return out


@register("SASRec")
class SASRec(NeuralModel, SessionRecommender):
    """Self-attentive sequential recommendation (Kang & McAuley 2018) for next-click prediction.

    Each item has an embedding :math:`M_i` (scaled by :math:`\\sqrt{d}`) to which a learned
    positional embedding is added (eq. 1-2). ``num_blocks`` blocks follow, each a causal
    self-attention layer and a point-wise two-layer feed-forward network, both wrapped as
    :math:`x + \\mathrm{Dropout}(g(\\mathrm{LayerNorm}(x)))` (eq. 3-4 and §III-C). The
    relevance of item :math:`i` after position :math:`t` is :math:`r_{i,t} = F_t M_i^\\top`
    with the shared item embedding (eq. 6). Loss ``"bce"`` is the paper's eq. (5): for every
    position, :math:`-\\log\\sigma(r_{o_t,t}) - \\log(1 - \\sigma(r_{j,t}))` with one negative
    :math:`j \\ne o_t` drawn uniformly; ``"ce"`` is the full softmax cross-entropy over all items.
    Adam with :math:`\\beta = (0.9, 0.98)` as in the paper.

    Trains data-parallel when run in a ``torch.distributed`` process group (``torchrun`` or
    ``recforge train --nproc N``, see :class:`~recforge.models.neural.TrainingLoop`): every
    process draws the same global mini-batch and its negatives, computes its contiguous share of
    the sequences, and the gradients are summed weighted by target positions, so the updates
    are those of one process on the same batch (dropout masks, drawn per process, aside).

    Sessions are truncated to their last ``max_len`` events. Training sequences are the training
    sessions, or with ``augment=True`` every prefix of them (Tan et al. 2016, see
    :func:`~recforge.models.session.augment.prefix_sequences`); since the model is causal, this
    trains position :math:`t` of a length-:math:`n` session :math:`n - t` times per epoch, i.e.
    it up-weights the beginnings of sessions.

    Parameters
    ----------
    hidden : int, default 64
        Embedding and hidden size :math:`d`.
    max_len : int, default 50
        Longest history used (:math:`n` in the paper).
    num_blocks : int, default 2
    num_heads : int, default 1
    dropout : float, default 0.2
    loss : {"bce", "ce"}, default "bce"
    epochs : int, default 10
    batch_size : int, default 128
    learning_rate : float, default 1e-3
    augment : bool, default False
        Train on every prefix of every session.
    patience : int or None, default None
        With ``validation`` given to ``fit``: stop after this many epochs without a better
        validation MRR@20 (``None``: train all epochs).
    random_state : int, optional, default 0
        Seeds initialisation, dropout (torch generators) and shuffling and negatives (a NumPy
        generator), all spawned from one ``SeedSequence``; the global generators are neither
        seeded nor advanced (see :class:`~recforge.models.neural.SeedStreams`).
    device : {"cpu", "auto", "cuda", "cuda:N"}, default "cpu"
        Torch device ("auto": CUDA when available; in a process group, this process's GPU).
    n_threads : int or None, default None
        Torch intra-op threads while fitting and scoring (restored afterwards); ``None`` keeps
        torch's setting. On a busy machine ``1`` avoids thread oversubscription, which can
        slow these small matrix products down tenfold.
    restore_best : bool, default True
        With ``validation``: keep the weights of the epoch with the best validation MRR@20.
    on_nonfinite : {"raise", "stop"}, default "raise"
        A NaN or infinite loss raises ``FloatingPointError`` naming the epoch, or stops training
        with the weights of the last finite epoch.
    max_grad_norm : float, optional
        Clip the gradient norm of each Adam step to this value.
    verbose : bool, default False
        Show a progress bar over the epochs.

    Attributes
    ----------
    history_ : dict of lists
        Per epoch (see :class:`~recforge.models.neural.TrainingLoop`): ``epoch``, ``train_loss``
        (mean over training sequences of the batch losses), ``seconds`` and, with
        ``validation``, ``val_recall@20`` and ``val_mrr@20``.
    """

    state = ("train_seconds_",)
    _torch_modules = ("net_",)
    supports_distributed = True

    def __init__(self, hidden: int = 64, max_len: int = 50, num_blocks: int = 2, num_heads: int = 1,
                 dropout: float = 0.2, loss: str = "bce", epochs: int = 10, batch_size: int = 128,
                 learning_rate: float = 1e-3, augment: bool = False, patience: int | None = None,
                 random_state: int | None = 0, device: str = "cpu", n_threads: int | None = None,
                 restore_best: bool = True, on_nonfinite: str = "raise", max_grad_norm: float | None = None,
                 verbose: bool = False):
        self.hidden = hidden
        self.max_len = max_len
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.augment = augment
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.restore_best = restore_best
        self.on_nonfinite = on_nonfinite
        self.max_grad_norm = max_grad_norm
        self.verbose = verbose

    # ------------------------------------------------------------------ network
    def _new_net(self, generator: torch.Generator) -> _SASRecNet:
        with isolated_global_rng():  # the layers' own initial draws are discarded
            net = _SASRecNet(self.n_items_, self.hidden, self.max_len, self.num_blocks, self.num_heads,
                             self.dropout)
        net.reset_parameters(generator)
        return net.to(self._device())

    def _build_modules(self) -> None:
        self.net_ = self._new_net(torch.Generator().manual_seed(0))

    def _check_params(self) -> None:
        if self.loss not in ("bce", "ce"):
            raise ValueError(f"loss must be 'bce' or 'ce', got {self.loss!r}")
        if self.hidden % self.num_heads:
            raise ValueError("hidden must be a multiple of num_heads")
        for name in ("hidden", "max_len", "num_blocks", "num_heads", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    # ------------------------------------------------------------------ training
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        with self._threads():
            self._fit_net(train, validation)

    def _fit_net(self, train, validation) -> None:
        self._check_params()
        if train.n_items < 2:
            raise ValueError("SASRec needs at least two items")
        streams = self._seed_streams()  # spawned in a fixed order: init, dropout, batches
        init_gen = streams.torch("cpu")
        device = self._device()
        # dropout masks cover a process's shard only, so each process has its own stream
        dropout_gen = streams.torch_per_rank(device, self._distributed_context())
        rng = streams.numpy()
        seqs = prefix_sequences(train) if self.augment else train
        lengths = seqs.lengths
        usable = np.flatnonzero(lengths >= 2)
        if usable.size < seqs.n_sessions:
            logger.info("SASRec: %d training sequences shorter than 2 events have no target",
                        seqs.n_sessions - usable.size)
        if not usable.size:
            raise ValueError("SASRec: no training session has two or more events")
        # input = events [end-1-m, end-1), target = events [end-m, end), m = min(len-1, max_len)
        n_pos = np.minimum(lengths[usable] - 1, self.max_len)
        input_start = seqs.offsets[1:][usable] - 1 - n_pos
        started = time.perf_counter()
        self.net_ = self._new_net(init_gen)
        attach_generator(self.net_, dropout_gen)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=self.learning_rate, betas=(0.9, 0.98))

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            order = rng.permutation(usable.size)
            total, count = 0.0, 0
            for step in loop.batches(-(-order.size // self.batch_size)):
                b = step * self.batch_size
                sel = order[b:b + self.batch_size]
                weights = n_pos[sel]  # target positions per sequence: the terms of the mean loss
                # the negatives of the whole batch, in row-major order of its target positions
                # (drawn by every process, so the stream stays the same everywhere)
                shifts = (rng.integers(1, self.n_items_, size=int(weights.sum()))
                          if self.loss == "bce" else None)
                part, share = loop.shard(sel.size, weights)
                loss = None
                if part.stop > part.start:
                    rows = sel[part]
                    if shifts is not None:
                        first = int(weights[:part.start].sum())
                        shifts = shifts[first:first + int(weights[part].sum())]
                    inputs = torch.from_numpy(_pad_left(seqs.items, input_start[rows], n_pos[rows])).to(device)
                    targets = torch.from_numpy(_pad_left(seqs.items, input_start[rows] + 1,
                                                         n_pos[rows])).to(device)
                    loss = self._loss(inputs, targets, shifts)
                total += loop.step(loss, optimizer, self.net_.parameters(), share) * sel.size
                count += sel.size
            return total / count

        loop = self._training_loop(int(self.epochs), validation, patience=self.patience, monitor="mrr@20",
                                   restore_best=self.restore_best, on_nonfinite=self.on_nonfinite,
                                   max_grad_norm=self.max_grad_norm, verbose=self.verbose)
        try:
            self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                     set_state=self._set_torch_state,
                                     on_epoch_end=lambda r: logger.info("SASRec epoch %d: %s", r["epoch"], r))
        finally:
            attach_generator(self.net_, None)
            self.net_.eval()
        self.best_epoch_ = loop.best_epoch
        self.train_seconds_ = time.perf_counter() - started

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor, shifts: np.ndarray | None) -> torch.Tensor:
        """Mean loss over the target positions of a batch; ``shifts`` (one per target position,
        row-major, in ``[1, n_items)``) pick the BCE negatives."""
        hidden = self.net_(inputs)
        valid = targets > 0
        h = hidden[valid]  # (n_positions, d)
        pos = targets[valid] - 1  # 0-based item index
        weights = self.net_.item_weights()
        if self.loss == "ce":
            return nn.functional.cross_entropy(h @ weights.T, pos)
        # a uniform negative different from the target: shift the target by 1..n_items-1
        neg = (pos + torch.from_numpy(shifts).to(pos.device)) % self.n_items_
        pos_logit = (h * weights[pos]).sum(-1)
        neg_logit = (h * weights[neg]).sum(-1)
        return (nn.functional.softplus(-pos_logit) + nn.functional.softplus(neg_logit)).mean()

    # ------------------------------------------------------------------ scoring
    def hidden_states(self, sessions: list[np.ndarray]) -> torch.Tensor:
        """Final-block outputs (n, L, hidden) for inner-index sessions (last ``max_len`` events)."""
        lengths = np.array([min(len(s), self.max_len) for s in sessions], dtype=np.int64)
        flat = np.concatenate([np.asarray(s[len(s) - m:], dtype=np.int64)
                               for s, m in zip(sessions, lengths, strict=True)])
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        batch = torch.from_numpy(_pad_left(flat, starts, lengths)).to(self._device())
        self.net_.eval()
        with torch.no_grad():
            return self.net_(batch)

    def _score_next(self, sessions: list[np.ndarray], chunk: int = 1024) -> np.ndarray:
        out = np.empty((len(sessions), self.n_items_), dtype=np.float32)
        with self._threads():
            for b in range(0, len(sessions), chunk):
                h = self.hidden_states(sessions[b:b + chunk])[:, -1]
                with torch.no_grad():
                    out[b:b + chunk] = (h @ self.net_.item_weights().T).cpu().numpy()
        return out

    # ------------------------------------------------------------------ streaming
    def init_state(self, n_slots: int) -> dict:
        """Per-slot key/value caches of every attention layer (incremental decoding).

        Because the network is causal, the keys and values of earlier positions never change
        when an event is appended, so :meth:`advance` computes only the new position. A slot
        whose session outgrows ``max_len`` is rebuilt from its last ``max_len`` events (the
        positions shift), which equals :meth:`_score_next` on the truncated session.
        """
        d, n_layers = self.hidden, self.num_blocks
        shape = (n_slots, self.max_len, d)
        return {"items": np.zeros((n_slots, self.max_len), dtype=np.int64),
                "length": np.zeros(n_slots, dtype=np.int64),
                "keys": [torch.zeros(shape, device=self._device()) for _ in range(n_layers)],
                "values": [torch.zeros(shape, device=self._device()) for _ in range(n_layers)]}

    def advance(self, state: dict, items: np.ndarray, reset: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        reset = np.asarray(reset, dtype=bool)
        state["length"][reset] = 0
        full = np.flatnonzero(state["length"] >= self.max_len)
        with self._threads(), torch.no_grad():
            self.net_.eval()
            if full.size:  # drop the oldest event and rebuild these slots' caches
                window = np.concatenate([state["items"][full, 1:], items[full, None]], axis=1)
                sub = self.init_state(full.size)
                for t in range(self.max_len):
                    rebuilt = self._step(sub, window[:, t], np.arange(full.size))
                state["items"][full] = sub["items"]
                state["length"][full] = sub["length"]
                for layer in range(self.num_blocks):
                    state["keys"][layer][full] = sub["keys"][layer]
                    state["values"][layer][full] = sub["values"][layer]
            rows = np.setdiff1d(np.arange(items.size), full)
            out = torch.empty(items.size, self.hidden, device=self._device())
            if rows.size:
                out[torch.from_numpy(rows)] = self._step(state, items[rows], rows)
            if full.size:
                out[torch.from_numpy(full)] = rebuilt
            return (out @ self.net_.item_weights().T).cpu().numpy()

    def _step(self, state: dict, items: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Append one event to slots ``rows``; the final hidden state of each, (len(rows), d)."""
        net = self.net_
        pos = state["length"][rows]
        state["items"][rows, pos] = items
        state["length"][rows] = pos + 1
        device = self._device()
        rows_t = torch.from_numpy(rows).to(device)
        pos_t = torch.from_numpy(pos).to(device)
        x = net.item_emb(torch.from_numpy(items + 1).to(device)) * math.sqrt(self.hidden) + net.pos_emb(pos_t)
        n_heads, d = self.num_heads, self.hidden
        head = d // n_heads
        width = int(pos.max()) + 1
        visible = torch.arange(width, device=device)[None, :] <= pos_t[:, None]  # (n, width)
        for layer, (norm, attn, ffn_norm, ffn) in enumerate(zip(net.attn_norms, net.attns, net.ffn_norms,
                                                                 net.ffns, strict=True)):
            h = norm(x)
            w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
            b_q, b_k, b_v = attn.in_proj_bias.chunk(3)
            state["keys"][layer][rows_t, pos_t] = h @ w_k.T + b_k
            state["values"][layer][rows_t, pos_t] = h @ w_v.T + b_v
            keys = state["keys"][layer][rows_t, :width].view(-1, width, n_heads, head)
            values = state["values"][layer][rows_t, :width].view(-1, width, n_heads, head)
            q = ((h @ w_q.T + b_q) / math.sqrt(head)).view(-1, 1, n_heads, head)
            logits = (q * keys).sum(-1).masked_fill(~visible[:, :, None], float("-inf"))  # (n, width, H)
            weights = torch.softmax(logits, dim=1)
            a = (weights[..., None] * values).sum(1).reshape(-1, d)
            x = x + attn.out_proj(a)
            x = x + ffn(ffn_norm(x))
        return net.last_norm(x)
