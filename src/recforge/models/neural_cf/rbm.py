r"""Restricted Boltzmann machine for collaborative filtering (Salakhutdinov, Mnih & Hinton 2007).

Salakhutdinov, Mnih & Hinton (2007), "Restricted Boltzmann machines for collaborative
filtering", ICML. One RBM per user, all sharing weights: a user who rated :math:`m` items has
:math:`m` softmax visible units (one per rated item, :math:`K` states = the rating levels),
:math:`F` binary hidden units, and unrated items have no visible unit at all.

.. math::
    p(v_i^k = 1 \mid h) = \frac{\exp(b_i^k + \sum_j h_j W_{ij}^k)}
                               {\sum_{l=1}^K \exp(b_i^l + \sum_j h_j W_{ij}^l)}  \quad (1)

    p(h_j = 1 \mid V) = \sigma\Big(b_j + \sum_{i} \sum_{k} v_i^k W_{ij}^k\Big)   \quad (2)

Learning follows contrastive divergence (eq. 5):
:math:`\Delta W_{ij}^k = \epsilon(\langle v_i^k h_j\rangle_{data} - \langle v_i^k h_j\rangle_T)`,
the second expectation after :math:`T` steps of Gibbs sampling started at the data, only over
the user's rated items. In :func:`cd_gradients` step :math:`t < T` samples the hidden units
(Bernoulli) and then the visible softmax units (one level per rated item); the last step
samples the hidden units and keeps the visible *probabilities* :math:`P_T` (the reconstruction),
whose hidden probabilities :math:`\sigma(b + \sum_{i,k} P_{T,ik} W_i^k)` give the negative
statistics — the variance-reducing choice of Hinton's practical guide (2010, §3). Positive
statistics use the hidden probabilities given the data. Updates average over the users of a
mini-batch, with momentum and weight decay on :math:`W` as in the paper (§2.2: momentum 0.9,
weight decay 0.001); :math:`T` may grow linearly over the epochs (``cd_k`` to ``cd_k_final``,
the paper's "T is gradually increased"). Visible biases start at the log of each item's
rating-level frequencies (smoothed), hidden biases at 0, weights :math:`N(0, 0.01^2)`.

Prediction (eq. 3): :math:`\hat p_j = p(h_j = 1 \mid V)` from the user's ratings, then
:math:`p(v_q^k = 1 \mid \hat p)` by (1) with :math:`\hat p` in place of :math:`h`; the
predicted rating is the expectation. All random draws come from the model's own
``torch.Generator``; every tensor is per mini-batch of users over their rated items only.

Variants (not in the paper, see :class:`RBM`): ``unrated="level"`` makes every item a visible
unit with "unrated" as one more state (the signal a top-N list needs); ``visible="value"`` uses
the rank-2 units of the Microsoft Recommenders RBM (one weight per item-hidden pair, the state
is the rating value, :math:`p(v_i=s\mid h)\propto e^{s\phi_i}`; :func:`cd_gradients_value`);
``optimizer="adam"`` descends the free-energy difference :math:`F(v^0)-F(v^T)` with Adam
instead of the paper's momentum update; ``keep_prob`` drops hidden units during training.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..base import register
from ..linear._common import check_int, check_positive
from ._ratings import RatingDistributionModel, RatingRows, check_ranking_score

logger = logging.getLogger(__name__)


class RBMParams(nn.Module):
    """The RBM's weights: ``W`` (n_items, K, F), visible biases ``bv`` (n_items, K), hidden
    biases ``bh`` (F,); with ``value_units`` (``visible="value"``) one weight per item-hidden
    pair, ``W`` (n_items, F) and ``bv`` (n_items,). Buffers, not parameters: CD updates them
    directly."""

    def __init__(self, n_items: int, n_levels: int, n_hidden: int, value_units: bool = False):
        super().__init__()
        w_shape = (n_items, n_hidden) if value_units else (n_items, n_levels, n_hidden)
        self.register_buffer("W", torch.zeros(*w_shape))
        self.register_buffer("bv", torch.zeros(n_items) if value_units else torch.zeros(n_items, n_levels))
        self.register_buffer("bh", torch.zeros(n_hidden))


def hidden_probs(W: torch.Tensor, bh: torch.Tensor, batch: RatingRows,
                 visible: torch.Tensor | None = None) -> torch.Tensor:
    r"""Eq. (2): :math:`\sigma(b_j + \sum_{i,k} v_i^k W_{ij}^k)` for each row of ``batch``:
    (n_rows, F). ``visible`` (n_entries, K) gives soft visible states; None: the one-hot data
    levels."""
    if visible is None:
        contrib = W[batch.items, batch.levels]  # (nnz, F)
    else:
        contrib = torch.einsum("nk,nkf->nf", visible, W[batch.items])
    pre = bh.expand(batch.n_rows, -1).clone()
    pre.index_add_(0, batch.rows, contrib)
    return torch.sigmoid(pre)


def visible_probs(W: torch.Tensor, bv: torch.Tensor, h: torch.Tensor, batch: RatingRows) -> torch.Tensor:
    """Eq. (1) at the rated entries of ``batch``: (n_entries, K) softmax over the levels."""
    logits = bv[batch.items] + torch.einsum("nkf,nf->nk", W[batch.items], h[batch.rows])
    return torch.softmax(logits, dim=1)


def sample_levels(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw of one level per row of ``probs`` (n, K) from ``uniforms`` (n,): the
    first level whose cumulative probability exceeds the uniform."""
    cum = torch.cumsum(probs, dim=1)
    return torch.searchsorted(cum, uniforms.unsqueeze(1), right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)


def cd_gradients(W: torch.Tensor, bv: torch.Tensor, bh: torch.Tensor, batch: RatingRows,
                 hidden_uniforms: list[torch.Tensor], visible_uniforms: list[torch.Tensor],
                 hidden_mask: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The CD-:math:`T` estimate of the log-likelihood gradient for a mini-batch of users,
    averaged over its rows (see the module docstring for the chain).

    ``hidden_uniforms``: :math:`T` tensors (n_rows, F) — hidden unit :math:`j` of row
    :math:`u` is on at step :math:`t` when its uniform is below its probability;
    ``visible_uniforms``: :math:`T - 1` tensors (n_entries,) for the visible draws
    (:func:`sample_levels`). ``hidden_mask`` (n_rows, F) of 0/1, optional: dropout of hidden
    units for this update (see :func:`cd_gradients_dense`). Returns ``(dW, dbv, dbh,
    reconstruction)``: gradients shaped as ``W``, ``bv``, ``bh`` and the (n_entries, K)
    reconstruction :math:`P_T`.
    """
    T = len(hidden_uniforms)
    if T < 1 or len(visible_uniforms) != T - 1:
        raise ValueError("cd_gradients needs T >= 1 hidden and T - 1 visible uniform tensors")
    n_items, K, F = W.shape
    keep = 1.0 if hidden_mask is None else hidden_mask.to(W.dtype)
    ph0 = hidden_probs(W, bh, batch) * keep
    ph = ph0
    levels = batch.levels
    recon = None
    for t in range(T):
        h = (hidden_uniforms[t] < ph).to(W.dtype)
        probs = visible_probs(W, bv, h, batch)
        if t < T - 1:
            levels = sample_levels(probs, visible_uniforms[t])
            ph = hidden_probs(W, bh, RatingRows(batch.rows, batch.items, levels, batch.n_rows)) * keep
        else:
            recon = probs
    phT = hidden_probs(W, bh, batch, visible=recon) * keep
    scale = 1.0 / max(batch.n_rows, 1)
    flat = W.reshape(n_items * K, F)
    dW = torch.zeros_like(flat)
    dW.index_add_(0, batch.items * K + batch.levels, ph0[batch.rows])
    dW = dW.view(n_items, K * F)
    neg = (recon.unsqueeze(2) * phT[batch.rows].unsqueeze(1)).reshape(-1, K * F)
    dW.index_add_(0, batch.items, neg, alpha=-1.0)
    data = torch.nn.functional.one_hot(batch.levels, K).to(W.dtype)
    dbv = torch.zeros_like(bv)
    dbv.index_add_(0, batch.items, data - recon)
    dbh = (ph0 - phT).sum(0)
    return dW.view(n_items, K, F) * scale, dbv * scale, dbh * scale, recon


def cd_gradients_dense(W: torch.Tensor, bv: torch.Tensor, bh: torch.Tensor, states: torch.Tensor,
                       hidden_uniforms: list[torch.Tensor], visible_uniforms: list[torch.Tensor],
                       hidden_mask: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`cd_gradients` when *every* item is a visible unit (``unrated="level"``): ``states``
    (n_rows, n_items) holds each unit's state (0 = unrated, ``k + 1`` = level ``k``), the
    visible uniforms are (n_rows, n_items). The same chain as :func:`cd_gradients` over all
    (row, item) entries in row-major order, written as dense matrix products of one mini-batch.
    ``hidden_mask`` (n_rows, F) of 0/1, optional: dropout of hidden units for this update (a
    dropped unit is off in every step of the chain and in both statistics; Srivastava et al.
    2014, §8). Returns ``(dW, dbv, dbh, reconstruction (n_rows, n_items, K + 1))``."""
    T = len(hidden_uniforms)
    if T < 1 or len(visible_uniforms) != T - 1:
        raise ValueError("cd_gradients_dense needs T >= 1 hidden and T - 1 visible uniform tensors")
    n_items, K, F = W.shape
    B = states.shape[0]
    flat = W.reshape(n_items * K, F)
    keep = torch.ones(B, F, dtype=W.dtype, device=W.device) if hidden_mask is None else hidden_mask.to(W.dtype)
    data = torch.nn.functional.one_hot(states, K).to(W.dtype)
    ph0 = torch.sigmoid(bh + data.reshape(B, -1) @ flat) * keep
    ph = ph0
    recon = None
    for t in range(T):
        h = (hidden_uniforms[t] < ph).to(W.dtype)
        probs = torch.softmax(bv + (h @ flat.T).view(B, n_items, K), dim=2)
        if t < T - 1:
            drawn = sample_levels(probs.reshape(-1, K), visible_uniforms[t].reshape(-1)).view(B, n_items)
            sampled = torch.nn.functional.one_hot(drawn, K).to(W.dtype)
            ph = torch.sigmoid(bh + sampled.reshape(B, -1) @ flat) * keep
        else:
            recon = probs
    phT = torch.sigmoid(bh + recon.reshape(B, -1) @ flat) * keep
    scale = 1.0 / max(B, 1)
    dW = data.reshape(B, -1).T @ ph0 - recon.reshape(B, -1).T @ phT
    return (dW.view(n_items, K, F) * scale, (data - recon).sum(0) * scale, (ph0 - phT).sum(0) * scale,
            recon)


def value_probs(phi: torch.Tensor, state_values: torch.Tensor) -> torch.Tensor:
    r""":math:`p(v_i = s \mid h) \propto \exp(s\,\phi_i)` over the unit's states ``state_values``
    (S,) for input activations ``phi`` (..., ) -> (..., S)."""
    return torch.softmax(phi.unsqueeze(-1) * state_values, dim=-1)


def cd_gradients_value(W: torch.Tensor, bv: torch.Tensor, bh: torch.Tensor, values: torch.Tensor,
                       units: torch.Tensor, state_values: torch.Tensor,
                       hidden_uniforms: list[torch.Tensor], visible_uniforms: list[torch.Tensor],
                       hidden_mask: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The CD-:math:`T` estimate for *value* units (``visible="value"``), dense over a
    mini-batch: the gradient of :math:`-(F(v^0) - F(v^T))`, the free-energy difference
    :math:`F(v) = -\sum_i v_i b_i - \sum_j \log(1 + e^{b_j + \sum_i v_i W_{ij}})`.

    ``values`` (n_rows, n_items): each unit's value in the data (0 where unrated);
    ``units`` (n_rows, n_items) bool: which entries are visible units (the rated ones with
    ``unrated="ignore"`` — the rest stay 0 through the chain; every entry with
    ``unrated="level"``); ``state_values`` (S,): the values a unit can take. The chain: step
    :math:`t < T` samples :math:`h` (Bernoulli, ``hidden_uniforms[t]`` (n_rows, F)) then every
    unit's state by inverse CDF from ``visible_uniforms[t]`` (n_rows, n_items); the last step
    keeps the mean values :math:`\bar v^T_i = \sum_s s\,p(v_i=s\mid h)` (mean field, as the
    softmax chain keeps probabilities), whose hidden probabilities give the negative statistics.
    ``hidden_mask`` as in :func:`cd_gradients_dense`. Returns ``(dW (n_items, F), dbv
    (n_items,), dbh (F,), reconstruction (n_rows, n_items, S))``, averaged over the rows."""
    T = len(hidden_uniforms)
    if T < 1 or len(visible_uniforms) != T - 1:
        raise ValueError("cd_gradients_value needs T >= 1 hidden and T - 1 visible uniform tensors")
    B, F = values.shape[0], W.shape[1]
    keep = torch.ones(B, F, dtype=W.dtype, device=W.device) if hidden_mask is None else hidden_mask.to(W.dtype)
    unit = units.to(W.dtype)
    v0 = values * unit
    ph0 = torch.sigmoid(bh + v0 @ W) * keep
    ph = ph0
    recon = None
    for t in range(T):
        h = (hidden_uniforms[t] < ph).to(W.dtype)
        probs = value_probs(bv + h @ W.T, state_values)
        if t < T - 1:
            drawn = sample_levels(probs.reshape(-1, probs.shape[-1]), visible_uniforms[t].reshape(-1))
            vt = state_values[drawn].view(B, -1) * unit
            ph = torch.sigmoid(bh + vt @ W) * keep
        else:
            recon = probs
    vT = (recon @ state_values) * unit
    phT = torch.sigmoid(bh + vT @ W) * keep
    scale = 1.0 / max(B, 1)
    dW = v0.T @ ph0 - vT.T @ phT
    return dW * scale, (v0 - vT).sum(0) * scale, (ph0 - phT).sum(0) * scale, recon


def momentum_step(param: torch.Tensor, velocity: torch.Tensor, grad: torch.Tensor, lr: float,
                  momentum: float, weight_decay: float = 0.0) -> None:
    r"""In place: :math:`\Delta \leftarrow \mu \Delta + \epsilon(g - \lambda\theta)`,
    :math:`\theta \leftarrow \theta + \Delta` (gradient *ascent* on the log-likelihood)."""
    velocity.mul_(momentum).add_(grad - weight_decay * param, alpha=lr)
    param.add_(velocity)


@register("RBM")
class RBM(RatingDistributionModel):
    r"""RBM for ratings (Salakhutdinov, Mnih & Hinton 2007), with softmax or value visible units.

    Parameters
    ----------
    n_hidden : int, default 100
        Binary hidden units :math:`F`.
    epochs : int, default 30
    batch_size : int, default 100
        Users per CD update.
    learning_rate : float, default 0.01
        :math:`\epsilon` of the batch-averaged CD gradient (Adam's step size with
        ``optimizer="adam"``).
    momentum : float, default 0.9
        Used by ``optimizer="momentum"`` only.
    weight_decay : float, default 0.001
        L2 decay of :math:`W` (not of the biases).
    cd_k : int, default 1
        Gibbs steps :math:`T` in the first epoch.
    cd_k_final : int, optional
        :math:`T` in the last epoch, reached linearly (None: ``cd_k`` throughout).
    init_std : float, default 0.01
    ranking_score : {"expected", "mode", "rated", "joint"}, default "expected"
        Score of a list (see :mod:`recforge.models.neural_cf._ratings`); "rated" (the
        probability that the user rates the item) and "joint" (the expected rating, "unrated"
        counting 0) need ``unrated="level"``.
    unrated : {"ignore", "level"}, default "ignore"
        "ignore" is the paper's model: a user's unrated items have no visible unit. "level" is
        our variant for top-N lists (not the paper's): every item is a visible unit and
        "unrated" is one more state (value 0), so the model also learns *which* items a user
        rates — the signal a ranking needs and the paper's model does not have. Trained by the
        same CD chain over all items of a mini-batch of users (:func:`cd_gradients_dense`,
        :func:`cd_gradients_value`); predicted ratings are then conditioned on a rating.
    visible : {"softmax", "value"}, default "softmax"
        "softmax" is the paper's unit: :math:`K` binary indicators with their own weights
        :math:`W_{ij}^k` (eq. 1-2). "value" is the rank-2 unit of the Microsoft Recommenders RBM
        (a variant of the paper's model, not in it): one weight :math:`W_{ij}` per item-hidden
        pair, the unit's state is the rating value :math:`v_i` itself (0 = unrated),
        :math:`p(h_j=1\mid v)=\sigma(b_j+\sum_i v_iW_{ij})` and
        :math:`p(v_i=s\mid h)\propto\exp(s\,\phi_i)`, :math:`\phi_i=b_i+\sum_jW_{ij}h_j`, over the
        training levels (plus 0 with ``unrated="level"``; that library excludes 0 and keeps
        unrated entries at 0, i.e. ``unrated="ignore"``). Trained by
        :func:`cd_gradients_value`. As :math:`\exp(s\phi)` is monotone in :math:`s`, the most
        probable state is always the lowest or the highest one.
    optimizer : {"momentum", "adam"}, default "momentum"
        "momentum": the paper's update (:func:`momentum_step`). "adam": Adam (Kingma & Ba 2015)
        on the same CD estimate, i.e. descent on the free-energy difference
        :math:`F(v^0) - F(v^T)` as that library trains its RBM (``weight_decay`` added to
        :math:`W`'s gradient).
    keep_prob : float, default 1.0
        Dropout of hidden units during training (Srivastava et al. 2014, §8: each update drops a
        unit for a user with probability ``1 - keep_prob``, through the whole chain); 1: none.
        Not used at prediction.
    patience : int, optional
        With ``validation`` in ``fit``: stop after this many epochs without a lower
        validation RMSE (the weights of the best epoch are kept).
    random_state : int, optional, default 0
        Seeds initialisation, user shuffling and every Gibbs draw (torch/NumPy generators
        spawned from one ``SeedSequence``; the global generators are not touched).
    device : str, default "cpu"
    verbose : bool, default False

    Scores are deterministic: a list ranks by a score of the predicted distribution given the
    user's *training* ratings (the Microsoft library's ``recommend_k_items`` multiplies a
    *sampled* rating by the largest probability; ``ranking_score="mode"`` is its deterministic
    form).

    Attributes
    ----------
    params_ : RBMParams
    levels_ : ndarray (K,), the rating values of the levels
    history_ : dict (epoch, train_loss = RMSE of the reconstruction's expected rating on the
        rated entries, seconds, cd_k, val_rmse with validation)
    """

    _torch_modules: ClassVar[tuple[str, ...]] = ("params_",)

    def __init__(self, n_hidden: int = 100, epochs: int = 30, batch_size: int = 100,
                 learning_rate: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.001,
                 cd_k: int = 1, cd_k_final: int | None = None, init_std: float = 0.01,
                 ranking_score: str = "expected", unrated: str = "ignore", visible: str = "softmax",
                 optimizer: str = "momentum", keep_prob: float = 1.0,
                 patience: int | None = None, random_state: int | None = 0, device: str = "cpu",
                 verbose: bool = False):
        self.n_hidden = n_hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.cd_k = cd_k
        self.cd_k_final = cd_k_final
        self.init_std = init_std
        self.ranking_score = ranking_score
        self.unrated = unrated
        self.visible = visible
        self.optimizer = optimizer
        self.keep_prob = keep_prob
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _check_params(self) -> None:
        owner = "RBM"
        check_int(owner, "n_hidden", self.n_hidden)
        check_int(owner, "epochs", self.epochs, 0)
        check_int(owner, "batch_size", self.batch_size)
        check_positive(owner, "learning_rate", self.learning_rate)
        check_positive(owner, "weight_decay", self.weight_decay, allow_zero=True)
        check_positive(owner, "init_std", self.init_std, allow_zero=True)
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ValueError(f"RBM: momentum must be in [0, 1), got {self.momentum!r}")
        if not 0.0 < float(self.keep_prob) <= 1.0:
            raise ValueError(f"RBM: keep_prob must be in (0, 1], got {self.keep_prob!r}")
        check_int(owner, "cd_k", self.cd_k)
        check_int(owner, "cd_k_final", self.cd_k_final, allow_none=True)
        check_int(owner, "patience", self.patience, allow_none=True)
        if self.unrated not in ("ignore", "level"):
            raise ValueError(f"RBM: unrated must be 'ignore' or 'level', got {self.unrated!r}")
        if self.visible not in ("softmax", "value"):
            raise ValueError(f"RBM: visible must be 'softmax' or 'value', got {self.visible!r}")
        if self.optimizer not in ("momentum", "adam"):
            raise ValueError(f"RBM: optimizer must be 'momentum' or 'adam', got {self.optimizer!r}")
        check_ranking_score(owner, self.ranking_score, presence=self.unrated == "level")

    def _has_unrated_state(self) -> bool:
        return self.unrated == "level"

    def _value_units(self) -> bool:
        return getattr(self, "visible", "softmax") == "value"

    def _state_values(self, device) -> torch.Tensor:
        """Values of a value unit's states: the levels, led by 0 ("unrated") with ``"level"``."""
        vals = np.asarray(self.levels_, dtype=np.float64)
        if self._has_unrated_state():
            vals = np.concatenate([[0.0], vals])
        return torch.as_tensor(vals, dtype=torch.float32, device=device)

    def _build_modules(self) -> None:
        K = len(self.levels_) + (1 if self._has_unrated_state() else 0)
        self.params_ = RBMParams(self.n_items_, K, int(self.n_hidden),
                                 value_units=self._value_units()).to(self._device())

    def _steps(self, epoch: int) -> int:
        """Gibbs steps of ``epoch`` (1-based): ``cd_k`` rising linearly to ``cd_k_final``."""
        if self.cd_k_final is None or int(self.epochs) <= 1:
            return int(self.cd_k)
        frac = (epoch - 1) / (int(self.epochs) - 1)
        return int(round(int(self.cd_k) + frac * (int(self.cd_k_final) - int(self.cd_k))))

    # ------------------------------------------------------------------ training
    def _init_weights(self, init_gen: torch.Generator) -> None:
        """softmax units: visible biases at the log of each item's add-one smoothed state
        frequencies; value units: at 0 (``"ignore"``), or at the logit of the item's rating rate
        (``"level"``, so that "unrated" starts about as likely as in the data). Hidden biases 0,
        weights :math:`N(0, \\text{init\\_std}^2)`."""
        p, n = self.params_, self.n_items_
        shift = 1 if self._has_unrated_state() else 0
        K = len(self.levels_) + shift
        counts = np.zeros((n, K))
        np.add.at(counts, (self.rows_items_, self.rows_levels_ + shift), 1.0)
        n_users = np.count_nonzero(np.diff(self.rows_indptr_))
        if shift:  # "unrated" is a state of every item for every user with ratings
            counts[:, 0] = n_users - counts[:, 1:].sum(1)
        with torch.no_grad():
            p.W.copy_(torch.randn(*p.W.shape, generator=init_gen) * float(self.init_std))
            p.bh.zero_()
            if self._value_units():
                rate = (counts[:, shift:].sum(1) + 1.0) / (n_users + 2.0)
                p.bv.copy_(torch.from_numpy(np.log(rate / (1 - rate)) if shift else np.zeros(n)).float())
            else:
                base = (counts + 1.0) / (counts.sum(1, keepdims=True) + K)  # add-one smoothed
                p.bv.copy_(torch.from_numpy(np.log(base)).float())

    def _fit_net(self, train, validate) -> None:
        streams = self._seed_streams()  # fixed order: init, Gibbs draws, shuffling
        init_gen = streams.torch("cpu")
        device = self._device()
        gibbs = streams.torch(device)
        rng = streams.numpy()
        dense = self._has_unrated_state()
        value = self._value_units()
        if value and dense and np.any(np.asarray(self.levels_) == 0):
            raise ValueError("RBM: visible='value' with unrated='level' needs non-zero rating values "
                             "(0 is the 'unrated' state)")
        F, n = int(self.n_hidden), self.n_items_
        self._build_modules()
        self._init_weights(init_gen)
        p = self.params_
        adam = torch.optim.Adam([p.W, p.bv, p.bh], lr=float(self.learning_rate)) \
            if self.optimizer == "adam" else None
        vel = {name: torch.zeros_like(t) for name, t in (("W", p.W), ("bv", p.bv), ("bh", p.bh))}
        indptr, items, levels = self.rows_indptr_, self.rows_items_, self.rows_levels_
        values = torch.as_tensor(self.levels_, dtype=torch.float32, device=device)
        states = self._state_values(device)
        users = np.flatnonzero(np.diff(indptr) > 0)
        lr, mom, wd = float(self.learning_rate), float(self.momentum), float(self.weight_decay)
        keep_prob = float(self.keep_prob)
        bs = int(self.batch_size)

        def update(dW, dbv, dbh) -> None:
            if adam is None:
                momentum_step(p.W, vel["W"], dW, lr, mom, wd)
                momentum_step(p.bv, vel["bv"], dbv, lr, mom)
                momentum_step(p.bh, vel["bh"], dbh, lr, mom)
                return
            p.W.grad = wd * p.W - dW  # ascent on the likelihood = descent on F(v0) - F(vT)
            p.bv.grad = -dbv
            p.bh.grad = -dbh
            adam.step()

        def train_epoch(epoch: int, loop) -> dict:
            T = self._steps(epoch)
            order = users[rng.permutation(users.size)]
            sq, count = 0.0, 0
            for b in range(0, order.size, bs):
                sel = order[b:b + bs]
                lengths = indptr[sel + 1] - indptr[sel]
                sub_ptr = np.concatenate([[0], np.cumsum(lengths)])
                src = np.repeat(indptr[sel] - sub_ptr[:-1], lengths) + np.arange(sub_ptr[-1])
                batch = RatingRows.from_csr(sub_ptr, items[src], levels[src], device)
                hu = [torch.rand(sel.size, F, generator=gibbs, device=device) for _ in range(T)]
                shape = (sel.size, n) if (dense or value) else (src.size,)
                vu = [torch.rand(*shape, generator=gibbs, device=device) for _ in range(T - 1)]
                mask = None if keep_prob >= 1.0 else \
                    torch.rand(sel.size, F, generator=gibbs, device=device) < keep_prob
                with torch.no_grad():
                    if value:
                        vals = torch.zeros(sel.size, n, device=device)
                        vals[batch.rows, batch.items] = values[batch.levels]
                        units = torch.ones(sel.size, n, dtype=torch.bool, device=device) if dense \
                            else vals != 0
                        if not dense:
                            units[batch.rows, batch.items] = True
                        dW, dbv, dbh, full = cd_gradients_value(p.W, p.bv, p.bh, vals, units, states,
                                                                hu, vu, mask)
                        rated = full[batch.rows, batch.items]
                        recon = rated[:, 1:] / rated[:, 1:].sum(1, keepdim=True) if dense else rated
                    elif dense:
                        st = torch.zeros(sel.size, n, dtype=torch.long, device=device)
                        st[batch.rows, batch.items] = batch.levels + 1
                        dW, dbv, dbh, full = cd_gradients_dense(p.W, p.bv, p.bh, st, hu, vu, mask)
                        rated = full[batch.rows, batch.items]
                        recon = rated[:, 1:] / rated[:, 1:].sum(1, keepdim=True)
                    else:
                        dW, dbv, dbh, recon = cd_gradients(p.W, p.bv, p.bh, batch, hu, vu, mask)
                    update(dW, dbv, dbh)
                    err = recon @ values - values[batch.levels]
                sq += float((err * err).sum())
                count += src.size
            return {"train_loss": loop.check_finite(float(np.sqrt(sq / max(count, 1)))), "cd_k": T}

        loop = self._loop(validate)
        self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                 set_state=self._set_torch_state,
                                 on_epoch_end=lambda r: logger.info("RBM epoch %d: %s", r["epoch"], r))
        self.best_epoch_ = loop.best_epoch

    # ------------------------------------------------------------------ inference
    def _hidden(self, batch: RatingRows) -> torch.Tensor:
        W, bh = self.params_.W, self.params_.bh
        if self._value_units():  # unrated items have value 0: only the ratings count
            vals = torch.as_tensor(self.levels_, dtype=W.dtype, device=W.device)[batch.levels]
            pre = bh.expand(batch.n_rows, -1).clone()
            pre.index_add_(0, batch.rows, W[batch.items] * vals.unsqueeze(1))
            return torch.sigmoid(pre)
        if not self._has_unrated_state():
            return hidden_probs(W, bh, batch)
        # every item starts "unrated"; a rating swaps that state's weights for its level's
        pre = (bh + W[:, 0].sum(0)).expand(batch.n_rows, -1).clone()
        pre.index_add_(0, batch.rows, W[batch.items, batch.levels + 1] - W[batch.items, 0])
        return torch.sigmoid(pre)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        # float64: a row's scores must not depend on the other rows of its batch
        W, bv = self.params_.W.double(), self.params_.bv.double()
        if self._value_units():
            phi = h.double() @ W.T + bv
            return phi.unsqueeze(-1) * self._state_values(W.device).double()
        n, K, F = W.shape
        return (h.double() @ W.reshape(n * K, F).T).view(h.shape[0], n, K) + bv
