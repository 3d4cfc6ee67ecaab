"""The result every split returns, and the helpers that describe its parts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data.interactions import Interactions
from ..data.sessions import SessionEvents


@dataclass
class SplitResult:
    """Train / test (and optionally validation) parts of one split, with what was done.

    Attributes
    ----------
    train, test : Interactions or SessionEvents
        The parts. Parts of an :class:`Interactions` split share the full data's id maps, so
        inner indices agree across parts. Parts of a session split use the training part's item
        index (see :func:`recforge.split.session_split`).
    validation : Interactions or SessionEvents, optional
        A validation part, for splits that make one.
    report : dict
        ``{"train": {...counts}, "test": {...counts}, ["validation": ...], "dropped": {reason:
        count}}`` plus split-specific numbers (e.g. the cutoff used). Counts are interactions /
        users / items for interaction data, and sessions / events / items for session data.
    config : dict
        The split's name and every parameter needed to redo it (including ``seed``; ``None``
        for deterministic splits).
    parts : dict
        Further named parts (the session split's ``train_tr``), empty otherwise.
    """

    train: Interactions | SessionEvents
    test: Interactions | SessionEvents
    validation: Interactions | SessionEvents | None = None
    report: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    parts: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        sides = [f"train={self.train!r}", f"test={self.test!r}"]
        if self.validation is not None:
            sides.append(f"validation={self.validation!r}")
        return f"SplitResult({self.config.get('split', '?')}: {', '.join(sides)})"


def describe(part: Interactions | SessionEvents) -> dict:
    """Counts of one part: interactions, users and items with data (or sessions, events, items)."""
    if isinstance(part, SessionEvents):
        return {"sessions": part.n_sessions, "events": part.n_events,
                "items": int(np.count_nonzero(np.bincount(part.items, minlength=part.n_items)))}
    return {"interactions": part.nnz, "users": int((part.user_counts > 0).sum()),
            "items": int((part.item_counts > 0).sum())}


def check_interactions(data, split: str) -> Interactions:
    if not isinstance(data, Interactions):
        raise TypeError(f"{split} splits Interactions, got {type(data).__name__}")
    return data


def check_ratio(value, name: str) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    return value


def order_within_users(users: np.ndarray, times: np.ndarray | None, seed) -> np.ndarray:
    """Positions sorted by (user, time), ties in time in a random order drawn with ``seed``.

    Equivalent to ``np.lexsort((random_keys, times, users))`` but several times faster on
    millions of rows: times are replaced by their dense rank, the rows are shuffled, and one
    stable integer argsort on ``user * n_distinct_times + time_rank`` keeps the shuffled order
    among ties. ``times=None`` orders each user's rows randomly.
    """
    n = users.size
    perm = np.random.default_rng(seed).permutation(n)
    if times is None:
        key = users.astype(np.int64)
    else:
        distinct, rank = np.unique(times, return_inverse=True)
        key = users.astype(np.int64) * max(distinct.size, 1) + rank.ravel()
    return perm[np.argsort(key[perm], kind="stable")]
