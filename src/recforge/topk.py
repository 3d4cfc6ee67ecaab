"""Row-wise top-k selection with deterministic tie-breaking (lower item index first).

Shared by the models (recommendation lists, neighbour selection), the session-replay driver and
the evaluation protocols, so every list in the project is cut the same way. Depends only on
numpy, scipy and numba; nothing in the package is imported here.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

#: Largest ``k`` cut by the one-pass kernel; larger cuts use ``argpartition``.
SCAN_MAX_K = 128


@numba.njit(cache=True, nogil=True)
def _scan_topk(scores, k, out_idx, out_val):  # pragma: no cover - compiled
    """One pass per row keeping the best ``k`` seen so far in a sorted buffer.

    A column enters only when its score is strictly above the buffer's last (k-th) score, so an
    equal score met later (a higher column) never displaces an earlier one: ties go to the
    lower column, as in :func:`_topk_rows_partition`. The buffer starts at ``-inf`` with index
    -1, so ``-inf`` and NaN scores never enter. Expected insertions on a row of ``n`` scores in
    random order are about ``k ln(n / k)``: the scan is one comparison per score.
    """
    n_rows, n_cols = scores.shape
    for r in range(n_rows):
        vals = out_val[r]
        idx = out_idx[r]
        for j in range(k):
            vals[j] = -np.inf
            idx[j] = -1
        last = vals[k - 1]
        row = scores[r]
        for c in range(n_cols):
            x = row[c]
            if x > last:
                j = k - 1
                while j > 0 and vals[j - 1] < x:
                    vals[j] = vals[j - 1]
                    idx[j] = idx[j - 1]
                    j -= 1
                vals[j] = x
                idx[j] = c
                last = vals[k - 1]


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, best first.

    Ties go to the lower column index. ``-inf`` entries are never returned: their slots hold
    index ``-1`` and score ``-inf``. Float rows with ``k <= SCAN_MAX_K`` are cut by one compiled
    pass (:func:`_scan_topk`, no copy of the scores); others by ``argpartition``
    (:func:`_topk_rows_partition`); both give the same lists.
    """
    scores = np.asarray(scores)
    n_rows, n_cols = scores.shape
    k = int(min(k, n_cols))
    if k <= 0:
        return np.empty((n_rows, 0), np.int32), np.empty((n_rows, 0), scores.dtype)
    if k <= SCAN_MAX_K and scores.dtype in (np.float32, np.float64) and n_rows:
        out_idx = np.empty((n_rows, k), dtype=np.int32)
        out_val = np.empty((n_rows, k), dtype=scores.dtype)
        _scan_topk(scores, k, out_idx, out_val)
        return out_idx, out_val
    return _topk_rows_partition(scores, k)


def _topk_rows_partition(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_rows` by ``argpartition`` (O(n) per row); rows whose k-th value is tied with
    entries outside the partition are redone with a stable sort (ties to the lower column)."""
    n_rows, n_cols = scores.shape
    neg = -scores
    if k < n_cols:
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    if k < n_cols:
        kth = vals.min(axis=1)
        n_at_kth_all = (scores == kth[:, None]).sum(axis=1)
        n_at_kth_top = (vals == kth[:, None]).sum(axis=1)
        tied = np.flatnonzero(n_at_kth_all > n_at_kth_top)
        if tied.size:
            order = np.argsort(neg[tied], axis=1, kind="stable")[:, :k]
            part[tied] = order
            vals[tied] = np.take_along_axis(scores[tied], order, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1).astype(np.int32)
    vals = np.take_along_axis(vals, order, axis=1)
    invalid = ~(vals > -np.inf)
    if invalid.any():
        idx[invalid] = -1
        vals[invalid] = -np.inf
    return idx, vals


def mask_rows(scores: np.ndarray, matrix: sp.csr_matrix, rows: np.ndarray, value=-np.inf) -> None:
    """Set ``scores[j, c] = value`` for every stored entry ``c`` of ``matrix[rows[j]]`` (in place)."""
    indptr = matrix.indptr
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    if lengths.sum() == 0:
        return
    r = np.repeat(np.arange(rows.size), lengths)
    pos = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) + np.arange(lengths.sum())
    scores[r, matrix.indices[pos]] = value
