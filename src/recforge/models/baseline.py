"""Baselines every evaluation should include: random, global mean, biases, popularity.

* :class:`Random` — a rating drawn from :math:`\\mathcal N(\\hat\\mu, \\hat\\sigma^2)` of the
  training ratings, clipped to the scale (Surprise's ``NormalPredictor`` semantics);
* :class:`GlobalMean` — the training mean for every pair;
* :class:`BaselineOnly` — :math:`\\hat r_{ui} = \\mu + b_u + b_i` with biases fitted by
  alternating least squares or by SGD (Koren 2010, section 2.1);
* :class:`MostPopular` — items ranked by interaction count, optionally time-decayed;
* :class:`RandomRanker` — a uniformly random ranking per user.

The two random models are *counter-based*: the value for a (user, item) pair is a fixed
function of the seed and the pair (a SplitMix64 hash), so repeated calls, batches and single
calls, and a saved-and-loaded model all give the same numbers, and no generator state has to be
carried around.

References
----------
Koren, Y. (2010). Factor in the neighbors: scalable and accurate collaborative filtering.
ACM TKDD 4(1), article 1, section 2.1 (baseline estimates, eq. 2).
Hug, N. (2020). Surprise: a Python library for recommender systems. JOSS 5(52), 2174.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
import scipy.sparse as sp
from scipy.special import ndtri

from ..data.interactions import Interactions
from .base import FOLD_IN, INCREMENTAL, RANKING, RATING, Recommender, register
from .query import FallbackLog, History

logger = logging.getLogger(__name__)

__all__ = ["Random", "GlobalMean", "BaselineOnly", "MostPopular", "RandomRanker"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer (Steele, Lea & Flood 2014), element-wise on uint64 (wrapping)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _pair_uniform(seed: int, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """A uniform number in (0, 1) for each (u, i) pair, fixed by ``seed`` (float64)."""
    key = (np.asarray(u).astype(np.uint64) << np.uint64(32)) | np.asarray(i).astype(np.uint64)
    z = _splitmix64(_splitmix64(key) ^ np.uint64(seed))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)


def _resolve_seed(random_state) -> int:
    """A 63-bit integer seed from ``None`` (fresh entropy), an int or a Generator."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state) & (2**63 - 1)
    return int(np.random.default_rng(random_state).integers(0, 2**63 - 1))


def _ratings64(train) -> np.ndarray:
    if train.nnz == 0:
        raise ValueError("training data has no interactions")
    return train.values.astype(np.float64)


@register("Random")
class Random(Recommender):
    r"""Random rating from the normal distribution of the training ratings.

    .. math:: \hat r_{ui} \sim \mathcal N(\hat\mu, \hat\sigma^2), \quad
              \hat\mu = \frac{1}{|R|}\sum_{r \in R} r, \quad
              \hat\sigma = \sqrt{\frac{1}{|R|}\sum_{r \in R} (r - \hat\mu)^2}

    (maximum-likelihood estimates, as Surprise's ``NormalPredictor``), clipped to the rating
    scale by :meth:`predict`. Each pair's draw is a fixed function of the seed and the pair,
    so predictions are reproducible.

    Parameters
    ----------
    random_state : int, Generator or None, default 0
        ``None`` draws a fresh seed at fit time.

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [1.0, 3.0, 5.0])
    >>> m = Random(random_state=0).fit(train)
    >>> round(m.mu_, 3), round(m.sigma_, 3)
    (3.0, 1.633)
    """

    capabilities = frozenset({RATING})
    state = ("mu_", "sigma_", "seed_")

    def __init__(self, random_state=0):
        self.random_state = random_state

    def _fit(self, train, **_) -> None:
        r = _ratings64(train)
        self.mu_ = float(r.mean())
        self.sigma_ = float(np.sqrt(np.mean((r - self.mu_) ** 2)))
        self.seed_ = _resolve_seed(self.random_state)

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        return self.mu_ + self.sigma_ * ndtri(_pair_uniform(self.seed_, u, i))


@register("GlobalMean")
class GlobalMean(Recommender):
    r"""The mean training rating for every pair: :math:`\hat r_{ui} = \mu`.

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [1.0, 3.0, 5.0])
    >>> GlobalMean().fit(train).predict([1], [20]).tolist()
    [3.0]
    """

    capabilities = frozenset({RATING})
    state = ("mu_",)

    def __init__(self):
        pass

    def _fit(self, train, **_) -> None:
        self.mu_ = float(_ratings64(train).mean())

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        return np.full(u.shape, self.mu_)


def baseline_als(train, reg_i: float = 10.0, reg_u: float = 15.0,
                 n_epochs: int = 10) -> tuple[float, np.ndarray, np.ndarray]:
    r"""Global mean and user / item biases by alternating least squares (Koren 2010, eq. 2).

    Starting from zero biases, each epoch sets, for every item and then every user,

    .. math::
        b_i = \frac{\sum_{u \in U_i} (r_{ui} - \mu - b_u)}{\lambda_i + |U_i|}, \qquad
        b_u = \frac{\sum_{i \in I_u} (r_{ui} - \mu - b_i)}{\lambda_u + |I_u|},

    the update Surprise's ``baseline_als`` performs; users / items without ratings keep 0.
    Shared by :class:`BaselineOnly`, the k-NN models' baselines and ContentKNN's fallback.

    Returns
    -------
    (mu, user_bias, item_bias) : float, float64 (n_users,), float64 (n_items,)
    """
    r = _ratings64(train)
    mu = float(r.mean()) if r.size else 0.0
    users = train.users.astype(np.int64)
    items = train.items.astype(np.int64)
    count_i = np.bincount(items, minlength=train.n_items)
    count_u = np.bincount(users, minlength=train.n_users)
    denom_i = reg_i + count_i
    denom_u = reg_u + count_u
    bu = np.zeros(train.n_users)
    bi = np.zeros(train.n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(int(n_epochs)):
            dev_i = np.bincount(items, weights=r - mu - bu[users], minlength=train.n_items)
            bi = np.where(count_i > 0, dev_i / denom_i, 0.0)
            dev_u = np.bincount(users, weights=r - mu - bi[items], minlength=train.n_users)
            bu = np.where(count_u > 0, dev_u / denom_u, 0.0)
    return mu, bu, bi


@numba.njit(cache=True)
def _sgd_epochs(users, items, ratings, order, mu, bu, bi, lr, reg, n_epochs):  # pragma: no cover
    """In-place SGD on the biases, visiting ratings in ``order[epoch]`` (Koren 2010, sec. 2.1)."""
    for epoch in range(n_epochs):
        for j in order[epoch]:
            u = users[j]
            i = items[j]
            err = ratings[j] - (mu + bu[u] + bi[i])
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])


@register("BaselineOnly")
class BaselineOnly(Recommender):
    r"""Baseline estimates :math:`\hat r_{ui} = \mu + b_u + b_i` (Koren 2010, eq. 2).

    The biases minimize the regularized squared error

    .. math:: \sum_{r_{ui} \in R} (r_{ui} - \mu - b_u - b_i)^2
              + \lambda_u \sum_u b_u^2 + \lambda_i \sum_i b_i^2

    by one of two methods, with Surprise's defaults and update order:

    ``method='als'``
        Each epoch first sets every item bias in closed form given the user biases, then every
        user bias given the new item biases:

        .. math:: b_i = \frac{\sum_{u \in R(i)} (r_{ui} - \mu - b_u)}{\lambda_i + |R(i)|},
                  \qquad
                  b_u = \frac{\sum_{i \in R(u)} (r_{ui} - \mu - b_i)}{\lambda_u + |R(u)|}

        (``reg_i`` = :math:`\lambda_i` = 10, ``reg_u`` = :math:`\lambda_u` = 15, 10 epochs),
        starting from zero biases. Each half-step is one ``np.bincount``.
    ``method='sgd'``
        For every rating in turn, :math:`e_{ui} = r_{ui} - \hat r_{ui}`,
        :math:`b_u \leftarrow b_u + \gamma (e_{ui} - \lambda b_u)`,
        :math:`b_i \leftarrow b_i + \gamma (e_{ui} - \lambda b_i)`
        (``learning_rate`` = :math:`\gamma` = 0.005, ``reg`` = :math:`\lambda` = 0.02,
        20 epochs), compiled with Numba. Ratings are visited user by user, items in index
        order, in every epoch; ``shuffle=True`` visits them in a random order per epoch drawn
        from ``random_state`` instead.

    Users or items without training ratings keep a zero bias, so they are predicted from the
    other bias (as Surprise does). A query row of an unknown or anonymous user folds in its
    history with the closed-form user step,
    :math:`b_u = \sum_{i \in H} (r_{ui} - \mu - b_i) / (\lambda + |H|)` (``reg_u`` for ALS,
    ``reg`` for SGD), so its scores are its predicted ratings.

    Parameters
    ----------
    method : {'als', 'sgd'}
    reg_i, reg_u : float
        ALS regularization of item and user biases.
    n_epochs : int, optional
        Defaults to 10 for ALS and 20 for SGD (Surprise's defaults).
    learning_rate, reg : float
        SGD step size and regularization.
    shuffle : bool
        SGD only: visit ratings in a random order each epoch.
    random_state : int, Generator or None, default 0
        Seeds the SGD shuffling.

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 1, 2], [10, 20, 10], [1.0, 3.0, 5.0])
    >>> m = BaselineOnly(reg_i=0, reg_u=0, n_epochs=1).fit(train)
    >>> m.bi_.tolist(), m.bu_.tolist()  # mu = 3; b_i = (-2 + 2) / 2, 0 / 1; then b_u
    ([0.0, 0.0], [-1.0, 2.0])
    """

    capabilities = frozenset({RATING, FOLD_IN})
    state = ("mu_", "bu_", "bi_")

    def __init__(self, method: str = "als", reg_i: float = 10.0, reg_u: float = 15.0,
                 n_epochs: int | None = None, learning_rate: float = 0.005, reg: float = 0.02,
                 shuffle: bool = False, random_state=0):
        self.method = method
        self.reg_i = reg_i
        self.reg_u = reg_u
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.reg = reg
        self.shuffle = shuffle
        self.random_state = random_state

    def _fit(self, train, **_) -> None:
        if self.method not in ("als", "sgd"):
            raise ValueError(f"method must be 'als' or 'sgd', got {self.method!r}")
        n_epochs = self.n_epochs if self.n_epochs is not None else (10 if self.method == "als" else 20)
        if n_epochs < 0:
            raise ValueError(f"n_epochs must be non-negative, got {n_epochs}")
        for name in ("reg_i", "reg_u", "reg", "learning_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if self.method == "als":
            mu, bu, bi = baseline_als(train, self.reg_i, self.reg_u, n_epochs)
        else:
            r = _ratings64(train)
            mu = float(r.mean())
            users = train.users.astype(np.int64)
            items = train.items.astype(np.int64)
            bu = np.zeros(train.n_users)
            bi = np.zeros(train.n_items)
            if self.shuffle:
                rng = np.random.default_rng(self.random_state)
                order = np.stack([rng.permutation(r.size) for _ in range(n_epochs)]) \
                    if n_epochs else np.empty((0, r.size), np.int64)
            else:
                order = np.broadcast_to(np.arange(r.size), (n_epochs, r.size))
            _sgd_epochs(users, items, r, np.ascontiguousarray(order), mu, bu, bi,
                        float(self.learning_rate), float(self.reg), n_epochs)
            if not (np.isfinite(bu).all() and np.isfinite(bi).all()):
                raise FloatingPointError("BaselineOnly SGD diverged (non-finite biases); "
                                         "lower learning_rate")
        self.mu_ = mu
        self.bu_ = bu
        self.bi_ = bi

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        return self.mu_ + self.bu_[u] + self.bi_[i]

    def fold_in_user_bias(self, history: sp.csr_matrix) -> np.ndarray:
        """User biases of history rows by the closed-form user step (see the class docstring)."""
        h = sp.csr_matrix(history)
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        resid = h.data.astype(np.float64) - self.mu_ - self.bi_[h.indices]
        lam = self.reg_u if self.method == "als" else self.reg
        return np.bincount(rows, weights=resid, minlength=h.shape[0]) / (lam + np.diff(h.indptr))

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        # mu + b_u is constant per row, but kept so that scores equal predictions
        bu = np.where(users >= 0, self.bu_[np.maximum(users, 0)], 0.0)
        unknown = users < 0
        if unknown.any():
            bu[unknown] = self.fold_in_user_bias(history.matrix[np.flatnonzero(unknown)])
        return (self.mu_ + bu[:, None] + self.bi_[None, :]).astype(np.float32)


@register("MostPopular")
class MostPopular(Recommender):
    r"""Rank items by how often they were interacted with in training.

    .. math:: s_i = \sum_{(u, i, t) \in R} w(t), \qquad
              w(t) = 1 \ \text{or}\ 2^{-(t_{\max} - t)/h}

    With ``recency_half_life`` :math:`h` (in the timestamps' unit, seconds for unix time) an
    interaction counts half as much every :math:`h` before the latest training timestamp
    :math:`t_{\max}`, so items popular *recently* rank first. The same scores serve unknown
    users (``item_popularity_`` holds them). Every user gets the same ranking minus the items
    they have seen; ties go to the lower item index.

    Parameters
    ----------
    recency_half_life : float, optional
        Needs timestamps in the training data.

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 2, 2, 3], [10, 10, 20, 30])
    >>> MostPopular().fit(train).recommend([1], k=2).items.tolist()
    [[20, 30]]
    """

    capabilities = frozenset({RANKING, INCREMENTAL})
    state = ("latest_time_",)

    def __init__(self, recency_half_life: float | None = None):
        self.recency_half_life = recency_half_life

    def _fit(self, train, **_) -> None:
        if self.recency_half_life is None:
            pop = train.item_counts.astype(np.float64)
        else:
            h = float(self.recency_half_life)
            if not h > 0:
                raise ValueError(f"recency_half_life must be positive, got {self.recency_half_life}")
            if train.timestamps is None:
                raise ValueError("MostPopular(recency_half_life=...) needs timestamps in the "
                                 "training data")
            t = train.timestamps
            weights = np.exp2(-(t.max() - t) / h) if t.size else t
            pop = np.bincount(train.items, weights=weights, minlength=train.n_items)
        self.latest_time_ = float(train.timestamps.max()) \
            if train.timestamps is not None and train.timestamps.size else None
        self.item_popularity_ = pop.astype(np.float32)

    def partial_fit(self, interactions: Interactions) -> MostPopular:
        """Add new interactions to the counts (new users and items extend the id maps).

        With ``recency_half_life`` the old scores decay to the new latest timestamp first, so
        the result equals a refit on all interactions (up to float32 rounding).
        """
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError("partial_fit expects Interactions")
        self.user_map_, _ = self.user_map_.grow(interactions.user_map.raw)
        self.n_users_ = len(self.user_map_)
        self.item_map_, new_items = self.item_map_.grow(interactions.item_map.raw)
        self.n_items_ = len(self.item_map_)
        items = new_items[interactions.items]
        pop = np.zeros(self.n_items_)
        pop[:self.item_popularity_.size] = self.item_popularity_
        if self.recency_half_life is None:
            pop += np.bincount(items, minlength=self.n_items_)
        else:
            t = interactions.timestamps
            if t is None:
                raise ValueError("MostPopular(recency_half_life=...) needs timestamps in the "
                                 "new interactions")
            if t.size:
                h = float(self.recency_half_life)
                latest = max(float(t.max()), self.latest_time_ if self.latest_time_ is not None
                             else float(t.max()))
                if self.latest_time_ is not None:
                    pop *= np.exp2(-(latest - self.latest_time_) / h)
                pop += np.bincount(items, weights=np.exp2(-(latest - t) / h), minlength=self.n_items_)
                self.latest_time_ = latest
        self.item_popularity_ = pop.astype(np.float32)
        return self

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        return np.broadcast_to(self.item_popularity_, (users.size, self.n_items_))


@register("RandomRanker")
class RandomRanker(Recommender):
    """A uniformly random ranking of the unseen items for each user.

    Each (user, item) pair gets a uniform score that is a fixed function of the seed, so a
    user's list is reproducible, differs between users, and is an unbiased random permutation.

    Parameters
    ----------
    random_state : int, Generator or None, default 0
        ``None`` draws a fresh seed at fit time.
    """

    capabilities = frozenset({RANKING})
    state = ("seed_",)

    def __init__(self, random_state=0):
        self.random_state = random_state

    def _fit(self, train, **_) -> None:
        self.seed_ = _resolve_seed(self.random_state)

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        items = np.arange(self.n_items_, dtype=np.int64)
        u = np.repeat(np.asarray(users, dtype=np.int64), self.n_items_)
        i = np.tile(items, len(users))
        return _pair_uniform(self.seed_, u, i).astype(np.float32).reshape(len(users), self.n_items_)
