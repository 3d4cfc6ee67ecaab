"""Mult-DAE and Mult-VAE: autoencoders of a user's interaction row with a multinomial likelihood
(Liang, Krishnan, Hoffman & Jebara, "Variational autoencoders for collaborative filtering",
WWW 2018).

A user is their row of clicks :math:`x_u \\in \\{0, 1\\}^I`: the row is L2-normalised, dropped out
(the input noise of the denoising view), encoded, decoded into logits over the catalogue, and
scored by the multinomial log-likelihood :math:`\\sum_i x_{ui} \\log \\pi_i(z_u)` with
:math:`\\pi = \\mathrm{softmax}` (eq. 2). Scoring a history needs no user parameter, so any row —
a known user's, a new user's or an anonymous one — is scored the same way (``FOLD_IN`` is
native). Training reads batches of CSR rows; only ``batch_size x n_items`` floats are on the
device at a time.

:class:`RowAutoencoder` is the shared base (batches of rows, epoch loop with validation NDCG@k
early stopping, scoring, item and query vectors); :class:`MultDAE` and :class:`MultVAE` add
their networks and losses, and :class:`~recforge.models.neural_cf.cdae.CDAE` builds on it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ...metrics.ranking import ndcg_at_k, recall_at_k
from ...topk import mask_rows, topk_rows
from ..base import EMBEDDINGS, FOLD_IN, RANKING, Recommender, register
from ..neural import (
    NeuralModel,
    TrainingLoop,
    attach_generator,
    isolated_global_rng,
)
from ..query import FallbackLog, History
from ._batches import RowBatch, binary_rows, row_batch, row_batches

logger = logging.getLogger(__name__)

#: Rows scored at once (scores are ``chunk x n_items`` floats).
SCORE_CHUNK = 1024


def _adam(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    r"""Adam (Kingma & Ba 2015) over parameter groups (each with its ``weight_decay``: L2 added to
    the gradient, :math:`g + wd\,\theta`, the gradient of :math:`\tfrac{wd}{2}\lVert\theta
    \rVert^2`), with torch's fused kernel where the device has one (one pass over each parameter
    instead of several; about 3x faster steps on CPU), else the default implementation."""
    groups = [g for g in groups if g["params"]]
    try:
        return torch.optim.Adam(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):  # pragma: no cover - a device without the fused kernel
        return torch.optim.Adam(groups, lr=lr)


class RowAutoencoder(NeuralModel, Recommender):
    """Base of the models that read a user's (binary) interaction row and score every item.

    A subclass provides ``_new_net(generator)`` (an ``nn.Module`` with ``hidden(x, users)``
    giving the last hidden layer of clean rows and ``out``, the ``nn.Linear`` output layer),
    ``_param_groups()`` (the optimizer's groups with their weight decay) and
    ``_batch_loss(batch, state)`` — the loss of one :class:`~._batches.RowBatch`, the one
    function a training step needs (``state`` carries the noise generator and the update
    count), so a distributed trainer can call it per batch. ``train_loss`` in the history is
    that loss; the weight decay the optimizer applies is not part of it.

    Data-parallel in a ``torch.distributed`` process group (``supports_distributed``): every
    process draws the same shuffled batches of rows, computes its contiguous shard of each, and
    the gradients are summed weighted by the shards' row counts (every loss is a mean over a
    batch's rows; weight decay is the optimizer's, the same everywhere), so the updates are those of one
    process on the same batch; the input dropout, the VAE's noise and CDAE's negatives are drawn
    per process for its shard (see :class:`~recforge.models.neural.TrainingLoop`).

    Scores are the output layer's logits :math:`W' h + b'` (the softmax or sigmoid applied by
    the loss is monotone, so rankings are unchanged); query vectors are :math:`[h; 1]` and item
    vectors :math:`[W'_i; b'_i]`, so their dot products are the scores.
    """

    capabilities = frozenset({RANKING, FOLD_IN, EMBEDDINGS})
    state = ("train_seconds_",)
    _torch_modules = ("net_",)
    supports_distributed = True
    similarity = "dot"
    #: whether a network reads user ids (CDAE's user node) besides the row
    uses_user_ids = False

    # ------------------------------------------------------------------ helpers
    def _check_common(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if float(self.l2) < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2!r}")
        if int(self.val_k) < 1:
            raise ValueError(f"val_k must be >= 1, got {self.val_k!r}")

    def _check_params(self) -> None:
        self._check_common()

    def _new_net(self, generator: torch.Generator) -> nn.Module:
        raise NotImplementedError

    def _build_modules(self) -> None:
        self.net_ = self._new_net(torch.Generator().manual_seed(0))

    def _param_groups(self) -> list[dict]:
        """The optimizer's parameter groups (default: every parameter, no weight decay)."""
        return [{"params": list(self.net_.parameters()), "weight_decay": 0.0}]

    # ------------------------------------------------------------------ training
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        with self._threads():
            self._fit_net(train, validation)

    def _fit_net(self, train, validation) -> None:
        self._check_params()
        if train.n_items < 2:
            raise ValueError(f"{type(self).__name__} needs at least two items")
        streams = self._seed_streams()  # spawned in a fixed order: init, noise, batches
        init_gen = streams.torch("cpu")
        device = self._device()
        # the noise covers a process's shard of each batch, so each process has its own stream
        noise_gen = streams.torch_per_rank(device, self._distributed_context())
        rng = streams.numpy()
        x_train = binary_rows(train.csr)
        users = np.flatnonzero(np.diff(x_train.indptr) > 0)
        if not users.size:
            raise ValueError(f"{type(self).__name__}: the training data has no interaction")
        started = time.perf_counter()
        self.net_ = self._new_net(init_gen)
        attach_generator(self.net_, noise_gen)
        optimizer = _adam(self._param_groups(), float(self.learning_rate))
        step_state = {"updates": 0, "generator": noise_gen, "rng": rng}

        def train_epoch(epoch: int, loop) -> dict:
            self.net_.train()
            total, count = 0.0, 0
            for rows in row_batches(users.size, int(self.batch_size), rng):
                part, share = loop.shard(rows.size)  # all rows in one process
                batch_users = users[rows[part]]
                loss = None
                if batch_users.size:
                    batch = row_batch(x_train, batch_users, device,
                                      batch_users if self.uses_user_ids else None)
                    loss = self._batch_loss(batch, step_state)
                total += loop.step(loss, optimizer, self.net_.parameters(), share) * rows.size
                count += rows.size
                step_state["updates"] += 1
            return {"train_loss": total / count, **self._epoch_extras(step_state)}

        validate = None if validation is None else self._ranking_validator(x_train, validation)
        loop = TrainingLoop(int(self.epochs), name=type(self).__name__, validate=validate,
                            patience=self.patience, monitor=f"ndcg@{int(self.val_k)}",
                            restore_best=self.restore_best, on_nonfinite=self.on_nonfinite,
                            max_grad_norm=self.max_grad_norm, verbose=self.verbose,
                            distributed=self._distributed_context())
        try:
            self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                     set_state=self._set_torch_state,
                                     on_epoch_end=lambda r: logger.info("%s epoch %d: %s",
                                                                        type(self).__name__, r["epoch"], r))
        finally:
            attach_generator(self.net_, None)
            self.net_.eval()
        self.best_epoch_ = loop.best_epoch
        self.train_seconds_ = time.perf_counter() - started

    def _epoch_extras(self, step_state: dict) -> dict:
        """Extra per-epoch values for the history (e.g. Mult-VAE's KL weight)."""
        return {}

    def _batch_loss(self, batch: RowBatch, step_state: dict) -> torch.Tensor:
        raise NotImplementedError

    def _ranking_validator(self, x_train: sp.csr_matrix, validation):
        """``validate(epoch)``: NDCG@k and recall@k of the users with validation items, their
        training rows as history (excluded from the lists), full ranking."""
        if not hasattr(validation, "csr") or validation.n_items != x_train.shape[1] \
                or validation.n_users != x_train.shape[0]:
            raise ValueError("validation must be Interactions on the training data's user and item "
                             "index (a split of the same data)")
        held = binary_rows(validation.csr)
        users = np.flatnonzero(np.diff(held.indptr) > 0)
        relevant = held[users]
        seen = x_train[users]
        k = int(self.val_k)

        def validate(epoch: int) -> dict:
            self.net_.eval()
            scores = self._logits(users.astype(np.int64), seen)
            mask_rows(scores, seen, np.arange(users.size))
            rec, _ = topk_rows(scores, k)
            return {f"ndcg@{k}": float(np.nanmean(ndcg_at_k(rec, relevant, k=k))),
                    f"recall@{k}": float(np.nanmean(recall_at_k(rec, relevant, k=k)))}

        return validate

    # ------------------------------------------------------------------ scoring
    def _hidden(self, users: np.ndarray, rows: sp.csr_matrix) -> torch.Tensor:
        """Last hidden layer (n, d) of the rows (inner users, ``-1`` = unknown or anonymous)."""
        batch = row_batch(binary_rows(rows), np.arange(rows.shape[0]), self._device(),
                          users if self.uses_user_ids else None)
        with torch.no_grad():
            return self.net_.hidden(batch.x, batch.users)

    def _logits(self, users: np.ndarray, rows: sp.csr_matrix) -> np.ndarray:
        out = np.empty((rows.shape[0], self.n_items_), dtype=np.float32)
        with torch.no_grad():
            for b in range(0, rows.shape[0], SCORE_CHUNK):
                h = self._hidden(users[b:b + SCORE_CHUNK], rows[b:b + SCORE_CHUNK])
                out[b:b + SCORE_CHUNK] = self.net_.out(h).cpu().numpy()
        return out

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        with self._threads():
            return self._logits(np.asarray(users, dtype=np.int64), history.matrix)

    # ------------------------------------------------------------------ vectors
    def item_vectors(self) -> np.ndarray:
        """(n_items, d + 1) float32: each item's output weights and, last, its output bias."""
        self._check_fitted()
        out = self.net_.out
        return torch.cat([out.weight, out.bias[:, None]], dim=1).detach().cpu().numpy().astype(np.float32)

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """(len(users), d + 1) float32: the last hidden layer of each row and a 1 (which meets the
        output bias), so ``query @ item_vectors().T`` gives the scores. Without ``history`` the
        known users' training rows are used (right after ``fit``)."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        if history is None:
            store = getattr(self, "_train_history", None)
            if store is None:
                raise ValueError("history is needed (this model keeps no training rows)")
            if (users < 0).any():
                raise ValueError("users: unknown users (-1) need a history")
            rows = store.csr[users]
        else:
            rows = history.matrix if isinstance(history, History) else sp.csr_matrix(history)
        with self._threads():
            h = torch.cat([self._hidden(users[b:b + SCORE_CHUNK], rows[b:b + SCORE_CHUNK])
                           for b in range(0, users.size, SCORE_CHUNK)]) if users.size else \
                torch.empty(0, self.net_.out.in_features)
        ones = np.ones((users.size, 1), dtype=np.float32)
        return np.hstack([h.cpu().numpy().astype(np.float32), ones])


# ---------------------------------------------------------------------- networks
class _MultNet(nn.Module):
    """Encoder and decoder of Liang et al. (2018), section 2.

    ``dims = [d_1, ..., d_L]`` (e.g. ``[600, 200]``): the encoder maps the L2-normalised
    (in training, dropped-out) row :math:`I \\to d_1 \\to \\dots \\to d_L` and the decoder
    :math:`d_L \\to d_{L-1} \\to \\dots \\to d_1 \\to I`, tanh between layers, the output layer
    linear. Variational: the last encoder layer outputs :math:`(\\mu, \\log\\sigma^2)` (2
    :math:`d_L` units, linear); denoising: :math:`d_L` units with tanh.
    """

    def __init__(self, n_items: int, dims: list[int], variational: bool):
        super().__init__()
        self.variational = variational
        self.latent = dims[-1]
        enc = [n_items, *dims[:-1]]
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc[:-1], enc[1:], strict=True))
        self.to_latent = nn.Linear(enc[-1], dims[-1] * (2 if variational else 1))
        dec = [dims[-1], *reversed(dims[:-1])]
        self.decoder = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec[:-1], dec[1:], strict=True))
        self.out = nn.Linear(dec[-1], n_items)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Xavier-uniform weights and N(0, 0.001^2) biases, the initialisation of the paper's code."""
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight, generator=generator)
                    nn.init.normal_(m.bias, std=0.001, generator=generator)

    def encode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mu, logvar) of the network's input ``h`` — the L2-normalised rows, dropped out in
        training (logvar ``None`` for the denoising autoencoder)."""
        for layer in self.encoder:
            h = torch.tanh(layer(h))
        h = self.to_latent(h)
        if self.variational:
            return h[:, :self.latent], h[:, self.latent:]
        return torch.tanh(h), None

    def decode_hidden(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.decoder:
            z = torch.tanh(layer(z))
        return z

    def hidden(self, x: torch.Tensor, users=None) -> torch.Tensor:
        """The decoder's last hidden layer of clean rows ``x`` at the posterior mean (scoring)."""
        mu, _ = self.encode(nn.functional.normalize(x, dim=1))
        return self.decode_hidden(mu)


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over rows of :math:`-\\sum_i x_i \\log \\mathrm{softmax}(f)_i` (Liang et al. 2018,
    eq. 2), the multinomial log-likelihood of the row's clicks, negated."""
    return -(torch.log_softmax(logits, dim=1) * x).sum(dim=1).mean()


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over rows of :math:`\\mathrm{KL}(\\mathcal N(\\mu, \\sigma^2) \\,\\|\\, \\mathcal N(0, I))
    = \\tfrac12 \\sum_k (\\sigma_k^2 + \\mu_k^2 - 1 - \\log \\sigma_k^2)`."""
    return (0.5 * (logvar.exp() + mu ** 2 - 1.0 - logvar)).sum(dim=1).mean()


def kl_weight(updates: int, anneal_cap: float, total_anneal_steps: int) -> float:
    """KL annealing (Liang et al. 2018, section 2.2.2): :math:`\\beta` grows linearly from 0 by
    ``1 / total_anneal_steps`` per update and is capped at ``anneal_cap``; ``updates`` is the
    number of updates already taken (the first batch gets 0). ``total_anneal_steps = 0``: the
    cap from the start."""
    if total_anneal_steps <= 0:
        return float(anneal_cap)
    return float(min(anneal_cap, updates / total_anneal_steps))


class _MultBase(RowAutoencoder):
    variational = False

    def __init__(self, hidden_dims: tuple[int, ...] | list[int] = (600, 200), dropout: float = 0.5,
                 l2: float = 0.0, epochs: int = 100, batch_size: int = 500,
                 learning_rate: float = 1e-3, patience: int | None = None, val_k: int = 10,
                 random_state: int | None = 0, device: str = "cpu", n_threads: int | None = None,
                 restore_best: bool = True, on_nonfinite: str = "raise",
                 max_grad_norm: float | None = None, verbose: bool = False):
        self.hidden_dims = hidden_dims
        self.dropout = dropout
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.val_k = val_k
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.restore_best = restore_best
        self.on_nonfinite = on_nonfinite
        self.max_grad_norm = max_grad_norm
        self.verbose = verbose

    def _check_params(self) -> None:
        self._check_common()
        dims = list(self.hidden_dims)
        if not dims or any(int(d) < 1 for d in dims):
            raise ValueError(f"hidden_dims must be a non-empty list of sizes >= 1, got {self.hidden_dims!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def _new_net(self, generator: torch.Generator) -> _MultNet:
        with isolated_global_rng():  # the layers' own initial draws are discarded
            net = _MultNet(self.n_items_, [int(d) for d in self.hidden_dims], self.variational)
        net.reset_parameters(generator)
        return net.to(self._device())

    def _param_groups(self) -> list[dict]:
        """Weight matrices decayed by :math:`2\\lambda` (the gradient of
        :math:`\\lambda \\lVert W \\rVert_F^2`), biases not."""
        weights = [m.weight for m in self.net_.modules() if isinstance(m, nn.Linear)]
        biases = [m.bias for m in self.net_.modules() if isinstance(m, nn.Linear)]
        return [{"params": weights, "weight_decay": 2.0 * float(self.l2)},
                {"params": biases, "weight_decay": 0.0}]

    def _input(self, batch: RowBatch, step_state: dict) -> torch.Tensor:
        """The network's input: each row L2-normalised (a binary row's entries are
        :math:`1/\\sqrt{|O_u|}`), then dropped out (Liang et al. 2018, §2.3)."""
        values = torch.rsqrt(batch.counts().clamp(min=1.0))[batch.rows]
        return batch.corrupted(float(self.dropout), step_state["generator"], values)


@register("MultDAE")
class MultDAE(_MultBase):
    """Mult-DAE: denoising autoencoder with a multinomial likelihood (Liang et al. 2018, §2.3).

    The row :math:`x_u` is L2-normalised and dropped out (probability ``dropout``, the input
    noise), encoded to :math:`z_u = g_\\phi(\\tilde x_u)` and decoded to logits
    :math:`f_\\theta(z_u)`; the loss of a batch :math:`B` is

    .. math:: \\mathcal L = -\\frac{1}{|B|} \\sum_{u \\in B} \\sum_i x_{ui}
              \\log \\mathrm{softmax}(f_\\theta(z_u))_i + \\lambda \\sum_l \\lVert W_l \\rVert_F^2

    (eq. 2 and the weight decay of the paper's code, ``l2`` = :math:`\\lambda`). Adam.

    Parameters
    ----------
    hidden_dims : list of int, default [600, 200]
        Encoder sizes; the decoder mirrors them (:math:`I \\to 600 \\to 200 \\to 600 \\to I`).
    dropout : float, default 0.5
        Input dropout probability (the paper keeps 50 %).
    l2 : float, default 0.0
        :math:`\\lambda` on the squared Frobenius norm of every weight matrix.
    epochs, batch_size, learning_rate : int, int, float
        Passes over the users, rows per Adam step (500 in the paper), step size.
    patience : int, optional
        With ``validation`` in ``fit``: stop after this many epochs without a better validation
        NDCG@``val_k`` (the best epoch's weights are kept with ``restore_best``).
    val_k : int, default 10
        Cut-off of the validation NDCG and recall.
    random_state : int, optional
        Seeds initialisation, input dropout and the order of the rows (one ``SeedSequence``).
    device : {"cpu", "auto", "cuda", "cuda:N"}, default "cpu"
    n_threads : int, optional
        torch threads while fitting and scoring (restored afterwards).
    restore_best, on_nonfinite, max_grad_norm, verbose
        As in :class:`~recforge.models.neural.TrainingLoop`.

    Attributes
    ----------
    history_ : dict of lists
        ``epoch``, ``train_loss``, ``seconds`` and, with validation, ``val_ndcg@k``,
        ``val_recall@k``.

    Examples
    --------
    >>> from recforge.data.synthetic import generate_implicit
    >>> data = generate_implicit(n_users=40, n_items=30, n_events=400, seed=0).interactions
    >>> model = MultDAE(hidden_dims=[16, 8], epochs=2, batch_size=16).fit(data)
    >>> model.recommend(history=[[data.item_map.raw[0]]], k=3).items.shape
    (1, 3)
    """

    def _batch_loss(self, batch: RowBatch, step_state: dict) -> torch.Tensor:
        net = self.net_
        z, _ = net.encode(self._input(batch, step_state))
        return multinomial_nll(net.out(net.decode_hidden(z)), batch.x)


@register("MultVAE")
class MultVAE(_MultBase):
    """Mult-VAE with partial KL regularisation (Liang et al. 2018, §2.2).

    The encoder gives :math:`q_\\phi(z_u \\mid x_u) = \\mathcal N(\\mu_\\phi(\\tilde x_u),
    \\mathrm{diag}\\,\\sigma^2_\\phi(\\tilde x_u))` of the L2-normalised, dropped-out row; a sample
    :math:`z_u = \\mu + \\sigma \\odot \\epsilon`, :math:`\\epsilon \\sim \\mathcal N(0, I)`
    (reparameterisation) is decoded into logits, and a batch minimises the negative
    :math:`\\beta`-ELBO (eq. 6)

    .. math:: \\mathcal L_\\beta = \\frac{1}{|B|} \\sum_{u \\in B} \\Big[ -\\sum_i x_{ui}
              \\log \\mathrm{softmax}(f_\\theta(z_u))_i
              + \\beta\\, \\mathrm{KL}\\big(q_\\phi(z_u \\mid x_u) \\,\\|\\, \\mathcal N(0, I)\\big)
              \\Big] + \\lambda \\sum_l \\lVert W_l \\rVert_F^2

    with :math:`\\beta = \\min(\\text{anneal\\_cap}, t / \\text{total\\_anneal\\_steps})` after
    :math:`t` updates (KL annealing, §2.2.2; :func:`kl_weight`). Scores use the posterior mean
    :math:`z_u = \\mu_\\phi(x_u)` without dropout.

    Parameters
    ----------
    anneal_cap : float, default 0.2
        Largest :math:`\\beta` (the paper's best on ML-20M).
    total_anneal_steps : int, default 200000
        Updates over which :math:`\\beta` would reach 1 (the paper's code); scale it with the
        number of updates of a run (users / batch_size per epoch); ``0``: :math:`\\beta` =
        ``anneal_cap`` throughout.
    epsilon_std : float, default 1.0
        Standard deviation of :math:`\\epsilon` in the sampled :math:`z_u` (1: the paper's
        reparameterisation; RecBole 1.2's MultiVAE uses 0.01, which makes training close to
        the denoising autoencoder with a KL penalty on :math:`\\mu`; 0: no sampling).
    hidden_dims, dropout, l2, epochs, batch_size, learning_rate, patience, val_k, random_state,
    device, n_threads, restore_best, on_nonfinite, max_grad_norm, verbose
        As in :class:`MultDAE`.

    Attributes
    ----------
    history_ : dict of lists
        As in :class:`MultDAE`, plus ``beta`` (the KL weight at the end of each epoch).
    """

    variational = True

    def __init__(self, hidden_dims: tuple[int, ...] | list[int] = (600, 200), dropout: float = 0.5,
                 anneal_cap: float = 0.2, total_anneal_steps: int = 200000, epsilon_std: float = 1.0,
                 l2: float = 0.0,
                 epochs: int = 100, batch_size: int = 500, learning_rate: float = 1e-3,
                 patience: int | None = None, val_k: int = 10, random_state: int | None = 0,
                 device: str = "cpu", n_threads: int | None = None, restore_best: bool = True,
                 on_nonfinite: str = "raise", max_grad_norm: float | None = None, verbose: bool = False):
        super().__init__(hidden_dims=hidden_dims, dropout=dropout, l2=l2, epochs=epochs,
                         batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                         val_k=val_k, random_state=random_state, device=device, n_threads=n_threads,
                         restore_best=restore_best, on_nonfinite=on_nonfinite,
                         max_grad_norm=max_grad_norm, verbose=verbose)
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
        self.epsilon_std = epsilon_std

    def _check_params(self) -> None:
        super()._check_params()
        if not float(self.anneal_cap) >= 0:
            raise ValueError(f"anneal_cap must be >= 0, got {self.anneal_cap!r}")
        if int(self.total_anneal_steps) < 0:
            raise ValueError(f"total_anneal_steps must be >= 0, got {self.total_anneal_steps!r}")
        if not float(self.epsilon_std) >= 0:
            raise ValueError(f"epsilon_std must be >= 0, got {self.epsilon_std!r}")

    def beta(self, updates: int) -> float:
        """The KL weight after ``updates`` updates (:func:`kl_weight`)."""
        return kl_weight(updates, float(self.anneal_cap), int(self.total_anneal_steps))

    def _batch_loss(self, batch: RowBatch, step_state: dict) -> torch.Tensor:
        net = self.net_
        mu, logvar = net.encode(self._input(batch, step_state))
        eps = torch.randn(mu.shape, generator=step_state["generator"], device=mu.device, dtype=mu.dtype)
        z = mu + float(self.epsilon_std) * eps * torch.exp(0.5 * logvar)
        logits = net.out(net.decode_hidden(z))
        beta = self.beta(step_state["updates"])
        return multinomial_nll(logits, batch.x) + beta * gaussian_kl(mu, logvar)

    def _epoch_extras(self, step_state: dict) -> dict:
        return {"beta": self.beta(max(step_state["updates"] - 1, 0))}


__all__ = ["MultDAE", "MultVAE", "RowAutoencoder", "gaussian_kl", "kl_weight", "multinomial_nll"]
