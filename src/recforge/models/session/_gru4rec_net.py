"""Training machinery of :class:`~recforge.models.session.gru4rec.GRU4Rec`.

Kept apart from the public module so that each piece can be tested on its own:

* :func:`session_parallel_schedule` — the session-parallel mini-batches of Hidasi et al. (2016),
  section 3.1.1, computed once for all epochs as flat index arrays;
* :class:`NegativeSampleCache` — shared negative samples drawn from popularity^alpha in large
  blocks (Hidasi & Karatzoglou 2018, section 3.1);
* :func:`ranking_loss` — cross-entropy (with logQ correction), BPR-max, TOP1-max, TOP1 and BPR
  on a score matrix whose diagonal holds the targets;
* :class:`GRU4RecNet` — the network weights, one training step with row-sparse updates of the
  item-indexed tables and Adagrad with momentum, and inference steps.

References
----------
Hidasi, Karatzoglou, Baltrunas, Tikk (2016). Session-based recommendations with recurrent
neural networks. ICLR.
Hidasi, Karatzoglou (2018). Recurrent neural networks with top-k gains for session-based
recommendations. CIKM.
Hidasi, Czapp (2023). The effect of third party implementations on reproducibility. RecSys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import torch
import torch.nn.functional as F

from ... import interrupt

LOSSES = ("cross-entropy", "bpr-max", "top1-max", "top1", "bpr")

# Guard of the logarithm in BPR-max: the weighted sigmoid sum may underflow to 0.
_LOG_EPS = 1e-24


# ---------------------------------------------------------------------- session-parallel batches
@dataclass
class Schedule:
    """Session-parallel mini-batches of one epoch, as flat arrays (step-major).

    Step ``t`` occupies positions ``step_offsets[t]:step_offsets[t+1]`` of the flat arrays;
    position ``p`` is the ``p - step_offsets[t]``-th slot of that step.

    Attributes
    ----------
    events : ndarray of int64
        Index (into the events array) of each slot's input event; its target is ``events + 1``.
    sessions : ndarray of int64
        Session each slot is walking through.
    reset : ndarray of bool
        The slot starts a new session at this step: its hidden state is zeroed first.
    step_offsets : ndarray of int64, shape (n_steps + 1,)
    keep : dict[int, ndarray]
        For a step where the batch shrinks (no session left for some freed slots), the rows of
        the previous step's hidden state that carry on, in order.
    n_sessions_skipped : int
        Sessions with fewer than two events (nothing to predict).
    """

    events: np.ndarray
    sessions: np.ndarray
    reset: np.ndarray
    step_offsets: np.ndarray
    keep: dict
    n_sessions_skipped: int

    @property
    def n_steps(self) -> int:
        return int(self.step_offsets.size - 1)

    def width(self, t: int) -> int:
        return int(self.step_offsets[t + 1] - self.step_offsets[t])

    def step(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(events, sessions, reset)`` of step ``t``."""
        a, b = self.step_offsets[t], self.step_offsets[t + 1]
        return self.events[a:b], self.sessions[a:b], self.reset[a:b]


def session_parallel_schedule(offsets: np.ndarray, order: np.ndarray, batch_size: int,
                              stop_below: int = 1) -> Schedule:
    """Session-parallel mini-batches (Hidasi et al. 2016, section 3.1.1, Figure 2).

    ``batch_size`` slots each walk through one session, one event per step, the event being the
    input and the session's next event the target. When a slot's session has no target left the
    slot takes the next session in ``order`` and its hidden state is reset. When no session is
    left, finished slots are dropped and the batch shrinks; the epoch ends when fewer than
    ``stop_below`` slots remain (2 without sampled negatives, so that every row has a negative).

    Parameters
    ----------
    offsets : ndarray of int, shape (n_sessions + 1,)
        Session ``s`` is events ``offsets[s]:offsets[s+1]``.
    order : ndarray of int
        Sessions in the order they are fed (GRU4Rec: by time of their first event).
    batch_size : int
    stop_below : int

    Returns
    -------
    Schedule
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    offsets = np.asarray(offsets, dtype=np.int64)
    order = np.asarray(order, dtype=np.int64)
    lengths = offsets[1:] - offsets[:-1]
    queue = order[lengths[order] >= 2]
    n_skipped = int(order.size - queue.size)
    n_slots = int(min(batch_size, queue.size))
    ev_blocks: list[np.ndarray] = []
    ss_blocks: list[np.ndarray] = []
    rs_blocks: list[np.ndarray] = []
    widths: list[np.ndarray] = []
    keep: dict[int, np.ndarray] = {}
    if n_slots == 0 or n_slots < stop_below:
        empty = np.empty(0, dtype=np.int64)
        return Schedule(empty, empty, np.empty(0, dtype=bool), np.zeros(1, dtype=np.int64), {},
                        n_skipped)
    slot_sess = queue[:n_slots].copy()
    nxt = n_slots
    pos = offsets[slot_sess].copy()
    end = offsets[slot_sess + 1].copy()
    reset = np.ones(n_slots, dtype=bool)
    n_steps = 0
    while True:
        # every slot can take (remaining events - 1) steps; advance all by the smallest count
        run = int((end - pos).min()) - 1
        steps = pos[None, :] + np.arange(run, dtype=np.int64)[:, None]
        ev_blocks.append(steps.ravel())
        ss_blocks.append(np.tile(slot_sess, run))
        rs = np.zeros(steps.shape, dtype=bool)
        rs[0] = reset
        rs_blocks.append(rs.ravel())
        widths.append(np.full(run, n_slots, dtype=np.int64))
        n_steps += run
        pos += run
        done = np.flatnonzero(end - pos <= 1)
        n_new = int(min(done.size, queue.size - nxt))
        refill, retire = done[:n_new], done[n_new:]
        slot_sess[refill] = queue[nxt:nxt + n_new]
        nxt += n_new
        pos[refill] = offsets[slot_sess[refill]]
        end[refill] = offsets[slot_sess[refill] + 1]
        reset[:] = False
        reset[refill] = True
        if retire.size:
            alive = np.ones(n_slots, dtype=bool)
            alive[retire] = False
            n_slots = int(alive.sum())
            if n_slots == 0 or n_slots < stop_below:
                break
            keep[n_steps] = np.flatnonzero(alive)
            slot_sess, pos, end, reset = slot_sess[alive], pos[alive], end[alive], reset[alive]
    w = np.concatenate(widths) if widths else np.empty(0, dtype=np.int64)
    step_offsets = np.zeros(w.size + 1, dtype=np.int64)
    np.cumsum(w, out=step_offsets[1:])
    return Schedule(np.concatenate(ev_blocks), np.concatenate(ss_blocks), np.concatenate(rs_blocks),
                    step_offsets, keep, n_skipped)


# ---------------------------------------------------------------------- negative sampling
class NegativeSampleCache:
    """Shared negative samples, ``n_sample`` per mini-batch, from ``counts ** alpha``.

    Draws are made in blocks of about ``cache_size`` items so that the per-step cost is one row
    lookup (Hidasi & Karatzoglou 2018, section 3.1: "additional samples", shared by
    the mini-batch, popularity-based with exponent ``sample_alpha``).

    Parameters
    ----------
    counts : ndarray, shape (n_items,)
        Training events per item.
    alpha : float
        0 gives uniform sampling over items with events, 1 popularity sampling.
    n_sample : int
    cache_size : int
        Items drawn per refill.
    rng : numpy.random.Generator
    device : torch.device
    """

    def __init__(self, counts: np.ndarray, alpha: float, n_sample: int, cache_size: int,
                 rng: np.random.Generator, device: torch.device):
        weights = np.asarray(counts, dtype=np.float64) ** alpha
        weights[np.asarray(counts) <= 0] = 0.0
        total = weights.sum()
        if not total > 0:
            raise ValueError("no item has a positive count: nothing to sample")
        self.probabilities = weights / total
        self.n_sample = int(n_sample)
        self.rows = max(1, int(cache_size) // max(self.n_sample, 1))
        self.rng = rng
        self.device = device
        self._block = None
        self._next = self.rows

    def refill(self) -> None:
        # n i.i.d. categorical draws = multinomial counts in a uniformly random order; this
        # costs O(n_items + n) instead of a binary search per draw
        n = self.rows * self.n_sample
        counts = self.rng.multinomial(n, self.probabilities)
        idx = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        self.rng.shuffle(idx)
        self._block = torch.from_numpy(idx.reshape(self.rows, self.n_sample)).to(self.device)
        self._next = 0

    def draw(self) -> torch.Tensor:
        """The next ``n_sample`` item indices (int64 tensor)."""
        if self._next >= self.rows:
            self.refill()
        out = self._block[self._next]
        self._next += 1
        return out


# ---------------------------------------------------------------------- losses
def ranking_loss(scores: torch.Tensor, loss: str, *, bpreg: float = 0.0, elu_param: float = 0.0,
                 logq_correction: torch.Tensor | None = None) -> torch.Tensor:
    """Summed loss over the rows of ``scores`` (shape (n, n + n_sample)); row ``i``'s target is
    column ``i``, every other column is one of its negatives.

    With :math:`r_i` the target score, :math:`r_j` the negatives' scores, :math:`N_S` their
    number and :math:`s_j` the softmax over the negatives' scores only:

    * ``cross-entropy``: :math:`-\\log \\operatorname{softmax}(r - c)_i` over all columns, where
      :math:`c` is ``logq_correction`` (logQ, Hidasi & Czapp 2023) or zero;
    * ``bpr-max`` (Hidasi & Karatzoglou 2018, eq. 8 plus the score regulariser of section 3.2):
      :math:`-\\log \\sum_j s_j \\sigma(r_i - r_j) + \\lambda \\sum_j s_j r_j^2`;
    * ``top1-max`` (ibid., eq. 5): :math:`\\sum_j s_j (\\sigma(r_j - r_i) + \\sigma(r_j^2))`;
    * ``top1`` (Hidasi et al. 2016, section 3.1.2):
      :math:`\\frac{1}{N_S}\\sum_j \\sigma(r_j - r_i) + \\sigma(r_j^2)`;
    * ``bpr`` (ibid.): :math:`-\\frac{1}{N_S}\\sum_j \\log \\sigma(r_i - r_j)`.

    For the ranking losses the scores first pass an ELU with parameter ``elu_param`` when it is
    positive (the final activation of the 2018 paper), else they are used as they are.
    """
    n, k = scores.shape
    arange = torch.arange(n, device=scores.device)
    if loss == "cross-entropy":
        if logq_correction is not None:
            scores = scores - logq_correction
        return F.cross_entropy(scores, arange, reduction="sum")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {LOSSES}")
    if k < 2:
        raise ValueError("ranking losses need at least one negative per row")
    if elu_param > 0:
        scores = F.elu(scores, alpha=elu_param)
    target = scores[arange, arange].unsqueeze(1)
    is_target = torch.zeros((n, k), dtype=torch.bool, device=scores.device)
    is_target[arange, arange] = True
    if loss in ("bpr-max", "top1-max"):
        weights = torch.softmax(scores.masked_fill(is_target, -math.inf), dim=1)
        if loss == "bpr-max":
            ranked = (torch.sigmoid(target - scores) * weights).sum(1)
            per_row = -torch.log(ranked + _LOG_EPS)
            if bpreg:
                per_row = per_row + bpreg * (weights * scores.square()).sum(1)
        else:
            per_row = ((torch.sigmoid(scores - target) + torch.sigmoid(scores.square())) * weights).sum(1)
        return per_row.sum()
    negative = ~is_target
    if loss == "top1":
        terms = torch.sigmoid(scores - target) + torch.sigmoid(scores.square())
    else:  # bpr
        terms = -F.logsigmoid(target - scores)
    return (terms * negative).sum() / (k - 1)


def official_cross_entropy(scores: torch.Tensor, logq_correction: torch.Tensor | None = None) -> torch.Tensor:
    """The cross-entropy exactly as the official PyTorch GRU4Rec computes and reports it
    (``xe_loss_with_softmax``): :math:`-\\sum_i \\log(\\operatorname{softmax}(r - c)_{ii} + 10^{-24})`
    with the softmax in the scores' precision.

    The :math:`10^{-24}` inside the logarithm floors each row's loss at
    :math:`-\\log 10^{-24} \\approx 55.26` (:math:`p \\ll 10^{-24}` gives ``log(1e-24)``; in
    float32 the softmax of such a row is often exactly 0) and makes that row's gradient vanish,
    whereas :func:`ranking_loss` is the exact :math:`-\\log\\operatorname{softmax}`, which for a
    hopeless row can be hundreds of nats. This is why recforge's reported training loss runs
    above the official figure while the trained models rank alike; see
    ``docs/models-session.md``. Used for that comparison only, never for training.
    """
    if logq_correction is not None:
        scores = scores - logq_correction
    x = torch.exp(scores - scores.max(dim=1, keepdim=True)[0])
    x = x / x.sum(dim=1, keepdim=True)
    return -torch.sum(torch.log(torch.diag(x) + 1e-24))


# ---------------------------------------------------------------------- the network
def _glorot_blocks(rows: int, cols: int, n_blocks: int, axis: int, gen: torch.Generator) -> torch.Tensor:
    """A (rows, cols) matrix made of ``n_blocks`` equal blocks along ``axis``, each uniform in
    :math:`\\pm\\sqrt{6 / (\\mathrm{fan\\_in} + \\mathrm{fan\\_out})}` of the block (Glorot &
    Bengio 2010) — one block per GRU gate."""
    sizes = [rows, cols]
    sizes[axis] //= n_blocks
    sigma = math.sqrt(6.0 / (sizes[0] + sizes[1]))
    blocks = [(torch.rand(sizes, generator=gen) * 2 - 1) * sigma for _ in range(n_blocks)]
    return torch.cat(blocks, dim=axis).float()


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _adagrad_rows_kernel(param, acc, mom, index_a, grad_a, index_b, grad_b, where, buf, uniq,
                         lr, momentum, eps, nesterov):
    """Sums the gradient rows of each distinct index (over both ``(index, grad)`` pairs), then
    applies the update once to each of those rows.

    ``where`` (one int per table row, all -1 on entry and on exit) maps a row to its slot in
    ``buf`` while the duplicates are summed, in the order they appear.
    """
    n_u = 0
    d = param.shape[1]
    for part in range(2):
        index = index_a if part == 0 else index_b
        grad = grad_a if part == 0 else grad_b
        for k in range(index.shape[0]):
            r = index[k]
            slot = where[r]
            if slot < 0:
                slot = n_u
                where[r] = slot
                uniq[slot] = r
                n_u += 1
                for j in range(d):
                    buf[slot, j] = grad[k, j]
            else:
                for j in range(d):
                    buf[slot, j] += grad[k, j]
    for u in range(n_u):
        r = uniq[u]
        where[r] = -1
        if momentum > 0:
            for j in range(d):
                g = buf[u, j]
                a = acc[r, j] + g * g
                acc[r, j] = a
                step = -lr * g / np.sqrt(a + eps)
                m = momentum * mom[r, j] + step
                mom[r, j] = m
                param[r, j] += momentum * m + step if nesterov else m
        else:
            for j in range(d):
                g = buf[u, j]
                a = acc[r, j] + g * g
                acc[r, j] = a
                param[r, j] -= lr * g / np.sqrt(a + eps)


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _adagrad_dense_kernel(param, acc, mom, grad, lr, momentum, eps, nesterov):
    if momentum > 0:
        for j in range(param.shape[0]):
            g = grad[j]
            a = acc[j] + g * g
            acc[j] = a
            step = -lr * g / np.sqrt(a + eps)
            m = momentum * mom[j] + step
            mom[j] = m
            param[j] += momentum * m + step if nesterov else m
    else:
        for j in range(param.shape[0]):
            g = grad[j]
            a = acc[j] + g * g
            acc[j] = a
            param[j] -= lr * g / np.sqrt(a + eps)


class _AdagradMomentum:
    """Adagrad (Duchi et al. 2011) with momentum, dense or on the rows a step touched.

    :math:`G \\leftarrow G + g^2`, :math:`v \\leftarrow \\mu v - \\eta g / \\sqrt{G + \\epsilon}`,
    :math:`\\theta \\leftarrow \\theta + v` (classic momentum, as the official PyTorch GRU4Rec), or
    with ``nesterov=True`` the look-ahead form of Nesterov momentum used by the original Theano
    GRU4Rec, :math:`\\theta \\leftarrow \\theta + \\mu v - \\eta g / \\sqrt{G + \\epsilon}`
    (Sutskever et al. 2013; Bengio et al. 2013); for an item-indexed table only the rows present in
    the mini-batch are updated (their gradients summed first), so rows that were not touched
    keep their momentum unchanged — the lazy update GRU4Rec's optimizer uses.
    """

    def __init__(self, params: dict[str, torch.Tensor], lr: float, momentum: float, eps: float = 1e-6,
                 nesterov: bool = False):
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.eps = float(eps)
        # float32 scalars keep the compiled kernels in single precision (vectorisable)
        self._f32 = (np.float32(lr), np.float32(momentum), np.float32(eps), self.nesterov)
        self.acc = {k: torch.zeros_like(v) for k, v in params.items()}
        self.mom = {k: torch.zeros_like(v) for k, v in params.items()} if momentum > 0 else {}
        # compiled CPU path: one pass over the touched rows instead of a dozen tensor ops
        self.compiled = all(v.device.type == "cpu" and v.dtype == torch.float32 and v.is_contiguous()
                            for v in params.values())
        self._scratch: dict[str, tuple] = {}

    def _np(self, name: str):
        acc = self.acc[name].numpy()
        mom = self.mom[name].numpy() if self.momentum > 0 else acc[:0]
        return acc, mom

    def dense(self, name: str, param: torch.Tensor, grad: torch.Tensor) -> None:
        if self.compiled:
            acc, mom = self._np(name)
            with interrupt.compiled():  # a Ctrl-C is raised after the kernel, not inside it
                _adagrad_dense_kernel(param.detach().numpy().reshape(-1), acc.reshape(-1),
                                      mom.reshape(-1), grad.contiguous().numpy().reshape(-1),
                                      *self._f32)
            return
        acc = self.acc[name]
        acc.addcmul_(grad, grad)
        step = grad / (acc + self.eps).sqrt_()
        if self.momentum > 0:
            mom = self.mom[name]
            mom.mul_(self.momentum).add_(step, alpha=-self.lr)
            if self.nesterov:
                param.add_(mom, alpha=self.momentum).add_(step, alpha=-self.lr)
            else:
                param.add_(mom)
        else:
            param.add_(step, alpha=-self.lr)

    def rows(self, name: str, param: torch.Tensor, index: torch.Tensor, grad_rows: torch.Tensor,
             index_b: torch.Tensor | None = None, grad_b: torch.Tensor | None = None) -> None:
        """Update the rows ``index`` (and ``index_b``) of ``param``; gradients of repeated rows
        are summed first."""
        if self.compiled:
            n_rows, d = param.shape
            k = index.numel() + (0 if index_b is None else index_b.numel())
            scratch = self._scratch.get(name)
            if scratch is None or scratch[1].shape[0] < k:
                scratch = (np.full(n_rows, -1, dtype=np.int64), np.empty((k, d), dtype=np.float32),
                           np.empty(k, dtype=np.int64))
                self._scratch[name] = scratch
            where, buf, uniq = scratch
            acc, mom = self._np(name)
            if index_b is None:
                index_b, grad_b = index[:0], grad_rows[:0]
            with interrupt.compiled():
                _adagrad_rows_kernel(param.detach().numpy(), acc, mom, index.numpy(),
                                     grad_rows.contiguous().numpy(), index_b.numpy(),
                                     grad_b.contiguous().numpy(), where, buf, uniq, *self._f32)
            return
        if index_b is not None:
            index = torch.cat([index, index_b])
            grad_rows = torch.cat([grad_rows, grad_b])
        uniq, inverse = torch.unique(index, return_inverse=True)
        grad = torch.zeros((uniq.numel(), grad_rows.shape[1]), dtype=grad_rows.dtype,
                           device=grad_rows.device).index_add_(0, inverse, grad_rows)
        acc = self.acc[name].index_select(0, uniq).addcmul_(grad, grad)
        self.acc[name].index_copy_(0, uniq, acc)
        step = grad.div_(acc.add_(self.eps).sqrt_()).mul_(-self.lr)
        if self.momentum > 0:
            mom = self.mom[name].index_select(0, uniq).mul_(self.momentum).add_(step)
            self.mom[name].index_copy_(0, uniq, mom)
            step = mom * self.momentum + step if self.nesterov else mom
        param.index_add_(0, uniq, step)


class GRU4RecNet:
    """Weights of GRU4Rec and the computations on them.

    Input modes (``mode``):

    * ``"constrained"`` — the input embedding of an item is its row of the output weights
      :math:`W_y` (Hidasi & Czapp 2023, "constrained embedding"); the first GRU layer reads
      vectors of size ``layers[-1]``;
    * ``"embedding"`` — a separate item embedding table of width ``embedding``;
    * ``"onehot"`` — the item's one-hot vector feeds the first GRU layer directly, i.e. its
      input weights are an item-indexed table (Hidasi et al. 2016).

    Every GRU layer computes (Cho et al. 2014) :math:`r = \\sigma(W_r x + U_r h + b_r)` and
    :math:`z = \\sigma(W_z x + U_z h + b_z)`. Dense-input layers (the layout of
    ``torch.nn.GRUCell``, which the reference implementation uses) then take
    :math:`\\hat h = \\tanh(W x + b + r \\odot (U h + b_u))` and :math:`h' = (1 - z)\\,\\hat h + z h`;
    the one-hot input layer keeps the form of the 2016 paper (eqs. 1-4):
    :math:`\\hat h = \\tanh(W x + U (r \\odot h) + b)` and :math:`h' = (1 - z)\\,h + z \\hat h`.
    Scores are :math:`h_L W_y^T + b_y`.
    """

    def __init__(self, n_items: int, layers: list[int], mode: str, embedding: int,
                 device: torch.device):
        self.n_items = int(n_items)
        self.layers = [int(h) for h in layers]
        self.mode = mode
        self.embedding = int(embedding)
        self.device = device
        self.start = 1 if mode == "onehot" else 0
        self.params: dict[str, torch.Tensor] = {}

    # ---------------------------------------------------------------- weights
    def input_size(self) -> int:
        return self.layers[-1] if self.mode == "constrained" else self.embedding

    def init_weights(self, gen: torch.Generator) -> None:
        h_last = self.layers[-1]
        p: dict[str, torch.Tensor] = {}
        if self.mode == "embedding":
            p["E"] = _glorot_blocks(self.n_items, self.embedding, 1, 1, gen)
        elif self.mode == "onehot":
            h0 = self.layers[0]
            p["Wx0"] = _glorot_blocks(self.n_items, 3 * h0, 3, 1, gen)
            p["Wrz0"] = _glorot_blocks(h0, 2 * h0, 2, 1, gen)
            p["Wh0"] = _glorot_blocks(h0, h0, 1, 1, gen)
            p["Bh0"] = torch.zeros(3 * h0)
        n_in = self.input_size()
        for i in range(self.start, len(self.layers)):
            h = self.layers[i]
            fan_in = n_in if i == 0 else self.layers[i - 1]
            p[f"W_ih{i}"] = _glorot_blocks(3 * h, fan_in, 3, 0, gen)
            p[f"W_hh{i}"] = _glorot_blocks(3 * h, h, 3, 0, gen)
            p[f"b_ih{i}"] = torch.zeros(3 * h)
            p[f"b_hh{i}"] = torch.zeros(3 * h)
        p["Wy"] = _glorot_blocks(self.n_items, h_last, 1, 1, gen)
        p["By"] = torch.zeros(self.n_items, 1)
        self.params = {k: v.to(self.device).contiguous() for k, v in p.items()}

    @property
    def row_tables(self) -> tuple[str, ...]:
        """Item-indexed tables, updated only on the rows a step touches."""
        extra = {"constrained": (), "embedding": ("E",), "onehot": ("Wx0",)}[self.mode]
        return (*extra, "Wy", "By")

    def dense_names(self) -> list[str]:
        return [k for k in self.params if k not in self.row_tables]

    def zero_state(self, n: int) -> list[torch.Tensor]:
        return [torch.zeros((n, h), device=self.device) for h in self.layers]

    # ---------------------------------------------------------------- forward pieces
    @staticmethod
    def _gru_onehot(gx: torch.Tensor, h: torch.Tensor, Wrz: torch.Tensor, Wh: torch.Tensor) -> torch.Tensor:
        """One-hot input GRU layer; ``gx`` holds the item's rows of the input weights plus bias."""
        x_h, x_r, x_z = gx.chunk(3, 1)
        g_r, g_z = (h @ Wrz).chunk(2, 1)
        r = torch.sigmoid(x_r + g_r)
        z = torch.sigmoid(x_z + g_z)
        cand = torch.tanh((r * h) @ Wh + x_h)
        return torch.lerp(h, cand, z)

    def _layers(self, first_input: torch.Tensor, H: list[torch.Tensor], p: dict,
                masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        """Runs the GRU stack; writes each layer's new state into ``H``; returns the top."""
        out = first_input
        for i in range(self.start, len(self.layers)):
            out = torch.gru_cell(out, H[i], p[f"W_ih{i}"], p[f"W_hh{i}"], p[f"b_ih{i}"], p[f"b_hh{i}"])
            if masks is not None and masks[i] is not None:
                out = out * masks[i]
            H[i] = out
        return out

    # ---------------------------------------------------------------- training
    def train_step(self, x: torch.Tensor, y: torch.Tensor, H: list[torch.Tensor],
                   opt: _AdagradMomentum, loss: str, batch_size: int, *, bpreg: float,
                   elu_param: float, logq_correction: torch.Tensor | None,
                   dropout_embed: float, dropout_hidden: float, gen: torch.Generator) -> float:
        """One step of truncated (one-step) back-propagation; returns the step's loss.

        ``x``: input items of the ``n`` active slots; ``y``: their targets followed by the shared
        negative samples. Gradients are taken with respect to the gathered rows of the item
        tables (not the tables), so only those rows are updated. ``H`` is replaced by the new,
        detached hidden states. The loss is summed over the rows and divided by ``batch_size``
        (not ``n``), as in the reference implementation, so short final batches weigh less.
        """
        p = self.params
        n = x.numel()
        leaves: list[tuple[str, torch.Tensor, torch.Tensor]] = []  # (table, index, gathered rows)
        in_table = {"constrained": "Wy", "embedding": "E", "onehot": "Wx0"}[self.mode]
        inp = p[in_table].index_select(0, x).requires_grad_()
        out_w = p["Wy"].index_select(0, y).requires_grad_()
        leaves += [(in_table, x, inp), ("Wy", y, out_w)]
        out_b = p["By"].index_select(0, y).requires_grad_()
        leaves.append(("By", y, out_b))
        dense = {k: p[k].requires_grad_() for k in self.dense_names()}

        def mask(shape, prob):
            if prob <= 0:
                return None
            return torch.empty(shape, device=self.device).bernoulli_(1.0 - prob, generator=gen).div_(1.0 - prob)

        if self.mode == "onehot":
            first = self._gru_onehot(inp + dense["Bh0"], H[0], dense["Wrz0"], dense["Wh0"])
        else:
            first = inp
        m = mask(first.shape, dropout_embed)
        if m is not None:
            first = first * m
        if self.mode == "onehot":
            H[0] = first
        masks = [None] * len(self.layers)
        for i in range(self.start, len(self.layers)):
            masks[i] = mask((n, self.layers[i]), dropout_hidden)
        top = self._layers(first, H, {**p, **dense}, masks)
        scores = torch.addmm(out_b.t(), top, out_w.t())
        value = ranking_loss(scores, loss, bpreg=bpreg, elu_param=elu_param,
                             logq_correction=logq_correction) / batch_size
        names = list(dense)
        grads = torch.autograd.grad(value, [dense[k] for k in names] + [leaf for _, _, leaf in leaves])
        with torch.no_grad():
            for k, g in zip(names, grads[:len(names)], strict=True):
                opt.dense(k, p[k], g)
            row_grads = [(table, index, g) for (table, index, _), g in zip(leaves, grads[len(names):], strict=True)]
            if self.mode == "constrained":  # input and output rows are the same table: one update
                (_, xi, gx), (_, yi, gy) = row_grads[:2]
                opt.rows("Wy", p["Wy"], xi, gx, yi, gy)
                row_grads = row_grads[2:]
            for table, index, g in row_grads:
                opt.rows(table, p[table], index, g)
        for k in names:
            p[k].requires_grad_(False)
        for i in range(len(H)):
            H[i] = H[i].detach()
        return float(value.detach())

    # ---------------------------------------------------------------- inference
    @torch.no_grad()
    def step(self, x: torch.Tensor, H: list[torch.Tensor]) -> torch.Tensor:
        """Feeds items ``x`` to the slots whose states are ``H`` (updated in place, as a list);
        returns the top layer's output, shape (len(x), layers[-1])."""
        p = self.params
        if self.mode == "constrained":
            first = p["Wy"].index_select(0, x)
        elif self.mode == "embedding":
            first = p["E"].index_select(0, x)
        else:
            first = self._gru_onehot(p["Wx0"].index_select(0, x) + p["Bh0"], H[0], p["Wrz0"], p["Wh0"])
            H[0] = first
        return self._layers(first, H, p, None)

    @torch.no_grad()
    def scores(self, top: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each row of the top layer's output."""
        return torch.addmm(self.params["By"].t(), top, self.params["Wy"].t())
