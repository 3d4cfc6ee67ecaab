"""Row-wise top-k selection with deterministic tie-breaking (lower item index first).

Shared by the models (recommendation lists, neighbour selection), the session-replay driver and
the evaluation protocols, so every list in the project is cut the same way. Depends only on
numpy and scipy; nothing in the package is imported here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest entries of each row, best first.

    Uses ``argpartition`` (O(n) per row); rows whose k-th value is tied with entries outside the
    partition are redone with a stable sort so ties always go to the lower column index.
    ``-inf`` entries are never returned: their slots hold index ``-1`` and score ``-inf``.
    """
    scores = np.asarray(scores)
    n_rows, n_cols = scores.shape
    k = int(min(k, n_cols))
    if k <= 0:
        return np.empty((n_rows, 0), np.int32), np.empty((n_rows, 0), scores.dtype)
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
