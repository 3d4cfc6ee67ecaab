"""Responsiveness: how many new interactions of a user it takes until their top-k list changes.

A measurement that fits models (one per added interaction), so it lives with the evaluation
drivers rather than with the pure metric functions of :mod:`recforge.metrics`. Every model call
is in :func:`top_k_after_fit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..data.interactions import Interactions
from ..models.query import History

logger = logging.getLogger(__name__)

__all__ = ["responsiveness"]


def top_k_after_fit(model_factory: Callable[[], object], train: Interactions, users: np.ndarray,
                    k: int) -> np.ndarray:
    """Fit a fresh ``model_factory()`` on ``train`` and return the top-``k`` lists of ``users``."""
    users = np.asarray(users, dtype=np.int32)
    model = model_factory().fit(train)
    return model.recommend_inner(users, k, history=History.from_csr(train.csr[users])).inner


def responsiveness(model_factory: Callable[[], object], train: Interactions, users,
                   new_interactions: Interactions, *, k: int = 10, max_new: int = 5,
                   compare: str = "set") -> np.ndarray:
    r"""How many new interactions of a user it takes until their top-k list changes.

    For each user :math:`u` in ``users``:

    1. fit ``model_factory()`` on ``train`` and take :math:`L_0`, the user's top-k (seen items
       excluded, as :meth:`Recommender.recommend` does);
    2. take the user's interactions in ``new_interactions`` in time order (item order when
       there are no timestamps), at most ``max_new`` of them, and for :math:`j = 1, 2, \dots`
       refit a fresh model on ``train`` plus the first :math:`j` of them only (no other user's
       data changes) and take :math:`L_j`;
    3. the user's responsiveness is the first :math:`j` with :math:`L_j \ne L_0`.

    ``compare='set'`` compares the sets of recommended items, ``'list'`` the ordered lists.
    Because seen items are excluded, adding an item that was in :math:`L_0` changes the list
    by construction; that is the user-visible effect and is counted.

    The cost is one fit for the base list plus up to ``max_new`` fits per user, so use it with
    few users or cheap models.

    Parameters
    ----------
    model_factory : callable
        Returns a new, unfitted model (e.g. ``lambda: MostPopular()``).
    train : Interactions
    users : array-like of int
        Inner user indices to measure.
    new_interactions : Interactions
        Held-out interactions (same id maps as ``train``); pairs already in ``train`` are
        skipped and counted in the log.
    k, max_new : int
    compare : {'set', 'list'}

    Returns
    -------
    ndarray of float64, shape (len(users),)
        The number of added interactions (1..max_new) at which the list first changed;
        ``inf`` when it did not change after all of the user's (at most ``max_new``) new
        interactions; ``NaN`` when the user has no new interaction.
    """
    if compare not in ("set", "list"):
        raise ValueError(f"compare must be 'set' or 'list', got {compare!r}")
    if max_new < 1:
        raise ValueError("max_new must be at least 1")
    if new_interactions.user_map is not train.user_map and new_interactions.user_map != train.user_map:
        raise ValueError("new_interactions must share train's id maps")
    users = np.atleast_1d(np.asarray(users, dtype=np.int64))
    base_lists = top_k_after_fit(model_factory, train, users, k)
    train_keys = train.users.astype(np.int64) * train.n_items + train.items
    order_t = (new_interactions.timestamps if new_interactions.timestamps is not None
               else np.zeros(new_interactions.nnz))
    out = np.full(users.size, np.nan)
    n_skipped = 0
    for j, u in enumerate(users):
        sel = np.flatnonzero(new_interactions.users == u)
        if sel.size == 0:
            continue
        sel = sel[np.lexsort((new_interactions.items[sel], order_t[sel]))]
        keys = u * train.n_items + new_interactions.items[sel].astype(np.int64)
        fresh = ~np.isin(keys, train_keys)
        n_skipped += int((~fresh).sum())
        sel = sel[fresh][:max_new]
        if sel.size == 0:
            continue
        out[j] = np.inf
        for step in range(1, sel.size + 1):
            add = sel[:step]
            grown = _extend(train, new_interactions, add)
            lst = top_k_after_fit(model_factory, grown, np.array([u]), k)
            if _lists_differ(base_lists[j], lst[0], compare):
                out[j] = step
                break
    if n_skipped:
        logger.info("responsiveness: skipped %d new interactions already in train", n_skipped)
    return out


def _lists_differ(a: np.ndarray, b: np.ndarray, compare: str) -> bool:
    if compare == "list":
        return not np.array_equal(a, b)
    return set(a[a >= 0].tolist()) != set(b[b >= 0].tolist())


def _extend(train: Interactions, extra: Interactions, rows: np.ndarray) -> Interactions:
    """``train`` plus the interactions of ``extra`` at ``rows`` (pairs not already in train)."""
    ts = None
    if train.timestamps is not None:
        extra_t = extra.timestamps[rows] if extra.timestamps is not None else \
            np.full(rows.size, train.timestamps.max() if train.nnz else 0.0)
        ts = np.concatenate([train.timestamps, extra_t])
    return Interactions(np.concatenate([train.users, extra.users[rows]]),
                        np.concatenate([train.items, extra.items[rows]]),
                        np.concatenate([train.values, extra.values[rows]]),
                        user_map=train.user_map, item_map=train.item_map, timestamps=ts,
                        kind=train.kind, rating_scale=train.rating_scale, name=train.name)
