"""Top-N accuracy metrics, one value per user, vectorized over all users at once.

Common inputs
-------------
recommended : int array, shape (n_users, k)
    Inner item indices of each user's list, best first; ``-1`` pads lists shorter than ``k``.
    An item may appear at most once per row (a repeated item raises ``ValueError``).
relevant : scipy sparse matrix (CSR), shape (n_users, n_items)
    The held-out items of the same rows. **Every stored entry is relevant**, whatever its value;
    the value (the held-out rating, or 1) is used only by the metrics that grade hits by rating
    (:func:`cumulative_hit_rate`, :func:`rating_hit_rate`, ``ndcg_at_k(gains='rating')``).
k : int, optional
    Cut-off; defaults to the number of columns of ``recommended``. A ``k`` larger than the
    lists counts the missing positions as empty (no hit), so ``precision_at_k`` still divides
    by ``k``.

Every per-user metric returns a float64 vector of length ``n_users`` with ``NaN`` for users that
have no relevant item: they have nothing to find, so they are left out of means
(``np.nanmean``) rather than counted as failures. Positions are 1-based in the formulas below:
:math:`\\mathrm{rel}_u(p) = 1` when the item at position :math:`p` of user :math:`u`'s list is
in :math:`R_u`, the user's relevant set.

All the work is NumPy on the (n_users, k) grid: a recommended item is looked up in the user's
CSR row with one ``searchsorted`` over (row, item) keys, so ML-1M sized inputs (6,040 users,
k = 10) take milliseconds.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

__all__ = [
    "hits_matrix",
    "hit_rate",
    "arhr",
    "cumulative_hit_rate",
    "rating_hit_rate",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "average_precision_at_k",
    "reciprocal_rank",
    "auc",
]


# ---------------------------------------------------------------------- input handling
def _as_relevant(relevant, n_rows: int) -> sp.csr_matrix:
    if not sp.issparse(relevant):
        relevant = np.asarray(relevant)
        if relevant.ndim != 2:
            raise ValueError("relevant must be a 2-d (n_users, n_items) matrix")
        relevant = sp.csr_matrix(relevant)
    rel = relevant.tocsr()
    if rel.shape[0] != n_rows:
        raise ValueError(f"relevant has {rel.shape[0]} rows but recommended has {n_rows}; "
                         "both must describe the same users in the same order")
    if not rel.has_canonical_format:
        rel = rel.copy()
        rel.sum_duplicates()  # also sorts the indices
    return rel


def _as_recommended(recommended, k: int | None, n_items: int | None = None) -> np.ndarray:
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be a 2-d (n_users, k) array, got shape {rec.shape}")
    if rec.dtype.kind not in "iu":
        if rec.dtype.kind != "f" or not (np.all(np.isfinite(rec)) and np.all(rec == np.round(rec))):
            raise ValueError("recommended must hold integer item indices (-1 for padding)")
    rec = rec.astype(np.int64, copy=False)
    if rec.size and rec.min() < -1:
        raise ValueError("recommended holds negative indices other than the padding value -1")
    if n_items is not None and rec.size and rec.max() >= n_items:
        raise ValueError(f"recommended holds item index {int(rec.max())} but there are only "
                         f"{n_items} items")
    if k is None:
        k = rec.shape[1]
    k = int(k)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    if k <= rec.shape[1]:
        rec = rec[:, :k]
    else:
        rec = np.concatenate([rec, np.full((rec.shape[0], k - rec.shape[1]), -1, np.int64)], axis=1)
    if rec.shape[1] > 1 and rec.size:
        srt = np.sort(rec, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        if dup.any():
            row = int(np.flatnonzero(dup.any(axis=1))[0])
            raise ValueError(f"recommended row {row} lists an item more than once")
    return rec


def _lookup(rec: np.ndarray, rel: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Whether each recommended item is relevant for its row, and its stored value (else 0)."""
    n_rows, n_items = rel.shape
    counts = np.diff(rel.indptr)
    keys = np.repeat(np.arange(n_rows, dtype=np.int64), counts) * n_items + rel.indices
    valid = rec >= 0
    query = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + np.where(valid, rec, 0)
    if keys.size == 0:
        return np.zeros(rec.shape, bool), np.zeros(rec.shape, np.float64)
    pos = np.searchsorted(keys, query)
    np.minimum(pos, keys.size - 1, out=pos)
    hit = valid & (keys[pos] == query)
    values = np.where(hit, rel.data[pos].astype(np.float64), 0.0)
    return hit, values


def _prepare(recommended, relevant, k):
    rec0 = np.asarray(recommended)
    if rec0.ndim != 2:
        raise ValueError(f"recommended must be a 2-d (n_users, k) array, got shape {rec0.shape}")
    rel = _as_relevant(relevant, rec0.shape[0])
    rec = _as_recommended(rec0, k, rel.shape[1])
    hit, values = _lookup(rec, rel)
    n_rel = np.diff(rel.indptr).astype(np.float64)
    return rec, rel, hit, values, n_rel


def _nan_where_empty(values: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    out[n_rel == 0] = np.nan
    return out


# ---------------------------------------------------------------------- metrics
def hits_matrix(recommended, relevant, k: int | None = None) -> np.ndarray:
    """Which recommended items are relevant: bool array (n_users, k).

    ``hits[u, p]`` is True when the item at position ``p`` (0-based) of row ``u`` is a stored
    entry of ``relevant[u]``; padding (``-1``) is never a hit.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> rel = sp.csr_matrix([[0, 1, 0, 1], [1, 0, 0, 0]])
    >>> hits_matrix([[3, 0, 1], [2, -1, -1]], rel)
    array([[ True, False,  True],
           [False, False, False]])
    """
    return _prepare(recommended, relevant, k)[2]


def hit_rate(recommended, relevant, k: int | None = None) -> np.ndarray:
    r"""Hit rate HR@k: 1 if at least one relevant item is in the top k, else 0.

    .. math:: \mathrm{HR@}k(u) = [\,\exists p \le k:\ \mathrm{rel}_u(p) = 1\,]

    In the leave-one-out protocol (one held-out item per user, Deshpande & Karypis 2004,
    "Item-based top-N recommendation algorithms", ACM TOIS 22(1), section 6.1) this is whether
    the held-out item was recommended; the mean over users is the usual HR. ``NaN`` for users
    without relevant items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> hit_rate([[2, 0], [1, 3]], sp.csr_matrix([[1, 0, 0, 0], [1, 0, 0, 0]]))
    array([1., 0.])
    """
    _, _, hit, _, n_rel = _prepare(recommended, relevant, k)
    return _nan_where_empty(hit.any(axis=1), n_rel)


def arhr(recommended, relevant, k: int | None = None) -> np.ndarray:
    r"""Average reciprocal hit rank (Deshpande & Karypis 2004, ACM TOIS 22(1), eq. in 6.1).

    .. math:: \mathrm{ARHR@}k(u) = \frac{1}{|R_u|} \sum_{p \le k} \frac{\mathrm{rel}_u(p)}{p}

    Each held-out item contributes the reciprocal of its position in the list (0 when it is not
    in the top k), averaged over the user's held-out items. With one held-out item per user
    (leave-one-out, as in the paper) this is :math:`1/p` of the hit or 0, and the mean over
    users is the paper's ARHR. ``NaN`` without relevant items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> arhr([[2, 0, 1]], sp.csr_matrix([[1, 0, 0]]))
    array([0.5])
    """
    rec, _, hit, _, n_rel = _prepare(recommended, relevant, k)
    inv_pos = 1.0 / np.arange(1, rec.shape[1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_where_empty((hit * inv_pos).sum(axis=1) / n_rel, n_rel)


def cumulative_hit_rate(recommended, relevant, k: int | None = None,
                        threshold: float = 4.0) -> np.ndarray:
    r"""Hit rate counting only held-out items rated at least ``threshold``.

    .. math:: \mathrm{cHR@}k(u) = [\,\exists p \le k:\ i_p \in R_u,\ r_{u i_p} \ge t\,]

    Users with no held-out rating :math:`\ge t` get ``NaN`` (they are not counted at all), so
    the mean answers "when the user really liked the held-out item, did we recommend it?".

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> rel = sp.csr_matrix([[5., 0, 0], [0, 2., 0], [0, 0, 4.]])
    >>> cumulative_hit_rate([[0, 1], [1, 0], [0, 1]], rel, threshold=4.0)
    array([ 1., nan,  0.])
    """
    rec0 = np.asarray(recommended)
    if rec0.ndim != 2:
        raise ValueError(f"recommended must be a 2-d (n_users, k) array, got shape {rec0.shape}")
    rel = _as_relevant(relevant, rec0.shape[0])
    keep = rel.data >= threshold
    row_of = np.repeat(np.arange(rel.shape[0]), np.diff(rel.indptr))
    liked = sp.csr_matrix((rel.data[keep], (row_of[keep], rel.indices[keep])), shape=rel.shape)
    return hit_rate(recommended, liked, k)


def rating_hit_rate(recommended, relevant, k: int | None = None) -> dict[float, float]:
    r"""Hit rate broken down by the held-out rating value.

    For every distinct held-out rating value :math:`v`,

    .. math:: \mathrm{rHR@}k(v) = \frac{|\{(u,i) \in T : r_{ui} = v,\ i \in L_u^k\}|}
                                     {|\{(u,i) \in T : r_{ui} = v\}|}

    pooled over all held-out pairs :math:`T` (with leave-one-out, one pair per user), where
    :math:`L_u^k` is the user's top-k list. A good recommender has a higher rate for high
    ratings than for low ones.

    Returns
    -------
    dict
        ``{rating value: hit rate}`` sorted by rating value.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> rel = sp.csr_matrix([[5., 0, 0], [0, 2., 0], [0, 0, 5.]])
    >>> rating_hit_rate([[0, 1], [0, 2], [0, 1]], rel)
    {2.0: 0.0, 5.0: 0.5}
    """
    _, rel, hit, values, _ = _prepare(recommended, relevant, k)
    levels, total = np.unique(rel.data, return_counts=True)
    hit_vals = values[hit]
    hits_per = np.searchsorted(levels, hit_vals)
    n_hit = np.bincount(hits_per, minlength=levels.size)
    return {float(v): float(h / t) for v, h, t in zip(levels, n_hit, total, strict=True)}


def precision_at_k(recommended, relevant, k: int | None = None) -> np.ndarray:
    r"""Precision@k: share of the k list positions holding a relevant item.

    .. math:: P@k(u) = \frac{1}{k} \sum_{p \le k} \mathrm{rel}_u(p)

    The denominator is always ``k`` (padding counts as a miss). ``NaN`` without relevant items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> precision_at_k([[0, 1, 2, 3]], sp.csr_matrix([[1, 0, 1, 0, 1]]))
    array([0.5])
    """
    rec, _, hit, _, n_rel = _prepare(recommended, relevant, k)
    return _nan_where_empty(hit.sum(axis=1) / rec.shape[1], n_rel)


def recall_at_k(recommended, relevant, k: int | None = None) -> np.ndarray:
    r"""Recall@k: share of the user's relevant items found in the top k.

    .. math:: R@k(u) = \frac{1}{|R_u|} \sum_{p \le k} \mathrm{rel}_u(p)

    The denominator is :math:`|R_u|` (not :math:`\min(k, |R_u|)`). ``NaN`` without relevant items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> recall_at_k([[0, 1, 2, 3]], sp.csr_matrix([[1, 0, 1, 0, 1]]))
    array([0.66666667])
    """
    _, _, hit, _, n_rel = _prepare(recommended, relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_where_empty(hit.sum(axis=1) / n_rel, n_rel)


def ndcg_at_k(recommended, relevant, k: int | None = None, gains: str = "binary") -> np.ndarray:
    r"""Normalized discounted cumulative gain (Järvelin & Kekäläinen 2002, ACM TOIS 20(4)).

    .. math::

        \mathrm{DCG@}k(u) = \sum_{p \le k} \frac{g_u(p)}{\log_2(p + 1)}, \qquad
        \mathrm{NDCG@}k(u) = \frac{\mathrm{DCG@}k(u)}{\mathrm{IDCG@}k(u)}

    where :math:`g_u(p)` is 1 for a relevant item (``gains='binary'``) or its held-out value
    (``gains='rating'``, linear gains), and IDCG is the DCG of the ideal list: the user's
    :math:`\min(k, |R_u|)` largest gains in decreasing order. It lies in [0, 1] and is 1 for a
    perfect list. ``NaN`` without relevant items (or, with rating gains, when every gain is 0).
    Agrees with ``sklearn.metrics.ndcg_score`` when the list is the top k of untied scores.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> ndcg_at_k([[1, 0]], sp.csr_matrix([[1, 0]]))  # 1/log2(3) / 1
    array([0.63092975])
    """
    if gains not in ("binary", "rating"):
        raise ValueError(f"gains must be 'binary' or 'rating', got {gains!r}")
    rec, rel, hit, values, n_rel = _prepare(recommended, relevant, k)
    kk = rec.shape[1]
    disc = 1.0 / np.log2(np.arange(2, kk + 2))
    if gains == "binary":
        dcg = (hit * disc).sum(axis=1)
        cum = np.concatenate([[0.0], np.cumsum(disc)])
        idcg = cum[np.minimum(n_rel.astype(np.int64), kk)]
    else:
        dcg = (values * disc).sum(axis=1)
        counts = np.diff(rel.indptr)
        row_of = np.repeat(np.arange(rel.shape[0]), counts)
        order = np.lexsort((-rel.data, row_of))  # by row, then gain descending
        rank_in_row = np.arange(order.size) - np.repeat(rel.indptr[:-1], counts)
        top = rank_in_row < kk
        idcg = np.bincount(row_of[top], weights=rel.data[order][top] * disc[rank_in_row[top]],
                           minlength=rel.shape[0])
    out = np.full(rec.shape[0], np.nan)
    ok = (n_rel > 0) & (idcg != 0)
    out[ok] = dcg[ok] / idcg[ok]
    return out


def average_precision_at_k(recommended, relevant, k: int | None = None) -> np.ndarray:
    r"""Average precision at k; MAP@k is its mean over users.

    .. math:: \mathrm{AP@}k(u) = \frac{1}{\min(k, |R_u|)} \sum_{p \le k} P@p(u)\,\mathrm{rel}_u(p)

    Normalized by :math:`\min(k, |R_u|)`, the most hits a list of length k can hold, so a
    perfect list scores 1 even when the user has more than k relevant items. ``NaN`` without
    relevant items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> average_precision_at_k([[0, 1, 2]], sp.csr_matrix([[1, 0, 1]]))  # (1/1 + 2/3) / 2
    array([0.83333333])
    """
    rec, _, hit, _, n_rel = _prepare(recommended, relevant, k)
    kk = rec.shape[1]
    prec_at = np.cumsum(hit, axis=1) / np.arange(1, kk + 1)
    denom = np.minimum(n_rel, kk)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nan_where_empty((prec_at * hit).sum(axis=1) / denom, n_rel)


def reciprocal_rank(recommended, relevant, k: int | None = None) -> np.ndarray:
    r"""Reciprocal rank of the first relevant item (0 if none in the top k); MRR is the mean.

    .. math:: \mathrm{RR@}k(u) = \max_{p \le k} \frac{\mathrm{rel}_u(p)}{p}

    (Voorhees 1999, TREC-8 QA track.) With one relevant item it equals :func:`arhr`. ``NaN``
    without relevant items.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> reciprocal_rank([[2, 0, 1]], sp.csr_matrix([[1, 1, 0]]))
    array([0.5])
    """
    rec, _, hit, _, n_rel = _prepare(recommended, relevant, k)
    first = np.argmax(hit, axis=1)
    rr = np.where(hit.any(axis=1), 1.0 / (first + 1), 0.0)
    return _nan_where_empty(rr, n_rel)


@numba.njit(cache=True)
def _auc_rows(scores, rel_indptr, rel_indices, ex_indptr, ex_indices, out):  # pragma: no cover
    """Mann-Whitney AUC of each row; state: 0 = negative, 1 = positive, 2 = excluded."""
    n, m = scores.shape
    state = np.zeros(m, np.uint8)
    buf = np.empty(m, np.float64)
    for r in range(n):
        for j in range(ex_indptr[r], ex_indptr[r + 1]):
            state[ex_indices[j]] = 2
        n_pos = 0
        for j in range(rel_indptr[r], rel_indptr[r + 1]):
            if state[rel_indices[j]] == 0:
                state[rel_indices[j]] = 1
                n_pos += 1
        c = 0
        for col in range(m):
            if state[col] != 2:
                buf[c] = scores[r, col]
                c += 1
        n_neg = c - n_pos
        if n_pos == 0 or n_neg == 0:
            out[r] = np.nan
        else:
            ordered = np.sort(buf[:c])
            rank_sum = 0.0
            for j in range(rel_indptr[r], rel_indptr[r + 1]):
                col = rel_indices[j]
                if state[col] == 1:
                    s = scores[r, col]
                    below = np.searchsorted(ordered, s, side="left")
                    upto = np.searchsorted(ordered, s, side="right")
                    rank_sum += below + (upto - below + 1) / 2.0  # average rank, ties shared
            out[r] = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
        for j in range(ex_indptr[r], ex_indptr[r + 1]):
            state[ex_indices[j]] = 0
        for j in range(rel_indptr[r], rel_indptr[r + 1]):
            state[rel_indices[j]] = 0


def auc(scores, relevant, exclude=None) -> np.ndarray:
    r"""Per-user area under the ROC curve of the full item ranking.

    For user :math:`u` with positives :math:`R_u` (held-out items) and negatives :math:`N_u`
    (every other item that is not excluded),

    .. math:: \mathrm{AUC}(u) = \frac{1}{|R_u||N_u|} \sum_{i \in R_u} \sum_{j \in N_u}
              \left([s_{ui} > s_{uj}] + \tfrac12 [s_{ui} = s_{uj}]\right)

    i.e. the probability that a random positive outscores a random negative, ties counting 1/2
    (Rendle et al. 2009, "BPR", eq. 1). Computed through average ranks (Mann–Whitney U) in a
    compiled loop, one sort per user (O(n_items log n_items) each), so it equals
    ``sklearn.metrics.roc_auc_score`` on each row.

    Parameters
    ----------
    scores : ndarray, shape (n_users, n_items)
        Scores of every item for each user; higher is better. ``±inf`` is allowed, NaN is not.
    relevant : sparse (n_users, n_items)
        Held-out items (stored entries are the positives).
    exclude : sparse (n_users, n_items), optional
        Items to leave out of the ranking entirely, typically the training items. An item that
        is both excluded and relevant is left out.

    Returns
    -------
    ndarray of float64, shape (n_users,)
        ``NaN`` for users without positives or without negatives.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> auc([[0.9, 0.1, 0.5, 0.5]], sp.csr_matrix([[0, 0, 1, 0]]))  # (1 + 0 + 0.5) / 3
    array([0.5])
    """
    s = np.asarray(scores)
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-d (n_users, n_items), got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    s = np.ascontiguousarray(s)
    rel = _as_relevant(relevant, s.shape[0])
    if rel.shape[1] != s.shape[1]:
        raise ValueError(f"relevant has {rel.shape[1]} items but scores has {s.shape[1]}")
    if exclude is None:
        exc = sp.csr_matrix(s.shape, dtype=np.float32)
    else:
        exc = _as_relevant(exclude, s.shape[0])
        if exc.shape != s.shape:
            raise ValueError(f"exclude has shape {exc.shape}, scores {s.shape}")
    out = np.empty(s.shape[0])
    _auc_rows(s, rel.indptr.astype(np.int64), rel.indices.astype(np.int64),
              exc.indptr.astype(np.int64), exc.indices.astype(np.int64), out)
    return out
