"""Ranking and multitask models on the two towers (the TensorFlow Recommenders "basic ranking"
and "multitask" tutorials; the towers and retrieval loss of Yi et al., RecSys 2019).

Both reuse the two-tower model's towers (:mod:`recforge.models.features.two_tower`): the query
tower over the user id, user features and context, the candidate tower over the item id and
item features. A *rating model* — an MLP over the concatenated tower outputs, ending in one
linear unit — predicts the rating (squared loss) or the click logit (log loss).
:class:`TwoTowerRanking` trains only that; :class:`TwoTowerMultitask` trains the weighted sum
of the rating loss and the retrieval loss on shared towers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ...data.interactions import Interactions
from ..base import EMBEDDINGS, RANKING, RATING, register
from ..query import FallbackLog
from .base import store_params
from .embedding import MLP
from .two_tower import TwoTower, _TwoTowerNet, sampled_softmax_loss

RATING_LOSSES = ("squared", "logloss")


def rating_loss(pred: torch.Tensor, target: torch.Tensor, loss: str = "squared") -> torch.Tensor:
    r"""The ranking task's loss, a mean over the batch (``tfrs.tasks.Ranking`` with Keras's
    ``MeanSquaredError`` or ``BinaryCrossentropy(from_logits=True)``):

    .. math:: \mathcal L_{rating} = \frac1B\sum_b (\hat r_b - r_b)^2 \quad\text{or}\quad
              -\frac1B\sum_b \big[y_b\log\sigma(z_b) + (1-y_b)\log(1-\sigma(z_b))\big]
    """
    if loss == "squared":
        return nn.functional.mse_loss(pred, target)
    if loss == "logloss":
        return nn.functional.binary_cross_entropy_with_logits(pred, target)
    raise ValueError(f"loss must be one of {RATING_LOSSES}, got {loss!r}")


class _RankingNet(_TwoTowerNet):
    """The two towers plus the rating model: ``rating_hidden`` ReLU layers over
    ``[query tower output, candidate tower output]`` and a linear output unit."""

    def __init__(self, spec, dim: int, hidden, out_dim: int, normalize: bool, rating_hidden):
        super().__init__(spec, dim, hidden, out_dim, normalize)
        self.rating_mlp = MLP(2 * out_dim, tuple(rating_hidden))
        self.rating_out = nn.Linear(self.rating_mlp.out_dim, 1)

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        super().reset_parameters(generator, init_std)
        with torch.no_grad():  # Keras Dense layers: Glorot-uniform weights, zero biases
            for layer in self.rating_layers():
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)

    def rating_layers(self) -> list[nn.Linear]:
        return [*(m for m in self.rating_mlp.net if isinstance(m, nn.Linear)), self.rating_out]

    def rating(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Rating (or click logit) of row-aligned tower outputs, shape (B,)."""
        return self.rating_out(self.rating_mlp(torch.cat([q, v], dim=1))).squeeze(1)


@register("TwoTowerMultitask")
class TwoTowerMultitask(TwoTower):
    r"""Joint retrieval and ranking on shared towers (the TFRS multitask tutorial; towers and
    retrieval loss of Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus
    Item Recommendations", RecSys 2019).

    The query tower :math:`u(x)` and candidate tower :math:`v(y)` are the two-tower model's
    (:class:`~recforge.models.features.two_tower.TwoTower`); the rating model
    :math:`\hat r = f([u(x), v(y)])` is an MLP (``rating_hidden``, ReLU) with one linear output.
    Each batch of training ratings minimises

    .. math:: \mathcal L = w_{rating}\,\frac1B\sum_b \ell(\hat r_b, r_b)
              + w_{retrieval}\,\mathcal L_{retrieval}

    with :math:`\ell` the squared error (``loss="squared"``: ratings) or the log loss of the
    click label :math:`[r \ge` ``click_threshold`` :math:`]` (``loss="logloss"``), and
    :math:`\mathcal L_{retrieval}` the batch softmax with the logQ correction summed over the
    batch's positives (:func:`~recforge.models.features.two_tower.sampled_softmax_loss`; every
    rating is a positive unless ``threshold`` is set) — the reductions of ``tfrs.tasks.Ranking``
    (mean) and ``tfrs.tasks.Retrieval`` (sum), so the weights mean what they mean in TFRS.
    ``(1, 0)`` is the ranking model alone, ``(0, 1)`` the retrieval model alone.

    ``recommend`` and the ``item_vectors`` / ``query_vectors`` (for the service's ANN index)
    are the retrieval scores :math:`\langle u, v\rangle`; ``predict`` is the rating model
    (click probabilities with ``loss="logloss"``, whose rating scale is then [0, 1]). Cold
    items and users get their tower outputs from their features (id out of vocabulary);
    :meth:`predict_features` predicts pairs given by feature tables.

    Parameters
    ----------
    rating_weight, retrieval_weight : float, default 1.0
        Weights of the two losses (not both 0).
    rating_hidden : list of int, default [256, 64]
        Hidden layers of the rating model (the TFRS ranking tutorial's).
    loss : {"squared", "logloss"}, default "squared"
    click_threshold : float, default 4.0
        With ``loss="logloss"``: a rating ``>= click_threshold`` is a click.
    embedding_dim, hidden, out_dim, logq_correction, n_negatives, threshold, n_epochs,
    batch_size, learning_rate, optimizer, l2_embedding, init_std, context, columns, n_buckets,
    min_count, random_state, device, n_threads, verbose
        As for :class:`~recforge.models.features.two_tower.TwoTower` (tower outputs are not
        normalised and the temperature is 1, as in TFRS).
    """

    capabilities = frozenset({RATING, RANKING, EMBEDDINGS})
    normalize = False
    temperature = 1.0

    def __init__(self, embedding_dim: int = 32, hidden: list | tuple = (), out_dim: int = 32,
                 rating_hidden: list | tuple = (256, 64), rating_weight: float = 1.0,
                 retrieval_weight: float = 1.0, loss: str = "squared", click_threshold: float = 4.0,
                 logq_correction: bool = True, n_negatives: int = 0, threshold: float | None = None,
                 n_epochs: int = 5, batch_size: int = 256, learning_rate: float = 0.1,
                 optimizer: str = "adagrad", l2_embedding: float = 0.0, init_std: float = 0.05,
                 context: list | None = None, columns: dict | None = None, n_buckets: int = 10,
                 min_count: int = 1, random_state: int | None = 0, device: str = "cpu",
                 n_threads: int | None = None, verbose: bool = False):
        store_params(self, locals())

    # ---------------------------------------------------------------- parameters
    def _check_params(self) -> None:
        super()._check_params()
        if self.loss not in RATING_LOSSES:
            raise ValueError(f"loss must be one of {RATING_LOSSES}, got {self.loss!r}")
        for h in self.rating_hidden:
            if int(h) < 1:
                raise ValueError(f"rating_hidden: every layer size must be >= 1, got {self.rating_hidden!r}")
        for name in ("rating_weight", "retrieval_weight"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if float(self.rating_weight) == 0 and float(self.retrieval_weight) == 0:
            raise ValueError("rating_weight and retrieval_weight are both 0: nothing to train")

    def _make_net(self, spec) -> nn.Module:
        return _RankingNet(spec, int(self.embedding_dim), [int(h) for h in self.hidden], int(self.out_dim),
                           False, [int(h) for h in self.rating_hidden])

    # ---------------------------------------------------------------- targets
    def _labels(self, train: Interactions) -> np.ndarray:
        """Targets of the rating model: ratings (``"squared"``) or 0/1 clicks (``"logloss"``);
        sets ``threshold_`` (retrieval positives) and, for clicks, the [0, 1] scale."""
        if float(self.rating_weight) > 0 and not train.is_explicit:
            raise ValueError(f"{type(self).__name__}: the rating task needs explicit ratings "
                             "(implicit data: use TwoTower, or retrieval_weight only)")
        self.threshold_ = None if (self.threshold is None or not train.is_explicit) else float(self.threshold)
        if self.loss == "logloss":
            y = (train.values >= float(self.click_threshold)).astype(np.float32)
            self.rating_scale_ = [0.0, 1.0]
            self.global_mean_ = float(y.mean()) if y.size else 0.5
            return y
        return np.asarray(train.values, dtype=np.float32)

    def _positives(self, train: Interactions) -> np.ndarray:
        if self.threshold_ is None:
            return np.ones(len(train), dtype=bool)
        return train.values >= self.threshold_

    # ---------------------------------------------------------------- the loss
    def _loss_terms(self, q, v, items, y, positive, log_q, negatives=None, *, rating: bool = True,
                    retrieval: bool = True):
        """(rating loss, retrieval loss) of one batch of tower outputs ``q``, ``v`` (B, d):
        the mean rating loss over the batch and the logQ-corrected batch softmax summed over
        its positives (``None`` for a term not asked for, which is then not computed)."""
        rating_term = retrieval_term = None
        if rating:
            rating_term = rating_loss(self.net_.rating(q, v), y, self.loss)
        if retrieval:
            if positive is not None:
                q, v, items = q[positive], v[positive], items[positive]
                log_q = None if log_q is None else log_q[positive]
            v_neg, items_neg, lq_neg = negatives if negatives is not None else (None, None, None)
            retrieval_term = (sampled_softmax_loss(q, v, items, log_q, 1.0, v_neg, items_neg, lq_neg) * q.shape[0]
                              if q.shape[0] else q.sum() * 0.0)
        return rating_term, retrieval_term

    def _combine(self, rating, retrieval) -> torch.Tensor:
        total = 0.0
        if rating is not None:
            total = total + float(self.rating_weight) * rating
        if retrieval is not None:
            total = total + float(self.retrieval_weight) * retrieval
        return total

    def batch_losses(self, users, items, ratings) -> dict[str, float]:
        """The training loss of one batch of (inner user, inner item, rating) triples, by term:
        ``{"rating", "retrieval", "total"}`` with ``total = rating_weight * rating +
        retrieval_weight * retrieval`` (no context, no extra sampled negatives, no L2 term).
        Both terms are computed whatever their weights."""
        self._check_fitted()
        u = torch.as_tensor(np.asarray(users, dtype=np.int64))
        i = torch.as_tensor(np.asarray(items, dtype=np.int64))
        r = np.asarray(ratings, dtype=np.float32)
        if self.loss == "logloss":
            r = (r >= float(self.click_threshold)).astype(np.float32)
        positive = None if self.threshold_ is None else torch.as_tensor(np.asarray(ratings) >= self.threshold_)
        t = self._tables("cpu")
        empty = self.feature_spec_.encode_context(None, u.numel())
        log_q = (torch.from_numpy(self.item_log_freq_)[i] + math.log(int(self.batch_size))
                 if self.logq_correction else None)
        with torch.no_grad(), self._threads():
            q = self.net_.query(torch.cat([t["user_idx_"][u], torch.from_numpy(empty.idx)], 1),
                                torch.cat([t["user_val_"][u], torch.from_numpy(empty.val)], 1))
            v = self.net_.item(t["item_idx_"][i], t["item_val_"][i])
            rating, retrieval = self._loss_terms(q, v, i, torch.from_numpy(r), positive, log_q)
            total = self._combine(rating, retrieval)  # as in training
        return {"rating": float(rating), "retrieval": float(retrieval), "total": float(total)}

    # ---------------------------------------------------------------- training
    def _train(self, train: Interactions, targets: np.ndarray, train_ctx, validation) -> None:
        device, rng, params, started = self._start_training()
        opt = self._optimizer(params)
        pos = self._positives(train)
        counts = np.bincount(train.items[pos], minlength=self.n_items_).astype(np.float64)
        freq = counts / max(counts.sum(), 1.0)
        self.item_log_freq_ = np.log(np.maximum(freq, 1e-12)).astype(np.float32)
        bs, n_neg = int(self.batch_size), int(self.n_negatives)
        log_freq = torch.from_numpy(self.item_log_freq_).to(device) + math.log(bs)
        log_uniform = math.log(max(n_neg, 1) / self.n_items_)
        t = self._tables(device)
        cidx = torch.from_numpy(train_ctx.idx).to(device)
        cval = torch.from_numpy(train_ctx.val).to(device)
        u_all = torch.from_numpy(train.users.astype(np.int64)).to(device)
        i_all = torch.from_numpy(train.items.astype(np.int64)).to(device)
        y_all = torch.from_numpy(targets).to(device)
        p_all = None if pos.all() else torch.from_numpy(pos).to(device)
        rating, retrieval = float(self.rating_weight) > 0, float(self.retrieval_weight) > 0
        n = len(train)
        chunk = bs * 64

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            order = torch.from_numpy(rng.permutation(n)).to(device)
            total = 0.0
            for b in range(0, n, bs):
                if b % chunk == 0:  # encoded rows of the next batches, gathered at once
                    rows = order[b:b + chunk]
                    u_c, i_c = u_all[rows], i_all[rows]
                    idx_c = torch.cat([t["user_idx_"][u_c], cidx[rows], t["item_idx_"][i_c]], 1)
                    val_c = torch.cat([t["user_val_"][u_c], cval[rows], t["item_val_"][i_c]], 1)
                    y_c = y_all[rows]
                    p_c = None if p_all is None else p_all[rows]
                sl = slice(b % chunk, b % chunk + bs)
                i = i_c[sl]
                q, v = self.net_.pair(idx_c[sl], val_c[sl])
                lq = log_freq[i] if (retrieval and self.logq_correction) else None
                negatives = None
                if retrieval and n_neg:
                    items_neg = torch.from_numpy(rng.integers(0, self.n_items_, n_neg)).to(device)
                    v_neg = self.net_.item(t["item_idx_"][items_neg], t["item_val_"][items_neg])
                    lq_neg = torch.full((n_neg,), log_uniform, device=device) if self.logq_correction else None
                    negatives = (v_neg, items_neg, lq_neg)
                terms = self._loss_terms(q, v, i, y_c[sl], None if p_c is None else p_c[sl], lq, negatives,
                                         rating=rating, retrieval=retrieval)
                total += loop.step(self._combine(*terms) + self._regularization(), opt, params) * i.numel()
            return total / n

        loop = self._training_loop(int(self.n_epochs), None, verbose=bool(self.verbose))
        self._run_training(loop, train_epoch, started)
        self.item_vectors_ = self._item_vectors_now()
        self.user_vectors_ = self._query_vectors_now(np.arange(self.n_users_))

    # ---------------------------------------------------------------- the rating model
    def _rating_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(m.weight.detach().cpu().double(), m.bias.detach().cpu().double())
                for m in self.net_.rating_layers()]

    def _output(self, x: np.ndarray) -> np.ndarray:
        if self.loss == "logloss":
            return 1.0 / (1.0 + np.exp(-x))
        return x

    def _rating_pairs(self, q: np.ndarray, v: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """Rating model on row-aligned tower outputs (float64, so that a pair's value does not
        depend on the batch it is computed in; predictions on the model's output scale)."""
        layers = self._rating_weights()
        d = q.shape[1]
        out = np.empty(q.shape[0], dtype=np.float64)
        with torch.no_grad(), self._threads():
            for s in range(0, out.size, chunk):
                qt = torch.from_numpy(np.ascontiguousarray(q[s:s + chunk], dtype=np.float64))
                vt = torch.from_numpy(np.ascontiguousarray(v[s:s + chunk], dtype=np.float64))
                w, b = layers[0]
                x = (qt @ w[:, :d].T + b) + vt @ w[:, d:].T
                for w, b in layers[1:]:
                    x = torch.relu(x) @ w.T + b
                out[s:s + chunk] = x[:, 0].numpy()
        return self._output(out)

    def _rating_grid(self, q: np.ndarray, v: np.ndarray) -> np.ndarray:
        r"""Rating model for every (query row, item) pair, shape (len(q), len(v)): the first
        layer on :math:`[u, v]` splits into :math:`W_u u + b` per row and :math:`W_v v` per item,
        so only the layers above it run per pair."""
        layers = self._rating_weights()
        d = q.shape[1]
        out = np.empty((q.shape[0], v.shape[0]), dtype=np.float64)
        with torch.no_grad(), self._threads():
            w, b = layers[0]
            a = torch.from_numpy(np.asarray(q, dtype=np.float64)) @ w[:, :d].T + b
            c = torch.from_numpy(np.asarray(v, dtype=np.float64)) @ w[:, d:].T
            step = max(1, (1 << 21) // max(v.shape[0] * w.shape[0], 1))
            for s in range(0, q.shape[0], step):
                x = a[s:s + step, None, :] + c[None, :, :]
                for w2, b2 in layers[1:]:
                    x = torch.relu(x) @ w2.T + b2
                out[s:s + step] = x[..., 0].numpy()
        return self._output(out)

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        return self._rating_pairs(self.user_vectors_[u], self.item_vectors_[i])

    def predict_features(self, users, items, *, context=None, user_table=None, item_table=None,
                         clip: bool = True, return_fallbacks: bool = False):
        """Predictions for (user, item) pairs given by raw ids, with features for users and
        items the model has none of (new ones, not in its id maps): ``user_table`` /
        ``item_table`` map columns to one value per pair. Without a table a known id uses its
        training features and an unknown one only out-of-vocabulary rows (counted, like every
        unseen value, in the fallbacks ``return_fallbacks`` returns)."""
        self._check_fitted()
        u = self.user_map_.to_inner(np.atleast_1d(users), missing="mask")
        i = self.item_map_.to_inner(np.atleast_1d(items), missing="mask")
        if u.shape != i.shape:
            raise ValueError("users and items must have the same length")
        log = FallbackLog()
        (uidx, uval), (iidx, ival), (cidx, cval) = self._encode_pairs(u, i, context, user_table, item_table, log)
        with torch.no_grad(), self._threads():
            d = self._device()
            q = self.net_.query(torch.from_numpy(np.concatenate([uidx, cidx], 1)).to(d),
                                torch.from_numpy(np.concatenate([uval, cval], 1)).to(d))
            v = self.net_.item(torch.from_numpy(np.ascontiguousarray(iidx)).to(d),
                               torch.from_numpy(np.ascontiguousarray(ival)).to(d))
        out = self._rating_pairs(q.cpu().numpy(), v.cpu().numpy())
        if clip and self.rating_scale_ is not None:
            np.clip(out, self.rating_scale_[0], self.rating_scale_[1], out=out)
        return (out, log.as_dict()) if return_fallbacks else out

    def predict_proba_inner(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} predicts ratings (predict, predict_features; with "
                        "loss='logloss' they are click probabilities), not predict_proba")


@register("TwoTowerRanking")
class TwoTowerRanking(TwoTowerMultitask):
    r"""Rating (or click) model on the two towers' outputs (the TensorFlow Recommenders "basic
    ranking" tutorial, with the towers of the two-tower retrieval model, Yi et al. 2019).

    The query tower (user id, user features, context) and the candidate tower (item id, item
    features, title tokens) map a pair to :math:`u, v`; the rating model
    :math:`\hat r = w^T h_L + b` with :math:`h_l = \mathrm{ReLU}(W_l h_{l-1} + b_l)`,
    :math:`h_0 = [u, v]` (``rating_hidden``, the tutorial's 256-64) is trained on the mean
    squared error :math:`\frac1B\sum_b(\hat r_b - r_b)^2` of each batch of ratings, or with
    ``loss="logloss"`` on the log loss of the click label :math:`[r \ge` ``click_threshold``
    :math:`]` (predictions are then click probabilities). It is
    :class:`TwoTowerMultitask` with weights (1, 0).

    A rating predictor (``predict``; unknown ids get the training mean) that also ranks:
    ``recommend`` orders the items by predicted rating. An item (or user) without training
    interactions is predicted from its features — its id uses the out-of-vocabulary row —
    including new ones given by :meth:`predict_features`.

    Parameters
    ----------
    embedding_dim : int, default 32
    hidden : list of int, default []
        Hidden layers of each tower.
    out_dim : int, default 32
        Output size of each tower.
    rating_hidden : list of int, default [256, 64]
    loss : {"squared", "logloss"}, default "squared"
    click_threshold : float, default 4.0
    n_epochs, batch_size, learning_rate, optimizer, l2_embedding, init_std, context, columns,
    n_buckets, min_count, random_state, device, n_threads, verbose
        As for :class:`~recforge.models.features.two_tower.TwoTower` (Adagrad 0.1 with Keras's
        initial accumulator by default).
    """

    capabilities = frozenset({RATING, RANKING})
    rating_weight = 1.0
    retrieval_weight = 0.0
    logq_correction = False
    n_negatives = 0
    threshold = None

    def __init__(self, embedding_dim: int = 32, hidden: list | tuple = (), out_dim: int = 32,
                 rating_hidden: list | tuple = (256, 64), loss: str = "squared", click_threshold: float = 4.0,
                 n_epochs: int = 5, batch_size: int = 256, learning_rate: float = 0.1,
                 optimizer: str = "adagrad", l2_embedding: float = 0.0, init_std: float = 0.05,
                 context: list | None = None, columns: dict | None = None, n_buckets: int = 10,
                 min_count: int = 1, random_state: int | None = 0, device: str = "cpu",
                 n_threads: int | None = None, verbose: bool = False):
        store_params(self, locals())

    def _score(self, users: np.ndarray, history, fallbacks) -> np.ndarray:
        return self._rating_grid(self.user_vectors_[users], self.item_vectors_).astype(np.float32)
