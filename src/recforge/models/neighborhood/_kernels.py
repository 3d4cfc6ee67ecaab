"""Compiled kernels of the neighbourhood models (Numba).

Three hot loops live here, all over CSR arrays:

* co-rated statistics between one row and every other row (the sums a similarity needs over
  the columns both rows have), turned into a similarity row;
* the k-nearest-neighbour aggregation for a batch of (x, y) test pairs;
* the Slope One mean deviation over a user's rated items.

Each loop is the ``sum over columns, sum over the column's other rows`` walk that a sparse
product ``R R^T`` performs, fused with the formula so that no n_x x n_x intermediate other than
the result is ever stored. Rows are processed in parallel (``prange``); every row owns its
buffers, so there are no write conflicts.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# similarity kinds understood by the kernels (values are transformed before, see
# similarities.py: adjusted cosine = cosine on centred values, spearman = pearson on ranks,
# pearson_baseline = cosine on baseline residuals, shrunk)
COSINE = 0
MSD = 1
PEARSON = 2
PEARSON_BASELINE = 3
JACCARD = 4

# prediction modes (Surprise's four k-NN variants)
BASIC = 0
WITH_MEANS = 1
WITH_ZSCORE = 2
BASELINE = 3


@njit(cache=True, fastmath=False)
def _row_similarity(xi, x_indptr, x_indices, x_data, y_indptr, y_indices, y_data, row_counts,
                    kind, min_support, shrinkage, upper_only, out):
    """Similarity of row ``xi`` with every other row, written into ``out`` (length n_x).

    With ``upper_only`` only the entries ``xj > xi`` are computed (the rest of ``out`` is left
    untouched); otherwise every ``xj`` (``out[xi]`` included, computed like any other).
    """
    n_x = out.shape[0]
    freq = np.zeros(n_x, np.int64)
    prods = np.zeros(n_x)
    sqi = np.zeros(n_x)
    sqj = np.zeros(n_x)
    si = np.zeros(n_x)
    sj = np.zeros(n_x)
    sqd = np.zeros(n_x)
    for p in range(x_indptr[xi], x_indptr[xi + 1]):
        y = x_indices[p]
        ri = x_data[p]
        start = y_indptr[y]
        end = y_indptr[y + 1]
        if upper_only:
            # column indices are sorted: skip every row <= xi
            start = start + np.searchsorted(y_indices[start:end], xi, side="right")
        for q in range(start, end):
            xj = y_indices[q]
            rj = y_data[q]
            freq[xj] += 1
            prods[xj] += ri * rj
            sqi[xj] += ri * ri
            sqj[xj] += rj * rj
            si[xj] += ri
            sj[xj] += rj
            d = ri - rj
            sqd[xj] += d * d
    first = xi + 1 if upper_only else 0
    for xj in range(first, n_x):
        n = freq[xj]
        if n < min_support or n == 0:
            out[xj] = 0.0
            continue
        if kind == COSINE:
            den = np.sqrt(sqi[xj] * sqj[xj])
            out[xj] = prods[xj] / den if den > 0 else 0.0
        elif kind == MSD:
            out[xj] = 1.0 / (sqd[xj] / n + 1.0)
        elif kind == PEARSON:
            num = n * prods[xj] - si[xj] * sj[xj]
            den = np.sqrt((n * sqi[xj] - si[xj] ** 2) * (n * sqj[xj] - sj[xj] ** 2))
            out[xj] = num / den if den > 0 else 0.0
        elif kind == PEARSON_BASELINE:
            den = np.sqrt(sqi[xj] * sqj[xj])
            rho = prods[xj] / den if den > 0 else 0.0
            out[xj] = rho * (n - 1) / (n - 1 + shrinkage)
        else:  # JACCARD
            union = row_counts[xi] + row_counts[xj] - n
            out[xj] = n / union if union > 0 else 0.0


@njit(parallel=True, cache=True)
def dense_similarity(x_indptr, x_indices, x_data, y_indptr, y_indices, y_data, kind,
                     min_support, shrinkage):
    """Full symmetric n_x x n_x similarity (float64), diagonal 1, upper triangle computed once."""
    n_x = x_indptr.shape[0] - 1
    row_counts = np.diff(x_indptr)
    sim = np.zeros((n_x, n_x))
    for t in prange(n_x):
        # pair long (early) rows with short (late) ones so that static chunks balance
        xi = t // 2 if t % 2 == 0 else n_x - 1 - t // 2
        _row_similarity(xi, x_indptr, x_indices, x_data, y_indptr, y_indices, y_data,
                        row_counts, kind, min_support, shrinkage, True, sim[xi])
    for xi in prange(n_x):
        for xj in range(xi):
            sim[xi, xj] = sim[xj, xi]
        sim[xi, xi] = 1.0
    return sim


@njit(parallel=True, cache=True)
def similarity_rows(rows, x_indptr, x_indices, x_data, y_indptr, y_indices, y_data, kind,
                    min_support, shrinkage):
    """Similarity of each row in ``rows`` with every row: (len(rows), n_x) float64, self = 1."""
    n_x = x_indptr.shape[0] - 1
    row_counts = np.diff(x_indptr)
    out = np.zeros((rows.shape[0], n_x))
    for r in prange(rows.shape[0]):
        _row_similarity(rows[r], x_indptr, x_indices, x_data, y_indptr, y_indices, y_data,
                        row_counts, kind, min_support, shrinkage, False, out[r])
        out[r, rows[r]] = 1.0
    return out


@njit(cache=True)
def _lookup(sim_indptr, sim_indices, sim_data, x, x2):
    """``sim[x, x2]`` from a CSR with sorted column indices (0 when absent)."""
    s = sim_indptr[x]
    e = sim_indptr[x + 1]
    pos = s + np.searchsorted(sim_indices[s:e], x2)
    if pos < e and sim_indices[pos] == x2:
        return sim_data[pos]
    return 0.0


@njit(parallel=True, cache=True)
def knn_predict(xs, ys, y_indptr, y_indices, y_data, sim_dense, sim_indptr, sim_indices,
                sim_data, use_dense, k, min_k, mode, means, sigmas, bx, by, global_mean,
                q_means, q_sigmas, q_bias):
    """k-NN estimates for pairs (x, y): Surprise's KNNBasic/WithMeans/WithZScore/Baseline.

    ``means``, ``sigmas`` and ``bx`` describe the neighbours x2; ``q_means``, ``q_sigmas`` and
    ``q_bias`` the query row x (the same arrays for training rows; a folded-in row's own).

    The candidates are the rows x2 that rated y (column ``y`` of the y-major CSR, ascending
    x2); the ``k`` with the largest ``sim[x, x2]`` are kept (ties: lower x2 first), and of those
    only the positive ones are aggregated.

    Returns
    -------
    est : float64 array
        The estimate; NaN where ``mode == BASIC`` and fewer than ``min_k`` neighbours.
    actual_k : int64 array
        Number of neighbours with positive similarity among the k selected.
    """
    n = xs.shape[0]
    est = np.empty(n)
    actual = np.zeros(n, np.int64)
    for p in prange(n):
        x = xs[p]
        y = ys[p]
        s = y_indptr[y]
        e = y_indptr[y + 1]
        m = e - s
        cand_sim = np.empty(m)
        for q in range(m):
            x2 = y_indices[s + q]
            if use_dense:
                cand_sim[q] = sim_dense[x, x2]
            else:
                cand_sim[q] = _lookup(sim_indptr, sim_indices, sim_data, x, x2)
        # the k largest similarities, ties to the lower x2 (column order); only the positive
        # ones are aggregated, so a non-positive k-th value means "all positive candidates"
        kth = -np.inf
        n_tied_allowed = m
        if m > k:
            kth = np.partition(cand_sim, m - k)[m - k]
            n_above = 0
            for q in range(m):
                if cand_sim[q] > kth:
                    n_above += 1
            n_tied_allowed = k - n_above
        sum_sim = 0.0
        sum_num = 0.0
        count = 0
        for q in range(m):
            w = cand_sim[q]
            if w <= 0.0:
                continue
            if w < kth:
                continue
            if w == kth:
                if n_tied_allowed <= 0:
                    continue
                n_tied_allowed -= 1
            x2 = y_indices[s + q]
            r = y_data[s + q]
            sum_sim += w
            if mode == BASIC:
                sum_num += w * r
            elif mode == WITH_MEANS:
                sum_num += w * (r - means[x2])
            elif mode == WITH_ZSCORE:
                sum_num += w * (r - means[x2]) / sigmas[x2]
            else:
                sum_num += w * (r - (global_mean + bx[x2] + by[y]))
            count += 1
        actual[p] = count
        if mode == BASIC:
            est[p] = sum_num / sum_sim if (count >= min_k and sum_sim > 0) else np.nan
            continue
        offset = sum_num / sum_sim if (count >= min_k and sum_sim > 0) else 0.0
        if mode == WITH_MEANS:
            est[p] = q_means[x] + offset
        elif mode == WITH_ZSCORE:
            est[p] = q_means[x] + offset * q_sigmas[x]
        else:
            est[p] = global_mean + q_bias[x] + by[y] + offset
    return est, actual


@njit(parallel=True, cache=True)
def slope_one_predict(us, items, u_indptr, u_indices, dev, freq, user_means):
    """Slope One estimates: user mean + mean deviation of ``i`` over the user's items that share
    at least one rater with ``i``; returns (estimate, number of such items)."""
    n = us.shape[0]
    est = np.empty(n)
    support = np.zeros(n, np.int64)
    for p in prange(n):
        u = us[p]
        i = items[p]
        total = 0.0
        c = 0
        for q in range(u_indptr[u], u_indptr[u + 1]):
            j = u_indices[q]
            if freq[i, j] > 0:
                total += dev[i, j]
                c += 1
        support[p] = c
        est[p] = user_means[u] + (total / c if c > 0 else 0.0)
    return est, support


@njit(parallel=True, cache=True)
def slope_one_deviations(i_indptr, i_indices, i_data, u_indptr, u_indices, u_data):
    """Co-rating counts and mean deviations between items (Lemire & Maclachlan 2005, eq. 1).

    ``freq[i, j] = |U_ij|`` and ``dev[i, j] = sum_{u in U_ij} (r_ui - r_uj) / |U_ij|``
    (antisymmetric, 0 where ``freq`` is 0); computed once per unordered pair.
    """
    n_items = i_indptr.shape[0] - 1
    freq = np.zeros((n_items, n_items), np.int64)
    dev = np.zeros((n_items, n_items))
    for t in prange(n_items):
        i = t // 2 if t % 2 == 0 else n_items - 1 - t // 2
        for p in range(i_indptr[i], i_indptr[i + 1]):
            u = i_indices[p]
            r_ui = i_data[p]
            s = u_indptr[u]
            e = u_indptr[u + 1]
            s = s + np.searchsorted(u_indices[s:e], i, side="right")
            for q in range(s, e):
                j = u_indices[q]
                freq[i, j] += 1
                dev[i, j] += r_ui - u_data[q]
        for j in range(i + 1, n_items):
            if freq[i, j] > 0:
                dev[i, j] /= freq[i, j]
    for i in prange(n_items):
        for j in range(i):
            freq[i, j] = freq[j, i]
            dev[i, j] = -dev[j, i]
        freq[i, i] = i_indptr[i + 1] - i_indptr[i]
    return dev, freq


@njit(cache=True)
def _topk_weighted_mean_row(row, ratings, k):
    """Similarity-weighted mean of ``ratings`` over the ``k`` largest entries of ``row`` (ties to
    the lower column), positive similarities only; returns (estimate, has_neighbour)."""
    n_cols = row.shape[0]
    kth = -np.inf
    room = n_cols
    if n_cols > k:
        kth = np.partition(row, n_cols - k)[n_cols - k]
        n_above = 0
        for c in range(n_cols):
            if row[c] > kth:
                n_above += 1
        room = k - n_above
    num = 0.0
    den = 0.0
    for c in range(n_cols):
        w = row[c]
        if w < kth:
            continue
        if w == kth:
            if room <= 0:
                continue
            room -= 1
        if w > 0.0:
            num += w * ratings[c]
            den += w
    if den > 0.0:
        return num / den, True
    return 0.0, False


@njit(parallel=True, cache=True)
def topk_weighted_mean(block, ratings, k):
    """Per row of ``block`` (similarities of a target item to the user's rated items, in item
    order): :func:`_topk_weighted_mean_row`. Returns (estimate, has_neighbour) arrays."""
    n_rows = block.shape[0]
    est = np.zeros(n_rows)
    ok = np.zeros(n_rows, np.bool_)
    for r in prange(n_rows):
        est[r], ok[r] = _topk_weighted_mean_row(block[r], ratings, k)
    return est, ok


@njit(cache=True)
def topk_weighted_mean_serial(block, ratings, k):
    """Single-threaded twin of :func:`topk_weighted_mean` for small blocks (no thread start-up)."""
    n_rows = block.shape[0]
    est = np.zeros(n_rows)
    ok = np.zeros(n_rows, np.bool_)
    for r in range(n_rows):
        est[r], ok[r] = _topk_weighted_mean_row(block[r], ratings, k)
    return est, ok
