"""Fixtures of the evaluation tests: small seeded interaction data and toy models whose
evaluation outcome is known in advance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recforge.data import Interactions
from recforge.models.base import RANKING, RATING, Recommender


def make_interactions(n_users: int = 30, n_items: int = 40, per_user: int = 8, seed: int = 0) -> Interactions:
    """Every user rates ``per_user`` distinct items (1-5 stars) at distinct times."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    df = pd.DataFrame({"user": users + 100, "item": items + 1000,
                       "rating": rng.integers(1, 6, users.size).astype(float),
                       "timestamp": rng.permutation(users.size).astype(float)})
    return Interactions.from_dataframe(df, rating_scale=(1, 5), name="toy")


@pytest.fixture
def toy() -> Interactions:
    return make_interactions()


class Constant(Recommender):
    """Predicts the constant ``value`` for every pair; ranks items by index (higher first)."""

    capabilities = frozenset({RATING})

    def __init__(self, value: float = 3.0):
        self.value = value

    def _fit(self, train, **kw):
        pass

    def _predict(self, u, i, fallbacks=None):
        return np.full(u.shape, float(self.value))


class Oracle(Recommender):
    """Knows the held-out item of each user (inner user -> inner item) and ranks it first;
    with ``anti=True`` it ranks it last."""

    capabilities = frozenset({RANKING})

    def __init__(self, targets=None, anti: bool = False):
        self.targets = targets
        self.anti = anti

    def _fit(self, train, **kw):
        pass

    def _score(self, users, history=None, fallbacks=None):
        scores = np.zeros((users.size, self.n_items_), dtype=np.float32)
        for row, u in enumerate(users):
            t = self.targets.get(int(u))
            if t is not None:
                scores[row, t] = -1.0 if self.anti else 1.0
        return scores


class Flat(Recommender):
    """Scores every item the same: any tie rule other than pessimistic would reward it."""

    capabilities = frozenset({RANKING})

    def __init__(self):
        pass

    def _fit(self, train, **kw):
        pass

    def _score(self, users, history=None, fallbacks=None):
        return np.zeros((users.size, self.n_items_), dtype=np.float32)


class Broken(Recommender):
    """Fails in fit, to check that one failing model does not stop a bake-off."""

    capabilities = frozenset({RATING})

    def __init__(self):
        pass

    def _fit(self, train, **kw):
        raise RuntimeError("broken on purpose")


def loo_targets(data: Interactions) -> dict[int, int]:
    """Inner user -> inner item held out by leave_one_out(mode='latest') (the latest rating)."""
    df = pd.DataFrame({"u": data.users, "i": data.items, "t": data.timestamps})
    last = df.sort_values("t").groupby("u").tail(1)
    return dict(zip(last["u"].astype(int), last["i"].astype(int), strict=True))
