"""Two-tower retrieval with in-batch softmax and logQ correction (Yi et al., RecSys 2019)."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from ...data.interactions import Interactions
from ..base import EMBEDDINGS, RANKING, register
from ..neural import init_parameters
from .base import FeatureRecommender, store_params
from .embedding import MLP, FeatureEmbedding, field_sums

logger = logging.getLogger(__name__)


def sampled_softmax_loss(q: torch.Tensor, v: torch.Tensor, items: torch.Tensor,
                         log_q: torch.Tensor | None, temperature: float = 1.0,
                         v_neg: torch.Tensor | None = None, items_neg: torch.Tensor | None = None,
                         log_q_neg: torch.Tensor | None = None) -> torch.Tensor:
    r"""Batch softmax loss of Yi et al. (2019) with the logQ correction.

    For a batch of positive pairs :math:`(x_i, y_i)` with query vectors :math:`u_i` and item
    vectors :math:`v_i`, every other item of the batch (and optional extra sampled items) is a
    negative:

    .. math:: s^c(x_i, y_j) = \langle u_i, v_j\rangle / \tau - \log p_j, \qquad
              \mathcal L = -\frac1B \sum_i \log
              \frac{e^{s^c(x_i, y_i)}}{\sum_{j} e^{s^c(x_i, y_j)}} \qquad (3)\text{–}(5)

    where :math:`p_j` is the expected number of times candidate :math:`j` is drawn into the
    batch (``log_q``; in-batch items are drawn by their frequency). Items of the batch equal to
    row ``i``'s positive at other positions are not negatives for it (accidental hits are
    masked). With ``log_q=None`` there is no correction.

    Parameters
    ----------
    q, v : (B, d)
        Query and positive item vectors.
    items : (B,)
        Item ids of the positives (for the accidental-hit mask).
    log_q : (B,) or None
        :math:`\log p_j` of the in-batch candidates.
    v_neg, items_neg, log_q_neg : (M, d), (M,), (M,), optional
        Extra sampled negatives and their log expected counts.
    """
    logits = q @ v.T / temperature
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    same = items.unsqueeze(1) == items.unsqueeze(0)
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    if v_neg is not None and v_neg.shape[0]:
        extra = q @ v_neg.T / temperature
        if log_q_neg is not None:
            extra = extra - log_q_neg.unsqueeze(0)
        extra = extra.masked_fill(items.unsqueeze(1) == items_neg.unsqueeze(0), float("-inf"))
        logits = torch.cat([logits, extra], dim=1)
    target = torch.arange(q.shape[0], device=q.device)
    return nn.functional.cross_entropy(logits, target)


def _field_starts(slot_fields: np.ndarray) -> np.ndarray:
    """First slot of each field in a row whose slots are grouped by field."""
    change = np.flatnonzero(np.diff(slot_fields)) + 1
    return np.concatenate([[0], change]).astype(np.int64) if slot_fields.size else np.zeros(0, np.int64)


class _TwoTowerNet(nn.Module):
    """One shared embedding table; the query tower pools the user and context fields, the
    candidate tower the item fields; each tower is an MLP ending in a linear layer to ``out_dim``."""

    def __init__(self, spec, dim: int, hidden, out_dim: int, normalize: bool):
        super().__init__()
        offsets = np.array([f.offset for f in spec.fields])
        slot_fields = spec.slot_fields()
        self.emb = FeatureEmbedding(spec.n_features, dim, slot_fields, offsets)
        sources = np.array([f.source for f in spec.fields])
        slot_src = sources[slot_fields]
        qf, itf = np.flatnonzero(sources != "item"), np.flatnonzero(sources == "item")
        # a query row is user slots then context slots; an item row is item slots
        qs, its = np.flatnonzero(slot_src != "item"), np.flatnonzero(slot_src == "item")
        # each field's slots are contiguous in a row (slot_fields is non-decreasing): a field's
        # embedding is one bag of the table, the sum of its slots' rows weighted by their values
        for side, slots in (("q", qs), ("i", its)):
            local = np.unique(slot_fields[slots], return_inverse=True)[1].astype(np.int64)
            self.register_buffer(f"slot_field_{side}", torch.as_tensor(local), persistent=False)
            self.register_buffer(f"starts_{side}", torch.as_tensor(_field_starts(local)), persistent=False)
        self.query_mlp = MLP(len(qf) * dim, tuple(hidden))
        self.item_mlp = MLP(len(itf) * dim, tuple(hidden))
        self.query_out = nn.Linear(self.query_mlp.out_dim, out_dim)
        self.item_out = nn.Linear(self.item_mlp.out_dim, out_dim)
        self.normalize = normalize

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        init_parameters(self, generator)
        self.emb.reset_parameters(generator, init_std)
        with torch.no_grad():  # output layers: Glorot-uniform weights, zero biases
            for layer in (self.query_out, self.item_out):
                nn.init.xavier_uniform_(layer.weight, generator=generator)
                nn.init.zeros_(layer.bias)

    def _fields(self, idx, val, slot_field, starts):
        """Field embeddings (B, F, k) (:func:`~recforge.models.features.embedding.field_sums`:
        one pass over the table for all fields, a cheaper backward than a lookup and a pooling)."""
        return field_sums(self.emb.embedding.weight, idx, val, slot_field, starts)

    def _tower(self, mlp, out, fields):
        x = out(mlp(fields.flatten(1)))
        return nn.functional.normalize(x, dim=1) if self.normalize else x

    def query(self, idx, val):
        return self._tower(self.query_mlp, self.query_out, self._fields(idx, val, self.slot_field_q, self.starts_q))

    def item(self, idx, val):
        return self._tower(self.item_mlp, self.item_out, self._fields(idx, val, self.slot_field_i, self.starts_i))

    def pair(self, idx, val):
        """Both towers on rows that are a query row followed by its item row (``idx``, ``val``
        of shape (B, S_query + S_item)), with one pass over the shared table (one backward
        through it instead of two)."""
        sq, fq = self.slot_field_q.numel(), self.starts_q.numel()
        fields = self._fields(idx, val, torch.cat([self.slot_field_q, self.slot_field_i + fq]),
                              torch.cat([self.starts_q, self.starts_i + sq]))
        return (self._tower(self.query_mlp, self.query_out, fields[:, :fq]),
                self._tower(self.item_mlp, self.item_out, fields[:, fq:]))


@register("TwoTower")
class TwoTower(FeatureRecommender):
    r"""Two-tower retrieval model (Yi, Yang, Hong, Cheng, Heldt, Kumthekar, Zhao, Wei & Chi,
    "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item Recommendations", RecSys
    2019; the TFRS retrieval task).

    The query tower maps user id + user features (+ context) and the candidate tower item id +
    item features + title tokens, each through an MLP, to ``out_dim``-vectors whose dot product
    (cosine with ``normalize``, scaled by ``1/temperature``) scores the pair. Training is the
    batch softmax of :func:`sampled_softmax_loss`: the other items of the batch (and
    ``n_negatives`` extra uniform samples per batch) are the negatives, with the logQ
    correction :math:`s^c = s - \log p_j` by each candidate's expected count in the batch
    (in-batch: ``batch_size`` times its training frequency; uniform: ``n_negatives / n_items``).
    The loss is summed over the batch; Adagrad starts its accumulators at 0.1 (Keras's default).
    ``item_vectors()`` and ``query_vectors()`` export both towers' outputs for the service's
    ANN index; an item without training interactions gets its vector from its features (its id
    uses the out-of-vocabulary row).

    Parameters
    ----------
    embedding_dim : int, default 32
    hidden : list of int, default []
        Hidden layers of each tower (empty: one linear layer over the field embeddings).
    out_dim : int, default 32
    normalize : bool, default False
        L2-normalise the tower outputs (then ``temperature`` matters).
    temperature : float, default 1.0
    logq_correction : bool, default True
    n_negatives : int, default 0
        Extra uniformly sampled negatives per batch.
    threshold : float, optional
        Explicit data: only ratings ``>= threshold`` are positives (default: every interaction).
    n_epochs, batch_size, learning_rate, optimizer, l2_embedding, init_std, context, columns,
    n_buckets, min_count, random_state, device, n_threads, verbose
        As for the click models (:class:`~recforge.models.features.base.FeatureRecommender`).
    """

    capabilities = frozenset({RANKING, EMBEDDINGS})
    state = ("user_vectors_", "item_vectors_", "item_log_freq_")

    def __init__(self, embedding_dim: int = 32, hidden: list | tuple = (), out_dim: int = 32,
                 normalize: bool = False, temperature: float = 1.0, logq_correction: bool = True,
                 n_negatives: int = 0, threshold: float | None = None, n_epochs: int = 5,
                 batch_size: int = 256, learning_rate: float = 0.1, optimizer: str = "adagrad",
                 l2_embedding: float = 0.0, init_std: float = 0.05, context: list | None = None,
                 columns: dict | None = None, n_buckets: int = 10, min_count: int = 1,
                 random_state: int | None = 0, device: str = "cpu", n_threads: int | None = None,
                 verbose: bool = False):
        store_params(self, locals())

    def _check_params(self) -> None:
        for name in ("embedding_dim", "batch_size", "n_buckets", "min_count", "out_dim"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("n_epochs", "n_negatives"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("learning_rate", "init_std", "temperature"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.optimizer not in ("adam", "adagrad", "sgd"):
            raise ValueError(f"optimizer must be 'adam', 'adagrad' or 'sgd', got {self.optimizer!r}")

    def _make_net(self, spec) -> nn.Module:
        return _TwoTowerNet(spec, int(self.embedding_dim), [int(h) for h in self.hidden], int(self.out_dim),
                            bool(self.normalize))

    def _regularization(self) -> torch.Tensor | float:
        if not float(self.l2_embedding):  # no dense gradient over the whole table for nothing
            return 0.0
        return float(self.l2_embedding) * self.net_.emb.embedding.weight.pow(2).sum()

    def _labels(self, train: Interactions) -> np.ndarray:
        self.threshold_ = None if (self.threshold is None or not train.is_explicit) else float(self.threshold)
        if self.threshold_ is None:
            return np.ones(len(train), np.float32)
        return (train.values >= self.threshold_).astype(np.float32)

    def _optimizer(self, params: list) -> torch.optim.Optimizer:
        lr = float(self.learning_rate)
        # Adagrad with the initial accumulator 0.1 of Duchi et al.'s delta as Keras sets it:
        # torch's 0 makes each row's first step a full learning-rate step whatever its gradient
        # fused kernels on the CPU (one pass per tensor for the whole update; the same formula)
        fast = {"fused": True} if self._device().type == "cpu" else {"foreach": True}
        return {"adam": lambda: torch.optim.Adam(params, lr=lr, **fast),
                "adagrad": lambda: torch.optim.Adagrad(params, lr=lr, initial_accumulator_value=0.1, eps=1e-7,
                                                       **fast),
                "sgd": lambda: torch.optim.SGD(params, lr=lr, foreach=True)}[self.optimizer]()

    def _train(self, train: Interactions, labels: np.ndarray, train_ctx, validation) -> None:
        device, rng, params, started = self._start_training()
        opt = self._optimizer(params)
        pos = np.flatnonzero(labels > 0)
        if not pos.size:
            raise ValueError("no positive training interaction (lower threshold)")
        counts = np.bincount(train.items[pos], minlength=self.n_items_).astype(np.float64)
        freq = counts / counts.sum()
        self.item_log_freq_ = np.log(np.maximum(freq, 1e-12)).astype(np.float32)
        bs, n_neg = int(self.batch_size), int(self.n_negatives)
        log_freq = torch.from_numpy(self.item_log_freq_).to(device) + math.log(bs)
        log_uniform = math.log(max(n_neg, 1) / self.n_items_)
        t = self._tables(device)
        cidx = torch.from_numpy(train_ctx.idx[pos]).to(device)
        cval = torch.from_numpy(train_ctx.val[pos]).to(device)
        u_all = torch.from_numpy(train.users[pos].astype(np.int64)).to(device)
        i_all = torch.from_numpy(train.items[pos].astype(np.int64)).to(device)
        n = pos.size
        tau = float(self.temperature)

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            order = torch.from_numpy(rng.permutation(n)).to(device)
            total = 0.0
            for b in range(0, n, bs):
                sel = order[b:b + bs]
                u, i = u_all[sel], i_all[sel]
                q, v = self.net_.pair(torch.cat([t["user_idx_"][u], cidx[sel], t["item_idx_"][i]], 1),
                                      torch.cat([t["user_val_"][u], cval[sel], t["item_val_"][i]], 1))
                lq = log_freq[i] if self.logq_correction else None
                v_neg = items_neg = lq_neg = None
                if n_neg:
                    items_neg = torch.from_numpy(rng.integers(0, self.n_items_, n_neg)).to(device)
                    v_neg = self.net_.item(t["item_idx_"][items_neg], t["item_val_"][items_neg])
                    if self.logq_correction:
                        lq_neg = torch.full((n_neg,), log_uniform, device=device)
                # summed over the batch (Yi et al. eq. 5 up to the 1/B the learning rate absorbs)
                loss = sampled_softmax_loss(q, v, i, lq, tau, v_neg, items_neg, lq_neg) * sel.numel()
                total += loop.step(loss + self._regularization(), opt, params)
            return total / n

        loop = self._training_loop(int(self.n_epochs), None, verbose=bool(self.verbose))
        self._run_training(loop, train_epoch, started)
        self.item_vectors_ = self._item_vectors_now()
        self.user_vectors_ = self._query_vectors_now(np.arange(self.n_users_))

    # ---------------------------------------------------------------- vectors
    def _item_vectors_now(self, idx=None, val=None) -> np.ndarray:
        idx = self.item_idx_ if idx is None else idx
        val = self.item_val_ if val is None else val
        with torch.no_grad(), self._threads():
            d = self._device()
            v = self.net_.item(torch.from_numpy(np.ascontiguousarray(idx)).to(d),
                               torch.from_numpy(np.ascontiguousarray(val)).to(d))
        return (v / float(self.temperature)).cpu().numpy().astype(np.float32)

    def _query_vectors_now(self, users: np.ndarray, context=None) -> np.ndarray:
        ctx = self.feature_spec_.encode_context(context, users.size)
        idx = np.concatenate([self.user_idx_[users], ctx.idx], axis=1)
        val = np.concatenate([self.user_val_[users], ctx.val], axis=1)
        with torch.no_grad(), self._threads():
            d = self._device()
            q = self.net_.query(torch.from_numpy(idx).to(d), torch.from_numpy(val).to(d))
        return q.cpu().numpy().astype(np.float32)

    def item_vectors(self) -> np.ndarray:
        return self.item_vectors_

    def query_vectors(self, users: np.ndarray, history=None) -> np.ndarray:
        return self.user_vectors_[np.asarray(users, dtype=np.int64)]

    def item_vectors_from_features(self, item_table, ids=None) -> tuple[np.ndarray, dict]:
        """Vectors of items given by their features (e.g. new items not in the id map):
        ``item_table`` maps item columns to one value per row; returns (vectors, OOV counts)."""
        n = len(next(iter(item_table.values()))) if ids is None else len(ids)
        ids = np.full(n, -1) if ids is None else np.asarray(ids)
        enc = self.feature_spec_.encode("item", item_table, ids=ids)
        return self._item_vectors_now(enc.idx, enc.val), enc.oov

    def _score(self, users: np.ndarray, history, fallbacks) -> np.ndarray:
        # float64 products rounded to float32: the same scores whatever the batch (BLAS kernels
        # for one row and for many differ in the last float32 bit)
        q = self.query_vectors(users).astype(np.float64)
        return (q @ self.item_vectors_.T.astype(np.float64)).astype(np.float32)

    def predict_proba_inner(self, *args, **kwargs):
        raise TypeError("TwoTower is a retrieval model: it scores items for users (recommend, "
                        "score_inner, query/item vectors), not click probabilities")
