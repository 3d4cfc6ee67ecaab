"""Compiled kernels of the neighbourhood models (Numba).

Three hot loops live here, all over CSR arrays:

* co-rated statistics between one row and every other row (the sums a similarity needs over
  the columns both rows have), turned into a similarity row;
* the k-nearest-neighbour aggregation for a batch of (x, y) test pairs;
* the Slope One mean deviation over a user's rated items;
* the content-based k-NN of ContentKNN, whose item similarities come from feature arrays.

Each loop is the ``sum over columns, sum over the column's other rows`` walk that a sparse
product ``R R^T`` performs, fused with the formula so that no n_x x n_x intermediate other than
the result is ever stored. Rows are processed in parallel (``prange``); every row owns its
buffers, so there are no write conflicts.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, prange, types
from numba.extending import intrinsic

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
def dense_similarity_block(t_lo, t_hi, x_indptr, x_indices, x_data, y_indptr, y_indices, y_data,
                           kind, min_support, shrinkage, sim):
    """Upper-triangle rows of the symmetric similarity for the schedule positions
    ``t_lo <= t < t_hi`` into ``sim`` (n_x x n_x float64); :func:`dense_similarity` in pieces,
    so that a caller can stop between them."""
    n_x = x_indptr.shape[0] - 1
    row_counts = np.diff(x_indptr)
    for t in prange(t_lo, t_hi):
        # pair long (early) rows with short (late) ones so that static chunks balance
        xi = t // 2 if t % 2 == 0 else n_x - 1 - t // 2
        _row_similarity(xi, x_indptr, x_indices, x_data, y_indptr, y_indices, y_data,
                        row_counts, kind, min_support, shrinkage, True, sim[xi])


@njit(parallel=True, cache=True)
def mirror_upper(sim):
    """Copy the upper triangle of ``sim`` to the lower one and set the diagonal to 1."""
    for xi in prange(sim.shape[0]):
        for xj in range(xi):
            sim[xi, xj] = sim[xj, xi]
        sim[xi, xi] = 1.0


@njit(cache=True)
def dense_similarity(x_indptr, x_indices, x_data, y_indptr, y_indices, y_data, kind,
                     min_support, shrinkage):
    """Full symmetric n_x x n_x similarity (float64), diagonal 1, upper triangle computed once."""
    n_x = x_indptr.shape[0] - 1
    sim = np.zeros((n_x, n_x))
    dense_similarity_block(0, n_x, x_indptr, x_indices, x_data, y_indptr, y_indices, y_data,
                           kind, min_support, shrinkage, sim)
    mirror_upper(sim)
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
def _longest_row(indptr):
    """The largest number of entries in one row of a CSR (0 for none)."""
    longest = 0
    for r in range(indptr.shape[0] - 1):
        longest = max(longest, indptr[r + 1] - indptr[r])
    return longest


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
    max_m = max(_longest_row(y_indptr), 1)
    # chunks of pairs share one candidate buffer and one heap: no allocation per pair
    n_chunks = min(n, 4096)
    for c in prange(n_chunks):
        cand_sim = np.empty(max_m)
        heap = np.empty(max(k, 1))
        for p in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            _knn_pair(p, xs, ys, y_indptr, y_indices, y_data, sim_dense, sim_indptr, sim_indices,
                      sim_data, use_dense, k, min_k, mode, means, sigmas, bx, by, global_mean,
                      q_means, q_sigmas, q_bias, cand_sim, heap, est, actual)
    return est, actual


@njit(cache=True)
def _knn_pair(p, xs, ys, y_indptr, y_indices, y_data, sim_dense, sim_indptr, sim_indices,
              sim_data, use_dense, k, min_k, mode, means, sigmas, bx, by, global_mean,
              q_means, q_sigmas, q_bias, cand_sim, heap, est, actual):
    """One pair of :func:`knn_predict`, writing ``est[p]`` and ``actual[p]``."""
    x = xs[p]
    y = ys[p]
    s = y_indptr[y]
    e = y_indptr[y + 1]
    m = e - s
    for q in range(m):
        x2 = y_indices[s + q]
        if use_dense:
            cand_sim[q] = sim_dense[x, x2]
        else:
            cand_sim[q] = _lookup(sim_indptr, sim_indices, sim_data, x, x2)
    # the k largest similarities, ties to the lower x2 (column order); only the positive
    # ones are aggregated, so a non-positive k-th value means "all positive candidates"
    kth, n_tied_allowed = _selection_bound(cand_sim, m, k, heap)
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
        return
    offset = sum_num / sum_sim if (count >= min_k and sum_sim > 0) else 0.0
    if mode == WITH_MEANS:
        est[p] = q_means[x] + offset
    elif mode == WITH_ZSCORE:
        est[p] = q_means[x] + offset * q_sigmas[x]
    else:
        est[p] = global_mean + q_bias[x] + by[y] + offset


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


# ------------------------------------------------------------------ content-based k-NN
# The content similarity of ContentKNN (recforge.models.content) is computed pair by pair from
# per-item feature arrays, never as an item x item matrix. A fitted model hands the kernels one
# tuple ``feats`` (built by ContentSimilarity.kernel_arrays):
#
#   comp_kind (int64, n_comp)     CONTENT_YEAR, CONTENT_DENSE or CONTENT_SPARSE, in order
#   comp_slot (int64, n_comp)     row of ``years``, dense component or sparse component index
#   comp_weight (float64, n_comp)
#   combine (int64)               CONTENT_PRODUCT or CONTENT_SUM
#   weight_norm (float64)         divisor of the weighted sum (sum of weights, or 1)
#   years (float64, n_year x n_items; NaN = missing)
#   year_table (float64, n_year x T), year_table_len (int64, n_year)
#                                 exp(-d / scale) for integral distances d < len (0: no table)
#   year_scale (float64)
#   dense (float64, n_items x D), dense_off (int64, n_dense + 1)
#                                 L2-normalised dense components side by side; dot products are
#                                 fused multiply-adds in column order, as BLAS computes them
#   sp_indptr, sp_indices, sp_data  item CSR over the sparse components' concatenated columns
#   sp_comp (int64, n_sp_cols)    sparse component of each column
#   n_sparse (int64)              dot products are separate products and sums in column order,
#                                 as a sparse matrix product computes them
CONTENT_YEAR = 0
CONTENT_DENSE = 1
CONTENT_SPARSE = 2
CONTENT_PRODUCT = 0
CONTENT_SUM = 1


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM ``llvm.fma.f64``)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = llvm_ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], llvm_ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen


@njit(cache=True)
def _kth_largest(values, n, k, heap):
    """The ``k``-th largest of ``values[:n]`` (k < n), with a min-heap of size ``k``. The values
    are visited in a scrambled order: similarities in item order are often sorted in runs
    (items numbered by release), which would make nearly every value replace the root."""
    step = 1
    if n > 2:
        step = 7919 % n
        while _gcd(step, n) != 1:
            step += 1
    t = 0
    for m in range(n):
        v = values[t]
        t += step
        if t >= n:
            t -= n
        if m < k:
            x = m
            heap[x] = v
            while x > 0:
                parent = (x - 1) // 2
                if heap[parent] <= heap[x]:
                    break
                heap[parent], heap[x] = heap[x], heap[parent]
                x = parent
        elif v > heap[0]:
            heap[0] = v
            x = 0
            while True:
                child = 2 * x + 1
                if child >= k:
                    break
                if child + 1 < k and heap[child + 1] < heap[child]:
                    child += 1
                if heap[x] <= heap[child]:
                    break
                heap[x], heap[child] = heap[child], heap[x]
                x = child
    return heap[0]


@njit(cache=True)
def _selection_bound(values, n, k, heap):
    """How the ``k`` largest of ``values[:n]`` are kept with ties to the lower column: the
    ``k``-th largest value, and how many entries equal to it (the first ones) are kept so that
    ``k`` are kept in all; ``(-inf, n)`` when ``n <= k`` (everything is kept)."""
    if n <= k:
        return -np.inf, n
    kth = _kth_largest(values, n, k, heap)
    n_above = 0
    for t in range(n):
        if values[t] > kth:
            n_above += 1
    return kth, k - n_above


@njit(cache=True)
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@njit(cache=True)
def _content_pair(i, r_start, r_end, h_indices, h_data, k, feats, buf, sims, pos, heap):
    """Content k-NN estimate of item ``i`` from one row's rated items ``h_indices[r_start:r_end]``
    (ratings ``h_data``): the similarity-weighted mean rating of the ``k`` rated items most similar
    to ``i`` (ties to the lower column, :func:`_selection_bound`), positive
    similarities only. Returns (estimate, has_neighbour).

    ``buf`` is :func:`_content_buffers`' scratch (its scatter part zero on entry and on
    return); ``sims`` and ``pos`` hold at least ``r_end - r_start``, ``heap`` at least
    ``min(k, r_end - r_start)``.
    """
    (comp_kind, comp_slot, comp_weight, combine, weight_norm, years, year_table, year_table_len,
     year_scale, dense, dense_off, sp_indptr, sp_indices, sp_data, sp_comp, n_sparse) = feats
    scatter, acc, nz_cols, nz_vals, nz_off = buf
    n_comp = comp_kind.shape[0]
    n_dense = dense_off.shape[0] - 1
    # the candidate's non-zero dense entries per component, and its sparse vector scattered
    t = 0
    for d in range(n_dense):
        nz_off[d] = t
        for col in range(dense_off[d], dense_off[d + 1]):
            x = dense[i, col]
            if x != 0.0:
                nz_cols[t] = col
                nz_vals[t] = x
                t += 1
    nz_off[n_dense] = t
    for p in range(sp_indptr[i], sp_indptr[i + 1]):
        scatter[sp_indices[p]] = sp_data[p]
    n_pos = 0
    for q in range(r_start, r_end):
        j = h_indices[q]
        if n_sparse > 0:
            for v in range(n_sparse):
                acc[v] = 0.0
            for p in range(sp_indptr[j], sp_indptr[j + 1]):
                col = sp_indices[p]
                x = scatter[col]
                if x != 0.0:
                    acc[sp_comp[col]] += x * sp_data[p]
        total = 0.0
        for c in range(n_comp):
            slot = comp_slot[c]
            kind = comp_kind[c]
            if kind == CONTENT_YEAR:
                yi = years[slot, i]
                yj = years[slot, j]
                if np.isnan(yi) or np.isnan(yj):
                    s = 0.0
                else:
                    d = abs(yi - yj)
                    if d < year_table_len[slot]:
                        s = year_table[slot, int(d)]
                    else:
                        s = np.exp(-d / year_scale)
            elif kind == CONTENT_DENSE:
                # columns where the candidate is 0 add nothing to the chain
                s = 0.0
                for u in range(nz_off[slot], nz_off[slot + 1]):
                    s = _fma(nz_vals[u], dense[j, nz_cols[u]], s)
            else:
                s = acc[slot]
            w = comp_weight[c]
            if combine == CONTENT_SUM:
                total += w * s
            else:
                f = s if s > 0.0 else 0.0
                if w != 1.0 and f > 0.0:
                    f = f ** w
                total = f if c == 0 else total * f
        if combine == CONTENT_SUM:
            total = total / weight_norm
        if total > 0.0:
            sims[n_pos] = total
            pos[n_pos] = q
            n_pos += 1
    for p in range(sp_indptr[i], sp_indptr[i + 1]):
        scatter[sp_indices[p]] = 0.0
    if n_pos == 0:
        return 0.0, False
    # more positive candidates than k: keep those above the k-th largest, and of the ones equal
    # to it the first (lowest columns) up to k in all
    kth, room = _selection_bound(sims, n_pos, k, heap)
    num = 0.0
    den = 0.0
    for t in range(n_pos):
        w = sims[t]
        if w < kth:
            continue
        if w == kth:
            if room <= 0:
                continue
            room -= 1
        num += w * h_data[pos[t]]
        den += w
    return num / den, True


@njit(cache=True)
def _content_buffers(feats):
    """Per-thread scratch of :func:`_content_pair`: (scatter, acc, nz_cols, nz_vals, nz_off)."""
    dense_off = feats[10]
    n_dense_cols = dense_off[dense_off.shape[0] - 1]
    return (np.zeros(feats[14].shape[0]), np.zeros(max(feats[15], 1)),
            np.empty(n_dense_cols, np.int64), np.empty(n_dense_cols), np.empty(dense_off.shape[0], np.int64))


@njit(parallel=True, cache=True)
def content_knn_pairs(rows, items, indptr, indices, data, k, feats):
    """Content k-NN estimates for pairs (row of the CSR ``indptr/indices/data``, item):
    :func:`_content_pair` for each, in parallel over chunks of pairs (consecutive pairs of one
    row reuse its rated items from cache). Returns (estimate, has_neighbour) arrays."""
    n = rows.shape[0]
    est = np.zeros(n)
    ok = np.zeros(n, np.bool_)
    longest = _longest_row(indptr)
    chunk = 512
    n_chunks = (n + chunk - 1) // chunk
    for c in prange(n_chunks):
        buf = _content_buffers(feats)
        sims = np.empty(longest)
        pos = np.empty(longest, np.int64)
        heap = np.empty(max(1, min(k, longest)))
        for p in range(c * chunk, min(n, (c + 1) * chunk)):
            r = rows[p]
            est[p], ok[p] = _content_pair(items[p], indptr[r], indptr[r + 1], indices, data, k,
                                          feats, buf, sims, pos, heap)
    return est, ok
