r"""SVD (biased matrix factorization) and PMF, trained by stochastic gradient descent.

**SVD** — Funk's "SVD" in the biased form of Koren, Bell & Volinsky (2009), *Matrix
factorization techniques for recommender systems*, IEEE Computer 42(8), eq. 4–5:

.. math:: \hat r_{ui} = \mu + b_u + b_i + q_i^\top p_u

fitted by minimising

.. math:: \sum_{r_{ui} \in R} \bigl(r_{ui} - \hat r_{ui}\bigr)^2
          + \lambda \bigl(b_u^2 + b_i^2 + \lVert p_u \rVert^2 + \lVert q_i \rVert^2\bigr)

with SGD. For every training rating in turn, with :math:`e_{ui} = r_{ui} - \hat r_{ui}`:

.. math::
   b_u &\leftarrow b_u + \gamma_{bu} (e_{ui} - \lambda_{bu} b_u) \\
   b_i &\leftarrow b_i + \gamma_{bi} (e_{ui} - \lambda_{bi} b_i) \\
   p_u &\leftarrow p_u + \gamma_{pu} (e_{ui} q_i - \lambda_{pu} p_u) \\
   q_i &\leftarrow q_i + \gamma_{qi} (e_{ui} p_u - \lambda_{qi} q_i)

where :math:`p_u` and :math:`q_i` are updated simultaneously (each step uses the other's value
from before the step) and :math:`e_{ui}` is computed once, before the bias steps. These are
the update rules, defaults and hyperparameter names of Surprise 1.1.5's ``SVD``: factors start
from :math:`\mathcal N(\text{init\_mean}, \text{init\_std\_dev}^2)` (the user matrix drawn
first, then the item matrix), biases from zero, :math:`\mu` is the training mean.

**PMF** — probabilistic matrix factorization (Salakhutdinov & Mnih 2008, *Probabilistic matrix
factorization*, NIPS 20): the same model and updates without :math:`\mu` and the biases,
:math:`\hat r_{ui} = q_i^\top p_u` (Surprise's ``SVD(biased=False)``); the Gaussian priors of
the paper are the :math:`\lambda` terms.

Ratings are visited user by user, each user's items in inner index order, in every epoch
(the order of :class:`~recforge.data.Interactions`). Surprise's ``Trainset.all_ratings()`` visits
users in order of first appearance and each user's ratings in insertion order, so the two orders
coincide when Surprise's trainset is built from our interactions in their stored order (as the
benchmark does); on other inputs the orders differ and so do the results, by SGD noise only.
The whole training runs in one compiled Numba call, on factor rows padded to whole 64-byte
cache lines (:func:`~recforge.models.factorization.base.padded_width`; the padding columns have
zero gradient and stay zero) on a 64-byte-aligned base, so that no SIMD access of a row straddles
two cache lines; the fitted arrays keep the first ``n_factors`` columns.

Unknown or anonymous query rows are folded in by the base's regularised least squares
(:func:`~recforge.models.factorization.base.fold_in_least_squares`), item side fixed, with

.. math:: \lambda_p = \lambda_{pu} + \frac{1}{\gamma_{pu} T}, \qquad
          \lambda_b = \lambda_{bu} + \frac{1}{\gamma_{bu} T}

(:math:`T` = ``n_epochs``). The second term is the ridge penalty equivalent to what training
does to a user's parameters: :math:`T` passes of gradient descent with step :math:`\gamma`
from (near) zero on :math:`\tfrac12 \sum (r_{ui} - \hat r_{ui})^2` shrink each eigendirection
of curvature :math:`\sigma` by :math:`1 - (1 - \gamma\sigma)^T \approx \sigma / (\sigma +
1/(\gamma T))` — early stopping acts as ridge regularisation (Yao, Rosasco & Caponnetto 2007,
*On early stopping in gradient descent learning*, Constructive Approximation 26). With the
defaults (:math:`\gamma = 0.005`, :math:`T = 20`) it is 10, against :math:`\lambda_{pu} =
0.02`: solved with the SGD's own 0.02 alone, a user with fewer ratings than factors is fitted
almost exactly and predicted far worse than trained users (test RMSE 1.31 against 0.935 on
ML-100K); with the equivalent ridge the folded-in users are as accurate as trained ones (see
``docs/models-factorization.md``). Without learning (``n_epochs = 0`` or a zero rate) the folded-in
factors / bias stay (numerically) zero, as SGD from zero would leave them.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ...interrupt import compiled
from ..base import register
from .base import FactorModel, aligned_zeros, padded_width

#: Fold-in penalty of a parameter that training does not move (zero rate or no epochs).
NO_LEARNING = 1e12


# ---------------------------------------------------------------------------------------
# The fused SGD step as explicit SIMD (a Numba intrinsic). It lives in this file so that
# Numba's on-disk cache of _sgd_epochs, keyed on this file, is rebuilt when it changes.
#
# One SGD step on a (user, item) pair updates two factor rows and, for the next rating of the
# same user, needs the dot product of the updated user row with the next item row:
# p' = keep_p p + step_p q,  q' = keep_q q + step_q p,  d = r . p'.
# Written as a Numba loop over the factors, LLVM vectorises it but cannot know that the three
# rows never overlap (two are rows of the same item matrix), so every step first runs runtime
# overlap checks between the three row ranges, with their bounds spilled to the stack. Here the
# loop is emitted directly as vector instructions (8 float32 or 4 float64 lanes, two blocks per
# iteration into two dot-product accumulators, a halving-tree sum at the end), which states what
# the caller guarantees: the rows are distinct (a user's items are distinct; p is in the user
# matrix) and the row width is a multiple of two vector blocks (padded_width). The arithmetic
# carries the kernel's fast-math flags (reassoc contract nsz arcp), so the results agree with
# the plain loop to float rounding (on ML-100K they came out bit-identical).

_FLAGS = ("reassoc", "contract", "nsz", "arcp")


def lanes(dtype) -> int:
    """Vector lanes of :func:`fused_step` for a NumPy float dtype (one 256-bit register)."""
    return 32 // np.dtype(dtype).itemsize


def _splat(builder, x, vt):
    undef = ir.Constant(vt, ir.Undefined)
    v = builder.insert_element(undef, x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count)
    return builder.shuffle_vector(v, undef, mask)


@intrinsic
def fused_step(typingctx, pu, qi, u, i, n, keep_p, step_p, keep_q, step_q, want_dot):
    """``p = pu[u], q = qi[i], r = qi[n]``: in place ``p <- keep_p p + step_p q`` and
    ``q <- keep_q q + step_q p`` (the old ``p``); returns ``r . p`` (the new ``p``), or 0 when
    ``want_dot`` is false (then ``r`` is not read). Preconditions (the caller's): C-contiguous
    2-D arrays of one float dtype, the three rows distinct, the row width a multiple of
    ``2 * lanes(dtype)``."""
    if not (isinstance(pu, types.Array) and isinstance(qi, types.Array)
            and pu.dtype == qi.dtype and pu.dtype in (types.float32, types.float64)
            and pu.ndim == qi.ndim == 2 and pu.layout == qi.layout == "C"):
        return None
    dtype = pu.dtype
    sig = dtype(pu, qi, u, i, n, keep_p, step_p, keep_q, step_q, want_dot)

    def codegen(context, builder, signature, args):
        pu_v, qi_v, u_v, i_v, n_v, kp, sp, kq, sq, wd = args
        a_p = context.make_array(signature.args[0])(context, builder, pu_v)
        a_q = context.make_array(signature.args[1])(context, builder, qi_v)
        ft = context.get_value_type(dtype)
        width = 8 if dtype == types.float32 else 4
        vt = ir.VectorType(ft, width)
        i64 = ir.IntType(64)
        scalars = [context.cast(builder, x, t, dtype)
                   for x, t in zip((kp, sp, kq, sq), signature.args[5:9], strict=True)]
        wd = context.cast(builder, wd, signature.args[9], types.boolean)

        def row(arr, index, ty):
            index = context.cast(builder, index, ty, types.intp)
            stride = builder.extract_value(arr.strides, 0)
            return builder.add(builder.ptrtoint(arr.data, i64), builder.mul(index, stride))

        p_row = row(a_p, u_v, signature.args[2])
        q_row = row(a_q, i_v, signature.args[3])
        r_row = row(a_q, n_v, signature.args[4])
        vkp, vsp, vkq, vsq = (_splat(builder, x, vt) for x in scalars)
        k = builder.extract_value(a_p.shape, 1)
        vbytes = ir.Constant(i64, width * context.get_abi_sizeof(ft))
        pairs = builder.udiv(k, ir.Constant(i64, 2 * width))
        zero = ir.Constant(vt, [0.0] * width)
        accs = (cgutils.alloca_once_value(builder, zero), cgutils.alloca_once_value(builder, zero))
        ptr = vt.as_pointer()

        def block(off, acc, with_dot):
            pa = builder.inttoptr(builder.add(p_row, off), ptr)
            qa = builder.inttoptr(builder.add(q_row, off), ptr)
            pv = builder.load(pa, align=4)
            qv = builder.load(qa, align=4)
            p_new = builder.fadd(builder.fmul(vkp, pv, flags=_FLAGS),
                                 builder.fmul(vsp, qv, flags=_FLAGS), flags=_FLAGS)
            q_new = builder.fadd(builder.fmul(vkq, qv, flags=_FLAGS),
                                 builder.fmul(vsq, pv, flags=_FLAGS), flags=_FLAGS)
            builder.store(p_new, pa, align=4)
            builder.store(q_new, qa, align=4)
            if with_dot:
                rv = builder.load(builder.inttoptr(builder.add(r_row, off), ptr), align=4)
                builder.store(builder.fadd(builder.load(acc), builder.fmul(rv, p_new, flags=_FLAGS),
                                           flags=_FLAGS), acc)

        def loop(with_dot):  # two blocks per iteration, into two accumulators
            with cgutils.for_range(builder, pairs) as it:
                off = builder.mul(builder.mul(it.index, ir.Constant(i64, 2)), vbytes)
                block(off, accs[0], with_dot)
                block(builder.add(off, vbytes), accs[1], with_dot)

        with builder.if_else(wd, likely=True) as (then, otherwise):
            with then:
                loop(True)
            with otherwise:
                loop(False)
        s = builder.fadd(builder.load(accs[0]), builder.load(accs[1]), flags=_FLAGS)
        n_lanes = width
        while n_lanes > 1:  # halving tree: log2(lanes) dependent adds, not lanes - 1
            half = n_lanes // 2
            undef = ir.Constant(ir.VectorType(ft, n_lanes), ir.Undefined)
            lo = builder.shuffle_vector(s, undef, ir.Constant(
                ir.VectorType(ir.IntType(32), half), list(range(half))))
            hi = builder.shuffle_vector(s, undef, ir.Constant(
                ir.VectorType(ir.IntType(32), half), list(range(half, n_lanes))))
            s = builder.fadd(lo, hi, flags=_FLAGS)
            n_lanes = half
        return builder.extract_element(s, ir.Constant(ir.IntType(32), 0))

    return sig, codegen


@numba.njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"}, error_model="numpy",
            boundscheck=False)
def _sgd_epochs(indptr, items, ratings, mu, bu, bi, pu, qi, lr_bu, lr_bi, lr_pu, lr_qi,
                reg_bu, reg_bi, keep_p, keep_q, biased, n_epochs):  # pragma: no cover
    r"""In-place SGD of (bu, bi, pu, qi) over the ratings in array order, ``n_epochs`` times
    (update rules in the module docstring).

    The ratings come user by user: user ``u``'s items and ratings are
    ``items[indptr[u]:indptr[u + 1]]`` and ``ratings[...]`` (the user-major CSR order of
    :class:`~recforge.data.Interactions`, every user's items distinct). Within a user's block
    :math:`b_u` stays in a register and is written back once at the end of the block.
    ``indptr`` (uint64) and ``items`` (uint32: the stored int32 column indices, viewed) are
    unsigned, so every index derived from them is, and Numba emits no negative-index
    wrap-around code on the per-rating accesses (``ratings[j]``, ``items[j]``, ``bi[i]``,
    ``qi[i]``).

    ``keep_p`` and ``keep_q`` are :math:`1 - \gamma_{pu}\lambda_{pu}` and :math:`1 -
    \gamma_{qi}\lambda_{qi}`: :math:`p + \gamma (e q - \lambda p) = (1 - \gamma\lambda) p +
    (\gamma e) q`, two operations per factor, not three. Generic over the float type: the ratings,
    the parameter arrays and every scalar come in one dtype (float64 or float32) and all
    arithmetic stays in it, so the float32 build puts twice as many factors in a SIMD register
    and never converts inside the loops.

    The next rating of the same user (on another item) gets its dot product
    :math:`q_{i'}^\top p_u` accumulated inside this rating's factor update, from the updated
    :math:`p_u` and the untouched :math:`q_{i'}` — the same value as a separate pass, one pass
    fewer over the factors. That fused step is one explicit-SIMD pass
    (:func:`fused_step`: no runtime overlap checks between
    the three rows, which the caller guarantees distinct); the rows' width must be a multiple of
    two SIMD blocks (``padded_width`` gives it)."""
    for _ in range(n_epochs):
        for u in range(indptr.size - 1):
            _user_block(indptr[u], indptr[u + 1], u, items, ratings, mu, bu, bi, pu, qi, lr_bu,
                        lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, keep_p, keep_q, biased)


@numba.njit(inline="always", fastmath={"reassoc", "contract", "nsz", "arcp"},
            error_model="numpy", boundscheck=False)
def _user_block(s, e, u, items, ratings, mu, bu, bi, pu, qi, lr_bu, lr_bi, lr_pu, lr_qi,
                reg_bu, reg_bi, keep_p, keep_q, biased):  # pragma: no cover
    """The SGD steps of user ``u``'s ratings ``items[s:e]``, ``ratings[s:e]`` in that order."""
    if s == e:
        return
    k = pu.shape[1]
    zero = np.zeros(1, pu.dtype)[0]
    one = np.uint64(1)
    b_u = bu[u]
    first = items[s]
    dot = zero
    for f in range(k):
        dot += qi[first, f] * pu[u, f]
    for j in range(s, e):
        i = items[j]
        if biased:
            err = ratings[j] - (mu + b_u + bi[i] + dot)
            b_u += lr_bu * (err - reg_bu * b_u)
            bi[i] += lr_bi * (err - reg_bi * bi[i])
        else:
            err = ratings[j] - dot
        step_p = lr_pu * err
        step_q = lr_qi * err
        more = j + one < e
        nxt = items[j + one] if more else i
        dot = fused_step(pu, qi, u, i, nxt, keep_p, step_p, keep_q, step_q, more)
    if biased:
        bu[u] = b_u


@numba.njit(cache=True, parallel=True, fastmath={"reassoc", "contract", "nsz", "arcp"},
            error_model="numpy", boundscheck=False)
def _dsgd_epochs(indptr, items, ratings, mu, bu, bi, pu, qi, lr_bu, lr_bi, lr_pu, lr_qi,
                 reg_bu, reg_bi, keep_p, keep_q, biased, n_epochs, block_users,
                 block_ptr):  # pragma: no cover
    r"""Stratified SGD (DSGD; Gemulla, Nijkamp, Haas & Sismanis 2011, *Large-scale matrix
    factorization with distributed stochastic gradient descent*, KDD) on ``T`` threads.

    Users are cut into ``T`` blocks (``block_users[block_ptr[b]:block_ptr[b + 1]]``, ascending)
    and items into ``T`` strata (contiguous ranges, see :func:`count_blocks`); ``indptr[s]`` is the user-major CSR of stratum ``s``'s ratings.
    Each epoch is ``T`` sub-epochs; in sub-epoch ``t`` thread ``b`` runs the steps of user block
    ``b`` on item stratum ``(b + t) mod T``. No two threads then touch the same user row, item
    row or bias, so the blocks run in parallel without locks, and every rating is visited once
    per epoch with the same update rules; the result depends on ``T`` but not on timing."""
    n_blocks = indptr.shape[0]
    for _ in range(n_epochs):
        for t in range(n_blocks):
            for b in numba.prange(n_blocks):
                ptr = indptr[(b + t) % n_blocks]
                for x in range(block_ptr[b], block_ptr[b + 1]):
                    u = block_users[x]
                    _user_block(ptr[u], ptr[u + 1], u, items, ratings, mu, bu, bi, pu, qi,
                                lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, keep_p, keep_q,
                                biased)


def count_blocks(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """Block of each row (0 .. n_blocks - 1): contiguous index ranges holding about equal
    shares of the ratings. Contiguous, so the biases written by different threads lie in
    different cache lines (rows dealt out alternately made the threads share every line of
    ``b_u`` and ``b_i`` and ran slower on two threads than on one)."""
    cum = np.cumsum(np.asarray(counts, dtype=np.float64))
    total = cum[-1] if cum.size else 0.0
    cuts = total * np.arange(1, n_blocks) / n_blocks
    return np.searchsorted(cuts, cum - 0.5 * np.asarray(counts), side="right").astype(np.int64)


def dsgd_layout(indptr: np.ndarray, items: np.ndarray, item_counts: np.ndarray,
                user_counts: np.ndarray, n_blocks: int):
    """The arrays of :func:`_dsgd_epochs` for a user-major CSR (``indptr``, ``items``):
    (order of the ratings, per-stratum indptr (n_blocks, n_users + 1), block users, block ptr).
    Within a stratum each user's ratings keep their CSR order."""
    n_users = indptr.size - 1
    stratum = count_blocks(item_counts, n_blocks)[items]
    order = np.argsort(stratum, kind="stable")  # the CSR is user-major: users stay sorted
    users = np.repeat(np.arange(n_users), np.diff(indptr))
    counts = np.bincount(stratum * n_users + users, minlength=n_blocks * n_users)
    flat = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=flat[1:])
    strata = np.empty((n_blocks, n_users + 1), dtype=np.int64)
    strata[:, :n_users] = flat[:-1].reshape(n_blocks, n_users)
    strata[:, n_users] = flat[n_users::n_users][:n_blocks]
    block = count_blocks(user_counts, n_blocks)
    block_users = np.argsort(block, kind="stable")  # ascending users within each block
    block_ptr = np.zeros(n_blocks + 1, dtype=np.int64)
    np.cumsum(np.bincount(block, minlength=n_blocks), out=block_ptr[1:])
    return order, strata, block_users, block_ptr


@numba.njit(cache=True, fastmath={"reassoc", "contract", "nsz", "arcp"})
def _predict_pairs(u, i, mu, bu, bi, pu, qi, biased):  # pragma: no cover
    r""":math:`\mu + b_u + b_i + q_i^\top p_u` (or :math:`q_i^\top p_u`) per (u, i) pair."""
    out = np.empty(u.size)
    k = pu.shape[1]
    for j in range(u.size):
        dot = 0.0
        for f in range(k):
            dot += pu[u[j], f] * qi[i[j], f]
        out[j] = mu + bu[u[j]] + bi[i[j]] + dot if biased else dot
    return out


def _fill_normal(rng: np.random.Generator, out: np.ndarray, mean: float, std: float,
                 chunk: int = 8192) -> None:
    """Fill ``out`` (rows x k, any float dtype) with the values ``rng.normal(mean, std,
    out.shape)`` returns, cast to ``out``'s dtype: NumPy computes a normal draw as
    ``mean + std * z`` from the standard-normal stream, so drawing ``z`` into a small float64
    buffer (``standard_normal(out=...)``, the same stream in the same order) and scaling it in
    float64 gives the same bits, without a full-size float64 temporary to allocate, fault in
    and convert (the test of ``initial_factors`` checks the equality)."""
    n, k = out.shape
    rows = max(1, chunk // max(k, 1))
    buf = np.empty((min(rows, n), k))
    for s in range(0, n, rows):
        b = buf[:min(rows, n - s)]
        rng.standard_normal(out=b)
        b *= std
        b += mean
        out[s:s + b.shape[0]] = b


def _non_negative(value, name: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return value


@register("SVD")
class SVD(FactorModel):
    r"""Biased matrix factorization by SGD (Koren, Bell & Volinsky 2009), as Surprise's ``SVD``.

    :math:`\hat r_{ui} = \mu + b_u + b_i + q_i^\top p_u`; the update rules are in the module
    docstring. ``biased=False`` drops :math:`\mu, b_u, b_i` (that model is also registered as
    :class:`PMF`).

    Parameters
    ----------
    n_factors : int
        Number of latent factors (100).
    n_epochs : int
        Passes of SGD over the training ratings (20).
    biased : bool
        Use the baselines :math:`\mu + b_u + b_i` (True).
    init_mean, init_std_dev : float
        Mean and standard deviation of the normal initial factors (0, 0.1).
    lr_all, reg_all : float
        Learning rate (0.005) and regularisation (0.02) of every parameter.
    lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi : float, optional
        Per-parameter learning rate / regularisation, overriding ``lr_all`` / ``reg_all``.
        ``reg_pu`` and ``reg_bu`` are also the regularisation of the fold-in solve.
    random_state : int, Generator or None, default 0
        Seeds ``numpy.random.default_rng`` for the initial factors.
    dtype : {"float32", "float64"}
        Float type of the training arithmetic ("float32"; the SGD runs about 1.4x faster and
        the test RMSE moves by SGD noise only). ``"float64"`` reproduces Surprise's ``SVD``
        to rounding, update for update, from the same initial factors. The fitted arrays are
        float64 either way.
    n_threads : int
        SGD threads (1). With 1 the ratings are visited user by user, in Surprise's order. With
        ``n > 1`` the rating matrix is cut into ``n x n`` blocks (users and items each dealt
        into ``n`` groups of similar rating counts) and trained by stratified SGD (DSGD,
        Gemulla et al. 2011): each epoch is ``n`` rounds of ``n`` blocks sharing no user or item,
        run in parallel. The update rules are the same, the order differs; the result is
        deterministic for a given ``n`` (it does not depend on timing), not equal to ``n = 1``'s.

    Attributes
    ----------
    mu_, user_bias_, item_bias_, user_factors_, item_factors_
        :math:`\mu`, :math:`b_u`, :math:`b_i`, :math:`P` (n_users, n_factors),
        :math:`Q` (n_items, n_factors); the biases are zero and ``mu_`` 0 when unbiased.

    Examples
    --------
    >>> from recforge.data import Interactions
    >>> train = Interactions.from_arrays([1, 1, 2, 2], [10, 20, 10, 30], [4.0, 2.0, 5.0, 3.0])
    >>> m = SVD(n_factors=2, n_epochs=5, random_state=0).fit(train)
    >>> m.user_factors_.shape, m.item_factors_.shape
    ((2, 2), (3, 2))
    """

    def __init__(self, n_factors: int = 100, n_epochs: int = 20, biased: bool = True,
                 init_mean: float = 0.0, init_std_dev: float = 0.1, lr_all: float = 0.005,
                 reg_all: float = 0.02, lr_bu: float | None = None, lr_bi: float | None = None,
                 lr_pu: float | None = None, lr_qi: float | None = None,
                 reg_bu: float | None = None, reg_bi: float | None = None,
                 reg_pu: float | None = None, reg_qi: float | None = None, random_state=0,
                 dtype: str = "float32", n_threads: int = 1):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.lr_pu = lr_pu
        self.lr_qi = lr_qi
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.reg_pu = reg_pu
        self.reg_qi = reg_qi
        self.random_state = random_state
        self.dtype = dtype
        self.n_threads = n_threads

    # ------------------------------------------------------------------ hyperparameters
    def rates(self) -> dict[str, float]:
        """The effective learning rates and regularisations: ``{'lr_bu': ..., 'reg_qi': ...}``
        (a per-parameter value where set, else ``lr_all`` / ``reg_all``)."""
        return {f"{kind}_{part}": self.rate(f"{kind}_{part}")
                for kind in ("lr", "reg") for part in ("bu", "bi", "pu", "qi")}

    def fold_in_regularisation(self) -> tuple[float, float]:
        r""":math:`(\lambda_{pu} + 1/(\gamma_{pu} T), \lambda_{bu} + 1/(\gamma_{bu} T))`: the
        SGD's regularisation plus the ridge equivalent of its early stopping (module
        docstring); where that rate or ``n_epochs`` is zero nothing is learnt, and the penalty is
        ``NO_LEARNING`` (1e12: the solve leaves that part numerically zero)."""
        rates = self.rates()
        epochs = float(self.n_epochs)

        def lam(part: str) -> float:
            steps = rates[f"lr_{part}"] * epochs
            return rates[f"reg_{part}"] + 1.0 / steps if steps > 0 else NO_LEARNING

        return lam("pu"), lam("bu")

    def initial_factors(self, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        """The initial (P, Q) (float64): normal(init_mean, init_std_dev), P drawn first, from
        ``numpy.random.default_rng(random_state)``; ``fit`` starts from these values (cast to
        ``dtype``), drawn by :func:`_fill_normal` into its training rows."""
        rng = np.random.default_rng(self.random_state)
        k = int(self.n_factors)
        pu = rng.normal(self.init_mean, self.init_std_dev, size=(n_users, k))
        qi = rng.normal(self.init_mean, self.init_std_dev, size=(n_items, k))
        return pu, qi

    # ------------------------------------------------------------------ fitting
    def _fit(self, train, *, item_features=None, validation=None) -> None:
        self.check_count("n_factors")
        self.check_count("n_epochs", minimum=0)
        self.check_count("n_threads")
        _non_negative(self.init_std_dev, "init_std_dev")
        if not np.isfinite(float(self.init_mean)):
            raise ValueError(f"init_mean must be finite, got {self.init_mean!r}")
        rates = self.rates()
        if not train.is_explicit:
            raise ValueError(f"{type(self).__name__} needs explicit ratings; the training "
                             "interactions have no rating values")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"{type(self).__name__}: dtype must be 'float32' or 'float64', "
                             f"got {self.dtype!r}")
        ftype = np.dtype(self.dtype).type
        biased = bool(self.biased)
        mu = float(np.mean(train.values, dtype=np.float64)) if (biased and len(train)) else 0.0
        # Rows padded to whole cache lines (zero columns stay zero: their gradient is zero) on
        # a 64-byte-aligned base; the first n_factors columns are kept after training. The
        # initial factors are initial_factors()'s, drawn straight into those rows.
        k = int(self.n_factors)
        width = padded_width(k, ftype)  # a whole number of fused_step's vector pairs
        assert width % (2 * lanes(ftype)) == 0
        pu = aligned_zeros((train.n_users, width), ftype)
        qi = aligned_zeros((train.n_items, width), ftype)
        rng = np.random.default_rng(self.random_state)
        for m in (pu, qi):
            _fill_normal(rng, m[:, :k], float(self.init_mean), float(self.init_std_dev))
        bu = np.zeros(train.n_users, dtype=ftype)
        bi = np.zeros(train.n_items, dtype=ftype)
        r = rates
        indptr = np.zeros(train.n_users + 1, dtype=np.int64)
        np.cumsum(train.user_counts, out=indptr[1:])
        items = np.ascontiguousarray(train.items, dtype=np.int32)
        values = np.ascontiguousarray(train.values, dtype=ftype)
        steps = (ftype(mu), bu, bi, pu, qi, ftype(r["lr_bu"]), ftype(r["lr_bi"]),
                 ftype(r["lr_pu"]), ftype(r["lr_qi"]), ftype(r["reg_bu"]), ftype(r["reg_bi"]),
                 ftype(1.0 - r["lr_pu"] * r["reg_pu"]), ftype(1.0 - r["lr_qi"] * r["reg_qi"]),
                 biased, int(self.n_epochs))
        n_blocks = int(self.n_threads)
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            if n_blocks == 1:
                _sgd_epochs(indptr.view(np.uint64), items.view(np.uint32), values, *steps)
            else:
                order, strata, block_users, block_ptr = dsgd_layout(
                    indptr, items, train.item_counts, train.user_counts, n_blocks)
                _dsgd_epochs(strata.view(np.uint64), items[order].view(np.uint32),
                             values[order], *steps, block_users, block_ptr)
        pu, qi, bu, bi = (a.astype(np.float64) for a in (pu[:, :k], qi[:, :k], bu, bi))
        if not (np.isfinite(pu).all() and np.isfinite(qi).all()
                and np.isfinite(bu).all() and np.isfinite(bi).all()):
            raise FloatingPointError(f"{type(self).__name__} SGD diverged (non-finite "
                                     "parameters); lower the learning rates")
        self.mu_ = mu
        self.user_bias_ = bu
        self.item_bias_ = bi
        self.user_factors_ = pu
        self.item_factors_ = qi


    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks) -> np.ndarray:
        """The base's formula for known pairs, in one compiled pass (no gathered copies)."""
        with compiled():
            out = _predict_pairs(np.asarray(u, np.int64), np.asarray(i, np.int64),
                                 float(self.mu_), self.user_bias_, self.item_bias_,
                                 self.user_factors_, self.item_factors_, bool(self.biased))
        return out


@register("PMF")
class PMF(SVD):
    r"""Probabilistic matrix factorization (Salakhutdinov & Mnih 2008) by SGD:
    :math:`\hat r_{ui} = q_i^\top p_u`, the :class:`SVD` updates without biases — Surprise's
    ``SVD(biased=False)``. Same hyperparameters as :class:`SVD` except ``biased``."""

    biased = False

    def __init__(self, n_factors: int = 100, n_epochs: int = 20, init_mean: float = 0.0,
                 init_std_dev: float = 0.1, lr_all: float = 0.005, reg_all: float = 0.02,
                 lr_bu: float | None = None, lr_bi: float | None = None,
                 lr_pu: float | None = None, lr_qi: float | None = None,
                 reg_bu: float | None = None, reg_bi: float | None = None,
                 reg_pu: float | None = None, reg_qi: float | None = None, random_state=0,
                 dtype: str = "float32", n_threads: int = 1):
        super().__init__(n_factors=n_factors, n_epochs=n_epochs, biased=False,
                         init_mean=init_mean, init_std_dev=init_std_dev, lr_all=lr_all,
                         reg_all=reg_all, lr_bu=lr_bu, lr_bi=lr_bi, lr_pu=lr_pu, lr_qi=lr_qi,
                         reg_bu=reg_bu, reg_bi=reg_bi, reg_pu=reg_pu, reg_qi=reg_qi,
                         random_state=random_state, dtype=dtype, n_threads=n_threads)
