r"""Non-negative matrix factorization by multiplicative updates (Luo et al. 2014).

Luo, Zhou, Xia & Zhu, "An efficient non-negative matrix-factorization-based approach to
collaborative filtering for recommender systems", IEEE Trans. Industrial Informatics 10(2),
2014 — regularised single-element multiplicative updates on the observed entries only, as
Surprise 1.1.5's ``NMF`` defines them (same hyperparameters and defaults).

The prediction is :math:`\hat r_{ui} = q_i^\top p_u` (``biased=True``:
:math:`\mu + b_u + b_i + q_i^\top p_u`) with :math:`p_u, q_i \ge 0`. One epoch computes, with
the factors of the previous epoch,

.. math::
    p_{uf} &\leftarrow p_{uf} \cdot \frac{\sum_{i \in I_u} q_{if} r_{ui}}
             {\sum_{i \in I_u} q_{if} \hat r_{ui} + \lambda_u |I_u| p_{uf}} \\
    q_{if} &\leftarrow q_{if} \cdot \frac{\sum_{u \in U_i} p_{uf} r_{ui}}
             {\sum_{u \in U_i} p_{uf} \hat r_{ui} + \lambda_i |U_i| q_{if}}

(the item update uses the user factors of the previous epoch too). A ratio of non-negative sums
keeps a non-negative factor non-negative, provided the ratings are non-negative; a factor whose
denominator is not positive (possible only with biases driving :math:`\hat r` below zero) is
left unchanged rather than flipped. In the biased variant the biases follow SGD during the
same pass over the ratings, exactly as in SVD (Koren, Bell & Volinsky 2009):

.. math:: e_{ui} = r_{ui} - \hat r_{ui}, \quad
          b_u \leftarrow b_u + \gamma_u (e_{ui} - \lambda_{b_u} b_u), \quad
          b_i \leftarrow b_i + \gamma_i (e_{ui} - \lambda_{b_i} b_i)

with :math:`\hat r_{ui}` taken before the bias step (and used as such in the sums above). The
pass visits the ratings user by user (items in index order); since :math:`p_u` enters only its
own user's terms, it is updated right after its user's ratings, which equals the deferred
update. Everything runs compiled: one fused pass per epoch with biases; without them, three
simple passes (estimates, item sums, user sums), which vectorise better.

Fold-in of an unknown row: the same epochs on the row's factors (and its bias, by the same SGD)
with the item side fixed, starting from the mean of the fitted user factors — ``n_epochs``
multiplicative updates, so the folded-in factors are non-negative as well.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from ...interrupt import compiled
from ..base import check_random_state, register
from .base import FactorModel, padded_width


@njit(cache=True)
def _nmf_epochs(indptr, indices, data, pu, qi, bu, bi, item_counts, mu, n_epochs, biased,
                reg_pu, reg_qi, reg_bu, reg_bi, lr_bu, lr_bi, update_items):  # pragma: no cover
    """``n_epochs`` multiplicative epochs in place (see the module docstring).

    ``indptr, indices, data``: the user-major CSR of the ratings (float64 values). With
    ``update_items`` false, ``qi`` and ``bi`` stay fixed (fold-in)."""
    n_users, k = pu.shape
    n_items = qi.shape[0]
    user_num = np.zeros(k)
    user_den = np.zeros(k)
    item_num = np.zeros((n_items, k))
    item_den = np.zeros((n_items, k))
    for _ in range(n_epochs):
        item_num[:, :] = 0.0
        item_den[:, :] = 0.0
        for u in range(n_users):
            s, e = indptr[u], indptr[u + 1]
            if s == e:
                continue
            user_num[:] = 0.0
            user_den[:] = 0.0
            for idx in range(s, e):
                i = indices[idx]
                r = data[idx]
                dot = 0.0
                for f in range(k):
                    dot += qi[i, f] * pu[u, f]
                est = dot
                if biased:
                    est += mu + bu[u] + bi[i]
                    err = r - est
                    bu[u] += lr_bu * (err - reg_bu * bu[u])
                    if update_items:
                        bi[i] += lr_bi * (err - reg_bi * bi[i])
                for f in range(k):
                    q = qi[i, f]
                    p = pu[u, f]
                    user_num[f] += q * r
                    user_den[f] += q * est
                    item_num[i, f] += p * r
                    item_den[i, f] += p * est
            n = e - s
            for f in range(k):
                if pu[u, f] != 0.0:
                    den = user_den[f] + n * reg_pu * pu[u, f]
                    if den > 0.0:
                        pu[u, f] *= user_num[f] / den
        if update_items:
            for i in range(n_items):
                for f in range(k):
                    if qi[i, f] != 0.0:
                        den = item_den[i, f] + item_counts[i] * reg_qi * qi[i, f]
                        if den > 0.0:
                            qi[i, f] *= item_num[i, f] / den


@njit(cache=True, fastmath=True, error_model="numpy")
def _nmf_epochs_unbiased(indptr, indices, data, item_ptr, item_users, item_pos, pu, qi, n_epochs,
                         reg_pu, reg_qi, user_counts, item_counts):  # pragma: no cover
    """``n_epochs`` multiplicative epochs of the unbiased model in place, in three simple passes
    per epoch (faster than the fused pass of :func:`_nmf_epochs`, same updates): the estimates,
    then the item factors from the item-major view (``item_ptr``, ``item_users``, ``item_pos`` =
    position of each entry in the user-major arrays) into a buffer, then the user factors with
    the previous item factors. Each pass is independent across its rows; a threaded version
    (``prange``) was no faster on this machine's two cores, so this one stays single-threaded.

    Generic over the float type: ``data``, the factors, the regularisations and the counts
    (``user_counts``, ``item_counts``: :math:`|I_u|`, :math:`|U_i|`) come in one dtype and all
    arithmetic stays in it. Zero factor columns stay zero (a zero factor is never updated),
    so the caller may pad the factor width to a whole SIMD register."""
    n_users, k = pu.shape
    n_items = qi.shape[0]
    est = np.empty(data.size, pu.dtype)
    q_next = np.empty_like(qi)
    num = np.zeros(k, pu.dtype)
    den = np.zeros(k, pu.dtype)
    zero = num[0]
    for _ in range(n_epochs):
        for u in range(n_users):
            for idx in range(indptr[u], indptr[u + 1]):
                i = indices[idx]
                dot = zero
                for f in range(k):
                    dot += qi[i, f] * pu[u, f]
                est[idx] = dot
        for i in range(n_items):
            num[:] = zero
            den[:] = zero
            for j in range(item_ptr[i], item_ptr[i + 1]):
                u = item_users[j]
                r = data[item_pos[j]]
                e = est[item_pos[j]]
                for f in range(k):
                    num[f] += pu[u, f] * r
                    den[f] += pu[u, f] * e
            n = item_counts[i]
            for f in range(k):
                q = qi[i, f]
                q_next[i, f] = q
                if q != zero:
                    d = den[f] + n * reg_qi * q
                    if d > zero:
                        q_next[i, f] = q * (num[f] / d)
        for u in range(n_users):
            num[:] = zero
            den[:] = zero
            for idx in range(indptr[u], indptr[u + 1]):
                i = indices[idx]
                r = data[idx]
                e = est[idx]
                for f in range(k):
                    num[f] += qi[i, f] * r
                    den[f] += qi[i, f] * e
            n = user_counts[u]
            for f in range(k):
                p = pu[u, f]
                if p != zero:
                    d = den[f] + n * reg_pu * p
                    if d > zero:
                        pu[u, f] = p * (num[f] / d)
        qi[:, :] = q_next


def _csr64(matrix: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(matrix, dtype=np.float64)
    m.sort_indices()
    return m


@register("NMF")
class NMF(FactorModel):
    """Non-negative matrix factorization (Luo et al. 2014) — see the module docstring.

    Parameters (names and defaults as in Surprise 1.1.5)
    ----------
    n_factors, n_epochs : int
        Rank and number of multiplicative epochs (also the fold-in's).
    biased : bool
        Add :math:`\\mu + b_u + b_i`, the biases learnt by SGD (default False).
    reg_pu, reg_qi : float
        :math:`\\lambda_u`, :math:`\\lambda_i` of the factor updates.
    reg_bu, reg_bi, lr_bu, lr_bi : float
        Regularisation and learning rates of the biases (``biased=True`` only).
    init_low, init_high : float
        Factors start uniform in ``[init_low, init_high)``; ``init_low`` must be >= 0.
    random_state : int | None, default 0
        Seed of the initial factors (``np.random.default_rng``).
    dtype : {"float32", "float64"}
        Float type of the unbiased model's multiplicative updates ("float32": with the factor
        width padded to a whole 64-byte register by zero columns, which stay zero, about 1.6x
        faster; results move by rounding only). ``"float64"`` reproduces Surprise's ``NMF`` to
        rounding. The biased model (SGD biases in the same pass) always runs in float64. The
        fitted arrays are float64 either way.
    """

    def __init__(self, n_factors: int = 15, n_epochs: int = 50, biased: bool = False,
                 reg_pu: float = 0.06, reg_qi: float = 0.06, reg_bu: float = 0.02,
                 reg_bi: float = 0.02, lr_bu: float = 0.005, lr_bi: float = 0.005,
                 init_low: float = 0.0, init_high: float = 1.0, random_state=0,
                 dtype: str = "float32"):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.reg_pu = reg_pu
        self.reg_qi = reg_qi
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.init_low = init_low
        self.init_high = init_high
        self.random_state = random_state
        self.dtype = dtype

    def _check_params(self) -> None:
        self.check_count("n_factors")
        self.check_count("n_epochs", minimum=0)
        if self.init_low < 0:
            raise ValueError(f"NMF: init_low must be >= 0 (non-negative factors), "
                             f"got {self.init_low!r}")
        if self.init_high < self.init_low:
            raise ValueError(f"NMF: init_high ({self.init_high!r}) is below init_low "
                             f"({self.init_low!r})")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"NMF: dtype must be 'float32' or 'float64', got {self.dtype!r}")

    def initial_factors(self, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        """The starting factors: user then item factors drawn uniform in
        ``[init_low, init_high)`` from ``np.random.default_rng(random_state)``."""
        rng = check_random_state(self.random_state)
        k = int(self.n_factors)
        pu = rng.uniform(self.init_low, self.init_high, size=(n_users, k))
        qi = rng.uniform(self.init_low, self.init_high, size=(n_items, k))
        return pu, qi

    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self._check_params()
        r = _csr64(train.csr)
        if r.nnz and r.data.min() < 0:
            raise ValueError("NMF: ratings must be non-negative for multiplicative updates "
                             f"(field 'rating': minimum {r.data.min()!r})")
        pu, qi = self.initial_factors(train.n_users, train.n_items)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        mu = float(r.data.mean()) if r.nnz else 0.0
        counts = np.bincount(r.indices, minlength=train.n_items).astype(np.float64)
        if self.biased:
            with compiled():  # a Ctrl-C is raised after the kernel, not inside its boxing
                _nmf_epochs(r.indptr, r.indices, r.data, pu, qi, bu, bi, counts, mu,
                            int(self.n_epochs), True, float(self.reg_pu), float(self.reg_qi),
                            float(self.reg_bu), float(self.reg_bi), float(self.lr_bu),
                            float(self.lr_bi), True)
        else:
            # no sequential bias steps: estimates, item and user sums in separate passes
            item_pos = np.argsort(r.indices, kind="stable").astype(np.int64)
            item_users = np.repeat(np.arange(train.n_users, dtype=np.int32),
                                   np.diff(r.indptr))[item_pos]
            item_ptr = np.concatenate([[0], np.cumsum(counts.astype(np.int64))])
            ftype = np.dtype(self.dtype).type
            k = pu.shape[1]
            width = padded_width(k, ftype)
            pu_w = np.zeros((pu.shape[0], width), ftype)
            qi_w = np.zeros((qi.shape[0], width), ftype)
            pu_w[:, :k], qi_w[:, :k] = pu, qi
            with compiled():
                _nmf_epochs_unbiased(r.indptr, r.indices, r.data.astype(ftype), item_ptr,
                                     item_users, item_pos, pu_w, qi_w, int(self.n_epochs),
                                     ftype(self.reg_pu), ftype(self.reg_qi),
                                     np.diff(r.indptr).astype(ftype), counts.astype(ftype))
            pu = pu_w[:, :k].astype(np.float64)
            qi = qi_w[:, :k].astype(np.float64)
        self.mu_ = mu
        self.user_bias_ = bu
        self.item_bias_ = bi
        self.user_factors_ = pu
        self.item_factors_ = qi

    def fold_in_start(self) -> np.ndarray:
        """Starting factors of a folded-in row: the mean of the fitted user factors."""
        if self.user_factors_.shape[0] == 0:
            return np.full(self.item_factors_.shape[1], 0.5 * (self.init_low + self.init_high))
        return self.user_factors_.mean(axis=0)

    def fold_in(self, history: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Factors and biases of unknown rows: ``n_epochs`` multiplicative updates of the row's
        factors (and SGD steps of its bias) with item factors and biases fixed."""
        h = _csr64(history)
        if h.nnz and h.data.min() < 0:
            raise ValueError("NMF: history ratings must be non-negative "
                             f"(minimum {h.data.min()!r})")
        pu = np.tile(self.fold_in_start(), (h.shape[0], 1))
        bu = np.zeros(h.shape[0])
        bi = self.item_bias_.copy()
        counts = np.zeros(self.item_factors_.shape[0])
        with compiled():
            _nmf_epochs(h.indptr, h.indices, h.data, pu, self.item_factors_, bu, bi, counts,
                        float(self.mu_), int(self.n_epochs), bool(self.biased),
                        float(self.reg_pu), float(self.reg_qi), float(self.reg_bu),
                        float(self.reg_bi), float(self.lr_bu), float(self.lr_bi), False)
        empty = np.diff(h.indptr) == 0
        pu[empty] = 0.0
        return pu, bu
