r"""Co-Clustering rating predictor (George & Merugu 2005), as in Surprise.

Users are assigned to clusters :math:`C_u`, items to clusters :math:`C_i`, and

.. math:: \hat r_{ui} = \overline{C_{ui}} + (\mu_u - \overline{C_u}) + (\mu_i - \overline{C_i})

where :math:`\overline{C_{ui}}`, :math:`\overline{C_u}`, :math:`\overline{C_i}` are the mean
ratings of the co-cluster, the user cluster and the item cluster (the global mean when empty).
Starting from random assignments, each epoch moves every user to the cluster minimising its
squared error (cluster means held fixed), then every item likewise with the users' new
clusters (George & Merugu 2005, algorithm 1, batch updates).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data.interactions import Interactions
from ..base import RANKING, RATING, Recommender, check_random_state, register
from ..query import FallbackLog


def _row_means(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(index, minlength=n)
    sums = np.bincount(index, weights=values, minlength=n)
    return np.divide(sums, counts, out=np.zeros(n), where=counts > 0)


@register("CoClustering")
class CoClustering(Recommender):
    """Co-clustering collaborative filtering (George & Merugu 2005).

    Parameters
    ----------
    n_cltr_u : int, default 3
        Number of user clusters.
    n_cltr_i : int, default 3
        Number of item clusters.
    n_epochs : int, default 20
        Assignment sweeps.
    random_state : int or Generator, optional, default 0
        Seeds the random initial clusters.

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> data = Interactions.from_arrays([1, 1, 2, 2], [10, 20, 10, 20], [5.0, 1.0, 4.0, 2.0])
    >>> model = CoClustering(n_cltr_u=1, n_cltr_i=1, random_state=0).fit(data)
    >>> float(model.predict([1], [10])[0])  # 3 + (3 - 3) + (4.5 - 3)
    4.5
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING})
    state = ("avg_cltr_u_", "avg_cltr_i_", "avg_cocltr_", "cltr_u_", "cltr_i_", "user_mean_",
             "item_mean_")

    def __init__(self, n_cltr_u: int = 3, n_cltr_i: int = 3, n_epochs: int = 20,
                 random_state=0):
        self.n_cltr_u = n_cltr_u
        self.n_cltr_i = n_cltr_i
        self.n_epochs = n_epochs
        self.random_state = random_state

    def _averages(self, u, i, r, cu, ci):
        """Means of the user clusters, item clusters and co-clusters (global mean if empty)."""
        n_u, n_i = int(self.n_cltr_u), int(self.n_cltr_i)
        mu = self.global_mean_
        ucl, icl = cu[u], ci[i]
        cnt_u = np.bincount(ucl, minlength=n_u)
        cnt_i = np.bincount(icl, minlength=n_i)
        co = ucl * n_i + icl
        cnt_co = np.bincount(co, minlength=n_u * n_i)
        avg_u = np.where(cnt_u > 0, np.bincount(ucl, weights=r, minlength=n_u) / np.maximum(cnt_u, 1), mu)
        avg_i = np.where(cnt_i > 0, np.bincount(icl, weights=r, minlength=n_i) / np.maximum(cnt_i, 1), mu)
        avg_co = np.where(cnt_co > 0, np.bincount(co, weights=r, minlength=n_u * n_i) /
                          np.maximum(cnt_co, 1), mu).reshape(n_u, n_i)
        return avg_u, avg_i, avg_co

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        if int(self.n_cltr_u) < 1 or int(self.n_cltr_i) < 1:
            raise ValueError("n_cltr_u and n_cltr_i must be >= 1")
        # the data's mean in double precision (Interactions.global_mean sums in float32)
        self.global_mean_ = float(np.mean(train.values, dtype=np.float64)) if train.nnz else 0.0
        rng = check_random_state(self.random_state)
        cu = rng.integers(int(self.n_cltr_u), size=train.n_users)
        ci = rng.integers(int(self.n_cltr_i), size=train.n_items)
        self._iterate(train, cu, ci)

    def _iterate(self, train: Interactions, cu: np.ndarray, ci: np.ndarray) -> None:
        """Run ``n_epochs`` assignment sweeps from the given initial clusters and store the
        final clusters and cluster means."""
        n_users, n_items = train.n_users, train.n_items
        u, i = train.users.astype(np.int64), train.items.astype(np.int64)
        r = train.values.astype(np.float64)
        cu = np.asarray(cu, np.int64).copy()
        ci = np.asarray(ci, np.int64).copy()
        user_mean = _row_means(u, r, n_users)
        item_mean = _row_means(i, r, n_items)
        # the part of each error that does not depend on the clusters being chosen
        base = r - user_mean[u] - item_mean[i]
        for _ in range(int(self.n_epochs)):
            avg_u, avg_i, avg_co = self._averages(u, i, r, cu, ci)
            icl = ci[i]
            errors = np.stack([np.bincount(u, weights=(base - avg_co[c, icl] + avg_u[c] + avg_i[icl]) ** 2,
                                           minlength=n_users) for c in range(int(self.n_cltr_u))], axis=1)
            cu = np.argmin(errors, axis=1)  # ties: lowest cluster, as np.argmin
            ucl = cu[u]
            errors = np.stack([np.bincount(i, weights=(base - avg_co[ucl, c] + avg_u[ucl] + avg_i[c]) ** 2,
                                           minlength=n_items) for c in range(int(self.n_cltr_i))], axis=1)
            ci = np.argmin(errors, axis=1)
        self.avg_cltr_u_, self.avg_cltr_i_, self.avg_cocltr_ = self._averages(u, i, r, cu, ci)
        self.cltr_u_, self.cltr_i_ = cu.astype(np.int64), ci.astype(np.int64)
        self.user_mean_, self.item_mean_ = user_mean, item_mean

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        known = (self.user_counts_[u] > 0) & (self.item_popularity_[i] > 0)
        fallbacks.count("user or item without training ratings: global mean", int((~known).sum()))
        cu, ci = self.cltr_u_[u], self.cltr_i_[i]
        est = (self.avg_cocltr_[cu, ci] + self.user_mean_[u] - self.avg_cltr_u_[cu] +
               self.item_mean_[i] - self.avg_cltr_i_[ci])
        return np.where(known, est, self.global_mean_)
