"""YouTube DNN candidate generation (Covington, Adams & Sargin, RecSys 2016)."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from ...data.feature_spec import FeatureSpec, user_columns
from ...data.interactions import Interactions
from ..base import EMBEDDINGS, FOLD_IN, RANKING, register
from ..neural import init_parameters
from ..query import History
from .base import FeatureRecommender, store_params
from .embedding import MLP, FeatureEmbedding
from .two_tower import sampled_softmax_loss

logger = logging.getLogger(__name__)

_BLOCK = 64


def history_windows(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """For each row, the last ``width`` entries of ``items[starts[r]:ends[r]]`` as ``item + 1``,
    left-padded with 0: shape (len(starts), width) int64."""
    idx = ends[:, None] - width + np.arange(width)[None, :]
    valid = idx >= starts[:, None]
    safe = np.clip(idx, 0, max(items.size - 1, 0))
    vals = items[safe].astype(np.int64) + 1 if items.size else np.zeros(idx.shape, np.int64)
    return np.where(valid, vals, 0)


class _YouTubeNet(nn.Module):
    """User features (shared-table fields) + mean of the watched items' embeddings + example
    age -> ReLU tower -> user vector; item output embeddings and biases score every item."""

    def __init__(self, spec, n_items: int, dim: int, hidden, out_dim: int):
        super().__init__()
        self.emb = FeatureEmbedding(spec.n_features, dim, spec.slot_fields(),
                                    np.array([f.offset for f in spec.fields]))
        self.watch = nn.EmbeddingBag(n_items + 1, dim, mode="mean", padding_idx=0)
        self.tower = MLP(len(spec.fields) * dim + dim + 2, tuple(hidden))
        self.top = nn.Linear(self.tower.out_dim, out_dim)
        self.items = nn.Embedding(n_items, out_dim)
        self.item_bias = nn.Embedding(n_items, 1)

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        init_parameters(self, generator)
        self.emb.reset_parameters(generator, init_std)
        with torch.no_grad():
            nn.init.normal_(self.watch.weight, 0.0, init_std, generator=generator)
            self.watch.weight[0] = 0.0
            nn.init.normal_(self.items.weight, 0.0, init_std, generator=generator)
            self.item_bias.weight.zero_()

    def query(self, uidx, uval, watched, age):
        fields = self.emb.fields(self.emb.slots(uidx, uval)).flatten(1)
        x = torch.cat([fields, self.watch(watched), age.unsqueeze(1), age.pow(2).unsqueeze(1)], dim=1)
        return self.top(self.tower(x))


@register("YouTubeDNN")
class YouTubeDNN(FeatureRecommender):
    r"""Deep candidate generation of Covington, Adams & Sargin, "Deep Neural Networks for
    YouTube Recommendations", RecSys 2016 (section 3).

    Recommendation as extreme multiclass classification: the probability that the next watch
    is item :math:`i` given user :math:`U` and context :math:`C` is

    .. math:: P(w_t = i \mid U, C) = \frac{e^{v_i u}}{\sum_{j} e^{v_j u}}

    where the user vector :math:`u` is a ReLU tower over the mean embedding of the user's
    previous watches (up to ``max_history``, the items before the target in time order), the
    user's features (the feature spec's user fields) and the **example age** (days from the
    training event to the end of the training data, as :math:`a` and :math:`a^2` with
    :math:`a = \log(1+\text{days}) / \log(1+\text{max days})`; 0 when serving, so the model
    predicts "now"), and :math:`v_i` (with a bias) are output item embeddings. Trained with a
    sampled softmax: the batch's other targets plus ``n_negatives`` uniform samples are the
    negatives, with the logQ correction of :func:`~recforge.models.features.two_tower.sampled_softmax_loss`.

    Any row with a history is scored from it (``FOLD_IN``: anonymous sessions and unknown users
    too, their features out of vocabulary); a known user queried without history uses their
    features and an empty watch bag. ``query_vectors`` / ``item_vectors`` give the scores as dot
    products (``[u, 1] . [v_i, b_i]``) for the service's ANN index.

    Parameters
    ----------
    embedding_dim : int, default 32
        Size of the watch and user-field embeddings.
    hidden : list of int, default [128, 64]
        ReLU tower.
    out_dim : int, default 32
    max_history : int, default 50
    n_negatives : int, default 100
    n_epochs : int, default 5
    batch_size : int, default 256
    learning_rate : float, default 1e-3
    optimizer : {"adam", "adagrad", "sgd"}, default "adam"
    l2_embedding : float, default 0.0
    init_std : float, default 0.05
    columns : dict, optional
        FeatureSpec overrides; the user id is left out unless ``{"user_id": "id"}``.
    n_buckets, min_count, random_state, device, n_threads, verbose
        As for :class:`~recforge.models.features.base.FeatureRecommender` (user fields only).
    """

    capabilities = frozenset({RANKING, EMBEDDINGS, FOLD_IN})
    state = ("user_history_", "example_age_scale_")

    def __init__(self, embedding_dim: int = 32, hidden: list | tuple = (128, 64), out_dim: int = 32,
                 max_history: int = 50, n_negatives: int = 100, n_epochs: int = 5, batch_size: int = 256,
                 learning_rate: float = 1e-3, optimizer: str = "adam", l2_embedding: float = 0.0,
                 init_std: float = 0.05, columns: dict | None = None, n_buckets: int = 10,
                 min_count: int = 1, random_state: int | None = 0, device: str = "cpu",
                 n_threads: int | None = None, verbose: bool = False):
        store_params(self, locals())

    def _check_params(self) -> None:
        for name in ("embedding_dim", "batch_size", "n_buckets", "min_count", "out_dim", "max_history"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("n_epochs", "n_negatives"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("learning_rate", "init_std"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.optimizer not in ("adam", "adagrad", "sgd"):
            raise ValueError(f"optimizer must be 'adam', 'adagrad' or 'sgd', got {self.optimizer!r}")

    def _make_net(self, spec) -> nn.Module:
        return _YouTubeNet(spec, self.n_items_, int(self.embedding_dim), [int(h) for h in self.hidden],
                           int(self.out_dim))

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        inputs = self._fit_inputs
        uf = self._user_features(inputs["user_features"], train)
        spec = inputs["feature_spec"]
        if spec is None:
            # no user id by default (the paper's model generalises to new users from the
            # watches and demographics); {"user_id": "id"} in ``columns`` adds it
            columns = {"item_id": None, "user_id": None, **(self.columns or {})}
            spec = FeatureSpec.build(train, user_features=uf, columns=columns,
                                     n_buckets=int(self.n_buckets), min_count=int(self.min_count))
        if spec.source_fields("item") or spec.source_fields("context"):
            raise ValueError("YouTubeDNN uses user fields only (watches come from the history)")
        self.feature_spec_ = spec
        users = spec.encode("user", user_columns(uf), ids=np.arange(train.n_users))
        self.user_idx_, self.user_val_ = users.idx, users.val
        self.item_idx_ = np.zeros((train.n_items, 0), np.int64)
        self.item_val_ = np.zeros((train.n_items, 0), np.float32)
        self.threshold_ = None
        self.user_history_ = train.csr.copy()
        with self._threads():
            self._train_net(train)

    def _train_net(self, train: Interactions) -> None:
        device, rng, params, started = self._start_training()
        lr = float(self.learning_rate)
        opt = {"adam": lambda: torch.optim.Adam(params, lr=lr),
               "adagrad": lambda: torch.optim.Adagrad(params, lr=lr),
               "sgd": lambda: torch.optim.SGD(params, lr=lr)}[self.optimizer]()
        # examples: every event, its input the user's earlier events (time order)
        times = train.timestamps if train.timestamps is not None else np.zeros(len(train))
        order = np.lexsort((train.items, times, train.users))
        items, users, t = train.items[order], train.users[order].astype(np.int64), times[order]
        starts = np.concatenate(([0], np.cumsum(train.user_counts)))[users]
        pos = np.arange(items.size)
        windows = history_windows(items, starts, pos, int(self.max_history))
        age_days = (t.max() - t) / 86400.0 if t.size else t
        self.example_age_scale_ = float(math.log1p(age_days.max())) if t.size and age_days.max() > 0 else 1.0
        age = (np.log1p(age_days) / self.example_age_scale_).astype(np.float32)
        counts = np.bincount(items, minlength=self.n_items_).astype(np.float64)
        log_freq = torch.from_numpy(np.log(np.maximum(counts / max(counts.sum(), 1), 1e-12))).float().to(device)
        bs, n_neg = int(self.batch_size), int(self.n_negatives)
        log_freq = log_freq + math.log(bs)
        log_uniform = math.log(max(n_neg, 1) / self.n_items_)
        uidx = torch.from_numpy(self.user_idx_).to(device)
        uval = torch.from_numpy(self.user_val_).to(device)
        w_all = torch.from_numpy(windows).to(device)
        a_all = torch.from_numpy(age).to(device)
        i_all = torch.from_numpy(items.astype(np.int64)).to(device)
        u_all = torch.from_numpy(users).to(device)
        n = items.size
        net = self.net_

        def item_side(ids):
            return torch.cat([net.items(ids), net.item_bias(ids)], dim=1)

        def train_epoch(epoch: int, loop) -> float:
            net.train()
            perm = torch.from_numpy(rng.permutation(n)).to(device)
            total = 0.0
            for b in range(0, n, bs):
                sel = perm[b:b + bs]
                u, i = u_all[sel], i_all[sel]
                q = net.query(uidx[u], uval[u], w_all[sel], a_all[sel])
                q = torch.cat([q, torch.ones(q.shape[0], 1, device=device)], dim=1)
                neg = lq_neg = v_neg = None
                if n_neg:
                    neg = torch.from_numpy(rng.integers(0, self.n_items_, n_neg)).to(device)
                    v_neg = item_side(neg)
                    lq_neg = torch.full((n_neg,), log_uniform, device=device)
                loss = sampled_softmax_loss(q, item_side(i), i, log_freq[i], 1.0, v_neg, neg, lq_neg)
                reg = float(self.l2_embedding) * (net.watch.weight.pow(2).sum() + net.items.weight.pow(2).sum())
                total += loop.step(loss + reg, opt, params) * sel.numel()
            return total / n

        loop = self._training_loop(int(self.n_epochs), None, verbose=bool(self.verbose))
        self._run_training(loop, train_epoch, started)

    # ---------------------------------------------------------------- vectors and scores
    def _query(self, users: np.ndarray, history: History) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        known = users >= 0
        empty = self.feature_spec_.encode("user", {}, ids=np.array([-1]))
        uidx = np.where(known[:, None], self.user_idx_[np.where(known, users, 0)], empty.idx)
        uval = np.where(known[:, None], self.user_val_[np.where(known, users, 0)], empty.val)
        p = history.seq_indptr
        windows = history_windows(history.seq_items, p[:-1], p[1:], int(self.max_history))
        # fixed blocks of _BLOCK rows (the last one padded): a row's vector then does not depend
        # on how many rows are asked at once (BLAS picks kernels by the number of rows)
        n = users.size
        pad = (-n) % _BLOCK
        if pad:
            uidx, uval, windows = (np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) for a in (uidx, uval, windows))
        out = np.empty((n + pad, int(self.out_dim)), np.float32)
        with torch.no_grad(), self._threads():
            d = self._device()
            for s in range(0, n + pad, _BLOCK):
                sl = slice(s, s + _BLOCK)
                q = self.net_.query(torch.from_numpy(uidx[sl]).to(d), torch.from_numpy(uval[sl]).to(d),
                                    torch.from_numpy(windows[sl]).to(d), torch.zeros(_BLOCK, device=d))
                out[sl] = q.cpu().numpy()
        return np.hstack([out[:n], np.ones((n, 1), np.float32)])

    def item_vectors(self) -> np.ndarray:
        with torch.no_grad():
            w = torch.cat([self.net_.items.weight, self.net_.item_bias.weight], dim=1)
        return w.cpu().numpy().astype(np.float32)

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if history is None:
            rows = np.where(users >= 0, users, 0)
            history = History.from_csr(self.user_history_[rows].multiply((users >= 0)[:, None]).tocsr())
        return self._query(users, history)

    def _score(self, users: np.ndarray, history: History, fallbacks) -> np.ndarray:
        q = self._query(users, history).astype(np.float64)
        return (q @ self.item_vectors().T.astype(np.float64)).astype(np.float32)

    def predict_proba_inner(self, *args, **kwargs):
        raise TypeError("YouTubeDNN is a candidate-generation model: it scores items for users and "
                        "histories, not click probabilities")
