"""The base of the click-prediction models with side features (FM, Wide & Deep, DeepFM, DCN-v2).

A :class:`FeatureRecommender` learns :math:`P(\\text{click} \\mid \\text{user}, \\text{item},
\\text{context})` from explicit data (a rating at or above ``threshold`` is a click, every
other rating a non-click) or implicit data (every interaction is a click, ``n_negatives``
unobserved items per interaction are sampled as non-clicks each epoch). What it sees of a row
is decided by a :class:`~recforge.data.feature_spec.FeatureSpec` built from the training data
(ids, user features, item features, context); the encoded user and item tables are part of
the saved model, with the spec as ``feature_spec.json``.

It is a ranking model (``recommend`` scores every item for a user with its features and no
context) and a click model (``predict_proba`` for (user, item[, context]) pairs). Items that
never appeared in training but have features — the cold items of a shared id map, or rows
given as ``item_table`` — are scored from their features: their id uses the out-of-vocabulary
row, which carries no signal, and every other field is encoded as usual. The same holds for
users. Unseen category values use their field's out-of-vocabulary row and are counted in the
fallbacks a call returns; nothing ever raises on an unseen value.

A subclass supplies its network (``_make_net``): a module with an ``emb``
(:class:`~recforge.models.features.embedding.FeatureEmbedding`), ``forward(idx, val) ->
logits`` and ``reset_parameters(generator, init_std)``; the rest — encoding, labels, negative
sampling, the epoch loop, regularisation, scoring, persistence — is here.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...data.feature_spec import FeatureSpec, user_columns
from ...data.features import UserFeatures, context_features
from ...data.interactions import Interactions
from ..base import CLICK, RANKING, Recommender
from ..neural import NeuralModel, attach_generator, isolated_global_rng
from ..query import FallbackLog

logger = logging.getLogger(__name__)

SPEC_FILE = "feature_spec.json"
LOSSES = ("logloss", "squared")
OPTIMIZERS = ("adam", "adagrad", "sgd")

#: Hyperparameters every feature model shares (documented on :class:`FeatureRecommender`).
COMMON_PARAMS = """
    embedding_dim : int, default 8
        Latent dimension :math:`k` of every field.
    loss : {"logloss", "squared"}, default "logloss"
        Binary cross-entropy on the logit, or squared error of the raw output against the 0/1
        label (Rendle 2010's regression FM); ``predict_proba`` gives the sigmoid of the logit
        or the raw output clipped to [0, 1].
    threshold : float, default 4.0
        Explicit data: a rating ``>= threshold`` is a click (label 1), any other a non-click.
        Ignored for implicit data (every interaction is a click).
    n_negatives : int, default 0
        Unobserved items sampled uniformly per training interaction and epoch as non-clicks
        (needed for implicit data; collisions with observed items are not filtered).
    n_epochs : int, default 10
    batch_size : int, default 256
    learning_rate : float, default 1e-3
    optimizer : {"adam", "adagrad", "sgd"}, default "adam"
    l2_embedding, l2_linear : float, default 1e-5
        L2 penalty on the whole embedding table and the first-order weights, added to every
        batch's loss.
    init_std : float, default 1e-4
        Standard deviation of the normal initialisation of embeddings and first-order weights
        (out-of-vocabulary rows start at zero).
    context : list of str, optional
        Context columns (of :func:`~recforge.data.features.context_features`: ``hour``,
        ``weekday``, ``days_since_previous``) to use; ranking calls have no context (missing).
    columns : dict, optional
        FeatureSpec overrides ``{field: kind or None}`` (e.g. ``{"item.title": None}``).
    n_buckets : int, default 10
        Quantile buckets of numeric columns.
    min_count : int, default 1
        Rarer category values are out of vocabulary.
    patience : int, optional
        With ``validation`` given to ``fit``: stop after this many epochs without a better
        validation AUC (the best epoch's weights are kept).
    random_state : int, optional
        Seeds initialisation, dropout, shuffling and negative sampling (one ``SeedSequence``;
        global generators untouched).
    device : {"cpu", "auto", "cuda", "cuda:N"}, default "cpu"
    n_threads : int, optional
        Torch intra-op threads while fitting and scoring (restored afterwards).
    verbose : bool, default False
"""


def store_params(model, params: dict) -> None:
    """Store constructor arguments as attributes; tuples become lists so that a JSON round trip
    of the hyperparameters gives equal values."""
    for key, value in params.items():
        if key in ("self", "__class__"):
            continue
        setattr(model, key, list(value) if isinstance(value, tuple) else value)


class FeatureRecommender(NeuralModel, Recommender):
    """Base of the feature (CTR) models; see the module docstring.

    ``fit(train, item_features=..., user_features=..., context=..., feature_spec=...,
    validation=...)``: ``user_features`` as :class:`~recforge.data.features.UserFeatures` or a
    table indexed by raw user id (``Dataset.user_features``); ``context`` the training rows'
    context columns (default: derived from the timestamps when the model uses context);
    ``feature_spec`` a prebuilt spec (default: built from ``train``).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, CLICK})
    state = ("user_idx_", "user_val_", "item_idx_", "item_val_", "threshold_", "train_seconds_",
             "feature_spec_")
    _torch_modules = ("net_",)

    # ---------------------------------------------------------------- parameters
    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("embedding_dim", "batch_size", "n_buckets", "min_count"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("n_epochs", "n_negatives"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("learning_rate", "init_std"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("l2_embedding", "l2_linear"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    # ---------------------------------------------------------------- network
    def _make_net(self, spec: FeatureSpec) -> nn.Module:
        raise NotImplementedError

    def _new_net(self, generator: torch.Generator) -> nn.Module:
        with isolated_global_rng():  # layer constructors' own draws are replaced below
            net = self._make_net(self.feature_spec_)
        net.reset_parameters(generator, float(self.init_std))
        return net.to(self._device())

    def _build_modules(self) -> None:
        self.net_ = self._new_net(torch.Generator().manual_seed(0))

    def _regularization(self) -> torch.Tensor:
        emb, lin = self.net_.emb.l2()
        return float(self.l2_embedding) * emb + float(self.l2_linear) * lin

    # ---------------------------------------------------------------- fitting
    def fit(self, train, *, item_features=None, user_features=None, context=None,
            feature_spec: FeatureSpec | None = None, validation=None) -> FeatureRecommender:
        self._fit_inputs = {"user_features": user_features, "context": context,
                            "feature_spec": feature_spec}
        try:
            return super().fit(train, item_features=item_features, validation=validation)
        finally:
            del self._fit_inputs

    def _user_features(self, user_features, train: Interactions) -> UserFeatures | None:
        if user_features is None or isinstance(user_features, UserFeatures):
            if user_features is not None and len(user_features.user_map) != train.n_users:
                raise ValueError("user_features must be aligned to train.user_map")
            return user_features
        if isinstance(user_features, pd.DataFrame):
            return UserFeatures.from_dataframe(user_features, train.user_map)
        raise TypeError(f"user_features must be UserFeatures or a DataFrame indexed by raw user id, "
                        f"got {type(user_features).__name__}")

    def _context_columns(self, interactions: Interactions, history=None, given=None) -> dict | None:
        if not self.context:
            return None
        ctx = given if given is not None else context_features(interactions, history=history)
        missing = [c for c in self.context if c not in ctx]
        if missing:
            raise ValueError(f"context: no column(s) {missing}; given {sorted(ctx)}")
        return {c: np.asarray(ctx[c]) for c in self.context}

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        inputs = self._fit_inputs
        uf = self._user_features(inputs["user_features"], train)
        ctx = self._context_columns(train, given=inputs["context"])
        spec = inputs["feature_spec"]
        if spec is None:
            spec = FeatureSpec.build(train, user_features=uf, item_features=item_features, context=ctx,
                                     columns=self.columns, n_buckets=int(self.n_buckets),
                                     min_count=int(self.min_count))
        if not len(spec):
            raise ValueError("the feature spec has no field")
        self.feature_spec_ = spec
        users = spec.encode("user", user_columns(uf), ids=np.arange(train.n_users))
        items = spec.encode_items(item_features, ids=np.arange(train.n_items))
        self.user_idx_, self.user_val_ = users.idx, users.val
        self.item_idx_, self.item_val_ = items.idx, items.val
        train_ctx = spec.encode_context(ctx, len(train))
        labels = self._labels(train)
        with self._threads():
            self._train(train, labels, train_ctx, validation)

    def _labels(self, train: Interactions) -> np.ndarray:
        """0/1 click labels of the training interactions (sets ``threshold_``)."""
        if train.is_explicit:
            self.threshold_ = None if self.threshold is None else float(self.threshold)
            if self.threshold_ is None:
                labels = np.ones(len(train), np.float32)
            else:
                labels = (train.values >= self.threshold_).astype(np.float32)
        else:
            self.threshold_ = None
            labels = np.ones(len(train), np.float32)
        if int(self.n_negatives) == 0 and len(labels) and (labels.min() == labels.max()):
            raise ValueError(f"every training label is {int(labels[0])}: set n_negatives > 0 to sample "
                             "non-clicks (implicit data) or choose another threshold")
        return labels

    def _start_training(self) -> tuple[torch.device, np.random.Generator, list, float]:
        """The seeded start every feature model's training shares: the seed streams drawn in a
        fixed order (initial weights, dropout, batches), a fresh network from the first, dropout
        drawing from the second. Returns (device, batch rng, parameters, start time)."""
        streams = self._seed_streams()
        init_gen = streams.torch("cpu")
        device = self._device()
        dropout_gen = streams.torch(device)
        rng = streams.numpy()
        started = time.perf_counter()
        self.net_ = self._new_net(init_gen)
        attach_generator(self.net_, dropout_gen)
        return device, rng, list(self.net_.parameters()), started

    def _run_training(self, loop, train_epoch, started: float, **run) -> None:
        """Run ``loop`` over ``train_epoch`` (``run``: :meth:`TrainingLoop.run`'s options), then,
        however it ends, detach the dropout stream and leave the network in eval mode; record
        the history, best epoch and training seconds."""
        try:
            self.history_ = loop.run(train_epoch, **run)
        finally:
            attach_generator(self.net_, None)
            self.net_.eval()
        self.best_epoch_ = loop.best_epoch
        self.train_seconds_ = time.perf_counter() - started

    def _train(self, train: Interactions, labels: np.ndarray, train_ctx, validation) -> None:
        device, rng, params, started = self._start_training()
        lr = float(self.learning_rate)
        opt = {"adam": lambda: torch.optim.Adam(params, lr=lr),
               "adagrad": lambda: torch.optim.Adagrad(params, lr=lr),
               "sgd": lambda: torch.optim.SGD(params, lr=lr)}[self.optimizer]()
        tables = self._tables(device)
        cidx = torch.from_numpy(train_ctx.idx).to(device)
        cval = torch.from_numpy(train_ctx.val).to(device)
        u_all = torch.from_numpy(train.users.astype(np.int64)).to(device)
        i_all = torch.from_numpy(train.items.astype(np.int64)).to(device)
        y_all = torch.from_numpy(labels).to(device)
        n, n_neg, bs = len(train), int(self.n_negatives), int(self.batch_size)

        def train_epoch(epoch: int, loop) -> float:
            self.net_.train()
            order = torch.from_numpy(rng.permutation(n)).to(device)
            total = 0.0
            for b in range(0, n, bs):
                sel = order[b:b + bs]
                u, i, y = u_all[sel], i_all[sel], y_all[sel]
                ci, cv = cidx[sel], cval[sel]
                if n_neg:
                    neg = torch.from_numpy(rng.integers(0, self.n_items_, size=sel.numel() * n_neg)).to(device)
                    u = torch.cat([u, u.repeat(n_neg)])
                    i = torch.cat([i, neg])
                    y = torch.cat([y, torch.zeros(neg.numel(), device=device)])
                    ci, cv = torch.cat([ci, ci.repeat(n_neg, 1)]), torch.cat([cv, cv.repeat(n_neg, 1)])
                idx, val = self._rows(tables, u, i, ci, cv)
                out = self.net_(idx, val)
                if self.loss == "logloss":
                    loss = nn.functional.binary_cross_entropy_with_logits(out, y)
                else:
                    loss = nn.functional.mse_loss(out, y)
                total += loop.step(loss + self._regularization(), opt, params) * sel.numel()
            return total / n

        loop = self._training_loop(int(self.n_epochs), validation, patience=self.patience,
                                   monitor="auc", verbose=bool(self.verbose))
        self._run_training(loop, train_epoch, started, get_state=self._copy_torch_state,
                           set_state=self._set_torch_state,
                           on_epoch_end=lambda r: logger.info("%s epoch %d: %s", self.name,
                                                              r["epoch"], r))

    def _validator(self, validation, ks):
        def validate(epoch: int) -> dict:
            from ...metrics.classification import log_loss, roc_auc

            self._eval_mode()
            try:
                y, p = self.click_labels_and_probabilities(validation, self._train_history)
            finally:
                self._train_mode()
            return {"auc": roc_auc(y, p), "logloss": log_loss(y, p)}

        return validate

    # ---------------------------------------------------------------- encoded rows
    def _tables(self, device) -> dict:
        return {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))).to(device)
                for k in ("user_idx_", "user_val_", "item_idx_", "item_val_")}

    @staticmethod
    def _rows(tables: dict, u, i, cidx, cval):
        idx = torch.cat([tables["user_idx_"][u], tables["item_idx_"][i], cidx], dim=1)
        val = torch.cat([tables["user_val_"][u], tables["item_val_"][i], cval], dim=1)
        return idx, val

    def _forward_encoded(self, uidx, uval, iidx, ival, cidx, cval, chunk: int = 65536) -> np.ndarray:
        """Logits of row-aligned encoded user, item and context parts (NumPy in and out)."""
        device = self._device()
        out = np.empty(uidx.shape[0], dtype=np.float32)
        with torch.no_grad(), self._threads():
            for s in range(0, out.size, chunk):
                sl = slice(s, s + chunk)
                idx = torch.from_numpy(np.concatenate([uidx[sl], iidx[sl], cidx[sl]], axis=1)).to(device)
                val = torch.from_numpy(np.concatenate([uval[sl], ival[sl], cval[sl]], axis=1)).to(device)
                out[sl] = self.net_(idx, val).float().cpu().numpy()
        return out

    def _to_probability(self, logits: np.ndarray) -> np.ndarray:
        if self.loss == "logloss":
            return (1.0 / (1.0 + np.exp(-logits.astype(np.float64))))
        return np.clip(logits.astype(np.float64), 0.0, 1.0)

    # ---------------------------------------------------------------- ranking
    def _score(self, users: np.ndarray, history, fallbacks: FallbackLog) -> np.ndarray:
        n_items = self.n_items_
        empty = self.feature_spec_.encode_context(None, 1)
        out = np.empty((users.size, n_items), dtype=np.float32)
        step = max(1, 131072 // max(n_items, 1))
        for s in range(0, users.size, step):
            u = users[s:s + step]
            uu = np.repeat(u, n_items)
            ii = np.tile(np.arange(n_items), u.size)
            m = uu.size
            logits = self._forward_encoded(self.user_idx_[uu], self.user_val_[uu], self.item_idx_[ii],
                                           self.item_val_[ii], np.broadcast_to(empty.idx, (m, empty.idx.shape[1])),
                                           np.broadcast_to(empty.val, (m, empty.val.shape[1])))
            out[s:s + u.size] = logits.reshape(u.size, n_items)
        return out

    # ---------------------------------------------------------------- click prediction
    def predict_proba(self, users, items, *, context=None, user_table=None, item_table=None,
                      return_fallbacks: bool = False):
        """Click probabilities of (user, item) pairs given by raw ids (two equal-length arrays).

        Parameters
        ----------
        context : mapping of column -> array, optional
            Context of each pair (e.g. ``hour``, ``weekday``, ``days_since_previous``); missing
            when not given.
        user_table, item_table : mapping of column -> array or DataFrame, optional
            Features of each pair's user / item (row-aligned with the pairs), for users and
            items the model has no features of — new ones, not in its id maps. Without them a
            known user or item uses the features it was trained with, an unknown one only its
            out-of-vocabulary rows.
        return_fallbacks : bool
            Also return ``{reason: count}``: unknown ids and unseen values (per field) that used
            an out-of-vocabulary row.
        """
        self._check_fitted()
        u = self.user_map_.to_inner(np.atleast_1d(users), missing="mask")
        i = self.item_map_.to_inner(np.atleast_1d(items), missing="mask")
        if u.shape != i.shape:
            raise ValueError("users and items must have the same length")
        log = FallbackLog()
        p = self.predict_proba_inner(u, i, context=context, user_table=user_table, item_table=item_table,
                                     fallbacks=log)
        return (p, log.as_dict()) if return_fallbacks else p

    def predict_proba_inner(self, u: np.ndarray, i: np.ndarray, *, context=None, user_table=None,
                            item_table=None, fallbacks: FallbackLog | None = None) -> np.ndarray:
        """:meth:`predict_proba` on inner indices (``-1`` = unknown id)."""
        log = FallbackLog() if fallbacks is None else fallbacks
        (uidx, uval), (iidx, ival), (cidx, cval) = self._encode_pairs(u, i, context, user_table, item_table, log)
        logits = self._forward_encoded(uidx, uval, iidx, ival, cidx, cval)
        return self._to_probability(logits)

    def _encode_pairs(self, u, i, context, user_table, item_table, log: FallbackLog):
        """Encoded ``(idx, val)`` of the user, item and context parts of (user, item) pairs
        given by inner indices (``-1`` = unknown id): a side's ``*_table`` (features of each
        pair, e.g. of new users or items) is encoded, else a known id's training features are
        used and an unknown one gets only out-of-vocabulary rows; every fallback is counted."""
        u = np.asarray(u, dtype=np.int64)
        i = np.asarray(i, dtype=np.int64)
        spec = self.feature_spec_
        parts = []
        for source, ids, table, idx_all, val_all in (("user", u, user_table, self.user_idx_, self.user_val_),
                                                     ("item", i, item_table, self.item_idx_, self.item_val_)):
            if table is not None:
                enc = spec.encode(source, table, ids=ids)
                self._log_encoding(log, enc)
                parts.append((enc.idx, enc.val))
                continue
            known = ids >= 0
            log.count(f"unknown {source}: out-of-vocabulary id and missing features", int((~known).sum()))
            empty = spec.encode(source, {}, ids=np.array([-1]))
            idx = np.where(known[:, None], idx_all[np.where(known, ids, 0)], empty.idx)
            val = np.where(known[:, None], val_all[np.where(known, ids, 0)], empty.val)
            parts.append((idx, val))
        ctx = {} if context is None else context
        if isinstance(ctx, pd.DataFrame):
            ctx = {c: ctx[c].to_numpy() for c in ctx.columns}
        cenc = spec.encode("context", ctx, n=u.size)
        if context is not None:
            self._log_encoding(log, cenc, missing=True)
        return parts[0], parts[1], (cenc.idx, cenc.val)

    @staticmethod
    def _log_encoding(log: FallbackLog, enc, missing: bool = False) -> None:
        for name, n in enc.oov.items():
            log.count(f"unseen {name} value: out-of-vocabulary row", int(n))
        if missing:
            for name, n in enc.missing.items():
                log.count(f"missing {name}: missing-value row", int(n))

    def click_labels_and_probabilities(self, test: Interactions, history: Interactions | None = None,
                                       fallbacks: FallbackLog | None = None):
        """Labels (the model's click rule) and predicted probabilities of ``test``'s pairs, with
        their context taken from ``test``'s timestamps (previous events from ``history``)."""
        self._check_fitted()
        if self.threshold_ is None:
            y = np.ones(len(test), np.float64)
        else:
            y = (test.values >= self.threshold_).astype(np.float64)
        ctx = self._context_columns(test, history=history)
        p = self.predict_proba_inner(test.users, test.items, context=ctx, fallbacks=fallbacks)
        return y, p

    # ---------------------------------------------------------------- persistence
    def _save_extra(self, directory: Path, arrays: dict, state_spec: dict) -> None:
        self.feature_spec_.save(Path(directory) / SPEC_FILE)
        super()._save_extra(directory, arrays, state_spec)

    def _load_extra(self, directory: Path, config: dict) -> None:
        path = Path(directory) / SPEC_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (the model directory is incomplete)")
        try:
            self.feature_spec_ = FeatureSpec.load(path)
        except (ValueError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        super()._load_extra(directory, config)


def _forward_doc(cls):
    """Append the shared hyperparameters to a model's docstring."""
    cls.__doc__ = (cls.__doc__ or "").replace("{COMMON}", COMMON_PARAMS.strip("\n"))
    return cls


__all__ = ["FeatureRecommender", "store_params", "COMMON_PARAMS", "Recommender"]
