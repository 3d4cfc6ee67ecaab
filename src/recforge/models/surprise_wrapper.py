"""Run any scikit-surprise algorithm as a recforge model (optional dependency).

``SurpriseAlgorithm(algo="SVD", params={"n_factors": 50, "random_state": 0})`` fits the Surprise
algorithm on a :class:`~surprise.Trainset` built from the training :class:`Interactions` and
predicts through the algorithm's own ``predict``, so every Surprise algorithm, including one a
user wrote by subclassing ``AlgoBase``, can be evaluated side by side with recforge models.

Id handling: Surprise sees recforge's **raw** ids (ints or strings, exactly as in the id map).
Surprise's inner ids are given to the users and items that have training ratings, in order of
first appearance in the training ratings (which are sorted by user, then item), as
``surprise.Dataset.load_from_df(train.to_dataframe())`` would number them. A pair Surprise cannot predict (``PredictionImpossible``, e.g. an item without
training ratings for a KNN model) gets Surprise's default prediction (the training mean) and is
counted in the fallbacks the call returns.

Surprise predicts one pair at a time in Python, so ranking the whole catalog for many users is
slow (about a microsecond or more per pair); the wrapper is meant for rating evaluation and for
comparisons, not for serving.

Persistence: Surprise models are only saveable with pickle, which recforge never uses. A saved
``SurpriseAlgorithm`` stores its hyperparameters and training ratings; loading refits the
algorithm, which reproduces it exactly when the algorithm is deterministic or ``params`` holds a
``random_state``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from .base import RATING, Recommender, register

logger = logging.getLogger(__name__)

__all__ = ["SurpriseAlgorithm"]


def _import_surprise():
    try:
        import surprise
    except ImportError as exc:
        raise ImportError("SurpriseAlgorithm needs scikit-surprise: pip install scikit-surprise") \
            from exc
    return surprise


def _resolve_class(name: str):
    """A Surprise algorithm class from its name (``"SVD"``) or a path (``"pkg.mod:Class"``)."""
    surprise = _import_surprise()
    if ":" in name or "." in name:
        module_name, _, cls_name = name.replace(":", ".").rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot import Surprise algorithm {name!r}: {exc}") from None
    else:
        cls = getattr(surprise, name, None)
        if cls is None:
            known = sorted(n for n in dir(surprise) if inspect.isclass(getattr(surprise, n))
                           and issubclass(getattr(surprise, n), surprise.AlgoBase))
            raise ValueError(f"surprise has no algorithm {name!r}; known: {', '.join(known)}")
    if not (inspect.isclass(cls) and issubclass(cls, surprise.AlgoBase)):
        raise TypeError(f"{name!r} is not a surprise AlgoBase subclass")
    return cls


def _first_appearance(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``ids`` in order of first appearance, and each entry's position in that order."""
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return uniq[order], rank[inverse]


@register("SurpriseAlgorithm")
class SurpriseAlgorithm(Recommender):
    """A scikit-surprise ``AlgoBase`` behind the recforge interface.

    Parameters
    ----------
    algo : str or surprise.AlgoBase
        A Surprise algorithm class name (``"SVD"``, ``"KNNBaseline"``, …), an import path of a
        custom ``AlgoBase`` subclass (``"mypackage.algos:MyAlgo"``), or an algorithm instance.
        Only the string forms can be saved (the configuration must be JSON).
    params : dict, optional
        Keyword arguments for the algorithm class (JSON-serializable values, e.g.
        ``{"n_factors": 50, "random_state": 0}`` or ``{"sim_options": {"name": "pearson"}}``).

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [1.0, 3.0, 5.0])
    >>> m = SurpriseAlgorithm("BaselineOnly", {"verbose": False}).fit(train)
    >>> m.predict([2], [20]).round(3).tolist()  # as recforge.models.BaselineOnly()
    [3.136]
    """

    capabilities = frozenset({RATING})
    state = ("train_users_", "train_items_", "train_values_", "to_surprise_user_", "to_surprise_item_")

    def __init__(self, algo="SVD", params: dict | None = None):
        self.algo = algo
        self.params = params

    def _make_algo(self):
        surprise = _import_surprise()
        if isinstance(self.algo, surprise.AlgoBase):
            if self.params:
                raise ValueError("params are only used with an algorithm name, not an instance")
            return copy.deepcopy(self.algo)  # clones must not share a fitted instance
        if not isinstance(self.algo, str):
            raise TypeError(f"algo must be a Surprise algorithm name or AlgoBase instance, "
                            f"got {type(self.algo).__name__}")
        return _resolve_class(self.algo)(**(self.params or {}))

    def _fit(self, train, **_) -> None:
        if train.nnz == 0:
            raise ValueError("training data has no interactions")
        self.train_users_ = train.users.copy()
        self.train_items_ = train.items.copy()
        self.train_values_ = train.values.copy()
        self._fit_surprise()

    def _fit_surprise(self) -> None:
        surprise = _import_surprise()
        u, i, r = self.train_users_, self.train_items_, self.train_values_.astype(np.float64)
        # Surprise inner ids in order of first appearance in the (user, item)-sorted ratings,
        # exactly as Surprise's own Dataset numbers ``train.to_dataframe()``; algorithms with
        # random initialisation (SVD) then reproduce a direct Surprise run bit for bit.
        user_ids, su = _first_appearance(u)
        item_ids, si = _first_appearance(i)
        self.to_surprise_user_ = np.full(len(self.user_map_), -1, dtype=np.int64)
        self.to_surprise_user_[user_ids] = np.arange(user_ids.size)
        self.to_surprise_item_ = np.full(len(self.item_map_), -1, dtype=np.int64)
        self.to_surprise_item_[item_ids] = np.arange(item_ids.size)
        ur, ir = defaultdict(list), defaultdict(list)
        for a, b, v in zip(su.tolist(), si.tolist(), r.tolist(), strict=True):
            ur[a].append((b, v))
            ir[b].append((a, v))
        raw_users = self.user_map_.raw[user_ids].tolist()
        raw_items = self.item_map_.raw[item_ids].tolist()
        scale = tuple(self.rating_scale_) if self.rating_scale_ is not None else (float(r.min()), float(r.max()))
        trainset = surprise.Trainset(ur, ir, user_ids.size, item_ids.size, r.size, scale,
                                     dict(zip(raw_users, range(len(raw_users)), strict=True)),
                                     dict(zip(raw_items, range(len(raw_items)), strict=True)))
        algo = self._make_algo()
        algo.fit(trainset)
        self.algo_ = algo
        self.trainset_ = trainset

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks) -> np.ndarray:
        surprise = _import_surprise()
        algo = self.algo_
        su = self.to_surprise_user_[u]
        si = self.to_surprise_item_[i]
        out = np.empty(u.size, dtype=np.float64)
        impossible = 0
        default = algo.default_prediction()
        for j, (a, b) in enumerate(zip(su.tolist(), si.tolist(), strict=True)):
            # Surprise marks ids it does not know this way in AlgoBase.predict
            ia = a if a >= 0 else f"UKN__{self.user_map_.raw[u[j]]}"
            ib = b if b >= 0 else f"UKN__{self.item_map_.raw[i[j]]}"
            try:
                est = algo.estimate(ia, ib)
            except surprise.PredictionImpossible:
                est = default
                impossible += 1
            if isinstance(est, tuple):
                est = est[0]
            out[j] = est
        fallbacks.count("surprise: prediction impossible (training mean)", impossible)
        return out

    def _save_extra(self, directory: Path, arrays: dict, state_spec: dict) -> None:
        if not isinstance(self.algo, str):
            raise TypeError("a SurpriseAlgorithm built from an algorithm instance cannot be "
                            "saved; pass the algorithm's class name and params instead")

    def _load_extra(self, directory: Path, config: dict) -> None:
        cls = _resolve_class(self.algo)
        takes_seed = "random_state" in inspect.signature(cls.__init__).parameters
        if takes_seed and (self.params or {}).get("random_state") is None:
            logger.warning("%s: refitting %s without a random_state; the loaded model may "
                           "differ from the saved one", directory, self.algo)
        self._fit_surprise()
