r"""timeSVD++: SVD++ with time-dependent biases (Koren 2009).

Koren, Y. (2009). "Collaborative filtering with temporal dynamics", KDD, eqs. (6)–(10) and
the SVD++ prediction rule of Koren (2008). A rating of item :math:`i` by user :math:`u` on day
:math:`t` is predicted as

.. math::

    \hat r_{ui}(t) = \mu + b_u + \alpha_u \,\mathrm{dev}_u(t) + b_{u,t}
                     + b_i + b_{i,\mathrm{Bin}(t)}
                     + q_i^\top \Big(p_u + |N(u)|^{-1/2} \sum_{j \in N(u)} y_j\Big)

with

* :math:`b_i + b_{i,\mathrm{Bin}(t)}`: a static item bias plus one per time bin (eq. 6; the
  training period is cut into ``n_bins`` bins of equal length);
* :math:`b_u + \alpha_u \mathrm{dev}_u(t)`: a drifting user bias (eq. 7) with
  :math:`\mathrm{dev}_u(t) = \mathrm{sign}(t - t_u)\,|t - t_u|^\beta`, :math:`t` in days and
  :math:`t_u` the mean day of the user's ratings (eq. 8, :math:`\beta = 0.4`);
* :math:`b_{u,t}`: a day-specific user bias, one per (user, day) with a training rating
  (eq. 9–10);
* the SVD++ term: :math:`N(u)` are the items the user rated in training.

The user factors :math:`p_u` do not drift here (Koren's :math:`p_u(t)` of eq. 13 is not
implemented).

Training (SGD, compiled with Numba, seeded): each epoch visits the users in a random order
(``np.random.default_rng(random_state)``, after the initial factors are drawn) and each user's
ratings in item order. For a user, :math:`z_u = |N(u)|^{-1/2} \sum_{j \in N(u)} y_j` is
computed once; then for each rating, with :math:`e = r - \hat r` (current parameters),

.. math::

    b_u &\mathrel{+}= \gamma_{bu}(e - \lambda_{bu} b_u), \quad
    b_i \mathrel{+}= \gamma_{bi}(e - \lambda_{bi} b_i), \quad
    b_{i,\mathrm{Bin}(t)} \mathrel{+}= \gamma_{bit}(e - \lambda_{bit} b_{i,\mathrm{Bin}(t)}),\\
    \alpha_u &\mathrel{+}= \gamma_\alpha(e\,\mathrm{dev}_u(t) - \lambda_\alpha \alpha_u), \quad
    b_{u,t} \mathrel{+}= \gamma_{but}(e - \lambda_{but} b_{u,t}),\\
    p_u &\mathrel{+}= \gamma_{pu}(e\, q_i - \lambda_{pu} p_u), \quad
    q_i \mathrel{+}= \gamma_{qi}(e\,(p_u + z_u) - \lambda_{qi} q_i)

(the factor updates use the values from before the rating), and the implicit factors get the
gradient accumulated over the user's ratings once, at the end of the user's pass:
:math:`y_j \mathrel{+}= \gamma_{yj}(|N(u)|^{-1/2} \sum_{i} e_{ui} q_i - \lambda_{yj} y_j)` for
:math:`j \in N(u)` (the efficient schedule: one pass over :math:`N(u)` per user instead of
one per rating). With ``time_terms=False`` the three time terms are neither used nor updated
and the model is SVD++ under the same schedule.

Predictions without a time (``predict``, ``recommend``) are made for the user's **latest
training day**: :math:`\mathrm{dev}_u`, :math:`b_{u,t}` and the item-bin bias are those of that
day. :meth:`TimeSVDpp.predict_at` takes explicit timestamps: a day after the training period
uses the last bin, and a day without a training rating of the user has :math:`b_{u,t} = 0`.

Fold-in of an unknown or anonymous row (``FOLD_IN``) has no time terms: with :math:`z` from
the row's items, :math:`p` and :math:`b` solve the regularised least-squares problem of the
base (:func:`~recforge.models.factorization.base.fold_in_least_squares`) on the residuals
:math:`r_i - \mu - b_i - b_{i,\text{last bin}} - q_i^\top z`, and the row is scored with the
last bin's item biases.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from ...interrupt import compiled
from ..base import register
from ..query import FallbackLog, History
from .base import FactorModel, fold_in_least_squares

SECONDS_PER_DAY = 86400.0


def _days(timestamps: np.ndarray) -> np.ndarray:
    """Unix seconds -> whole days (int64)."""
    return np.floor(np.asarray(timestamps, dtype=np.float64) / SECONDS_PER_DAY).astype(np.int64)


def deviation(days: np.ndarray, mean_day: np.ndarray, beta: float) -> np.ndarray:
    r""":math:`\mathrm{dev}_u(t) = \mathrm{sign}(t - t_u)|t - t_u|^\beta` (Koren 2009, eq. 8)."""
    d = np.asarray(days, dtype=np.float64) - np.asarray(mean_day, dtype=np.float64)
    return np.sign(d) * np.abs(d) ** beta


@njit(cache=True)
def _sgd(orders, indptr, items, ratings, bins, devs, user_day, mu, bu, bi, bit, alpha, but, p,
         q, y, lr, reg, time_terms):
    """All epochs of the SGD of the module docstring, in place.

    ``lr`` / ``reg``: (bu, bi, pu, qi, yj, bit, alpha, but)."""
    k = p.shape[1]
    z = np.zeros(k)
    pu_eff = np.zeros(k)
    acc = np.zeros(k)
    for epoch in range(orders.shape[0]):
        for pos in range(orders.shape[1]):
            u = orders[epoch, pos]
            s, e_ = indptr[u], indptr[u + 1]
            if s == e_:
                continue
            nrm = 1.0 / np.sqrt(e_ - s)
            for f in range(k):
                z[f] = 0.0
                acc[f] = 0.0
            for idx in range(s, e_):
                j = items[idx]
                for f in range(k):
                    z[f] += y[j, f]
            for f in range(k):
                z[f] *= nrm
            for idx in range(s, e_):
                i = items[idx]
                b = bins[idx]
                d = user_day[idx]
                dot = 0.0
                for f in range(k):
                    pu_eff[f] = p[u, f] + z[f]
                    dot += q[i, f] * pu_eff[f]
                est = mu + bu[u] + bi[i] + dot
                if time_terms:
                    est += bit[i, b] + alpha[u] * devs[idx] + but[d]
                err = ratings[idx] - est
                bu[u] += lr[0] * (err - reg[0] * bu[u])
                bi[i] += lr[1] * (err - reg[1] * bi[i])
                if time_terms:
                    bit[i, b] += lr[5] * (err - reg[5] * bit[i, b])
                    alpha[u] += lr[6] * (err * devs[idx] - reg[6] * alpha[u])
                    but[d] += lr[7] * (err - reg[7] * but[d])
                for f in range(k):
                    puf = p[u, f]
                    qif = q[i, f]
                    p[u, f] += lr[2] * (err * qif - reg[2] * puf)
                    q[i, f] += lr[3] * (err * pu_eff[f] - reg[3] * qif)
                    acc[f] += err * qif
            for idx in range(s, e_):
                j = items[idx]
                for f in range(k):
                    y[j, f] += lr[4] * (nrm * acc[f] - reg[4] * y[j, f])


@register("timeSVDpp")
class TimeSVDpp(FactorModel):
    """timeSVD++ (Koren 2009) trained by SGD; see the module docstring for the model.

    Parameters
    ----------
    n_factors, n_epochs : int
    init_mean, init_std_dev : float
        Normal initialisation of :math:`p`, :math:`q`, :math:`y` (biases start at zero).
    lr_all, reg_all : float
        Learning rate and regularisation of every parameter without its own value below.
    lr_bu, lr_bi, lr_pu, lr_qi, lr_yj, reg_bu, reg_bi, reg_pu, reg_qi, reg_yj : float, optional
        Per-parameter overrides (names as in Surprise's SVD++).
    lr_bit, reg_bit : float
        Item-bin bias :math:`b_{i,\\mathrm{Bin}(t)}`.
    lr_alpha, reg_alpha : float
        User drift :math:`\\alpha_u` (its gradient is scaled by :math:`\\mathrm{dev}_u(t)`, up
        to ~20 for a few years of data, hence the small rate).
    lr_but, reg_but : float
        Day-specific user bias :math:`b_{u,t}`.
    n_bins : int
        Item-bias time bins over the training period (Koren: 30).
    beta : float
        Exponent of :math:`\\mathrm{dev}_u` (Koren: 0.4).
    time_terms : bool
        False: no time terms (SVD++ under the same schedule).
    random_state : int, optional, default 0
    """

    state = ("implicit_factors_", "item_bin_bias_", "user_alpha_", "user_mean_day_",
             "user_last_day_", "user_day_indptr_", "user_day_days_", "user_day_bias_",
             "user_implicit_", "first_day_", "bin_days_")

    def __init__(self, n_factors: int = 20, n_epochs: int = 20, init_mean: float = 0.0,
                 init_std_dev: float = 0.1, lr_all: float = 0.007, reg_all: float = 0.02,
                 lr_bu: float | None = None, lr_bi: float | None = None,
                 lr_pu: float | None = None, lr_qi: float | None = None,
                 lr_yj: float | None = None, reg_bu: float | None = None,
                 reg_bi: float | None = None, reg_pu: float | None = None,
                 reg_qi: float | None = None, reg_yj: float | None = None,
                 lr_bit: float = 0.005, reg_bit: float = 0.1, lr_alpha: float = 1e-5,
                 reg_alpha: float = 50.0, lr_but: float = 0.005, reg_but: float = 0.005,
                 n_bins: int = 30, beta: float = 0.4, time_terms: bool = True,
                 random_state: int | None = 0):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.lr_bu, self.lr_bi, self.lr_pu, self.lr_qi, self.lr_yj = lr_bu, lr_bi, lr_pu, lr_qi, lr_yj
        self.reg_bu, self.reg_bi, self.reg_pu = reg_bu, reg_bi, reg_pu
        self.reg_qi, self.reg_yj = reg_qi, reg_yj
        self.lr_bit, self.reg_bit = lr_bit, reg_bit
        self.lr_alpha, self.reg_alpha = lr_alpha, reg_alpha
        self.lr_but, self.reg_but = lr_but, reg_but
        self.n_bins = n_bins
        self.beta = beta
        self.time_terms = time_terms
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _rates(self) -> tuple[np.ndarray, np.ndarray]:
        """(learning rates, regularisations) in the kernel's order
        (bu, bi, pu, qi, yj, bit, alpha, but)."""
        parts = ("bu", "bi", "pu", "qi", "yj", "bit", "alpha", "but")
        return (np.array([self.rate(f"lr_{n}") for n in parts]),
                np.array([self.rate(f"reg_{n}") for n in parts]))

    def _check_params(self) -> None:
        self.check_count("n_factors")
        self.check_count("n_epochs", minimum=0)
        self.check_count("n_bins")
        if not np.isfinite(self.beta) or self.beta < 0:
            raise ValueError(f"TimeSVDpp: beta must be a non-negative number, got {self.beta!r}")

    def _bins(self, days: np.ndarray) -> np.ndarray:
        """Bin index of each day (days outside the training period go to the nearest bin)."""
        b = np.floor((np.asarray(days, dtype=np.float64) - self.first_day_) / self.bin_days_)
        return np.clip(b, 0, int(self.n_bins) - 1).astype(np.int64)

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        if train.timestamps is None:
            raise ValueError(f"TimeSVDpp needs timestamps; the training data "
                             f"({train.name or 'unnamed'}) has none")
        users = np.asarray(train.users, dtype=np.int64)
        items = np.asarray(train.items, dtype=np.int64)
        order = np.lexsort((items, users))  # by user, then item
        users, items = users[order], items[order]
        ratings = np.asarray(train.values, dtype=np.float64)[order]
        days = _days(train.timestamps)[order]
        n_users, n_items, k = train.n_users, train.n_items, int(self.n_factors)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])

        self.mu_ = float(ratings.mean()) if ratings.size else 0.0
        self.first_day_ = float(days.min()) if days.size else 0.0
        span = float(days.max() - days.min() + 1) if days.size else 1.0
        self.bin_days_ = span / int(self.n_bins)
        bins = self._bins(days)
        counts = np.diff(indptr)
        day_sum = np.bincount(users, weights=days.astype(np.float64), minlength=n_users)
        self.user_mean_day_ = np.divide(day_sum, counts, out=np.zeros(n_users), where=counts > 0)
        last = np.full(n_users, np.iinfo(np.int64).min)
        np.maximum.at(last, users, days)
        # a user without training ratings is placed on the last day of the training period
        self.user_last_day_ = np.where(counts > 0, last, days.max() if days.size else 0)\
            .astype(np.int64)
        devs = deviation(days, self.user_mean_day_[users], float(self.beta))
        # one day-specific bias per (user, day) with a rating, ordered by user then day
        keys = np.unique(np.stack([users, days], axis=1), axis=0)
        self.user_day_indptr_ = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys[:, 0], minlength=n_users), out=self.user_day_indptr_[1:])
        self.user_day_days_ = keys[:, 1].astype(np.int64)
        user_day = self._user_day_index(users, days)

        rng = np.random.default_rng(self.random_state)
        m, s = float(self.init_mean), float(self.init_std_dev)
        p = rng.normal(m, s, (n_users, k))
        q = rng.normal(m, s, (n_items, k))
        y = rng.normal(m, s, (n_items, k))
        orders = np.stack([rng.permutation(n_users) for _ in range(int(self.n_epochs))]) \
            if int(self.n_epochs) else np.zeros((0, n_users), dtype=np.int64)
        bu, bi = np.zeros(n_users), np.zeros(n_items)
        bit = np.zeros((n_items, int(self.n_bins)))
        alpha = np.zeros(n_users)
        but = np.zeros(keys.shape[0])
        lr, reg = self._rates()
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            _sgd(orders.astype(np.int64), indptr, items, ratings, bins, devs, user_day,
                 self.mu_, bu, bi, bit, alpha, but, p, q, y, lr, reg, bool(self.time_terms))
        p[counts == 0] = 0.0  # never updated: such users get mu + item biases
        q[np.bincount(items, minlength=n_items) == 0] = 0.0  # likewise for unrated items
        self.user_bias_, self.item_bias_ = bu, bi
        self.user_factors_, self.item_factors_, self.implicit_factors_ = p, q, y
        self.item_bin_bias_, self.user_alpha_, self.user_day_bias_ = bit, alpha, but
        # z_u of the training users (their N(u) is fixed by the training data)
        implicit = sp.csr_matrix((np.ones(items.size), items, indptr), shape=(n_users, n_items))
        norm = np.divide(1.0, np.sqrt(counts), out=np.zeros(n_users), where=counts > 0)
        self.user_implicit_ = np.asarray(implicit @ y) * norm[:, None]

    def _user_day_index(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Index into ``user_day_bias_`` of each (user, day); -1 where the user has no training
        rating that day."""
        users = np.asarray(users, dtype=np.int64)
        off = np.asarray(days, dtype=np.int64) - int(self.first_day_)
        span = int(round(self.bin_days_ * int(self.n_bins)))  # days in the training period
        owner = np.repeat(np.arange(self.user_day_indptr_.size - 1, dtype=np.int64),
                          np.diff(self.user_day_indptr_))
        known = owner * span + (self.user_day_days_ - int(self.first_day_))  # sorted
        query = users * span + off
        pos = np.searchsorted(known, query)
        inside = (off >= 0) & (off < span) & (pos < known.size)
        hit = inside.copy()
        hit[inside] = known[pos[inside]] == query[inside]
        return np.where(hit, pos, -1)

    # ------------------------------------------------------------------ time-dependent parts
    def _user_time_bias(self, users: np.ndarray, days: np.ndarray) -> np.ndarray:
        r""":math:`b_u + \alpha_u \mathrm{dev}_u(t) + b_{u,t}` of known users on ``days`` (the
        time terms only when ``time_terms``)."""
        users = np.asarray(users, dtype=np.int64)
        out = self.user_bias_[users].copy()
        if self.time_terms:
            dev = deviation(days, self.user_mean_day_[users], float(self.beta))
            out += self.user_alpha_[users] * dev
            idx = self._user_day_index(users, days)
            out[idx >= 0] += self.user_day_bias_[idx[idx >= 0]]
        return out

    def _item_time_bias(self, items: np.ndarray | None, bins: np.ndarray) -> np.ndarray:
        """:math:`b_i + b_{i,\\mathrm{Bin}}`: for pairs (``items`` given, same length as
        ``bins``) or for every item per row (``items=None``: shape (len(bins), n_items))."""
        if items is None:
            out = np.broadcast_to(self.item_bias_, (len(bins), self.item_bias_.size)).copy()
            if self.time_terms:
                out += self.item_bin_bias_[:, bins].T
            return out
        out = self.item_bias_[items].copy()
        if self.time_terms:
            out += self.item_bin_bias_[items, bins]
        return out

    def _last_bin(self) -> int:
        return int(self.n_bins) - 1

    # ------------------------------------------------------------------ user side
    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Query vectors :math:`p + z` and biases of unknown rows, without time terms (see the
        module docstring): a least-squares solve on the residuals after :math:`q_i^\\top z`."""
        h = sp.csr_matrix(history, dtype=np.float64)
        h.sort_indices()
        counts = np.diff(h.indptr)
        norm = np.divide(1.0, np.sqrt(counts), out=np.zeros(counts.size), where=counts > 0)
        pattern = sp.csr_matrix((np.ones(h.nnz), h.indices, h.indptr), shape=h.shape)
        z = np.asarray(pattern @ self.implicit_factors_) * norm[:, None]
        rows = np.repeat(np.arange(h.shape[0]), counts)
        shifted = h.copy()
        shifted.data = h.data - np.einsum("ij,ij->i", self.item_factors_[h.indices], z[rows])
        item_bias = self._item_time_bias(None, np.array([self._last_bin()]))[0]
        reg_p, reg_b = self.fold_in_regularisation()
        p, b = fold_in_least_squares(shifted, self.item_factors_, item_bias, self.mu_, reg_p,
                                     reg_b, biased=True)
        return p + z, b

    def known_vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Known users' query vectors :math:`p_u + z_u` and biases on their latest training day;
        unknown rows are folded in by :meth:`fold_in` (no time terms)."""
        return (self.user_factors_[users] + self.user_implicit_[users],
                self._user_time_bias(users, self.user_last_day_[users]))

    def _row_bins(self, users: np.ndarray) -> np.ndarray:
        """Item-bias bin of each query row: the latest training day's for known users, the
        last bin for the others."""
        users = np.asarray(users, dtype=np.int64)
        bins = np.full(users.size, self._last_bin(), dtype=np.int64)
        known = users >= 0
        bins[known] = self._bins(self.user_last_day_[users[known]])
        return bins

    # ------------------------------------------------------------------ scoring
    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        uniq = np.unique(u)
        factors, biases = self.user_vectors(uniq, None)
        rows = np.searchsorted(uniq, u)
        bins = self._row_bins(uniq)[rows]
        dot = np.einsum("ij,ij->i", factors[rows], self.item_factors_[i])
        return self.mu_ + biases[rows] + self._item_time_bias(i, bins) + dot

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        factors, biases = self.user_vectors(users, history)
        scores = factors @ self.item_factors_.T
        scores += (self.mu_ + biases)[:, None] + self._item_time_bias(None, self._row_bins(users))
        return scores.astype(np.float32)

    def predict_at(self, users, items, timestamps, clip: bool = True) -> np.ndarray:
        """Ratings of (user, item) pairs at given Unix times (raw ids, three equal-length
        arrays): the full time model on each pair's day. Pairs with an unknown user or item get
        the training mean."""
        self._check_fitted()
        u = self.user_map_.to_inner(np.atleast_1d(users), missing="mask").astype(np.int64)
        i = self.item_map_.to_inner(np.atleast_1d(items), missing="mask").astype(np.int64)
        t = np.atleast_1d(np.asarray(timestamps, dtype=np.float64))
        if not (u.shape == i.shape == t.shape):
            raise ValueError("users, items and timestamps must have the same length")
        if not np.isfinite(t).all():
            raise ValueError("timestamps must be finite")
        out = np.full(u.shape, self.global_mean_, dtype=np.float64)
        ok = (u >= 0) & (i >= 0)
        if ok.any():
            uu, ii = u[ok], i[ok]
            days = _days(t[ok])
            vec = self.user_factors_[uu] + self.user_implicit_[uu]
            out[ok] = (self.mu_ + self._user_time_bias(uu, days)
                       + self._item_time_bias(ii, self._bins(days))
                       + np.einsum("ij,ij->i", vec, self.item_factors_[ii]))
        if clip and self.rating_scale_ is not None:
            np.clip(out, self.rating_scale_[0], self.rating_scale_[1], out=out)
        return out

    # ------------------------------------------------------------------ vectors
    def item_vectors(self) -> np.ndarray:
        """:math:`[q_i, b_i, 1, b_{i,1}, \\dots, b_{i,n_\\text{bins}}]` per item (float32)."""
        n = self.item_factors_.shape[0]
        bins = self.item_bin_bias_ if self.time_terms else np.zeros_like(self.item_bin_bias_)
        return np.hstack([self.item_factors_, self.item_bias_[:, None], np.ones((n, 1)),
                          bins]).astype(np.float32)

    def query_vectors(self, users: np.ndarray, history: History | None = None) -> np.ndarray:
        """:math:`[p_u + z_u, 1, \\mu + b_u(t), \\mathrm{onehot}(\\mathrm{Bin}(t))]` per query
        row (float32), :math:`t` the row's latest training day (the last bin for folded-in
        rows): the dot product with :meth:`item_vectors` is the score."""
        users = np.asarray(users, dtype=np.int64)
        factors, biases = self.user_vectors(users, history)
        onehot = np.zeros((users.size, int(self.n_bins)))
        onehot[np.arange(users.size), self._row_bins(users)] = 1.0
        return np.hstack([factors, np.ones((users.size, 1)), (self.mu_ + biases)[:, None],
                          onehot]).astype(np.float32)
