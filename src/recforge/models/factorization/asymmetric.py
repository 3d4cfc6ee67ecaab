r"""NSVD1 / asymmetric SVD: users represented only through the items they rated (Paterek 2007).

Paterek, "Improving regularized singular value decomposition for collaborative filtering",
KDD Cup and Workshop 2007, section 3.7 (NSVD1, after Paterek's reading of NSVD). A user has no
free factors; the user vector is a normalised sum of *implicit* item factors :math:`x_j` over
the items :math:`R(u)` the user rated:

.. math:: p_u = |R(u)|^{-1/2} \sum_{j \in R(u)} x_j, \qquad
          \hat r_{ui} = \mu + b_u + b_i + q_i^\top p_u

(``biased=False``: :math:`\hat r_{ui} = q_i^\top p_u`). Training is SGD on the squared error
with L2 regularisation, user by user in a freshly shuffled order each epoch (the schedule
Koren 2008, "Factorization meets the neighborhood", section 4, uses for the sums over
:math:`R(u)`): :math:`p_u` is formed once at the start of the user's ratings, then for each
rating :math:`(u, i)` in turn, with :math:`e_{ui} = r_{ui} - \hat r_{ui}`,

.. math::
    b_u &\leftarrow b_u + \gamma_{b_u} (e_{ui} - \lambda_{b_u} b_u), \quad
    b_i \leftarrow b_i + \gamma_{b_i} (e_{ui} - \lambda_{b_i} b_i), \\
    g &\leftarrow g + e_{ui}\, q_i, \quad
    q_i \leftarrow q_i + \gamma_q (e_{ui}\, p_u - \lambda_q q_i)

(:math:`g` accumulated with :math:`q_i` before its step), and after the user's last rating
every :math:`j \in R(u)` takes the accumulated gradient step

.. math:: x_j \leftarrow x_j + \gamma_x (|R(u)|^{-1/2} g - \lambda_x x_j).

After the last epoch each user bias is set to its exact minimiser with everything else fixed,
:math:`b_u = \sum_{i \in R(u)} (r_{ui} - \mu - b_i - q_i^\top p_u) / (|R(u)| (1 + \lambda_{b_u}))`
(the objective's per-rating regularisation summed over the user's ratings), so that the whole
user side is a function of the history alone.

Fold-in needs no solve: any row — a known user with a history, an unknown or anonymous one —
gets :math:`p_u` from the formula above and :math:`b_u` from the same closed form, which is
exactly what a training user gets from its training ratings. A known user queried without a
history uses the fitted vector (that same projection of its training ratings).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from ...interrupt import compiled
from ..base import check_random_state, register
from .base import FactorModel


@njit(cache=True)
def _nsvd1_epochs(indptr, indices, data, orders, qi, xj, bu, bi, mu, biased,
                  lr_bu, lr_bi, lr_qi, lr_xj, reg_bu, reg_bi, reg_qi, reg_xj):  # pragma: no cover
    """One SGD epoch per row of ``orders`` (a permutation of the users each), in place."""
    k = qi.shape[1]
    p = np.empty(k)
    g = np.empty(k)
    for epoch in range(orders.shape[0]):
        for t in range(orders.shape[1]):
            u = orders[epoch, t]
            s, e = indptr[u], indptr[u + 1]
            if s == e:
                continue
            norm = 1.0 / np.sqrt(e - s)
            p[:] = 0.0
            for idx in range(s, e):
                j = indices[idx]
                for f in range(k):
                    p[f] += xj[j, f]
            for f in range(k):
                p[f] *= norm
            g[:] = 0.0
            for idx in range(s, e):
                i = indices[idx]
                est = 0.0
                for f in range(k):
                    est += qi[i, f] * p[f]
                if biased:
                    est += mu + bu[u] + bi[i]
                err = data[idx] - est
                if biased:
                    bu[u] += lr_bu * (err - reg_bu * bu[u])
                    bi[i] += lr_bi * (err - reg_bi * bi[i])
                for f in range(k):
                    q = qi[i, f]
                    g[f] += err * q
                    qi[i, f] = q + lr_qi * (err * p[f] - reg_qi * q)
            for idx in range(s, e):
                j = indices[idx]
                for f in range(k):
                    xj[j, f] += lr_xj * (norm * g[f] - reg_xj * xj[j, f])


def project_history(history: sp.csr_matrix, implicit_factors: np.ndarray) -> np.ndarray:
    """:math:`|R(u)|^{-1/2} \\sum_{j \\in R(u)} x_j` for each row of ``history`` (the items
    with a stored entry; values are ignored); rows without items get zeros."""
    h = sp.csr_matrix(history)
    indicator = sp.csr_matrix((np.ones(h.indices.size), h.indices, h.indptr), shape=h.shape)
    counts = np.diff(h.indptr)
    norm = np.divide(1.0, np.sqrt(counts), out=np.zeros(counts.size), where=counts > 0)
    return np.asarray(indicator @ implicit_factors) * norm[:, None]


def user_bias_minimiser(history: sp.csr_matrix, factors: np.ndarray, item_factors: np.ndarray,
                        item_bias: np.ndarray, mu: float, reg_bu: float) -> np.ndarray:
    """The exact minimiser of each row's bias with everything else fixed:
    :math:`\\sum_i (r_i - \\mu - b_i - q_i^\\top p) / (|R| (1 + \\lambda_{b_u}))`; 0 for
    empty rows."""
    h = sp.csr_matrix(history, dtype=np.float64)
    rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
    resid = (h.data - mu - item_bias[h.indices]
             - np.einsum("ij,ij->i", item_factors[h.indices], factors[rows]))
    sums = np.bincount(rows, weights=resid, minlength=h.shape[0])
    counts = np.diff(h.indptr)
    return np.divide(sums, counts * (1.0 + reg_bu), out=np.zeros(h.shape[0]), where=counts > 0)


@register("NSVD1")
class NSVD1(FactorModel):
    """NSVD1 / asymmetric SVD (Paterek 2007) — see the module docstring.

    Parameters
    ----------
    n_factors, n_epochs : int
        Rank and number of SGD epochs.
    biased : bool
        Add :math:`\\mu + b_u + b_i` (default True).
    lr_all, reg_all : float
        Learning rate and regularisation of every parameter, unless overridden by
        ``lr_bu, lr_bi, lr_qi, lr_xj`` / ``reg_bu, reg_bi, reg_qi, reg_xj``.
    init_mean, init_std_dev : float
        Normal initialisation of :math:`q_i` and :math:`x_j` (biases start at 0).
    random_state : int | None, default 0
        Seed of the initial factors and of the user order of each epoch.
    """

    state = ("item_implicit_factors_",)
    projects_history = True  # the user side is a projection of the rated items

    def __init__(self, n_factors: int = 50, n_epochs: int = 20, biased: bool = True,
                 init_mean: float = 0.0, init_std_dev: float = 0.1, lr_all: float = 0.005,
                 reg_all: float = 0.02, lr_bu: float | None = None, lr_bi: float | None = None,
                 lr_qi: float | None = None, lr_xj: float | None = None,
                 reg_bu: float | None = None, reg_bi: float | None = None,
                 reg_qi: float | None = None, reg_xj: float | None = None, random_state=0):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.lr_qi = lr_qi
        self.lr_xj = lr_xj
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.reg_qi = reg_qi
        self.reg_xj = reg_xj
        self.random_state = random_state

    def initial_state(self, n_users: int, n_items: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, x, orders)``: item and implicit factors drawn normal from
        ``np.random.default_rng(random_state)`` (in that order), then the user order of each
        epoch (one permutation per epoch)."""
        rng = check_random_state(self.random_state)
        k = int(self.n_factors)
        qi = rng.normal(self.init_mean, self.init_std_dev, size=(n_items, k))
        xj = rng.normal(self.init_mean, self.init_std_dev, size=(n_items, k))
        orders = np.empty((int(self.n_epochs), n_users), dtype=np.int64)
        for epoch in range(int(self.n_epochs)):
            orders[epoch] = rng.permutation(n_users)
        return qi, xj, orders

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        if int(self.n_factors) < 1:
            raise ValueError(f"NSVD1: n_factors must be >= 1, got {self.n_factors!r}")
        if int(self.n_epochs) < 0:
            raise ValueError(f"NSVD1: n_epochs must be >= 0, got {self.n_epochs!r}")
        r = sp.csr_matrix(train.csr, dtype=np.float64)
        mu = float(r.data.mean()) if r.nnz else 0.0
        qi, xj, orders = self.initial_state(train.n_users, train.n_items)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            _nsvd1_epochs(r.indptr, r.indices, r.data, orders, qi, xj, bu, bi, mu,
                          bool(self.biased), self.rate("lr_bu"), self.rate("lr_bi"),
                          self.rate("lr_qi"), self.rate("lr_xj"), self.rate("reg_bu"),
                          self.rate("reg_bi"), self.rate("reg_qi"), self.rate("reg_xj"))
        self.mu_ = mu
        self.item_bias_ = bi
        self.item_factors_ = qi
        self.item_implicit_factors_ = xj
        self.user_factors_, self.user_bias_ = self.fold_in(r)

    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Query vectors and biases of history rows: the projection of the rated items and the
        closed-form bias (see the module docstring) — no iterative solve."""
        factors = project_history(history, self.item_implicit_factors_)
        if not self.biased:
            return factors, np.zeros(factors.shape[0])
        return factors, user_bias_minimiser(history, factors, self.item_factors_,
                                            self.item_bias_, self.mu_, self.rate("reg_bu"))

