"""The one model interface every recforge recommender implements.

scikit-learn conventions: the constructor only stores hyperparameters; ``fit`` validates its
input, records the id maps and popularity, calls the family's ``_fit`` and returns ``self``;
learned state lives in attributes ending in ``_``, and each class declares which of them are
its persisted state (``state``). The shared parts are written once here (template methods):

* ``predict(users, items)`` on top of ``_predict`` (rating models);
* ``recommend(users, k, history=..., exclude=..., candidates=...)`` on top of
  ``_score(users, history, fallbacks)`` — scores for all items per batch of query rows, the
  row's history excluded, per-row stoplists and candidate sets applied, top-k by
  ``argpartition`` with ties to the lower item index;
* ``similar_items(items, k)`` on top of ``_similar``;
* ``recommend_next(sessions, k)`` (session models: ``recommend`` with the sessions as history);
* ``save`` / ``load``: ``config.json`` (class, hyperparameters, declared state, a sha256 of
  every file) + ``arrays.npz`` (+ ``weights.safetensors`` for torch models), written
  atomically and verified on load; never pickle.

A query row names a known user, an unknown user or nobody, and may carry a history
(:mod:`recforge.models.query`); the evaluator passes the training fold as history, a service
its live store. What a model can do with a history it declares: ``FOLD_IN`` models score rows
from their history alone (no retraining), ``INCREMENTAL`` models absorb new interactions with
``partial_fit``. Every remaining fallback (an unknown user with no usable history: popularity;
a pair a rating model cannot predict: the training mean) is explicit and comes back with the
result (:class:`~recforge.models.query.FallbackLog`); ``recommend`` and ``predict`` never
mutate the model, so concurrent requests are safe.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from .._version import __version__
from ..data.idmap import IdMap
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..topk import mask_rows, topk_rows
from .query import FallbackLog, History, build_history, item_rows

RATING = "rating"  # predicts ratings on the data's scale
RANKING = "ranking"  # scores all items for a user
SESSION = "session"  # next item for an in-progress session
ITEM_FEATURES = "item_features"  # needs item features in fit
SIMILAR_ITEMS = "similar_items"  # has item representations
FOLD_IN = "fold_in"  # scores a row from its history alone (unknown and anonymous users)
INCREMENTAL = "incremental"  # absorbs new interactions with partial_fit (id maps grow)
EMBEDDINGS = "embeddings"  # item_vectors() / query_vectors(): scores = similarity of the two
CLICK = "click"  # predict_proba(users, items, context=...): click probabilities of pairs
CAPABILITIES = (RATING, RANKING, SESSION, ITEM_FEATURES, SIMILAR_ITEMS, FOLD_IN, INCREMENTAL,
                EMBEDDINGS, CLICK)

logger = logging.getLogger(__name__)

#: Version of the saved-model layout written by :meth:`Recommender.save`.
FORMAT_VERSION = 2

_REGISTRY: dict[str, type] = {}


class ModelFileError(ValueError):
    """A saved model directory that cannot be loaded; the message names the file."""


def register(name: str | None = None):
    """Class decorator: make a model constructible (and loadable) by name.

    The name must also be listed in :data:`recforge.models._catalog.MODEL_MODULES`, so that
    naming or loading a model imports its own family only.
    """

    def deco(cls):
        key = name or cls.__name__
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"model name {key!r} registered twice")
        _REGISTRY[key] = cls
        cls._registry_name = key
        return cls

    return deco


def get_model_class(name: str) -> type:
    """The registered model class called ``name``, importing only its family's module."""
    from ._catalog import MODEL_MODULES

    if name not in _REGISTRY and name in MODEL_MODULES:
        importlib.import_module(MODEL_MODULES[name])
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODEL_MODULES))}")
    return _REGISTRY[name]


def available_models() -> dict[str, type]:
    """Every registered model by name (imports every family)."""
    from ._catalog import MODEL_MODULES

    for module in sorted(set(MODEL_MODULES.values())):
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))


def check_random_state(seed) -> np.random.Generator:
    """A NumPy Generator from ``None``, an int, a SeedSequence or a Generator (never global)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@dataclass
class Recommendations:
    """Top-k lists for a batch of query rows, best first.

    ``items`` holds raw item ids (shape (n, k)); where fewer than k items could be recommended
    the row is padded with ``None`` entries: index ``-1`` in ``inner`` and ``-inf`` in
    ``scores``. ``fallback[j]`` names the fallback row ``j`` got (``None`` when the model
    scored it), and ``fallbacks`` counts every fallback of the call by reason.
    """

    items: np.ndarray | None
    scores: np.ndarray
    inner: np.ndarray
    fallback: np.ndarray = field(default=None)  # type: ignore[assignment]
    fallbacks: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.fallback is None:
            self.fallback = np.full(self.inner.shape[0], None, dtype=object)

    def __len__(self) -> int:
        return self.inner.shape[0]


class Recommender:
    """Base class of every recforge model (see the module docstring for the contract)."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    train_type: ClassVar[type] = Interactions
    #: The fitted attributes this class adds to its persisted state (its bases' are added).
    state: ClassVar[tuple[str, ...]] = ("item_map_", "n_items_", "item_popularity_", "user_map_",
                                        "n_users_", "user_counts_", "global_mean_",
                                        "rating_scale_")
    #: True when a row's scores come from its history alone (a row with no history then gets
    #: the popularity fallback, whoever the user is).
    scores_from_history: ClassVar[bool] = False
    _registry_name: ClassVar[str] = ""

    # ------------------------------------------------------------------ hyperparameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = False) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> Recommender:
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no hyperparameter {key!r}")
            setattr(self, key, value)
        return self

    def check_params(self) -> Recommender:
        """Check every hyperparameter's type and range now, before any data is touched.

        Types follow the constructor's annotations (``int``, ``float``, ``bool``, ``str``,
        ``... | None``; an ``int`` is a valid ``float``; a ``bool`` is never a number); ranges
        follow :data:`PARAM_RANGES` by name, and a class adds its own rules in
        ``_check_params``. Raises ``ValueError`` naming the model, the hyperparameter, the rule
        and the value. :class:`~recforge.evaluation.Evaluator` calls it when a model is added,
        ``recforge bakeoff`` before anything is fitted."""
        sig = inspect.signature(type(self).__init__)
        owner = type(self).__name__
        for p in sig.parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            value = getattr(self, p.name, p.default)
            _check_type(owner, p.name, value, p.annotation, p.default)
            _check_range(owner, p.name, value)
        self._check_params()
        return self

    def _check_params(self) -> None:
        """Model-specific hyperparameter rules (raise ``ValueError`` naming the parameter)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @property
    def name(self) -> str:
        return self._registry_name or type(self).__name__

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    @classmethod
    def persisted_state(cls) -> tuple[str, ...]:
        """Names of the fitted attributes :meth:`save` writes (declared along the MRO)."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for key in vars(klass).get("state", ()):
                if key not in names:
                    names.append(key)
        return tuple(names)

    def _state_names(self) -> tuple[str, ...]:
        """This fitted model's persisted attributes (a class may add ones named at fit time)."""
        return self.persisted_state()

    # ------------------------------------------------------------------ fitting
    def fit(self, train, *, item_features=None, validation=None) -> Recommender:
        """Learn from ``train`` (an :class:`Interactions`, or :class:`SessionEvents` for session
        models); ``item_features`` for models that use them; ``validation`` for early stopping.

        The training interactions are kept (by reference, never saved) as the default history
        of known users, so that ``recommend(users)`` right after ``fit`` excludes what each
        user has seen; a loaded model is given histories explicitly."""
        if not isinstance(train, self.train_type):
            raise TypeError(f"{type(self).__name__}.fit expects {self.train_type.__name__}, "
                            f"got {type(train).__name__}")
        if ITEM_FEATURES in self.capabilities and item_features is None:
            raise ValueError(f"{type(self).__name__} needs item_features")
        self.item_map_ = train.item_map
        self.n_items_ = train.n_items
        if isinstance(train, Interactions):
            self.user_map_ = train.user_map
            self.n_users_ = train.n_users
            self.user_counts_ = np.asarray(train.user_counts, dtype=np.int64)
            self.item_popularity_ = train.item_counts.astype(np.float32)
            self.global_mean_ = train.global_mean
            self.rating_scale_ = list(train.rating_scale) if train.rating_scale else None
            self._train_history = train
        else:
            self.item_popularity_ = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
        self._fit(train, item_features=item_features, validation=validation)
        return self

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_map_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    # ------------------------------------------------------------------ rating prediction
    def predict(self, users, items, clip: bool = True, return_fallbacks: bool = False):
        """Estimated ratings for pairs of raw ids (two equal-length arrays).

        Pairs with an unknown user or item get the training mean. With ``return_fallbacks``
        the result is ``(ratings, {reason: count})``.
        """
        self._check_fitted()
        if RATING not in self.capabilities:
            raise TypeError(f"{type(self).__name__} does not predict ratings")
        u = self.user_map_.to_inner(np.atleast_1d(users), missing="mask")
        i = self.item_map_.to_inner(np.atleast_1d(items), missing="mask")
        log = FallbackLog()
        out = self.predict_inner(u, i, clip=clip, fallbacks=log)
        return (out, log.as_dict()) if return_fallbacks else out

    def predict_inner(self, u: np.ndarray, i: np.ndarray, clip: bool = True,
                      fallbacks: FallbackLog | None = None) -> np.ndarray:
        """:meth:`predict` on inner indices; ``-1`` marks an unknown id. Fallbacks are added to
        ``fallbacks`` when given."""
        log = FallbackLog() if fallbacks is None else fallbacks
        u = np.asarray(u, dtype=np.int32)
        i = np.asarray(i, dtype=np.int32)
        if u.shape != i.shape:
            raise ValueError("users and items must have the same length")
        out = np.full(u.shape, self.global_mean_, dtype=np.float64)
        known = (u >= 0) & (i >= 0)
        log.count("unknown user or item: global mean", int((~known).sum()))
        if known.any():
            out[known] = self._predict(u[known], i[known], log)
        if clip and self.rating_scale_ is not None:
            np.clip(out, self.rating_scale_[0], self.rating_scale_[1], out=out)
        return out

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ queries
    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        """Scores of every item for each query row: float32 array (len(users), n_items).

        ``users`` are inner user indices (``-1``: unknown or anonymous — only FOLD_IN models
        are given such rows), ``history`` the rows' interactions, ``fallbacks`` the call's log
        over these rows. Rating models get this from ``_predict``; ranking models override it.
        """
        if RATING not in self.capabilities:
            raise NotImplementedError
        n = self.n_items_
        uu = np.repeat(users, n)
        ii = np.tile(np.arange(n, dtype=np.int32), users.size)
        return self._predict(uu, ii, fallbacks).astype(np.float32).reshape(users.size, n)

    def _scorable(self, users: np.ndarray, history: History) -> np.ndarray:
        """Rows the model scores itself; the others get the popularity fallback."""
        has_history = history.lengths() > 0
        if self.scores_from_history:
            return has_history
        if FOLD_IN in self.capabilities:
            return (users >= 0) | has_history
        return users >= 0

    def _default_history(self, users_raw, n_rows: int) -> History:
        store = getattr(self, "_train_history", None)
        if users_raw is None or store is None:
            return History.empty(n_rows, self.n_items_)
        return build_history(store, self.item_map_, users_raw=np.asarray(users_raw))

    def make_query(self, users=None, history=None, exclude=None, candidates=None):
        """Raw query parts -> (inner users, History, exclude CSR, candidates CSR, FallbackLog).

        The one parser behind :meth:`recommend` (and a service): raw ids at the edge, inner
        indices inside; unknown history items and filter ids are counted, never silently lost.
        """
        self._check_fitted()
        user_map = getattr(self, "user_map_", None)
        if users is None and history is None:
            raise ValueError("recommend needs users, history, or both")
        if users is not None:
            if user_map is None:
                raise TypeError(f"{type(self).__name__} has no users (session model): give "
                                "history=[session items, ...] instead of users")
            users_raw = np.atleast_1d(np.asarray(users))
            inner_users = user_map.to_inner(users_raw, missing="mask")
        else:
            users_raw = None
        if history is None:
            if getattr(self, "_train_history", None) is None and self.scores_from_history:
                logger.warning("%s scores from histories but none was given and it keeps none "
                               "(a loaded model): pass history=... (e.g. the training "
                               "Interactions); rows fall back to popularity", type(self).__name__)
            hist = self._default_history(users_raw, len(users_raw))
        else:
            n = None if users_raw is None else len(users_raw)
            hist = build_history(history, self.item_map_, n_rows=n, users_raw=users_raw)
        n_rows = hist.n_rows
        if users is None:
            inner_users = np.full(n_rows, -1, dtype=np.int32)
        log = FallbackLog(n_rows)
        log.count("unknown item in history: dropped", hist.n_unknown)
        ex, n_bad_ex = item_rows(exclude, self.item_map_, n_rows, "exclude")
        cand, n_bad_cand = item_rows(candidates, self.item_map_, n_rows, "candidates")
        log.count("unknown item in candidates: dropped", n_bad_cand)
        return np.asarray(inner_users, dtype=np.int32), hist, ex, cand, log

    def recommend(self, users=None, k: int = 10, *, history=None, exclude=None, candidates=None,
                  exclude_seen: bool = True, batch_size: int = 1024) -> Recommendations:
        """Top-``k`` items for each query row, raw ids in and out.

        Parameters
        ----------
        users : array-like of raw user ids, optional
            Known or unknown users; omit for anonymous rows (then ``history`` sets the rows).
        k : int
        history : optional
            Each row's interactions: item-id sequences, ``{item: value}`` mappings, a DataFrame
            ``row, item[, value, timestamp]``, or an :class:`Interactions` store looked up by
            user (see :mod:`recforge.models.query`). Default: the training interactions of the
            known users (right after ``fit``), else none.
        exclude : optional
            Stoplist: one list of raw item ids for every row, or one list per row.
        candidates : optional
            Rank only these items: one list for every row, or one list per row.
        exclude_seen : bool
            Drop the items of the row's history.
        batch_size : int
            Rows scored at once; memory is ``batch_size * n_items`` floats.

        Rows the model cannot score (an unknown user without usable history) get the most
        popular items; ``Recommendations.fallback`` says which rows and why.
        """
        users_inner, hist, ex, cand, log = self.make_query(users, history, exclude, candidates)
        rec = self.recommend_inner(users_inner, k, history=hist, exclude=ex, candidates=cand,
                                   exclude_seen=exclude_seen, batch_size=batch_size, fallbacks=log)
        return self._with_raw_ids(rec)

    def _with_raw_ids(self, rec: Recommendations) -> Recommendations:
        idx = rec.inner
        raw = self.item_map_.to_raw(np.where(idx >= 0, idx, 0))
        if (idx < 0).any():
            raw = raw.astype(object)
            raw[idx < 0] = None
        rec.items = raw
        return rec

    def _to_recommendations(self, idx: np.ndarray, scores: np.ndarray) -> Recommendations:
        return self._with_raw_ids(Recommendations(None, scores, idx))

    def recommend_inner(self, users: np.ndarray, k: int = 10, *, history: History | sp.spmatrix | None = None,
                        exclude: sp.spmatrix | None = None, candidates: sp.spmatrix | None = None,
                        exclude_seen: bool = True, batch_size: int = 1024,
                        fallbacks: FallbackLog | None = None) -> Recommendations:
        """:meth:`recommend` on inner indices (``-1`` = unknown or anonymous row).

        ``history`` is a :class:`History` or a CSR of inner item ids (rows aligned to
        ``users``; the evaluator passes the training rows); ``exclude`` / ``candidates`` are
        boolean CSRs (rows x items). Returns :class:`Recommendations` without raw ids.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int32)
        n = users.size
        if history is None:
            hist = History.empty(n, self.n_items_)
        elif isinstance(history, History):
            hist = history
        else:
            hist = History.from_csr(history)
        if hist.n_rows != n:
            raise ValueError(f"history has {hist.n_rows} rows for {n} users")
        log = FallbackLog(n) if fallbacks is None else fallbacks
        k_eff = int(min(k, self.n_items_))
        out_idx = np.full((n, k_eff), -1, dtype=np.int32)
        out_val = np.full((n, k_eff), -np.inf, dtype=np.float32)
        scorable = self._scorable(users, hist)
        rows_scored = np.flatnonzero(scorable)
        for start in range(0, rows_scored.size, batch_size):
            rows = rows_scored[start:start + batch_size]
            part = hist.take(rows)
            sub = FallbackLog(rows.size)
            scores = np.array(self._score(users[rows], part, sub), dtype=np.float32, copy=True)
            log.absorb(sub, rows)
            self._filter(scores, part.matrix if exclude_seen else None, rows, exclude, candidates)
            out_idx[rows], out_val[rows] = topk_rows(scores, k_eff)
        rest = np.flatnonzero(~scorable)
        if rest.size:
            has_history = hist.lengths()[rest] > 0
            for mask, reason in ((~has_history & (users[rest] < 0), "unknown user, no history: popularity"),
                                 (has_history & (users[rest] < 0), "unknown user (model cannot fold in): popularity"),
                                 (users[rest] >= 0, "no history: popularity")):
                log.mark(reason, rest[mask])
            for start in range(0, rest.size, batch_size):
                rows = rest[start:start + batch_size]
                pop = np.broadcast_to(self.item_popularity_.astype(np.float32),
                                      (rows.size, self.n_items_)).copy()
                seen = hist.take(rows).matrix if exclude_seen else None
                self._filter(pop, seen, rows, exclude, candidates)
                out_idx[rows], out_val[rows] = topk_rows(pop, k_eff)
        return Recommendations(None, out_val, out_idx, log.row, log.as_dict())

    @staticmethod
    def _filter(scores: np.ndarray, seen: sp.csr_matrix | None, rows: np.ndarray,
                exclude: sp.spmatrix | None, candidates: sp.spmatrix | None) -> None:
        """Mask, in place, the batch's seen items, stoplist entries and non-candidates."""
        local = np.arange(rows.size)
        if seen is not None and seen.nnz:
            mask_rows(scores, seen, local)
        if exclude is not None:
            mask_rows(scores, sp.csr_matrix(exclude[rows]), local)
        if candidates is not None:
            allowed = sp.csr_matrix(candidates[rows])
            kept = np.full(scores.shape, -np.inf, dtype=scores.dtype)
            r = np.repeat(local, np.diff(allowed.indptr))
            kept[r, allowed.indices] = scores[r, allowed.indices]
            scores[...] = kept

    def score_inner(self, users: np.ndarray, items: np.ndarray | None = None, *,
                    history: History | sp.spmatrix | None = None,
                    fallbacks: FallbackLog | None = None) -> np.ndarray:
        """Raw model scores (no masking) for query rows over all items, or over ``items``
        (an (n, m) array of inner item ids per row): shape (len(users), n_items or m).

        Rows the model cannot score get the popularity scores (logged in ``fallbacks``)."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int32)
        if history is None:
            hist = History.empty(users.size, self.n_items_)
        else:
            hist = history if isinstance(history, History) else History.from_csr(history)
        log = FallbackLog(users.size) if fallbacks is None else fallbacks
        scorable = self._scorable(users, hist)
        scores = np.empty((users.size, self.n_items_), dtype=np.float32)
        rows = np.flatnonzero(scorable)
        if rows.size:
            sub = FallbackLog(rows.size)
            scores[rows] = self._score(users[rows], hist.take(rows), sub)
            log.absorb(sub, rows)
        if rows.size < users.size:
            log.mark("cannot score row: popularity", ~scorable)
            scores[~scorable] = self.item_popularity_
        if items is not None:
            scores = np.take_along_axis(scores, np.asarray(items), axis=1)
        return scores

    # ------------------------------------------------------------------ incremental updates
    def partial_fit(self, interactions) -> Recommender:
        """Absorb new interactions without a full refit (``INCREMENTAL`` models only)."""
        raise TypeError(f"{type(self).__name__} cannot absorb new interactions without a refit "
                        "(no INCREMENTAL capability); call fit() on the grown data")

    # ------------------------------------------------------------------ embeddings
    #: How query and item vectors are compared by ``EMBEDDINGS`` models: "dot" or "cosine".
    similarity: ClassVar[str] = "dot"

    def item_vectors(self) -> np.ndarray:
        """(n_items, d) float32 item vectors (``EMBEDDINGS`` models)."""
        raise TypeError(f"{type(self).__name__} has no item vectors (no EMBEDDINGS capability)")

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """(len(users), d) float32 query vectors for inner users and/or histories, such that
        ``similarity(query, item)`` gives the model's scores (``EMBEDDINGS`` models)."""
        raise TypeError(f"{type(self).__name__} has no query vectors (no EMBEDDINGS capability)")

    # ------------------------------------------------------------------ item similarity
    def _similar(self, items: np.ndarray) -> np.ndarray:
        """Similarity of each given inner item to every item: (len(items), n_items)."""
        raise NotImplementedError

    def similar_items(self, items, k: int = 10) -> Recommendations:
        """The ``k`` items most similar to each raw item id (the item itself excluded)."""
        self._check_fitted()
        if SIMILAR_ITEMS not in self.capabilities:
            raise TypeError(f"{type(self).__name__} has no item representations")
        idx = self.item_map_.to_inner(np.atleast_1d(items))
        sims = np.array(self._similar(idx), dtype=np.float32, copy=True)
        sims[np.arange(idx.size), idx] = -np.inf
        top, vals = topk_rows(sims, k)
        return self._to_recommendations(top, vals)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the model to directory ``path`` atomically: ``config.json`` + ``arrays.npz``
        (+ ``weights.safetensors`` for torch models), the config holding a sha256 of every
        other file. No pickle anywhere; the training interactions are not saved."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            mask = os.umask(0)  # mkdtemp makes 0700 folders: give the user's umask instead
            os.umask(mask)
            os.chmod(tmp, 0o777 & ~mask)
            arrays: dict[str, np.ndarray] = {}
            state_spec: dict[str, dict] = {}
            for key in self._state_names():
                if not hasattr(self, key):
                    if key in ("user_map_", "n_users_", "user_counts_", "global_mean_", "rating_scale_"):
                        continue  # session models have no users
                    raise RuntimeError(f"{type(self).__name__}: declared state {key!r} is missing")
                state_spec[key] = _encode_state(key, getattr(self, key), arrays)
            self._save_extra(tmp, arrays, state_spec)
            with open(tmp / "arrays.npz", "wb") as f:
                np.savez(f, **arrays)
            files = {f.name: _sha256(f) for f in sorted(tmp.iterdir())}
            config = {
                "format": "recforge-model",
                "format_version": FORMAT_VERSION,
                "recforge_version": __version__,
                "model": self.name,
                "params": _jsonable(self.get_params()),
                "state": state_spec,
                "files": files,
            }
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    def _save_extra(self, directory: Path, arrays: dict, state_spec: dict) -> None:
        """Hook for state that is not arrays (torch modules write safetensors here)."""

    def _load_extra(self, directory: Path, config: dict) -> None:
        """Counterpart of :meth:`_save_extra`."""

    @classmethod
    def load(cls, path) -> Recommender:
        """Read a model written by :meth:`save` (any registered class when called on the base),
        importing only its family. Raises :class:`ModelFileError` naming the file for a missing
        or corrupt file, an unknown class or another format version."""
        path = Path(path)
        config = read_model_config(path)
        try:
            model_cls = get_model_class(config["model"])
        except KeyError as exc:
            raise ModelFileError(f"{path / 'config.json'}: {exc.args[0]}") from None
        if cls is not Recommender and not issubclass(model_cls, cls):
            raise TypeError(f"{path} holds a {config['model']}, not a {cls.__name__}")
        model = model_cls(**config["params"])
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        for key, spec in config["state"].items():
            if spec["type"] != "extra":
                setattr(model, key, _decode_state(key, spec, arrays))
        model._load_extra(path, config)
        return model


# ---------------------------------------------------------------------- hyperparameter checks
_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict, "list": list,
          "tuple": tuple}

#: Ranges by hyperparameter name: "pos" = > 0, "nonneg" = >= 0, "unit" = in [0, 1].
PARAM_RANGES = {
    **dict.fromkeys(("k", "n_factors", "factors", "n_epochs", "epochs", "batch_size",
                     "iterations", "hidden", "max_len", "num_blocks", "num_heads", "n_cltr_u",
                     "n_cltr_i", "vector_size", "window", "n_neighbors", "sample_size",
                     "baseline_epochs", "similarity_top_k", "topk", "n_bins", "max_iter",
                     "num_threads", "n_threads", "patience"), "pos"),
    **dict.fromkeys(("min_k", "min_support", "shrinkage", "reg", "reg_all", "reg_bu", "reg_bi",
                     "reg_pu", "reg_qi", "reg_yj", "reg_xj", "reg_u", "reg_i", "reg_bit",
                     "reg_but", "reg_alpha", "regularization", "baseline_reg_items",
                     "baseline_reg_users", "learning_rate", "lr_all", "lr_bu", "lr_bi", "lr_pu",
                     "lr_qi", "lr_yj", "lr_xj", "lr_bit", "lr_but", "lr_alpha", "init_std_dev",
                     "l2", "alpha", "n_sample", "min_count", "negative", "tol", "cg_steps",
                     "fold_in_epochs", "partial_iterations", "partial_epochs",
                     "partial_fold_epochs", "partial_cg_steps", "max_negatives",
                     "ranking_shrinkage"), "nonneg"),
    **dict.fromkeys(("dropout", "dropout_p_embed", "dropout_p_hidden", "l1_ratio", "momentum",
                     "sample_alpha", "partial_share"), "unit"),
}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _check_type(owner: str, name: str, value, annotation, default) -> None:
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if not ann or ann == "_empty":
        ann = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(default), "")
        if not ann:
            return
    names = [t.strip() for t in ann.split("|")]
    if not all(t in _TYPES or t == "None" for t in names):
        return  # a richer annotation (a Generator, a callable, ...): left to the model
    value = _plain(value)
    if value is None:
        if "None" in names:
            return
    else:
        for t in names:
            if t == "None":
                continue
            want = _TYPES[t]
            if want is bool and isinstance(value, bool):
                return
            if want is int and isinstance(value, int) and not isinstance(value, bool):
                return
            if want is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                return
            if want not in (bool, int, float) and isinstance(value, want):
                return
    raise ValueError(f"{owner}: hyperparameter {name!r} must be {' or '.join(names)}, "
                     f"got {value!r} ({type(value).__name__})")


def _check_range(owner: str, name: str, value) -> None:
    rule = PARAM_RANGES.get(name)
    value = _plain(value)
    if rule is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    ok = {"pos": value > 0, "nonneg": value >= 0, "unit": 0 <= value <= 1}[rule]
    if not ok or value != value:  # NaN fails every rule
        what = {"pos": "> 0", "nonneg": ">= 0", "unit": "between 0 and 1"}[rule]
        raise ValueError(f"{owner}: hyperparameter {name!r} must be {what}, got {value!r}")


def read_model_config(path) -> dict:
    """The verified ``config.json`` of a saved model directory (see :meth:`Recommender.load`)."""
    path = Path(path)
    cfg_file = path / "config.json"
    if not path.is_dir():
        raise ModelFileError(f"{path}: no such model directory")
    if not cfg_file.is_file():
        raise ModelFileError(f"{cfg_file}: missing (not a saved recforge model)")
    try:
        config = json.loads(cfg_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg_file}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "recforge-model":
        raise ModelFileError(f"{cfg_file}: not a recforge model config")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{cfg_file}: format version {version!r}; this recforge "
                             f"({__version__}) reads version {FORMAT_VERSION} — re-save the model "
                             "with a matching recforge")
    for key in ("model", "params", "state", "files"):
        if key not in config:
            raise ModelFileError(f"{cfg_file}: field {key!r} is missing")
    for name, digest in config["files"].items():
        f = path / name
        if not f.is_file():
            raise ModelFileError(f"{f}: missing (listed in config.json)")
        if _sha256(f) != digest:
            raise ModelFileError(f"{f}: sha256 does not match config.json (file corrupt or "
                                 "changed after saving)")
    return config


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SessionRecommender(Recommender):
    """Base of session-based models: trained on :class:`SessionEvents`, asked for the next item
    of in-progress sessions — anonymous query rows whose history is the session so far."""

    capabilities: ClassVar[frozenset[str]] = frozenset({SESSION, FOLD_IN})
    train_type: ClassVar[type] = SessionEvents
    scores_from_history: ClassVar[bool] = True

    def recommend_next(self, sessions, k: int = 10, exclude=None) -> Recommendations:
        """Top-``k`` next items for each in-progress session (a list of raw item-id sequences).

        Items of the session are not excluded (people do click an item again); unknown items
        are skipped and an empty session gets popular items (both reported in the result).
        """
        return self.recommend(history=[list(s) for s in sessions], k=k, exclude=exclude,
                              exclude_seen=False)

    def recommend_next_inner(self, sessions: list[np.ndarray], k: int = 10,
                             exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend_next` on inner item sequences: (items, scores), each (n, k)."""
        lengths = [len(s) for s in sessions]
        indptr = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        items = np.concatenate([np.asarray(s, np.int32) for s in sessions]) if sessions else np.empty(0, np.int32)
        m = sp.csr_matrix((np.ones(items.size, np.float32), items, indptr),
                          shape=(len(sessions), self.n_items_))
        m.sum_duplicates()
        hist = History(m, indptr, items, 0)
        ex = None
        if exclude is not None and len(exclude):
            cols = np.unique(np.asarray(exclude))
            ex = sp.csr_matrix((np.ones(cols.size * len(sessions), bool),
                                (np.repeat(np.arange(len(sessions)), cols.size),
                                 np.tile(cols, len(sessions)))), shape=m.shape)
        rec = self.recommend_inner(np.full(len(sessions), -1, np.int32), k, history=hist,
                                   exclude=ex, exclude_seen=False)
        return rec.inner, rec.scores

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        return self._score_next(history.sequences())

    def _score_next(self, sessions: list[np.ndarray]) -> np.ndarray:
        """Scores of every item as the next event of each (non-empty) inner session."""
        raise NotImplementedError

    # Streaming interface used by session-parallel evaluation (and by a live server): a batch of
    # slots, each walking through one session; a slot is reset when it starts a new session.
    def init_state(self, n_slots: int):
        """Fresh per-slot state for :meth:`advance` (default: each slot's item prefix)."""
        return [[] for _ in range(n_slots)]

    def advance(self, state, items: np.ndarray, reset: np.ndarray) -> np.ndarray:
        """Observe one event per slot and return next-item scores, shape (n_slots, n_items).

        ``reset[j]`` is True when slot ``j``'s event starts a new session (its state is cleared
        first). Models with a recurrent state (GRU4Rec) override this for speed; the default
        rescores each slot's whole prefix with :meth:`_score_next`.
        """
        for j in range(len(items)):
            if reset[j]:
                state[j] = []
            state[j].append(int(items[j]))
        return self._score_next([np.asarray(s, dtype=np.int32) for s in state])


def clone(model: Recommender) -> Recommender:
    """An unfitted copy with the same hyperparameters."""
    return type(model)(**model.get_params())


# ---------------------------------------------------------------------- state encoding
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a JSON config")


def _encode_state(key: str, value, arrays: dict) -> dict:
    if isinstance(value, IdMap):
        arrays[key] = value.raw
        return {"type": "idmap"}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"state {key!r}: object arrays cannot be saved without pickle")
        arrays[key] = value
        return {"type": "ndarray"}
    if sp.issparse(value):
        m = value.tocsr()
        arrays[f"{key}.data"], arrays[f"{key}.indices"], arrays[f"{key}.indptr"] = m.data, m.indices, m.indptr
        return {"type": "csr", "shape": list(m.shape)}
    try:
        return {"type": "json", "value": _jsonable(value)}
    except TypeError:
        return {"type": "extra"}  # handled by the class's _save_extra / _load_extra


def _decode_state(key: str, spec: dict, arrays: dict):
    kind = spec["type"]
    if kind == "idmap":
        return IdMap(arrays[key])
    if kind == "ndarray":
        return arrays[key]
    if kind == "csr":
        return sp.csr_matrix((arrays[f"{key}.data"], arrays[f"{key}.indices"], arrays[f"{key}.indptr"]),
                             shape=tuple(spec["shape"]))
    if kind == "json":
        return spec["value"]
    raise ValueError(f"state {key!r}: unknown type {kind!r}")
