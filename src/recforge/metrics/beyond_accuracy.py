"""Beyond-accuracy metrics: coverage, diversity, novelty and churn.

Responsiveness, which refits models, is measured by
:func:`recforge.evaluation.responsiveness.responsiveness`.

Inputs follow :mod:`recforge.metrics.ranking`: ``recommended`` is an int array (n_users, k) of
inner item indices, best first, ``-1`` padding. Per-user metrics return float64 vectors with
``NaN`` where the metric is undefined for that user (e.g. an empty list).

References
----------
Ge, Delgado-Battenfeld & Jannach (2010). Beyond accuracy: evaluating recommender systems by
coverage and serendipity. RecSys '10.
Ziegler, McNee, Konstan & Lausen (2005). Improving recommendation lists through topic
diversification. WWW '05 (intra-list similarity).
Zhou et al. (2010). Solving the apparent diversity-accuracy dilemma of recommender systems.
PNAS 107(10) (novelty from item popularity).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from .ranking import _as_recommended

__all__ = [
    "intra_list_diversity",
    "catalog_coverage",
    "user_coverage",
    "diversity",
    "novelty",
    "popularity_rank",
    "churn",
]


def _rec(recommended) -> np.ndarray:
    """Validated (n_users, k) int64 lists, -1 = padding (the ranking metrics' own check)."""
    return _as_recommended(recommended, None)


def catalog_coverage(recommended, n_items: int) -> float:
    r"""Share of the catalog that appears in at least one user's list.

    .. math:: \mathrm{CC} = \frac{|\bigcup_u L_u|}{|I|}

    (Ge et al. 2010, section 3.1.) Padding is ignored.

    Examples
    --------
    >>> catalog_coverage([[0, 1], [1, -1]], n_items=4)
    0.5
    """
    rec = _rec(recommended)
    if n_items <= 0:
        raise ValueError("n_items must be positive")
    if rec.size and rec.max() >= n_items:
        raise ValueError(f"recommended holds item {int(rec.max())} but n_items is {n_items}")
    seen = np.zeros(n_items, dtype=bool)
    seen[rec[rec >= 0]] = True
    return float(seen.sum() / n_items)


def user_coverage(recommended_scores, threshold: float) -> float:
    r"""Share of users with at least one recommended item scored at least ``threshold``.

    .. math:: \mathrm{UC} = \frac{1}{|U|} \sum_u [\,\max_{p} \hat s_{u,i_p} \ge t\,]

    With rating predictions as scores and :math:`t = 4` on a 1–5 scale this is "the share of
    users for whom we found something they will probably like" (Ge et al. 2010, prediction
    coverage). Padding must carry ``-inf`` (as :meth:`Recommender.recommend` returns) or NaN.

    Parameters
    ----------
    recommended_scores : array (n_users, k)
        Scores of each user's recommended items.
    threshold : float

    Examples
    --------
    >>> user_coverage([[4.5, 3.0], [3.9, -float('inf')]], threshold=4.0)
    0.5
    """
    s = np.asarray(recommended_scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError("recommended_scores must be 2-d (n_users, k)")
    if s.shape[0] == 0:
        raise ValueError("no users")
    with np.errstate(invalid="ignore"):
        good = (s >= threshold).any(axis=1)
    return float(good.mean())


def _pair_similarity(item_similarity, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Similarity of item pairs (a[j], b[j]) from a dense/sparse matrix or a callable."""
    if callable(item_similarity) and not sp.issparse(item_similarity) \
            and not isinstance(item_similarity, np.ndarray):
        out = np.asarray(item_similarity(a, b), dtype=np.float64)
        if out.shape != a.shape:
            raise ValueError(f"item_similarity callable returned shape {out.shape} for {a.shape} pairs")
        return out
    if sp.issparse(item_similarity):
        m = item_similarity.tocsr()
        if not m.has_canonical_format:
            m = m.copy()
            m.sum_duplicates()
        n = m.shape[1]
        keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n + m.indices
        q = a.astype(np.int64) * n + b
        if keys.size == 0:
            return np.zeros(a.shape)
        pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
        return np.where(keys[pos] == q, m.data[pos], 0.0).astype(np.float64)
    dense = np.asarray(item_similarity)
    return dense[a, b].astype(np.float64)


def diversity(recommended, item_similarity, batch_size: int = 4096) -> np.ndarray:
    r"""Per-user diversity: 1 minus the mean pairwise similarity of the recommended items.

    .. math:: \mathrm{Div}(u) = 1 - \frac{2}{n_u (n_u - 1)} \sum_{p < q} \mathrm{sim}(i_p, i_q)

    over the :math:`n_u` non-padding items of the list (Ziegler et al. 2005, intra-list
    similarity). ``NaN`` for lists with fewer than two items. The similarity model is the
    caller's choice (e.g. cosine of item vectors or of genre indicators); ``sim`` is read as
    ``S[i_p, i_q]``, so a non-symmetric ``S`` is read in list order.

    Parameters
    ----------
    recommended : int array (n_users, k)
    item_similarity : ndarray or sparse (n_items, n_items), or callable
        A callable gets two equal-length int arrays of item indices and returns their
        similarities. Sparse entries not stored are 0.
    batch_size : int
        Users processed at once.

    Examples
    --------
    >>> S = np.array([[1., .5, 0.], [.5, 1., .2], [0., .2, 1.]])
    >>> diversity([[0, 1, 2], [0, 1, -1], [2, -1, -1]], S)
    array([0.76666667, 0.5       ,        nan])
    """
    rec = _rec(recommended)
    n, k = rec.shape
    out = np.full(n, np.nan)
    if k < 2:
        return out
    p_idx, q_idx = np.triu_indices(k, 1)
    for start in range(0, n, batch_size):
        block = rec[start:start + batch_size]
        a, b = block[:, p_idx], block[:, q_idx]
        valid = (a >= 0) & (b >= 0)
        sims = np.zeros(a.shape)
        if valid.any():
            sims[valid] = _pair_similarity(item_similarity, a[valid], b[valid])
        n_pairs = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            div = 1.0 - sims.sum(axis=1) / n_pairs
        div[n_pairs == 0] = np.nan
        out[start:start + block.shape[0]] = div
    return out


def intra_list_diversity(recommended: np.ndarray, item_vectors: sp.csr_matrix,
                         batch_size: int = 256) -> np.ndarray:
    """Per row, ``1 -`` the mean pairwise cosine similarity of the recommended items.

    The same quantity as :func:`diversity` with cosine similarity of the
    rows of ``item_vectors`` (Ziegler et al., WWW 2005, intra-list similarity), computed
    without forming the item x item matrix or one vector per pair: for a list ``L`` of unit
    vectors, the sum of ``cos(i, j)`` over ordered pairs ``i != j`` is
    ``||sum_{i in L} v_i||^2 - sum_{i in L} ||v_i||^2``. Memory is bounded by ``batch_size``
    lists at a time. Rows with fewer than two items are NaN.
    """
    rec = np.asarray(recommended)
    n_rows = rec.shape[0]
    out = np.full(n_rows, np.nan)
    self_sq = np.asarray(item_vectors.multiply(item_vectors).sum(axis=1)).ravel()
    for start in range(0, n_rows, batch_size):
        block = rec[start:start + batch_size]
        valid = block >= 0
        lens = valid.sum(axis=1).astype(np.float64)
        rows = np.repeat(np.arange(block.shape[0]), valid.sum(axis=1))
        cols = block[valid]
        ind = sp.csr_matrix((np.ones(cols.size), (rows, cols)),
                            shape=(block.shape[0], item_vectors.shape[0]))
        summed = ind @ item_vectors  # each list's sum of item vectors
        sq = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        diag = np.bincount(rows, weights=self_sq[cols], minlength=block.shape[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            div = 1.0 - (sq - diag) / (lens * (lens - 1.0))
        div[lens < 2] = np.nan
        out[start:start + block.shape[0]] = div
    return out


def popularity_rank(item_popularity) -> np.ndarray:
    """Popularity rank of each item: 1 = most popular; tied items share their average rank."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1:
        raise ValueError("item_popularity must be 1-d (n_items,)")
    return rankdata(-pop, method="average")


def novelty(recommended, item_popularity) -> np.ndarray:
    r"""Per-user novelty: mean popularity rank of the recommended items.

    .. math:: \mathrm{Nov}(u) = \frac{1}{n_u} \sum_{p} \mathrm{rank}(i_p)

    where :math:`\mathrm{rank}(i)` is the item's position when all items are sorted by
    decreasing popularity (rank 1 = most popular; ties share the average rank). Higher means
    less popular, i.e. more novel, recommendations. ``NaN`` for empty lists.

    Parameters
    ----------
    recommended : int array (n_users, k)
    item_popularity : array (n_items,)
        Any popularity measure, typically the training interaction count of each item.

    Examples
    --------
    >>> novelty([[0, 2], [1, -1]], item_popularity=[10, 5, 1])
    array([2., 2.])
    """
    rec = _rec(recommended)
    rank = popularity_rank(item_popularity)
    if rec.size and rec.max() >= rank.size:
        raise ValueError(f"recommended holds item {int(rec.max())} but popularity has {rank.size} items")
    valid = rec >= 0
    vals = np.where(valid, rank[np.where(valid, rec, 0)], 0.0)
    n_valid = valid.sum(axis=1)
    out = np.full(rec.shape[0], np.nan)
    has = n_valid > 0
    out[has] = vals.sum(axis=1)[has] / n_valid[has]
    return out


def churn(recommended_a, recommended_b) -> np.ndarray:
    r"""Per-user share of the top-N that changed between two lists (e.g. two fits).

    .. math:: \mathrm{Churn}(u) = 1 - \frac{|A_u \cap B_u|}{\max(|A_u|, |B_u|)}

    on the item sets of the two lists (order ignored, padding ignored). 0 = same items, 1 = all
    new. For two full top-N lists this is the share of the new list's items that were not in the
    old one. ``NaN`` when both lists are empty.

    Examples
    --------
    >>> churn([[0, 1, 2], [3, 4, -1]], [[2, 1, 5], [3, 4, -1]])
    array([0.33333333, 0.        ])
    """
    a, b = _rec(recommended_a), _rec(recommended_b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the two lists cover {a.shape[0]} and {b.shape[0]} users")
    out = np.full(a.shape[0], np.nan)
    step = max(1, 2**22 // max(1, a.shape[1] * b.shape[1]))
    for start in range(0, a.shape[0], step):
        aa, bb = a[start:start + step], b[start:start + step]
        same = (aa[:, :, None] == bb[:, None, :]) & (aa[:, :, None] >= 0)
        common = same.any(axis=2).sum(axis=1)
        size = np.maximum((aa >= 0).sum(axis=1), (bb >= 0).sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            val = 1.0 - common / size
        val[size == 0] = np.nan
        out[start:start + aa.shape[0]] = val
    return out
