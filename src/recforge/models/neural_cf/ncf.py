r"""Neural collaborative filtering: GMF, MLP and NeuMF (He et al. 2017).

He, Liao, Zhang, Nie, Hu & Chua, *Neural Collaborative Filtering*, WWW 2017. Every model
predicts the probability that user :math:`u` interacts with item :math:`i` from one-hot user
and item ids through embeddings:

* **GMF** (generalized matrix factorization, eq. 9):
  :math:`\hat y_{ui} = \sigma\bigl(h^\top (p_u \odot q_i) + b\bigr)`;
* **MLP** (eq. 10): :math:`z_1 = [p_u; q_i]`, :math:`z_{l+1} = \mathrm{ReLU}(W_l z_l + b_l)`,
  :math:`\hat y_{ui} = \sigma(h^\top z_L + b)`, a tower whose input is ``layers[0]`` wide
  (each embedding ``layers[0] / 2``) and whose hidden layers are ``layers[1:]``;
* **NeuMF** (eq. 11-12): the two side by side with separate embeddings,
  :math:`\hat y_{ui} = \sigma\bigl(h^\top [p^G_u \odot q^G_i;\ z_L] + b\bigr)`.

All three minimise the pointwise log loss (binary cross-entropy, eq. 7) over the observed
interactions :math:`\mathcal Y` (label 1) and ``num_ng`` negatives per positive drawn uniformly,
afresh every epoch, from the items the user never interacted with (label 0):

.. math:: L = -\sum_{(u,i) \in \mathcal Y} \log \hat y_{ui}
              - \sum_{(u,j) \in \mathcal Y^-} \log (1 - \hat y_{uj})

(averaged over each mini-batch), with Adam. Embeddings start from :math:`N(0, 0.01^2)` as in
section 4.1; the dense layers from torch's default scheme.

**Pre-training** (section 3.4.1): ``NeuMF(pretrain=True)`` first trains a GMF and an MLP of
the same sizes (``pretrain_epochs`` each, Adam), copies their embeddings and tower into the
NeuMF and sets its output layer to :math:`h = [\alpha h^{GMF};\ (1 - \alpha) h^{MLP}]` (bias
:math:`\alpha b^{GMF} + (1 - \alpha) b^{MLP}`), :math:`\alpha = 0.5` in the paper; the NeuMF is
then fine-tuned with plain SGD (``optimizer="auto"``), because Adam's moment estimates are not
part of what was pre-trained.

Every input is an interaction (values are ignored: a rating of 1 is as positive as a 5). The
models rank (``RANKING``); scores are the logits :math:`\sigma^{-1}(\hat y_{ui})`, which order
items as the probabilities do without float32 saturation ties. An unknown user has no
embedding and NCF has no fold-in (a user is a one-hot id, not a history): such rows get the
popularity fallback, reported in the result. Item similarity is the cosine of the item
embeddings (GMF and MLP ones concatenated for NeuMF); GMF's scores are a dot product of
:meth:`GMF.query_vectors` :math:`[h \odot p_u, b]` and :meth:`GMF.item_vectors`
:math:`[q_i, 1]` (``EMBEDDINGS``).
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..base import EMBEDDINGS, RANKING, SIMILAR_ITEMS, Recommender, register
from ..neural import NeuralModel, TrainingLoop, init_parameters, isolated_global_rng
from ..query import FallbackLog, History
from ._validation import topn_validator

logger = logging.getLogger(__name__)

OPTIMIZERS = ("auto", "adam", "sgd")


# ---------------------------------------------------------------------- the network
class NCFNet(nn.Module):
    """GMF and/or MLP towers over user and item embeddings, one logit per (user, item) pair.

    ``factors`` > 0 adds the GMF part (embeddings of that size), ``layers`` (non-empty) the MLP
    part: embeddings of ``layers[0] // 2`` each and ``len(layers) - 1`` ReLU layers
    ``layers[j] -> layers[j + 1]``. The output layer reads ``factors + layers[-1]`` features.
    """

    def __init__(self, n_users: int, n_items: int, factors: int, layers: list[int]):
        super().__init__()
        self.factors = int(factors)
        self.layers = [int(x) for x in layers]
        width = 0
        if self.factors:
            self.user_gmf = nn.Embedding(n_users, self.factors)
            self.item_gmf = nn.Embedding(n_items, self.factors)
            width += self.factors
        if self.layers:
            half = self.layers[0] // 2
            self.user_mlp = nn.Embedding(n_users, half)
            self.item_mlp = nn.Embedding(n_items, half)
            self.tower = nn.ModuleList([nn.Linear(a, b) for a, b in zip(self.layers[:-1], self.layers[1:],
                                                                         strict=True)])
            width += self.layers[-1]
        self.out = nn.Linear(width, 1)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Torch's default schemes for the dense layers, :math:`N(0, 0.01^2)` embeddings
        (He et al. 2017, section 4.1), all drawn from ``generator``."""
        init_parameters(self, generator)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Embedding):
                    nn.init.normal_(m.weight, std=0.01, generator=generator)

    def _mlp(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.tower:
            z = torch.relu(layer(z))
        return z

    def features(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The predictive vector of each pair: :math:`[p_u \\odot q_i;\\ z_L]`, (B, width)."""
        parts = []
        if self.factors:
            parts.append(self.user_gmf(users) * self.item_gmf(items))
        if self.layers:
            parts.append(self._mlp(torch.cat([self.user_mlp(users), self.item_mlp(items)], dim=-1)))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits of the pairs ``(users[j], items[j])``, shape (B,)."""
        return self.out(self.features(users, items)).squeeze(-1)

    def score_all(self, users: torch.Tensor, max_pairs: int = 1 << 19) -> torch.Tensor:
        """Logits of every item for each user, (len(users), n_items).

        The GMF part is one matrix product, :math:`(h^G \\odot p_u) Q^\\top`; the MLP's first
        layer splits into a user and an item half, :math:`W [p; q] = W_p p + W_q q`, so each
        side is projected once and only the deeper layers run per pair (in chunks of users of
        at most ``max_pairs`` pairs)."""
        h = self.out.weight[0]
        n_items = (self.item_gmf if self.factors else self.item_mlp).num_embeddings
        logits = self.out.bias.expand(users.numel(), n_items).clone()
        if self.factors:
            logits += (self.user_gmf(users) * h[:self.factors]) @ self.item_gmf.weight.T
        if self.layers:
            h_mlp = h[self.factors:]
            half = self.layers[0] // 2
            if self.tower:
                first = self.tower[0]
                user_side = self.user_mlp(users) @ first.weight[:, :half].T + first.bias
                item_side = self.item_mlp.weight @ first.weight[:, half:].T
                step = max(1, max_pairs // max(n_items, 1))
                for b in range(0, users.numel(), step):
                    z = torch.relu(user_side[b:b + step, None, :] + item_side[None, :, :])
                    for layer in self.tower[1:]:
                        z = torch.relu(layer(z))
                    logits[b:b + step] += z @ h_mlp
            else:  # no hidden layer: the concatenation itself is the predictive vector
                logits += (self.user_mlp(users) @ h_mlp[:half])[:, None] \
                    + (self.item_mlp.weight @ h_mlp[half:])[None, :]
        return logits

    def item_embeddings(self) -> torch.Tensor:
        """Each item's embedding(s), GMF and MLP side concatenated: (n_items, d)."""
        parts = []
        if self.factors:
            parts.append(self.item_gmf.weight)
        if self.layers:
            parts.append(self.item_mlp.weight)
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------------- sampling and loss
def pointwise_log_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """He et al. 2017, eq. 7, averaged over the batch: :math:`-\\frac1B \\sum_j [y_j \\log
    \\sigma(x_j) + (1 - y_j) \\log(1 - \\sigma(x_j))]` on logits :math:`x` (computed stably as
    ``softplus(-x)`` for positives and ``softplus(x)`` for negatives)."""
    return nn.functional.binary_cross_entropy_with_logits(logits, labels)


def sample_negatives(seen: sp.csr_matrix, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One item per entry of ``users`` drawn uniformly from the items absent from the user's
    row of ``seen`` (users x items, sorted indices): vectorized rejection sampling, redrawing
    only the collisions. Every given user must have at least one unseen item."""
    n_items = seen.shape[1]
    keys = (np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr)) * n_items
            + seen.indices.astype(np.int64))
    keys.sort()
    users = np.asarray(users, dtype=np.int64)
    out = rng.integers(0, n_items, size=users.size)
    todo = np.arange(users.size)
    while todo.size and keys.size:
        key = users[todo] * n_items + out[todo]
        pos = np.minimum(np.searchsorted(keys, key), keys.size - 1)
        todo = todo[keys[pos] == key]
        out[todo] = rng.integers(0, n_items, size=todo.size)
    return out


def training_pairs(seen: sp.csr_matrix, num_ng: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of training instances (section 4.1): every observed pair with label 1 and
    ``num_ng`` sampled negatives per pair with label 0 (users who have seen every item get no
    negatives), shuffled. Returns ``(users, items, labels)``."""
    n_users, n_items = seen.shape
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen.indptr))
    items = seen.indices.astype(np.int64)
    can = np.diff(seen.indptr) < n_items
    neg_users = np.repeat(users[can[users]], num_ng)
    neg_items = sample_negatives(seen, neg_users, rng)
    all_users = np.concatenate([users, neg_users])
    all_items = np.concatenate([items, neg_items])
    labels = np.concatenate([np.ones(users.size, np.float32), np.zeros(neg_users.size, np.float32)])
    order = rng.permutation(all_users.size)
    return all_users[order], all_items[order], labels[order]


# ---------------------------------------------------------------------- the models
class _NCF(NeuralModel, Recommender):
    """The shared part of GMF, MLP and NeuMF (see the module docstring)."""

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, SIMILAR_ITEMS})
    state = ("train_seconds_",)
    _torch_modules = ("net_",)

    # a subclass fixes which towers it has
    def _sizes(self) -> tuple[int, list[int]]:
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        name = type(self).__name__
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name}: {key} must be an integer >= 1, got {value!r}")
        if isinstance(self.num_ng, bool) or int(self.num_ng) != self.num_ng or self.num_ng < 0:
            raise ValueError(f"{name}: num_ng must be an integer >= 0, got {self.num_ng!r}")
        for key in ("learning_rate", "weight_decay"):
            value = getattr(self, key)
            if not np.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{name}: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        factors, layers = self._sizes()
        if factors < 0 or int(factors) != factors:
            raise ValueError(f"{name}: factors must be an integer >= 1, got {factors!r}")
        if layers and (any(int(x) != x or x < 1 for x in layers) or layers[0] % 2):
            raise ValueError(f"{name}: layers must be positive integers with an even first entry "
                             f"(the two embeddings are layers[0] / 2 each), got {layers!r}")

    # ------------------------------------------------------------------ network
    def _new_net(self, generator: torch.Generator) -> NCFNet:
        factors, layers = self._sizes()
        with isolated_global_rng():
            net = NCFNet(self.n_users_, self.n_items_, factors, layers)
        net.reset_parameters(generator)
        return net.to(self._device())

    def _build_modules(self) -> None:
        self.net_ = self._new_net(torch.Generator().manual_seed(0))

    # ------------------------------------------------------------------ training
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        if train.n_items < 2:
            raise ValueError(f"{type(self).__name__} needs at least two items")
        with self._threads():
            started = time.perf_counter()
            streams = self._seed_streams()  # fixed order: init, sampling, then pre-training
            init_gen = streams.torch("cpu")
            rng = streams.numpy()
            self.net_ = self._initial_net(init_gen, streams, train, validation)
            self._train(train, validation, rng, self._make_optimizer())
            self.train_seconds_ = time.perf_counter() - started

    def _initial_net(self, generator, streams, train, validation) -> NCFNet:
        return self._new_net(generator)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = self.net_.parameters()
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=float(self.learning_rate), weight_decay=float(self.weight_decay))
        return torch.optim.Adam(params, lr=float(self.learning_rate), weight_decay=float(self.weight_decay))

    def _train(self, train, validation, rng: np.random.Generator, optimizer) -> None:
        seen = sp.csr_matrix(train.csr, dtype=np.float32)
        seen.sort_indices()
        device = self._device()
        batch = int(self.batch_size)

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            users, items, labels = training_pairs(seen, int(self.num_ng), rng)
            u_t = torch.from_numpy(users).to(device)
            i_t = torch.from_numpy(items).to(device)
            y_t = torch.from_numpy(labels).to(device)
            total = 0.0
            for b in range(0, users.size, batch):
                sl = slice(b, b + batch)
                loss = pointwise_log_loss(self.net_(u_t[sl], i_t[sl]), y_t[sl])
                total += loop.step(loss, optimizer, self.net_.parameters()) * (min(b + batch, users.size) - b)
            return total / max(users.size, 1)

        validate = None if validation is None else topn_validator(self, validation, train, k=10)
        loop = TrainingLoop(int(self.epochs), name=type(self).__name__, validate=validate,
                            patience=self.patience, monitor="ndcg@10", mode="max",
                            restore_best=self.restore_best, verbose=self.verbose)
        try:
            self.history_ = loop.run(train_epoch, get_state=self._copy_torch_state,
                                     set_state=self._set_torch_state,
                                     on_epoch_end=lambda r: logger.info("%s epoch %d: %s",
                                                                        type(self).__name__, r["epoch"], r))
        finally:
            self.net_.eval()
        self.best_epoch_ = loop.best_epoch

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        with self._threads(), torch.no_grad():
            self.net_.eval()
            u = torch.from_numpy(np.asarray(users, dtype=np.int64)).to(self._device())
            return self.net_.score_all(u).cpu().numpy().astype(np.float32)

    def predict_proba(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """:math:`\\hat y_{ui}` of inner (user, item) pairs (both known), float32."""
        self._check_fitted()
        with self._threads(), torch.no_grad():
            self.net_.eval()
            u = torch.from_numpy(np.asarray(users, dtype=np.int64)).to(self._device())
            i = torch.from_numpy(np.asarray(items, dtype=np.int64)).to(self._device())
            return torch.sigmoid(self.net_(u, i)).cpu().numpy()

    def _similar(self, items: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.net_.item_embeddings().detach().cpu().numpy().astype(np.float64)
        norms = np.linalg.norm(q, axis=1)
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return (q[np.asarray(items)] * inv[np.asarray(items), None]) @ (q * inv[:, None]).T


_COMMON_DOC = """
    epochs : int, default 20
        Training epochs (each with fresh negatives).
    num_ng : int, default 4
        Negatives sampled per observed interaction and epoch (the paper's 4).
    batch_size : int, default 256
    learning_rate : float, default 0.001
    weight_decay : float, default 0.0
        L2 penalty of the optimizer on every parameter.
    optimizer : {"auto", "adam", "sgd"}, default "auto"
        ``"auto"``: Adam (SGD for a pre-trained NeuMF, as the paper).
    patience : int or None, default None
        With ``validation`` given to ``fit`` (an Interactions part sharing the id maps): stop
        after this many epochs without a better validation NDCG@10 (full ranking, training items
        excluded); the best epoch's weights are kept when ``restore_best``.
    restore_best : bool, default True
    random_state : int, optional
        Seeds initialisation (a torch generator) and negative sampling and shuffling (a NumPy
        generator), spawned from one ``SeedSequence``; the global generators are untouched.
    device : {"cpu", "auto", "cuda", "cuda:N"}, default "cpu"
    n_threads : int or None, default None
        Torch intra-op threads while fitting and scoring (restored afterwards).
    verbose : bool, default False
        A progress bar over the epochs.

    Attributes
    ----------
    history_ : dict of lists
        Per epoch: ``epoch``, ``train_loss`` (mean log loss), ``seconds`` and, with validation,
        ``val_ndcg@10`` and ``val_hr@10``.
    best_epoch_ : int or None
    train_seconds_ : float
"""


def _doc(cls):
    cls.__doc__ = cls.__doc__.rstrip() + "\n" + _COMMON_DOC
    return cls


@register("GMF")
@_doc
class GMF(_NCF):
    """Generalized matrix factorization (He et al. 2017, eq. 9):
    :math:`\\hat y_{ui} = \\sigma(h^\\top (p_u \\odot q_i) + b)`, trained on the pointwise log
    loss with sampled negatives (see :mod:`recforge.models.neural_cf.ncf`).

    Its logit is a dot product, :math:`[h \\odot p_u, b] \\cdot [q_i, 1]`, so it exposes item
    and query vectors (``EMBEDDINGS``).

    Parameters
    ----------
    factors : int, default 8
        Embedding size (the predictive factors).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, SIMILAR_ITEMS, EMBEDDINGS})

    def __init__(self, factors: int = 8, epochs: int = 20, num_ng: int = 4, batch_size: int = 256,
                 learning_rate: float = 0.001, weight_decay: float = 0.0, optimizer: str = "auto",
                 patience: int | None = None, restore_best: bool = True, random_state: int | None = 0,
                 device: str = "cpu", n_threads: int | None = None, verbose: bool = False):
        self.factors = factors
        self.epochs = epochs
        self.num_ng = num_ng
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.patience = patience
        self.restore_best = restore_best
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    def _sizes(self) -> tuple[int, list[int]]:
        if int(self.factors) < 1:
            raise ValueError(f"GMF: factors must be an integer >= 1, got {self.factors!r}")
        return int(self.factors), []

    def item_vectors(self) -> np.ndarray:
        """:math:`[q_i, 1]` per item (float32)."""
        q = self.net_.item_gmf.weight.detach().cpu().numpy()
        return np.hstack([q, np.ones((q.shape[0], 1), q.dtype)]).astype(np.float32)

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """:math:`[h \\odot p_u, b]` per known inner user (float32); an unknown row (``-1``)
        gets zeros (it cannot be scored: NCF has no fold-in)."""
        users = np.asarray(users, dtype=np.int64)
        h = self.net_.out.weight[0].detach().cpu().numpy()
        p = self.net_.user_gmf.weight.detach().cpu().numpy()
        out = np.zeros((users.size, p.shape[1] + 1), dtype=np.float32)
        known = users >= 0
        out[known, :-1] = p[users[known]] * h
        out[known, -1] = float(self.net_.out.bias.detach().cpu()[0])
        return out


@register("MLP")
@_doc
class MLP(_NCF):
    """The MLP of NCF (He et al. 2017, eq. 10): user and item embeddings concatenated, a ReLU
    tower, a logistic output; trained on the pointwise log loss with sampled negatives (see
    :mod:`recforge.models.neural_cf.ncf`).

    Parameters
    ----------
    layers : sequence of int, default (64, 32, 16, 8)
        ``layers[0]``: the concatenated embedding size (each embedding ``layers[0] / 2``);
        ``layers[1:]``: the hidden layers, the last being the predictive factors.
    """

    def __init__(self, layers=(64, 32, 16, 8), epochs: int = 20, num_ng: int = 4, batch_size: int = 256,
                 learning_rate: float = 0.001, weight_decay: float = 0.0, optimizer: str = "auto",
                 patience: int | None = None, restore_best: bool = True, random_state: int | None = 0,
                 device: str = "cpu", n_threads: int | None = None, verbose: bool = False):
        self.layers = layers
        self.epochs = epochs
        self.num_ng = num_ng
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.patience = patience
        self.restore_best = restore_best
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    def _sizes(self) -> tuple[int, list[int]]:
        layers = [int(x) for x in self.layers]
        if not layers:
            raise ValueError("MLP: layers must name at least the embedding size")
        return 0, layers


@register("NeuMF")
@_doc
class NeuMF(_NCF):
    """Neural matrix factorization (He et al. 2017, eq. 11-12): a GMF and an MLP with their
    own embeddings, their predictive vectors concatenated into one logistic output; optionally
    pre-trained from a GMF and an MLP (section 3.4.1, see :mod:`recforge.models.neural_cf.ncf`).

    Parameters
    ----------
    factors : int, default 8
        GMF embedding size.
    layers : sequence of int, default (64, 32, 16, 8)
        The MLP tower (as :class:`MLP`).
    pretrain : bool, default False
        Pre-train a GMF and an MLP (``pretrain_epochs`` each, Adam with
        ``pretrain_learning_rate``, the same ``num_ng``, ``batch_size`` and validation) and
        start from their weights, output layer :math:`[\\alpha h^{GMF}; (1-\\alpha) h^{MLP}]`.
    alpha : float, default 0.5
        The trade-off of the two pre-trained output layers (the paper's 0.5).
    pretrain_epochs : int or None, default None
        Epochs of each pre-trained model (``None``: ``epochs``).
    pretrain_learning_rate : float, default 0.001
    """

    state = ("pretrain_history_",)

    def __init__(self, factors: int = 8, layers=(64, 32, 16, 8), pretrain: bool = False,
                 alpha: float = 0.5, pretrain_epochs: int | None = None,
                 pretrain_learning_rate: float = 0.001, epochs: int = 20, num_ng: int = 4,
                 batch_size: int = 256, learning_rate: float = 0.001, weight_decay: float = 0.0,
                 optimizer: str = "auto", patience: int | None = None, restore_best: bool = True,
                 random_state: int | None = 0, device: str = "cpu", n_threads: int | None = None,
                 verbose: bool = False):
        self.factors = factors
        self.layers = layers
        self.pretrain = pretrain
        self.alpha = alpha
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_learning_rate = pretrain_learning_rate
        self.epochs = epochs
        self.num_ng = num_ng
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.patience = patience
        self.restore_best = restore_best
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.verbose = verbose

    def _sizes(self) -> tuple[int, list[int]]:
        layers = [int(x) for x in self.layers]
        if int(self.factors) < 1 or not layers:
            raise ValueError(f"NeuMF: factors must be >= 1 and layers non-empty, got "
                             f"{self.factors!r}, {self.layers!r}")
        return int(self.factors), layers

    def _check_params(self) -> None:
        super()._check_params()
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ValueError(f"NeuMF: alpha must be in [0, 1], got {self.alpha!r}")

    def _make_optimizer(self) -> torch.optim.Optimizer:
        if self.optimizer == "auto" and self.pretrain:
            return torch.optim.SGD(self.net_.parameters(), lr=float(self.learning_rate),
                                   weight_decay=float(self.weight_decay))
        return super()._make_optimizer()

    def fit_pretrained(self, train, gmf: GMF, mlp: MLP, *, validation=None) -> NeuMF:
        """Fit starting from an already trained ``gmf`` and ``mlp`` (of this model's sizes, on
        ``train``'s id maps) instead of training them here; otherwise as ``fit`` with
        ``pretrain=True`` (the optimizer of ``optimizer="auto"`` is SGD only when
        ``pretrain`` is true). Returns ``self``."""
        for name, model, cls in (("gmf", gmf, GMF), ("mlp", mlp, MLP)):
            if not isinstance(model, cls) or not hasattr(model, "net_"):
                raise TypeError(f"NeuMF.fit_pretrained: {name} must be a fitted {cls.__name__}")
            if model.n_users_ != train.n_users or model.n_items_ != train.n_items:
                raise ValueError(f"NeuMF.fit_pretrained: {name} was fitted on other id maps")
        if int(gmf.factors) != int(self.factors) or [int(x) for x in mlp.layers] != [int(x) for x in self.layers]:
            raise ValueError("NeuMF.fit_pretrained: gmf.factors and mlp.layers must equal this "
                             "model's factors and layers")
        self._given = (gmf, mlp)
        try:
            return self.fit(train, validation=validation)
        finally:
            del self._given

    def _initial_net(self, generator, streams, train, validation) -> NCFNet:
        net = self._new_net(generator)
        self.pretrain_history_ = None
        given = getattr(self, "_given", None)
        if given is not None:
            load_pretrained(net, given[0].net_, given[1].net_, float(self.alpha))
            self.pretrain_history_ = {"gmf": given[0].history_, "mlp": given[1].history_}
            return net
        if not self.pretrain:
            return net
        seeds = streams.numpy().integers(0, 2**31 - 1, size=2)
        epochs = self.epochs if self.pretrain_epochs is None else self.pretrain_epochs
        common = {"epochs": epochs, "num_ng": self.num_ng, "batch_size": self.batch_size,
                  "learning_rate": self.pretrain_learning_rate, "weight_decay": self.weight_decay,
                  "optimizer": "adam", "patience": self.patience, "restore_best": self.restore_best,
                  "device": self.device, "n_threads": self.n_threads, "verbose": self.verbose}
        gmf = GMF(factors=self.factors, random_state=int(seeds[0]), **common).fit(train, validation=validation)
        mlp = MLP(layers=list(self.layers), random_state=int(seeds[1]), **common).fit(train, validation=validation)
        load_pretrained(net, gmf.net_, mlp.net_, float(self.alpha))
        self.pretrain_history_ = {"gmf": gmf.history_, "mlp": mlp.history_}
        return net


def load_pretrained(neumf: NCFNet, gmf: NCFNet, mlp: NCFNet, alpha: float = 0.5) -> None:
    """Copy a trained GMF's and MLP's weights into ``neumf`` (He et al. 2017, section 3.4.1):
    embeddings and tower as they are, output weights :math:`[\\alpha h^{GMF}; (1 - \\alpha)
    h^{MLP}]` and bias :math:`\\alpha b^{GMF} + (1 - \\alpha) b^{MLP}`."""
    with torch.no_grad():
        neumf.user_gmf.weight.copy_(gmf.user_gmf.weight)
        neumf.item_gmf.weight.copy_(gmf.item_gmf.weight)
        neumf.user_mlp.weight.copy_(mlp.user_mlp.weight)
        neumf.item_mlp.weight.copy_(mlp.item_mlp.weight)
        for target, source in zip(neumf.tower, mlp.tower, strict=True):
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
        neumf.out.weight.copy_(torch.cat([alpha * gmf.out.weight, (1.0 - alpha) * mlp.out.weight], dim=1))
        neumf.out.bias.copy_(alpha * gmf.out.bias + (1.0 - alpha) * mlp.out.bias)
