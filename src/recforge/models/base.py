"""The one model interface every recforge recommender implements.

scikit-learn conventions: the constructor only stores hyperparameters; ``fit`` validates its
input, records the id maps and what each user has seen, calls the family's ``_fit`` and returns
``self``; learned state lives in attributes ending in ``_``. The shared parts are written once
here (template methods):

* ``predict(users, items)`` on top of ``_predict`` (rating models),
* ``recommend(users, k, ...)`` on top of ``_score`` — scores for all items, computed in batches,
  seen items excluded, top-k by ``argpartition`` with ties to the lower item index,
* ``similar_items(items, k)`` on top of ``_similar``,
* ``recommend_next(sessions, k)`` on top of ``_score_next`` (session models),
* ``save`` / ``load``: arrays in ``.npz`` (torch weights in safetensors) plus a JSON config
  carrying the recforge version, written atomically; never pickle.

Unknown users, unknown items and models that cannot score a pair fall back explicitly (global
mean for ratings, popularity for rankings) and are counted in ``fallbacks_``.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from .._version import __version__
from ..data.idmap import IdMap
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..topk import mask_rows, topk_rows

RATING = "rating"  # predicts ratings on the data's scale
RANKING = "ranking"  # scores all items for a user
SESSION = "session"  # next item for an in-progress session
ITEM_FEATURES = "item_features"  # needs item features in fit
SIMILAR_ITEMS = "similar_items"  # has item representations
CAPABILITIES = (RATING, RANKING, SESSION, ITEM_FEATURES, SIMILAR_ITEMS)

_REGISTRY: dict[str, type] = {}


def register(name: str | None = None):
    """Class decorator: make a model constructible (and loadable) by name."""

    def deco(cls):
        key = name or cls.__name__
        if key in _REGISTRY and _REGISTRY[key] is not cls:
            raise ValueError(f"model name {key!r} registered twice")
        _REGISTRY[key] = cls
        cls._registry_name = key
        return cls

    return deco


def get_model_class(name: str) -> type:
    """The registered model class called ``name`` (see :func:`available_models`)."""
    from . import _load_all  # noqa: F401  (imports every family so all are registered)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def available_models() -> dict[str, type]:
    from . import _load_all  # noqa: F401

    return dict(sorted(_REGISTRY.items()))


def check_random_state(seed) -> np.random.Generator:
    """A NumPy Generator from ``None``, an int, a SeedSequence or a Generator (never global)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


@dataclass
class Recommendations:
    """Top-k lists for a batch of users (or sessions), best first.

    ``items`` holds raw item ids (shape (n, k)); where fewer than k items could be recommended
    the row is padded with ``None``-like entries: index ``-1`` in ``inner`` and ``-inf`` in
    ``scores``.
    """

    items: np.ndarray
    scores: np.ndarray
    inner: np.ndarray

    def __len__(self) -> int:
        return self.items.shape[0]


class Recommender:
    """Base class of every recforge model (see the module docstring for the contract)."""

    capabilities: ClassVar[frozenset[str]] = frozenset()
    train_type: ClassVar[type] = Interactions
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

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    @property
    def name(self) -> str:
        return self._registry_name or type(self).__name__

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    # ------------------------------------------------------------------ fitting
    def fit(self, train, *, item_features=None, validation=None) -> Recommender:
        """Learn from ``train`` (an :class:`Interactions`, or :class:`SessionEvents` for session
        models); ``item_features`` for models that use them; ``validation`` for early stopping."""
        if not isinstance(train, self.train_type):
            raise TypeError(f"{type(self).__name__}.fit expects {self.train_type.__name__}, "
                            f"got {type(train).__name__}")
        if ITEM_FEATURES in self.capabilities and item_features is None:
            raise ValueError(f"{type(self).__name__} needs item_features")
        self.item_map_ = train.item_map
        self.n_items_ = train.n_items
        self.fallbacks_ = {}
        if isinstance(train, Interactions):
            self.user_map_ = train.user_map
            self.n_users_ = train.n_users
            self.seen_ = train.csr.astype(bool).astype(np.float32).tocsr()
            self.item_popularity_ = train.item_counts.astype(np.float32)
            self.global_mean_ = train.global_mean
            self.rating_scale_ = list(train.rating_scale) if train.rating_scale else None
        else:
            self.item_popularity_ = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
        self._fit(train, item_features=item_features, validation=validation)
        return self

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_map_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")

    def _count_fallback(self, reason: str, n: int) -> None:
        if n:
            self.fallbacks_ = dict(Counter(self.fallbacks_) + Counter({reason: int(n)}))

    # ------------------------------------------------------------------ rating prediction
    def predict(self, users, items, clip: bool = True) -> np.ndarray:
        """Estimated ratings for pairs of raw ids (two equal-length arrays).

        Pairs with an unknown user or item get the training mean (counted in ``fallbacks_``).
        """
        self._check_fitted()
        if RATING not in self.capabilities:
            raise TypeError(f"{type(self).__name__} does not predict ratings")
        u = self.user_map_.to_inner(np.atleast_1d(users), missing="mask")
        i = self.item_map_.to_inner(np.atleast_1d(items), missing="mask")
        return self.predict_inner(u, i, clip=clip)

    def predict_inner(self, u: np.ndarray, i: np.ndarray, clip: bool = True) -> np.ndarray:
        """:meth:`predict` on inner indices; ``-1`` marks an unknown id."""
        u = np.asarray(u, dtype=np.int32)
        i = np.asarray(i, dtype=np.int32)
        if u.shape != i.shape:
            raise ValueError("users and items must have the same length")
        out = np.full(u.shape, self.global_mean_, dtype=np.float64)
        known = (u >= 0) & (i >= 0)
        self._count_fallback("unknown user or item", int((~known).sum()))
        if known.any():
            out[known] = self._predict(u[known], i[known])
        if clip and self.rating_scale_ is not None:
            np.clip(out, self.rating_scale_[0], self.rating_scale_[1], out=out)
        return out

    def _predict(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ ranking
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each inner user: float32 array (len(users), n_items).

        Rating models get this for free from ``_predict``; ranking models override it.
        """
        if RATING not in self.capabilities:
            raise NotImplementedError
        n = self.n_items_
        uu = np.repeat(users, n)
        ii = np.tile(np.arange(n, dtype=np.int32), users.size)
        return self._predict(uu, ii).astype(np.float32).reshape(users.size, n)

    def score_inner(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for inner users over all items, or over ``items`` (shape (len(users), m))."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int32)
        scores = self._score(users)
        if items is not None:
            scores = np.take_along_axis(scores, np.asarray(items), axis=1)
        return scores

    def recommend(self, users, k: int = 10, exclude_seen: bool = True, candidates=None,
                  filter=None, batch_size: int = 1024) -> Recommendations:
        """Top-``k`` items for each raw user id.

        Parameters
        ----------
        users : array-like of raw user ids
        k : int
        exclude_seen : bool
            Drop items the user interacted with in training.
        candidates : array-like of raw item ids, optional
            Rank only these items.
        filter : array-like of raw item ids, optional
            Never recommend these items (a stoplist).
        batch_size : int
            Users scored at once; memory is ``batch_size * n_items`` floats.

        Unknown users get the most popular items (counted in ``fallbacks_``).
        """
        self._check_fitted()
        if not hasattr(self, "user_map_"):
            raise TypeError(f"{type(self).__name__} recommends for sessions: use recommend_next")
        u = self.user_map_.to_inner(np.atleast_1d(users), missing="mask")
        cand = None if candidates is None else self.item_map_.to_inner(np.asarray(candidates), missing="mask")
        stop = None if filter is None else self.item_map_.to_inner(np.asarray(filter), missing="mask")
        idx, scores = self.recommend_inner(u, k, exclude_seen=exclude_seen,
                                           candidates=None if cand is None else cand[cand >= 0],
                                           exclude=None if stop is None else stop[stop >= 0],
                                           batch_size=batch_size)
        return self._to_recommendations(idx, scores)

    def _to_recommendations(self, idx: np.ndarray, scores: np.ndarray) -> Recommendations:
        raw = self.item_map_.to_raw(np.where(idx >= 0, idx, 0))
        if (idx < 0).any():
            raw = raw.astype(object)
            raw[idx < 0] = None
        return Recommendations(items=raw, scores=scores, inner=idx)

    def recommend_inner(self, users: np.ndarray, k: int = 10, exclude_seen: bool = True,
                        candidates: np.ndarray | None = None, exclude: np.ndarray | None = None,
                        batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` on inner indices (``-1`` = unknown user): (items, scores), (n, k)."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int32)
        n = users.size
        k_eff = int(min(k, self.n_items_))
        out_idx = np.full((n, k_eff), -1, dtype=np.int32)
        out_val = np.full((n, k_eff), -np.inf, dtype=np.float32)
        allowed = None
        if candidates is not None or exclude is not None:
            allowed = np.ones(self.n_items_, dtype=bool)
            if candidates is not None:
                allowed[:] = False
                allowed[np.asarray(candidates)] = True
            if exclude is not None:
                allowed[np.asarray(exclude)] = False
        known = np.flatnonzero(users >= 0)
        unknown = np.flatnonzero(users < 0)
        for start in range(0, known.size, batch_size):
            rows = known[start:start + batch_size]
            ub = users[rows]
            scores = np.array(self._score(ub), dtype=np.float32, copy=True)
            if exclude_seen:
                mask_rows(scores, self.seen_, ub)
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            out_idx[rows], out_val[rows] = topk_rows(scores, k_eff)
        if unknown.size:
            self._count_fallback("unknown user: popularity", unknown.size)
            pop = self.item_popularity_.astype(np.float32)[None, :].copy()
            if allowed is not None:
                pop[:, ~allowed] = -np.inf
            pi, pv = topk_rows(pop, k_eff)
            out_idx[unknown], out_val[unknown] = pi, pv
        return out_idx, out_val

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
        (+ ``weights.safetensors`` for torch models). No pickle anywhere."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            arrays: dict[str, np.ndarray] = {}
            state_spec: dict[str, dict] = {}
            for key, value in vars(self).items():
                if not key.endswith("_") or key.startswith("_"):
                    continue
                state_spec[key] = _encode_state(key, value, arrays)
            self._save_extra(tmp, arrays, state_spec)
            config = {
                "format": "recforge-model",
                "recforge_version": __version__,
                "model": self.name,
                "params": _jsonable(self.get_params()),
                "state": state_spec,
            }
            with open(tmp / "arrays.npz", "wb") as f:
                np.savez(f, **arrays)
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
        """Read a model written by :meth:`save` (any registered class when called on the base)."""
        path = Path(path)
        config = json.loads((path / "config.json").read_text())
        if config.get("format") != "recforge-model":
            raise ValueError(f"{path}: not a recforge model directory")
        model_cls = get_model_class(config["model"])
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


class SessionRecommender(Recommender):
    """Base of session-based models: trained on :class:`SessionEvents`, asked for the next item
    of in-progress sessions."""

    capabilities: ClassVar[frozenset[str]] = frozenset({SESSION})
    train_type: ClassVar[type] = SessionEvents

    def recommend_next(self, sessions, k: int = 10, exclude=None) -> Recommendations:
        """Top-``k`` next items for each in-progress session (a list of raw item-id sequences).

        Unknown items in a session are skipped (counted); an empty session gets popular items.
        """
        self._check_fitted()
        seqs = []
        n_unknown = 0
        for s in sessions:
            idx = self.item_map_.to_inner(np.asarray(list(s)), missing="mask") if len(s) else np.empty(0, np.int32)
            n_unknown += int((idx < 0).sum())
            seqs.append(idx[idx >= 0].astype(np.int32))
        self._count_fallback("unknown item in session", n_unknown)
        stop = None if exclude is None else self.item_map_.to_inner(np.asarray(exclude), missing="mask")
        idx, vals = self.recommend_next_inner(seqs, k, exclude=None if stop is None else stop[stop >= 0])
        return self._to_recommendations(idx, vals)

    def recommend_next_inner(self, sessions: list[np.ndarray], k: int = 10,
                             exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        nonempty = [i for i, s in enumerate(sessions) if len(s)]
        scores = np.empty((len(sessions), self.n_items_), dtype=np.float32)
        if nonempty:
            scores[nonempty] = self._score_next([sessions[i] for i in nonempty])
        empty = [i for i, s in enumerate(sessions) if not len(s)]
        if empty:
            self._count_fallback("empty session: popularity", len(empty))
            scores[empty] = self.item_popularity_
        if exclude is not None:
            scores[:, exclude] = -np.inf
        return topk_rows(scores, k)

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
