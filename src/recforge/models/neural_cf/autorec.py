r"""AutoRec: autoencoders for collaborative filtering (Sedhain et al. 2015).

Sedhain, Menon, Sanner & Xie, *AutoRec: Autoencoders Meet Collaborative Filtering*, WWW 2015.
Item-based AutoRec (**I-AutoRec**) reconstructs each item's partially observed vector of
ratings :math:`r^{(i)} \in \mathbb R^{m}` (one entry per user), user-based AutoRec
(**U-AutoRec**) each user's vector :math:`r^{(u)} \in \mathbb R^{n}` (one per item), through one
hidden layer (eq. 1):

.. math:: h(r; \theta) = f\bigl(W \cdot g(V r + \mu) + b\bigr)

with :math:`g` the sigmoid, :math:`f` the identity, :math:`V \in \mathbb R^{k \times d}`,
:math:`W \in \mathbb R^{d \times k}`. Unobserved entries are zeros in the input and do not count
in the loss (eq. 2): only the observed ratings are reconstructed,

.. math:: \min_\theta \sum_{r \in S} \lVert r - h(r; \theta) \rVert^2_{\mathcal O}
          + \frac{\lambda}{2} \bigl(\lVert W \rVert_F^2 + \lVert V \rVert_F^2\bigr),

:math:`\lVert\cdot\rVert^2_{\mathcal O}` summing over observed entries only. The paper
minimises it with resilient propagation / L-BFGS over the whole set; here mini-batches of
CSR rows (densified one batch at a time) and Adam, the regulariser scaled by the batch's share
of the rows so that an epoch's steps add up to eq. 2. ``unobserved_weight`` > 0 also pulls the
unobserved entries towards 0 with that weight (an implicit-feedback variant, not the paper's;
0 by default).

The predicted rating of user :math:`u` for item :math:`i` is
:math:`\hat R_{ui} = h(r^{(i)})_u` (I-AutoRec, eq. 3) or :math:`h(r^{(u)})_i` (U-AutoRec),
clipped to the rating scale by :meth:`~recforge.models.base.Recommender.predict`. A pair whose
user or item has no training rating gets a mean instead (the paper's "default rating" for
unseen users and items): the item's mean when the item has ratings, else the user's, else the
global mean; such pairs are counted as fallbacks, and an id unknown to the model gets the
global mean as for every rating model. With ``unobserved_weight`` > 0 every output is trained
(towards 0 where nothing was observed), so the model's own output is kept instead.

Top-N (``RANKING``): a row's scores are its predicted ratings of every item (unclipped), the
training items excluded by the caller. I-AutoRec scores user :math:`u` as
:math:`W_u \cdot g(V r^{(i)} + \mu) + b_u` for every item, the item codes computed once after
fitting, so its query and item vectors :math:`[W_u, b_u]` and :math:`[g(V r^{(i)} + \mu), 1]`
give those scores. U-AutoRec reads a row's ratings as its input, so it scores any history
(``FOLD_IN``): an unknown or anonymous row with ratings is encoded and decoded as a trained
user is; I-AutoRec has one output unit per training user and gives an unknown user the
popularity fallback.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..base import EMBEDDINGS, FOLD_IN, RANKING, RATING, SIMILAR_ITEMS, Recommender, register
from ..neural import NeuralModel, TrainingLoop, init_parameters, isolated_global_rng
from ..query import FallbackLog, History
from ._validation import rating_validator, topn_validator

logger = logging.getLogger(__name__)

MEAN_FALLBACK = "user or item without training ratings: mean"


class AutoRecNet(nn.Module):
    """:math:`h(r) = W g(V r + \\mu) + b` with a sigmoid :math:`g` (Sedhain et al. 2015, eq. 1)."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.encoder = nn.Linear(n_in, hidden)  # V, mu
        self.decoder = nn.Linear(hidden, n_in)  # W, b

    def encode(self, r: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.encoder(r))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(r))


def autorec_loss(pred: torch.Tensor, target: torch.Tensor, observed: torch.Tensor,
                 weights: list[torch.Tensor], reg: float, reg_share: float = 1.0,
                 unobserved_weight: float = 0.0) -> torch.Tensor:
    """Eq. 2 of Sedhain et al. 2015 on a batch of rows:
    :math:`\\sum_{\\mathcal O} (r - \\hat r)^2 + w_0 \\sum_{\\bar{\\mathcal O}} \\hat r^2 +
    \\text{reg\\_share} \\cdot \\frac{\\lambda}{2} \\sum_{W \\in \\text{weights}}
    \\lVert W \\rVert_F^2`, where ``observed`` is the 0/1 mask of observed entries,
    :math:`w_0` = ``unobserved_weight`` (0 in the paper) and ``reg_share`` the batch's share of
    the training rows (1 for the full objective)."""
    err = (pred - target) ** 2
    if unobserved_weight:
        err = err * (observed + unobserved_weight * (1.0 - observed))
    else:
        err = err * observed
    penalty = sum((w ** 2).sum() for w in weights)
    return err.sum() + 0.5 * float(reg) * float(reg_share) * penalty


class _AutoRec(NeuralModel, Recommender):
    """The shared part of I-AutoRec and U-AutoRec (see the module docstring)."""

    state = ("ratings_", "user_mean_", "item_mean_", "train_seconds_")
    _torch_modules = ("net_",)
    #: True: rows are items (I-AutoRec); False: rows are users (U-AutoRec).
    item_based: ClassVar[bool] = True

    def __init__(self, hidden: int = 500, reg: float = 1.0, epochs: int = 200, batch_size: int = 64,
                 learning_rate: float = 0.001, unobserved_weight: float = 0.0,
                 patience: int | None = None, restore_best: bool = True, random_state: int | None = 0,
                 device: str = "cpu", n_threads: int | None = None, verbose: bool = False):
        self.hidden = hidden
        self.reg = reg
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.unobserved_weight = unobserved_weight
        self.patience = patience
        self.restore_best = restore_best
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        name = type(self).__name__
        for key in ("hidden", "epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name}: {key} must be an integer >= 1, got {value!r}")
        for key in ("reg", "learning_rate", "unobserved_weight"):
            value = getattr(self, key)
            if not np.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value!r}")

    # ------------------------------------------------------------------ network
    def _n_in(self) -> int:
        return self.n_users_ if self.item_based else self.n_items_

    def _new_net(self, generator: torch.Generator) -> AutoRecNet:
        with isolated_global_rng():
            net = AutoRecNet(self._n_in(), int(self.hidden))
        init_parameters(net, generator)
        return net.to(self._device())

    def _build_modules(self) -> None:
        self.net_ = self._new_net(torch.Generator().manual_seed(0))

    def _dense(self, rows: sp.csr_matrix) -> torch.Tensor:
        return torch.from_numpy(np.asarray(rows.toarray(), dtype=np.float32)).to(self._device())

    # ------------------------------------------------------------------ training
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        csr = sp.csr_matrix(train.csr, dtype=np.float32)
        self.ratings_ = (csr.T.tocsr() if self.item_based else csr)
        self.ratings_.sort_indices()
        sums_u = np.asarray(csr.sum(axis=1)).ravel()
        sums_i = np.asarray(csr.sum(axis=0)).ravel()
        cu, ci = np.diff(csr.indptr), np.bincount(csr.indices, minlength=csr.shape[1])
        self.user_mean_ = np.where(cu > 0, sums_u / np.maximum(cu, 1), self.global_mean_).astype(np.float64)
        self.item_mean_ = np.where(ci > 0, sums_i / np.maximum(ci, 1), self.global_mean_).astype(np.float64)
        with self._threads():
            started = time.perf_counter()
            streams = self._seed_streams()  # fixed order: init, shuffling
            self.net_ = self._new_net(streams.torch("cpu"))
            rng = streams.numpy()
            self._train(train, validation, rng)
            self._refresh()
            self.train_seconds_ = time.perf_counter() - started

    def _train(self, train, validation, rng: np.random.Generator) -> None:
        rows_all = self.ratings_
        w0 = float(self.unobserved_weight)
        usable = np.arange(rows_all.shape[0]) if w0 > 0 else np.flatnonzero(np.diff(rows_all.indptr) > 0)
        if not usable.size:
            raise ValueError(f"{type(self).__name__}: no training ratings")
        n_rows = usable.size
        batch = int(self.batch_size)
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=float(self.learning_rate))
        weights = [self.net_.encoder.weight, self.net_.decoder.weight]

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            order = usable[rng.permutation(n_rows)]
            total = 0.0
            for b in range(0, n_rows, batch):
                rows = rows_all[order[b:b + batch]]
                target = self._dense(rows)
                observed = self._dense(sp.csr_matrix((np.ones_like(rows.data), rows.indices, rows.indptr),
                                                     shape=rows.shape))
                pred = self.net_(target)
                loss = autorec_loss(pred, target, observed, weights, float(self.reg),
                                    reg_share=rows.shape[0] / n_rows, unobserved_weight=w0)
                total += loop.step(loss, optimizer, self.net_.parameters())
            return total

        explicit = train.is_explicit and w0 == 0.0
        if validation is None:
            validate, monitor, mode = None, "rmse", "min"
        elif explicit:
            validate, monitor, mode = rating_validator(self, validation), "rmse", "min"
        else:
            validate, monitor, mode = topn_validator(self, validation, train, k=10), "ndcg@10", "max"
        loop = TrainingLoop(int(self.epochs), name=type(self).__name__, validate=validate,
                            patience=self.patience, monitor=monitor, mode=mode,
                            restore_best=self.restore_best, verbose=self.verbose)
        try:
            self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                     set_state=self._set_torch_state,
                                     on_epoch_end=lambda r: logger.debug("%s epoch %d: %s",
                                                                         type(self).__name__, r["epoch"], r))
        finally:
            self.net_.eval()
        self.best_epoch_ = loop.best_epoch

    def _refresh(self) -> None:
        """Quantities derived from the weights (I-AutoRec's item codes)."""

    def _eval_mode(self) -> None:
        # called by the validation callback and after loading the weights: both read the
        # current weights through the derived quantities
        super()._eval_mode()
        self._refresh()

    # ------------------------------------------------------------------ prediction
    def _weights64(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(V, mu, W, b) as float64 NumPy arrays."""
        net = self.net_
        return tuple(t.detach().cpu().numpy().astype(np.float64)
                     for t in (net.encoder.weight, net.encoder.bias, net.decoder.weight, net.decoder.bias))

    def _reconstruct(self, rows: sp.csr_matrix) -> np.ndarray:
        """:math:`h(r)` of the given input rows, (n, n_in) float64. Computed in float64 with
        the sparse input kept sparse, so a row's result does not depend on the other rows of
        the batch (batch equals single)."""
        v, mu, w, b = self._weights64()
        hidden = 1.0 / (1.0 + np.exp(-(sp.csr_matrix(rows, dtype=np.float64) @ v.T + mu)))
        return hidden @ w.T + b

    def _mean_fallback(self) -> bool:
        """Whether pairs without training data get means: with the paper's masked loss their
        outputs are never trained; with ``unobserved_weight`` > 0 every output is (towards 0
        for what was not observed), and a mean would put never-seen items on top of a
        ranking."""
        return float(self.unobserved_weight) == 0.0

    def _with_means(self, pred: np.ndarray, users: np.ndarray, items: np.ndarray,
                    user_counts: np.ndarray, item_counts: np.ndarray,
                    user_means: np.ndarray) -> tuple[np.ndarray, int]:
        """Pairs whose user or item has no training rating get the item's, else the user's,
        else the global mean (see the module docstring); returns (pred, number replaced)."""
        bad = (user_counts == 0) | (item_counts == 0)
        if not self._mean_fallback():
            return pred, 0
        if bad.any():
            has_item = item_counts[bad] > 0
            has_user = user_counts[bad] > 0
            pred = pred.copy()
            pred[bad] = np.where(has_item, self.item_mean_[items[bad]],
                                 np.where(has_user, user_means[bad], self.global_mean_))
        return pred, int(bad.sum())

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        pred = self._pair_predictions(np.asarray(u, np.int64), np.asarray(i, np.int64))
        pred, n = self._with_means(pred, u, i, self.user_counts_[u], self._item_counts()[i],
                                   self.user_mean_[u])
        fallbacks.count(MEAN_FALLBACK, n)
        return pred

    def _item_counts(self) -> np.ndarray:
        return self.item_popularity_  # training interactions per item

    def _pair_predictions(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@register("IAutoRec")
class IAutoRec(_AutoRec):
    """Item-based AutoRec (Sedhain et al. 2015): each item's vector of user ratings is
    reconstructed through a sigmoid hidden layer (see :mod:`recforge.models.neural_cf.autorec`).

    Parameters
    ----------
    hidden : int, default 500
        Hidden units :math:`k` (the paper's 500).
    reg : float, default 1.0
        :math:`\\lambda` of the L2 penalty on :math:`W` and :math:`V` (eq. 2).
    epochs : int, default 200
    batch_size : int, default 64
        Rows (items for I-AutoRec, users for U-AutoRec) per Adam step.
    learning_rate : float, default 0.001
    unobserved_weight : float, default 0.0
        Weight of the unobserved entries (reconstructed as 0) in the loss; 0 is the paper's
        masked loss.
    patience : int or None, default None
        With ``validation`` given to ``fit``: stop after this many epochs without a better
        validation score — the RMSE of the validation ratings on explicit data with the masked
        loss, else NDCG@10 of full ranking.
    restore_best : bool, default True
        Keep the weights of the best validation epoch.
    random_state : int, optional
        Seeds initialisation (a torch generator) and the row order (a NumPy generator),
        spawned from one ``SeedSequence``.
    device : {"cpu", "auto", "cuda", "cuda:N"}, default "cpu"
    n_threads : int or None, default None
    verbose : bool, default False

    Attributes
    ----------
    ratings_ : scipy.sparse.csr_matrix
        The training ratings, one row per input vector (items x users here; users x items for
        U-AutoRec): the model's input at prediction time.
    user_mean_, item_mean_ : ndarray
        Mean training rating per user and item (the fallbacks).
    history_ : dict of lists
        Per epoch: ``epoch``, ``train_loss`` (eq. 2 summed over the epoch's batches),
        ``seconds``, and ``val_rmse`` or ``val_ndcg@10`` / ``val_hr@10`` with validation.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, SIMILAR_ITEMS, EMBEDDINGS})
    item_based: ClassVar[bool] = True

    def _refresh(self) -> None:
        with self._threads(), torch.no_grad():
            codes = np.empty((self.ratings_.shape[0], int(self.hidden)), dtype=np.float32)
            for b in range(0, codes.shape[0], 1024):
                codes[b:b + 1024] = self.net_.encode(self._dense(self.ratings_[b:b + 1024])).cpu().numpy()
        self._codes = codes

    def _pair_predictions(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        w = self.net_.decoder.weight.detach().cpu().numpy().astype(np.float64)
        b = self.net_.decoder.bias.detach().cpu().numpy().astype(np.float64)
        return np.einsum("ij,ij->i", w[u], self._codes[i].astype(np.float64)) + b[u]

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        w = self.net_.decoder.weight.detach().cpu().numpy().astype(np.float64)
        b = self.net_.decoder.bias.detach().cpu().numpy().astype(np.float64)
        scores = w[users] @ self._codes.T.astype(np.float64) + b[users, None]
        uu = np.repeat(users, self.n_items_)
        ii = np.tile(np.arange(self.n_items_), users.size)
        flat, _ = self._with_means(scores.ravel(), uu, ii, self.user_counts_[uu],
                                   self._item_counts()[ii], self.user_mean_[uu])
        return flat.reshape(scores.shape).astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        """:math:`[g(V r^{(i)} + \\mu), 1, 0, \\bar r_i]` per item (float32); an item without
        training ratings gets :math:`[0, 0, 1, 0]`. With :meth:`query_vectors` the dot
        product is the score, mean fallbacks included."""
        n, k = self.n_items_, int(self.hidden)
        out = np.zeros((n, k + 3), dtype=np.float32)
        out[:, :k] = self._codes
        out[:, k] = 1.0
        out[:, k + 2] = self.item_mean_
        empty = (self._item_counts() == 0) & self._mean_fallback()
        out[empty] = 0.0
        out[empty, k + 1] = 1.0
        return out

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """:math:`[W_u, b_u, \\bar r_u, 0]` per known inner user (float32); a user without
        training ratings gets :math:`[0, 0, \\mu, 1]` (scores = item means), an unknown row
        (``-1``) zeros."""
        users = np.asarray(users, dtype=np.int64)
        w = self.net_.decoder.weight.detach().cpu().numpy()
        b = self.net_.decoder.bias.detach().cpu().numpy()
        k = w.shape[1]
        out = np.zeros((users.size, k + 3), dtype=np.float32)
        known = users >= 0
        out[known, :k] = w[users[known]]
        out[known, k] = b[users[known]]
        out[known, k + 1] = self.user_mean_[users[known]]
        if not self._mean_fallback():
            out[known, k + 1] = 0.0
            return out
        cold = known & (self.user_counts_[np.maximum(users, 0)] == 0)
        out[cold, :k + 1] = 0.0
        out[cold, k + 2] = 1.0
        return out

    def _similar(self, items: np.ndarray) -> np.ndarray:
        q = self._codes.astype(np.float64)
        q = q - q.mean(axis=0)  # sigmoid codes share a large positive offset
        norms = np.linalg.norm(q, axis=1)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (q[np.asarray(items)] * inv[np.asarray(items), None]) @ (q * inv[:, None]).T


@register("UAutoRec")
class UAutoRec(_AutoRec):
    """User-based AutoRec (Sedhain et al. 2015): each user's vector of item ratings is
    reconstructed through a sigmoid hidden layer (see :mod:`recforge.models.neural_cf.autorec`);
    parameters as :class:`IAutoRec`. A row is scored from its ratings, so an unknown or
    anonymous row is folded in from its history (``FOLD_IN``); a known user is scored from
    their training ratings."""

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, SIMILAR_ITEMS, FOLD_IN})
    item_based: ClassVar[bool] = False

    def _inputs(self, users: np.ndarray, history: History | None) -> sp.csr_matrix:
        """Each row's input vector: a known user's training ratings, else the row's history."""
        users = np.asarray(users, dtype=np.int64)
        known = users >= 0
        trained = sp.csr_matrix(self.ratings_[np.maximum(users, 0)])
        if known.all() or history is None:
            return trained
        given = sp.csr_matrix(history.matrix, dtype=np.float32)
        rows = (sp.diags(known.astype(np.float32)) @ trained
                + sp.diags((~known).astype(np.float32)) @ given).tocsr()
        rows.eliminate_zeros()
        return rows

    def _pair_predictions(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        uniq, where = np.unique(u, return_inverse=True)
        recon = self._reconstruct(self.ratings_[uniq])
        return recon[where, i]

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        inputs = self._inputs(users, history)
        scores = self._reconstruct(inputs)
        counts = np.diff(inputs.indptr)
        sums = np.asarray(inputs.sum(axis=1)).ravel()
        means = np.where(counts > 0, sums / np.maximum(counts, 1), self.global_mean_)
        n = self.n_items_
        ii = np.tile(np.arange(n), users.size)
        flat, _ = self._with_means(scores.ravel(), np.repeat(users, n), ii, np.repeat(counts, n),
                                   self._item_counts()[ii], np.repeat(means, n))
        return flat.reshape(scores.shape).astype(np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        # item i's decoder row W_i: the hidden code pattern that predicts a high rating of i
        q = self.net_.decoder.weight.detach().cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(q, axis=1)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (q[np.asarray(items)] * inv[np.asarray(items), None]) @ (q * inv[:, None]).T
