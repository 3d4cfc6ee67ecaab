r"""CF-NADE: a neural autoregressive distribution estimator for ratings (Zheng et al. 2016).

Zheng, Tang, Ding & Zhou (2016), "A neural autoregressive approach to collaborative
filtering", ICML. A user's ratings :math:`\mathbf r_o` of items :math:`o = (o_1, \dots, o_D)`
in some ordering are modelled as :math:`p(\mathbf r_o) = \prod_i p(r_{o_i} \mid
\mathbf r_{o_{<i}})`, each conditional a softmax over the :math:`K` rating levels fed by a
hidden vector of the ratings before it. With the paper's sharing of parameters between rating
levels (§3.2, eq. 10-11) — a rating :math:`k` also activates the weights of every level below
it, and the score of level :math:`k` accumulates those of the levels up to it:

.. math::
    \mathbf h(\mathbf r_{o_{<i}}) = \tanh\Big(\mathbf c + \sum_{j<i} \sum_{k=1}^{r_{o_j}}
        W^k_{:, o_j}\Big), \qquad
    s^k_{o_i} = \sum_{j \le k} \big(b^j_{o_i} + V^j_{o_i,:}\, \mathbf h(\mathbf r_{o_{<i}})\big),
    \qquad p(r_{o_i} = k \mid \mathbf r_{o_{<i}}) = \frac{e^{s^k_{o_i}}}{\sum_{k'} e^{s^{k'}_{o_i}}}.

Training minimises, for one ordering drawn at random per user and epoch (§3.1), the hybrid
cost of §3.3 (eq. 12-14): :math:`(1-\lambda) C_{reg} + \lambda C_{ord}`, with
:math:`C_{reg} = -\sum_i \log p(r_{o_i} \mid \mathbf r_{o_{<i}})` and the ordinal cost, for a
true rating :math:`k`,

.. math::
    C_{ord} = -\sum_{j=k}^{1} \log \frac{e^{s^j}}{\sum_{t=1}^{j} e^{s^t}}
              -\sum_{j=k}^{K} \log \frac{e^{s^j}}{\sum_{t=j}^{K} e^{s^t}},

(the two rankings :math:`k \succ k-1 \succ \dots \succ 1` and :math:`k \succ k+1 \succ \dots
\succ K`), averaged over the ratings of a mini-batch of users; Adam with L2 weight decay as in
the paper (§5). The hidden vectors of all positions come from one exclusive cumulative sum
along the ordering, so an ordering of :math:`D` ratings costs :math:`O(DHK)`.

The predicted rating of an unrated item given all of a user's ratings is the expectation of
:math:`p(r_q = k \mid \mathbf r_o)` (§3.1, eq. 6; the hidden vector does not depend on the
ordering of the conditioning ratings).

**Top-N lists** (``unrated="level"``, our variant, not the paper's). The paper models the
ratings a user gave, not *which* items a user rates, so a list ranked by expected rating puts
rarely rated, highly rated items first. With ``unrated="level"`` every item of the catalogue
is a position of each user's ordering and "unrated" is one more level, the lowest one (level
0, below the lowest rating: the ordinal sharing of eq. 10-11 and the ordinal cost then read
"not rated" as "rated below 1"). A list ranks by the probability that the user rates the item,
:math:`1 - p(r_q = \text{unrated} \mid \mathbf r)` (``ranking_score="rated"``), or by the
expected rating with "unrated" counting 0 (``"joint"``), the conditioning history being every
item's training state (the query item's own state, "unrated", included: one of
``n_items`` terms). Predicted ratings are conditioned on a rating. The cost of an epoch grows
from :math:`O(\text{ratings} \cdot HK)` to :math:`O(\text{users} \cdot \text{items} \cdot HK)`.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..base import register
from ..linear._common import check_int, check_positive
from ..neural import isolated_global_rng
from ._ratings import RatingDistributionModel, RatingRows, check_ranking_score

logger = logging.getLogger(__name__)


class CFNADENet(nn.Module):
    """CF-NADE's parameters before sharing: ``W`` (K, n_items, H) input weights, ``c`` (H,),
    ``V`` (K, n_items, H) output weights, ``b`` (K, n_items) output biases."""

    def __init__(self, n_items: int, n_levels: int, n_hidden: int):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(n_levels, n_items, n_hidden))
        self.c = nn.Parameter(torch.zeros(n_hidden))
        self.V = nn.Parameter(torch.zeros(n_levels, n_items, n_hidden))
        self.b = nn.Parameter(torch.zeros(n_levels, n_items))

    def reset_parameters(self, generator: torch.Generator, std: float) -> None:
        with torch.no_grad():
            self.W.normal_(0.0, std, generator=generator)
            self.V.normal_(0.0, std, generator=generator)
            self.c.zero_()
            self.b.zero_()

    def input_weights(self) -> torch.Tensor:
        r"""Shared input weights :math:`\sum_{k' \le k} W^{k'}`: (K, n_items, H)."""
        return torch.cumsum(self.W, dim=0)

    def scores(self, h: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        r""":math:`s^k` for hidden vectors ``h`` (n, H): at ``items`` (n,) -> (n, K), or at
        every item (``items`` None) -> (n, n_items, K)."""
        if items is None:
            per_level = torch.einsum("nh,kih->nik", h, self.V) + self.b.T
        else:
            per_level = torch.einsum("nh,knh->nk", h, self.V[:, items]) + self.b[:, items].T
        return torch.cumsum(per_level, dim=-1)


def ordered_hidden(net: CFNADENet, batch: RatingRows, order_keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The hidden vector before each rating in each row's ordering.

    Entries are ordered within their row by ``order_keys`` (ascending). Returns ``(perm, h)``:
    ``perm`` (n_entries,) lists the entries row by row in that order, and ``h[e]`` (H,) is
    :math:`\mathbf h(\mathbf r_{o_{<i}})` for the entry ``perm[e]`` at position :math:`i`."""
    # sort by row, then by key: the row is the major key of a stable sort on the keys
    perm = torch.argsort(order_keys, stable=True)
    perm = perm[torch.argsort(batch.rows[perm], stable=True)]
    rows = batch.rows[perm]
    contrib = net.input_weights()[batch.levels[perm], batch.items[perm]]  # (nnz, H)
    # exclusive cumulative sum within each row, from one flat running sum (float64, so that
    # subtracting the sum of the rows before loses nothing)
    running = torch.cumsum(contrib.double(), dim=0) - contrib.double()
    counts = torch.bincount(rows, minlength=batch.n_rows)
    starts = torch.cumsum(counts, 0) - counts
    before = (running - running[starts[rows]]).to(contrib.dtype)
    return perm, torch.tanh(net.c + before)


def cfnade_loss(net: CFNADENet, batch: RatingRows, order_keys: torch.Tensor,
                ordinal_weight: float = 0.0) -> torch.Tensor:
    r"""The hybrid cost :math:`(1-\lambda) C_{reg} + \lambda C_{ord}` (eq. 14) of the batch's
    ratings in the orderings given by ``order_keys``, averaged over the ratings."""
    perm, h = ordered_hidden(net, batch, order_keys)
    s = net.scores(h, batch.items[perm])  # (nnz, K)
    target = batch.levels[perm]
    return _hybrid_cost(s, target, ordinal_weight)


def _hybrid_cost(s: torch.Tensor, target: torch.Tensor, ordinal_weight: float) -> torch.Tensor:
    """Eq. 14 averaged over the rows of ``s`` (n, K) with true levels ``target`` (n,)."""
    log_p = torch.log_softmax(s, dim=1)
    reg = -log_p.gather(1, target[:, None]).squeeze(1)
    if ordinal_weight == 0.0:
        return reg.mean()
    K = s.shape[1]
    levels = torch.arange(K, device=s.device)
    # level j vs those below it (j <= k) and vs those above it (j >= k)
    up = s - torch.logcumsumexp(s, dim=1)
    down = s - torch.flip(torch.logcumsumexp(torch.flip(s, [1]), dim=1), [1])
    below = (levels[None, :] <= target[:, None]).to(s.dtype)
    above = (levels[None, :] >= target[:, None]).to(s.dtype)
    ordinal = -(up * below).sum(1) - (down * above).sum(1)
    return ((1.0 - ordinal_weight) * reg + ordinal_weight * ordinal).mean()


def cfnade_loss_full(net: CFNADENet, states: torch.Tensor, order_keys: torch.Tensor,
                     ordinal_weight: float = 0.0) -> torch.Tensor:
    r""":func:`cfnade_loss` when every row covers *every* item (``unrated="level"``): ``states``
    (n_rows, n_items) holds each item's level, ``order_keys`` (n_rows, n_items) the ordering.
    The same cost, computed with the rows as a dense (n_rows, n_items, H) block so that the
    output weights are read once per batch instead of gathered per entry."""
    B, n = states.shape
    IW = net.input_weights()  # (K, n, H)
    contrib = IW[states, torch.arange(n, device=states.device)]  # (B, n, H) in item order
    perm = torch.argsort(order_keys, dim=1, stable=True)
    index = perm.unsqueeze(-1).expand(-1, -1, contrib.shape[-1])
    ordered = contrib.gather(1, index).double()
    before = (torch.cumsum(ordered, dim=1) - ordered).to(contrib.dtype)  # exclusive, per row
    h = torch.empty_like(contrib).scatter(1, index, torch.tanh(net.c + before))  # item order
    s = torch.cumsum(torch.einsum("bnh,knh->bnk", h, net.V) + net.b.T, dim=-1)
    return _hybrid_cost(s.reshape(B * n, -1), states.reshape(-1), ordinal_weight)


@register("CFNADE")
class CFNADE(RatingDistributionModel):
    r"""CF-NADE for rating prediction (Zheng et al. 2016), one hidden layer, shared weights.

    Parameters
    ----------
    n_hidden : int, default 500
    epochs : int, default 30
    batch_size : int, default 64
        Users per Adam step.
    learning_rate : float, default 1e-3
    weight_decay : float, default 0.0
        Adam's L2 penalty on every parameter (the paper's weight decay).
    ordinal_weight : float, default 1.0
        :math:`\lambda` of the hybrid cost (0: the plain negative log-likelihood).
    init_std : float, default 0.01
    ranking_score : {"expected", "mode", "rated", "joint"}, default "expected"
        See :mod:`recforge.models.neural_cf._ratings`; "rated" and "joint" need
        ``unrated="level"``.
    unrated : {"ignore", "level"}, default "ignore"
        "ignore": the paper's model (a user's ordering covers the rated items only). "level":
        our top-N variant (module docstring): every item is a position, "unrated" the lowest
        level.
    patience : int, optional
        With ``validation`` in ``fit``: early stopping on validation RMSE.
    random_state : int, optional, default 0
        Seeds initialisation, shuffling and the orderings (generators spawned from one
        ``SeedSequence``).
    device : str, default "cpu"
    verbose : bool, default False
    """

    _torch_modules: ClassVar[tuple[str, ...]] = ("net_",)

    def __init__(self, n_hidden: int = 500, epochs: int = 30, batch_size: int = 64,
                 learning_rate: float = 1e-3, weight_decay: float = 0.0, ordinal_weight: float = 1.0,
                 init_std: float = 0.01, ranking_score: str = "expected", unrated: str = "ignore",
                 patience: int | None = None, random_state: int | None = 0, device: str = "cpu",
                 verbose: bool = False):
        self.n_hidden = n_hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.ordinal_weight = ordinal_weight
        self.init_std = init_std
        self.ranking_score = ranking_score
        self.unrated = unrated
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> None:
        owner = "CFNADE"
        check_int(owner, "n_hidden", self.n_hidden)
        check_int(owner, "epochs", self.epochs, 0)
        check_int(owner, "batch_size", self.batch_size)
        check_positive(owner, "learning_rate", self.learning_rate)
        check_positive(owner, "weight_decay", self.weight_decay, allow_zero=True)
        check_positive(owner, "init_std", self.init_std, allow_zero=True)
        if not 0.0 <= float(self.ordinal_weight) <= 1.0:
            raise ValueError(f"CFNADE: ordinal_weight must be in [0, 1], got {self.ordinal_weight!r}")
        check_int(owner, "patience", self.patience, allow_none=True)
        if self.unrated not in ("ignore", "level"):
            raise ValueError(f"CFNADE: unrated must be 'ignore' or 'level', got {self.unrated!r}")
        check_ranking_score(owner, self.ranking_score, presence=self.unrated == "level")

    def _has_unrated_state(self) -> bool:
        return getattr(self, "unrated", "ignore") == "level"

    def _build_modules(self) -> None:
        K = len(self.levels_) + (1 if self._has_unrated_state() else 0)
        with isolated_global_rng():
            self.net_ = CFNADENet(self.n_items_, K, int(self.n_hidden)).to(self._device())

    def _fit_net(self, train, validate) -> None:
        streams = self._seed_streams()  # fixed order: init, orderings, shuffling
        init_gen = streams.torch("cpu")
        device = self._device()
        order_gen = streams.torch(device)
        rng = streams.numpy()
        self._build_modules()
        self.net_.cpu().reset_parameters(init_gen, float(self.init_std))
        self.net_.to(device)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=float(self.learning_rate),
                                     weight_decay=float(self.weight_decay))
        indptr, items, levels = self.rows_indptr_, self.rows_items_, self.rows_levels_
        users = np.flatnonzero(np.diff(indptr) > 0)
        bs, lam = int(self.batch_size), float(self.ordinal_weight)
        dense, n = self._has_unrated_state(), self.n_items_

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            order = users[rng.permutation(users.size)]
            total, count = 0.0, 0
            for b in range(0, order.size, bs):
                sel = order[b:b + bs]
                lengths = indptr[sel + 1] - indptr[sel]
                sub_ptr = np.concatenate([[0], np.cumsum(lengths)])
                src = np.repeat(indptr[sel] - sub_ptr[:-1], lengths) + np.arange(sub_ptr[-1])
                if dense:  # every item a position: 0 = unrated, k + 1 = level k
                    states = np.zeros((sel.size, n), np.int64)
                    states[np.repeat(np.arange(sel.size), lengths), items[src]] = levels[src] + 1
                    keys = torch.rand(sel.size, n, generator=order_gen, device=device)
                    loss = cfnade_loss_full(self.net_, torch.from_numpy(states).to(device), keys, lam)
                    size = states.size
                else:
                    batch = RatingRows.from_csr(sub_ptr, items[src], levels[src], device)
                    keys = torch.rand(src.size, generator=order_gen, device=device)
                    loss = cfnade_loss(self.net_, batch, keys, lam)
                    size = src.size
                total += loop.step(loss, optimizer, self.net_.parameters()) * size
                count += size
            return total / max(count, 1)

        loop = self._loop(validate)
        try:
            self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                     set_state=self._set_torch_state,
                                     on_epoch_end=lambda r: logger.info("CFNADE epoch %d: %s", r["epoch"], r))
        finally:
            self.net_.eval()
        self.best_epoch_ = loop.best_epoch

    def _hidden(self, batch: RatingRows) -> torch.Tensor:
        weights = self.net_.input_weights()
        if self._has_unrated_state():  # every item starts "unrated"; a rating swaps its weights
            pre = (self.net_.c + weights[0].sum(0)).expand(batch.n_rows, -1).clone()
            contrib = weights[batch.levels + 1, batch.items] - weights[0, batch.items]
        else:
            pre = self.net_.c.expand(batch.n_rows, -1).clone()
            contrib = weights[batch.levels, batch.items]
        pre.index_add_(0, batch.rows, contrib)
        return torch.tanh(pre)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        # float64: a row's scores must not depend on the other rows of its batch
        net = self.net_
        per_level = torch.einsum("nh,kih->nik", h.double(), net.V.double()) + net.b.double().T
        return torch.cumsum(per_level, dim=-1)
