"""Random splits of interaction data: holdout by ratio, k-fold, leave-one-out per user.

Every split draws from ``numpy.random.default_rng(seed)`` (never the global state), so the same
data and seed give the same parts. Parts are :meth:`Interactions.subset` views sharing the full
data's id maps.
"""

from __future__ import annotations

import numpy as np

from ..data.interactions import Interactions
from ._result import SplitResult, check_interactions, check_ratio, describe, order_within_users
from .registry import splitter


@splitter("interactions")
def holdout(data: Interactions, test_ratio: float = 0.2, seed: int | None = 0) -> SplitResult:
    """Random holdout: a uniformly random ``round(test_ratio * nnz)`` interactions form the test part.

    Parameters
    ----------
    data : Interactions
    test_ratio : float
        Fraction of interactions in the test part, strictly between 0 and 1.
    seed : int, optional
        Seed of the permutation.

    Returns
    -------
    SplitResult
        ``train`` and ``test`` are disjoint and together hold every interaction. Users or items
        that end up only in ``test`` are counted in ``report["cold_test"]`` (not dropped).

    Examples
    --------
    >>> import numpy as np
    >>> from recforge.data import Interactions
    >>> data = Interactions.from_arrays(np.arange(10) % 3, np.arange(10), np.ones(10))
    >>> parts = holdout(data, test_ratio=0.3, seed=1)
    >>> parts.train.nnz, parts.test.nnz
    (7, 3)
    """
    check_interactions(data, "holdout")
    test_ratio = check_ratio(test_ratio, "test_ratio")
    n_test = int(round(test_ratio * data.nnz))
    perm = np.random.default_rng(seed).permutation(data.nnz)
    is_test = np.zeros(data.nnz, dtype=bool)
    is_test[perm[:n_test]] = True
    return _two_parts(data, is_test, "holdout", {"test_ratio": test_ratio, "seed": seed})


@splitter("interactions")
def holdout_per_user(data: Interactions, test_ratio: float = 0.25, seed: int | None = 0) -> SplitResult:
    """Per-user (stratified) random holdout: each user's own interactions split at random.

    Each user's interactions are shuffled and the first ``round((1 - test_ratio) * n_u)`` go to
    train, the rest to test, rounding half to even, so a user with one interaction keeps it in
    train. This is the "stratified split" of the Microsoft Recommenders benchmarks (each user's
    ratings split 75/25 at random: ``test_ratio=0.25``), used by the deep-CF comparisons.

    Parameters
    ----------
    data : Interactions
    test_ratio : float
        Fraction of each user's interactions in the test part, strictly between 0 and 1.
    seed : int, optional
        Seed of the shuffle.

    Returns
    -------
    SplitResult
        ``train`` and ``test`` are disjoint and hold every interaction; every user with at least
        one training interaction keeps it; items that end up only in ``test`` are counted in
        ``report["cold_test"]``.

    Examples
    --------
    >>> import numpy as np
    >>> from recforge.data import Interactions
    >>> data = Interactions.from_arrays(np.repeat([0, 1], 4), np.tile(np.arange(4), 2), np.ones(8))
    >>> parts = holdout_per_user(data, test_ratio=0.25, seed=0)
    >>> np.bincount(parts.test.users).tolist()
    [1, 1]
    """
    check_interactions(data, "holdout_per_user")
    test_ratio = check_ratio(test_ratio, "test_ratio")
    order = order_within_users(data.users, None, seed)
    counts = data.user_counts
    starts = np.cumsum(counts) - counts
    users_in_order = data.users[order]
    rank = np.arange(data.nnz) - starts[users_in_order]
    n_train = np.round((1.0 - test_ratio) * counts).astype(np.int64)
    is_test = np.zeros(data.nnz, dtype=bool)
    is_test[order] = rank >= n_train[users_in_order]
    return _two_parts(data, is_test, "holdout_per_user", {"test_ratio": test_ratio, "seed": seed})


@splitter("interactions")
def kfold(data: Interactions, n_folds: int = 5, seed: int | None = 0) -> list[SplitResult]:
    """K-fold cross-validation over interactions.

    The interactions are shuffled with ``seed`` and cut into ``n_folds`` chunks whose sizes differ
    by at most one; fold ``f`` tests on chunk ``f`` and trains on the rest, so every interaction
    is in exactly one test fold.

    Parameters
    ----------
    data : Interactions
    n_folds : int
        At least 2 and at most the number of interactions.
    seed : int, optional

    Returns
    -------
    list of SplitResult
        One per fold, in fold order; ``config["fold"]`` is the fold's index.
    """
    check_interactions(data, "kfold")
    n_folds = int(n_folds)
    if not 2 <= n_folds <= data.nnz:
        raise ValueError(f"n_folds must be between 2 and the number of interactions ({data.nnz}), "
                         f"got {n_folds}")
    perm = np.random.default_rng(seed).permutation(data.nnz)
    fold_of = np.empty(data.nnz, dtype=np.int64)
    # chunk f is perm[bounds[f]:bounds[f+1]]; np.array_split's sizes (larger chunks first)
    sizes = np.full(n_folds, data.nnz // n_folds)
    sizes[: data.nnz % n_folds] += 1
    fold_of[perm] = np.repeat(np.arange(n_folds), sizes)
    return [_two_parts(data, fold_of == f, "kfold",
                       {"n_folds": n_folds, "fold": f, "seed": seed}) for f in range(n_folds)]


@splitter("interactions")
def leave_one_out(data: Interactions, mode: str = "latest", seed: int | None = 0,
                  min_interactions: int = 2) -> SplitResult:
    """Leave one interaction per user out: each user's latest (or a random) interaction is test.

    Parameters
    ----------
    data : Interactions
    mode : {'latest', 'random'}
        ``'latest'`` holds out the interaction with the largest timestamp (needs timestamps;
        interactions at the same time are ordered by a random key drawn with ``seed``, so ties
        do not favour high item indices); ``'random'`` holds out one uniformly random
        interaction per user.
    seed : int, optional
    min_interactions : int
        Users with fewer interactions keep all of them in train (nothing of theirs is held out);
        they are counted in ``report["users_kept_whole_in_train"]``.

    Returns
    -------
    SplitResult
        ``test`` has exactly one interaction for every user with at least ``min_interactions``.
    """
    check_interactions(data, "leave_one_out")
    if mode not in ("latest", "random"):
        raise ValueError(f"mode must be 'latest' or 'random', got {mode!r}")
    if mode == "latest" and data.timestamps is None:
        raise ValueError("leave_one_out(mode='latest') needs timestamps; use mode='random'")
    min_interactions = int(min_interactions)
    if min_interactions < 1:
        raise ValueError("min_interactions must be at least 1")
    counts = data.user_counts
    eligible = counts >= min_interactions
    # Rows are grouped by user, so per-user maxima are segment reductions (linear time, no sort):
    # among a user's rows at its latest time (every row for 'random'), the largest random key wins.
    has_rows = counts > 0
    starts = (np.cumsum(counts) - counts)[has_rows]
    seg_len = counts[has_rows]
    keys = np.random.default_rng(seed).random(data.nnz)
    if mode == "latest":
        latest = np.repeat(np.maximum.reduceat(data.timestamps, starts), seg_len) if starts.size else keys
        keys = np.where(data.timestamps == latest, keys, -1.0)
    best = np.repeat(np.maximum.reduceat(keys, starts), seg_len) if starts.size else keys
    winners = np.flatnonzero(keys == best)
    first = np.ones(winners.size, dtype=bool)  # one per user even if two keys were equal
    first[1:] = data.users[winners[1:]] != data.users[winners[:-1]]
    winners = winners[first]
    is_test = np.zeros(data.nnz, dtype=bool)
    is_test[winners[eligible[data.users[winners]]]] = True
    result = _two_parts(data, is_test, "leave_one_out",
                        {"mode": mode, "seed": seed, "min_interactions": min_interactions})
    n_short = int(((counts > 0) & ~eligible).sum())
    result.report["users_kept_whole_in_train"] = n_short
    result.report["interactions_of_users_kept_whole"] = int(counts[(counts > 0) & ~eligible].sum())
    return result


def _two_parts(data: Interactions, is_test: np.ndarray, split: str, params: dict) -> SplitResult:
    """Train = ~is_test, test = is_test, both sharing ``data``'s maps, with counts."""
    train = data.subset(~is_test)
    test = data.subset(is_test)
    report = {"train": describe(train), "test": describe(test), "dropped": {},
              "cold_test": _cold_counts(train, test)}
    return SplitResult(train=train, test=test, report=report, config={"split": split, **params})


def _cold_counts(train: Interactions, test: Interactions) -> dict:
    """Test interactions whose user / item has no training interaction (kept, but counted)."""
    cold_user = train.user_counts[test.users] == 0
    cold_item = train.item_counts[test.items] == 0
    return {"interactions_with_unseen_user": int(cold_user.sum()),
            "interactions_with_unseen_item": int(cold_item.sum())}
