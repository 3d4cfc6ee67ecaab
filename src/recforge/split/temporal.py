"""Temporal splits: one global cutoff time, or the latest fraction of each user's history.

Both guarantee that nothing in the test part happened before what it is compared with in the
training part: with a global cutoff every training event is earlier than every test event; per
user, each user's test events are no earlier than any of that user's training events.
"""

from __future__ import annotations

import numpy as np

from ..data.interactions import Interactions
from ._result import SplitResult, check_interactions, check_ratio, order_within_users
from .random import _two_parts
from .registry import splitter


def _require_time(data: Interactions, split: str) -> np.ndarray:
    if data.timestamps is None:
        raise ValueError(f"{split} needs timestamps; this data ({data.name or 'unnamed'}) has none")
    return data.timestamps


@splitter("interactions")
def temporal_global(data: Interactions, cutoff_time: float | None = None,
                    test_ratio: float | None = None) -> SplitResult:
    """Global temporal split: interactions at or after a cutoff time are test.

    Give exactly one of ``cutoff_time`` and ``test_ratio``.

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    cutoff_time : float, optional
        Unix time; ``timestamp >= cutoff_time`` is test, the rest train.
    test_ratio : float, optional
        The cutoff is the timestamp of the ``ceil(test_ratio * nnz)``-th latest interaction, so
        at least that many interactions are test (more when several share the cutoff time: all
        events at one instant go to the same side).

    Returns
    -------
    SplitResult
        ``report["cutoff_time"]`` is the cutoff used. Test interactions of users or items with
        no training interaction are kept and counted in ``report["cold_test"]``.
    """
    check_interactions(data, "temporal_global")
    times = _require_time(data, "temporal_global")
    if (cutoff_time is None) == (test_ratio is None):
        raise ValueError("give exactly one of cutoff_time and test_ratio")
    if test_ratio is not None:
        test_ratio = check_ratio(test_ratio, "test_ratio")
        if data.nnz == 0:
            raise ValueError("cannot split empty data by ratio")
        n_test = int(np.ceil(test_ratio * data.nnz))
        cutoff = float(np.partition(times, data.nnz - n_test)[data.nnz - n_test])
    else:
        cutoff = float(cutoff_time)
    is_test = times >= cutoff
    result = _two_parts(data, is_test, "temporal_global",
                        {"cutoff_time": cutoff_time, "test_ratio": test_ratio, "seed": None})
    result.report["cutoff_time"] = cutoff
    return result


@splitter("interactions")
def temporal_per_user(data: Interactions, test_ratio: float = 0.2,
                      seed: int | None = 0) -> SplitResult:
    """Per-user temporal split: the latest ``test_ratio`` of each user's interactions are test.

    User ``u`` with ``n_u`` interactions puts its ``min(round(test_ratio * n_u), n_u - 1)`` latest
    interactions in test, so every user keeps at least one training interaction and users with
    one interaction stay entirely in train. Ties in time are ordered by a random key drawn with
    ``seed`` (reproducible, and without favouring high item indices).

    Parameters
    ----------
    data : Interactions
        Must have timestamps.
    test_ratio : float
    seed : int, optional
        Only used to break ties in time.

    Returns
    -------
    SplitResult
        For every user, no test interaction is earlier than any of that user's training
        interactions. ``report["users_without_test"]`` counts users with data but no test part.
    """
    check_interactions(data, "temporal_per_user")
    times = _require_time(data, "temporal_per_user")
    test_ratio = check_ratio(test_ratio, "test_ratio")
    counts = data.user_counts
    # np.round rounds half to even; floor(x + 0.5) rounds half up, which is what the docs say
    n_test = np.minimum(np.floor(test_ratio * counts + 0.5).astype(np.int64), np.maximum(counts - 1, 0))
    order = order_within_users(data.users, times, seed)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(data.nnz) - np.repeat(starts, counts)  # position within the user, by time
    is_test = np.zeros(data.nnz, dtype=bool)
    u_sorted = data.users[order]
    is_test[order] = rank >= (counts - n_test)[u_sorted]
    result = _two_parts(data, is_test, "temporal_per_user", {"test_ratio": test_ratio, "seed": seed})
    result.report["users_without_test"] = int(((counts > 0) & (n_test == 0)).sum())
    return result
