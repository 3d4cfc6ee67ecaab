r"""Similarity between the rows of a rating matrix (users, or items after a transpose).

Every measure is computed in one compiled pass per row over the columns the two rows share
(the walk of the sparse product :math:`R R^\top`), never by a Python loop over pairs. With
:math:`Y_{xx'}` the columns rated in both rows :math:`x` and :math:`x'`:

* ``cosine``: :math:`\frac{\sum_{y \in Y_{xx'}} r_{xy} r_{x'y}}{\sqrt{\sum_{y \in Y_{xx'}} r_{xy}^2}\sqrt{\sum_{y \in Y_{xx'}} r_{x'y}^2}}`
* ``adjusted_cosine`` (Sarwar et al. 2001, eq. 3): cosine of :math:`r_{xy} - \bar r_y`, each
  rating centred by the mean of its *column* (the user's mean in item-based mode).
* ``pearson``: Pearson correlation over :math:`Y_{xx'}`, each side centred by its mean over
  :math:`Y_{xx'}` (Surprise's definition).
* ``pearson_baseline`` (Koren 2010, section 2.2): cosine of the baseline residuals
  :math:`r_{xy} - b_{xy}`, :math:`b_{xy} = \mu + b_x + b_y`, shrunk by
  :math:`\frac{|Y_{xx'}| - 1}{|Y_{xx'}| - 1 + \lambda}`; needs at least 2 common columns.
* ``spearman``: ``pearson`` on the ranks of each row's ratings (average ranks for ties, ranked
  over the whole row).
* ``msd``: :math:`1 / (\mathrm{msd}(x, x') + 1)` with
  :math:`\mathrm{msd} = \frac{1}{|Y_{xx'}|}\sum_{y \in Y_{xx'}} (r_{xy} - r_{x'y})^2`.
* ``jaccard``: :math:`|Y_{xx'}| / |Y_x \cup Y_{x'}|` (which columns, not the values).

Pairs with fewer than ``min_support`` common columns (or none) get similarity 0; a zero
denominator gives 0; the diagonal is 1. These follow Surprise 1.1.5's ``similarities`` module.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ...interrupt import chunks, compiled
from ...topk import topk_rows
from . import _kernels as K

logger = logging.getLogger(__name__)

#: Row pairs per piece of the dense similarity (rows per piece = this / n_x, at least 64).
SIMILARITY_PAIRS_PER_CHUNK = 1 << 22

SIMILARITIES = ("cosine", "adjusted_cosine", "pearson", "pearson_baseline", "spearman", "msd",
                "jaccard")

_KIND = {"cosine": K.COSINE, "adjusted_cosine": K.COSINE, "pearson": K.PEARSON,
         "pearson_baseline": K.PEARSON_BASELINE, "spearman": K.PEARSON, "msd": K.MSD,
         "jaccard": K.JACCARD}


def check_similarity_name(name: str) -> str:
    """Lower-cased ``name`` if it is a known measure, else a ValueError listing them."""
    key = str(name).lower()
    if key not in _KIND:
        raise ValueError(f"unknown similarity {name!r}; known: {', '.join(SIMILARITIES)}")
    return key


def row_average_ranks(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Replace each row's stored values by their average ranks within the row (1 = lowest).

    Ties share the mean of the ranks they span, as in Spearman's coefficient.
    """
    m = matrix.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.data, rows))
    r_sorted = rows[order]
    v_sorted = m.data[order]
    pos_in_row = np.arange(m.nnz) - m.indptr[r_sorted]  # 0-based position after sorting
    new_group = np.ones(m.nnz, bool)
    new_group[1:] = (r_sorted[1:] != r_sorted[:-1]) | (v_sorted[1:] != v_sorted[:-1])
    gid = np.cumsum(new_group) - 1
    first = np.flatnonzero(new_group)
    sizes = np.diff(np.append(first, m.nnz))
    avg = pos_in_row[first] + (sizes - 1) / 2.0 + 1.0
    ranks = np.empty(m.nnz)
    ranks[order] = avg[gid]
    return sp.csr_matrix((ranks, m.indices.copy(), m.indptr.copy()), shape=m.shape)


def column_means(matrix: sp.csr_matrix) -> np.ndarray:
    """Mean of the stored values of each column (0 for empty columns)."""
    counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    sums = np.bincount(matrix.indices, weights=matrix.data, minlength=matrix.shape[1])
    return np.divide(sums, counts, out=np.zeros(matrix.shape[1]), where=counts > 0)


def prepare_values(matrix: sp.csr_matrix, name: str, baselines=None) -> tuple[sp.csr_matrix, int]:
    """The (row-major, float64, sorted) values the kernel compares, and the kernel's kind.

    ``baselines`` is ``(global_mean, row_bias, column_bias)`` for ``pearson_baseline``.
    """
    name = check_similarity_name(name)
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    m.sum_duplicates()
    m.sort_indices()
    if name == "adjusted_cosine":
        m.data -= column_means(m)[m.indices]
    elif name == "spearman":
        m = row_average_ranks(m)
    elif name == "pearson_baseline":
        if baselines is None:
            raise ValueError("pearson_baseline needs baselines=(global_mean, row_bias, column_bias)")
        mu, bx, by = baselines
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        m.data -= mu + np.asarray(bx, np.float64)[rows] + np.asarray(by, np.float64)[m.indices]
    return m, _KIND[name]


def _kernel_args(m: sp.csr_matrix):
    t = m.T.tocsr()
    t.sort_indices()
    return (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data,
            t.indptr.astype(np.int64), t.indices.astype(np.int64), t.data)


def _effective_support(name: str, min_support: int) -> int:
    # Surprise needs two common columns for the shrunk baseline correlation ((n - 1) factor)
    return max(2, int(min_support)) if name == "pearson_baseline" else max(1, int(min_support))


def similarity_matrix(matrix: sp.spmatrix, name: str = "msd", *, min_support: int = 1,
                      shrinkage: float = 100.0, baselines=None, top_k: int | None = None,
                      block_rows: int = 512):
    """Similarity between all rows of ``matrix``.

    Parameters
    ----------
    matrix : sparse matrix, shape (n_x, n_y)
        Rows are the entities compared (users for user-based k-NN, items for item-based, i.e.
        pass the item x user matrix); stored entries are the ratings.
    name : str
        One of :data:`SIMILARITIES`.
    min_support : int, default 1
        Pairs with fewer common columns get 0 (at least 2 for ``pearson_baseline``).
    shrinkage : float, default 100
        :math:`\\lambda` of ``pearson_baseline`` (ignored by the other measures).
    baselines : (float, array, array), optional
        ``(global_mean, row_bias, column_bias)``; required by ``pearson_baseline``.
    top_k : int, optional
        Keep only each row's ``top_k`` most similar other rows (positive similarities only),
        as a CSR matrix: memory O(n_x * top_k) instead of O(n_x^2) for large catalogs.
    block_rows : int, default 512
        Rows computed at once in ``top_k`` mode (memory ``block_rows * n_x`` floats).

    Returns
    -------
    ndarray of float64, shape (n_x, n_x), symmetric with unit diagonal; or, with ``top_k``,
    csr_matrix (n_x, n_x) with sorted indices and no diagonal.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> R = sp.csr_matrix([[5.0, 3.0, 0.0], [4.0, 0.0, 1.0], [5.0, 3.0, 2.0]])
    >>> similarity_matrix(R, "msd").round(3)[0]
    array([1. , 0.5, 1. ])
    """
    name = check_similarity_name(name)
    m, kind = prepare_values(matrix, name, baselines)
    args = _kernel_args(m)
    support = _effective_support(name, min_support)
    if top_k is None:
        # in pieces of rows with a stop check between them (see recforge.interrupt)
        n_x = m.shape[0]
        sim = np.zeros((n_x, n_x))
        for lo, hi in chunks(n_x, max(64, SIMILARITY_PAIRS_PER_CHUNK // max(n_x, 1))):
            with compiled():
                K.dense_similarity_block(lo, hi, *args, kind, support, float(shrinkage), sim)
        with compiled():
            K.mirror_upper(sim)
        return sim
    n_x = m.shape[0]
    top_k = int(min(top_k, max(n_x - 1, 0)))
    cols, vals = [], []
    for start, _ in chunks(n_x, block_rows):
        rows = np.arange(start, min(n_x, start + block_rows), dtype=np.int64)
        with compiled():
            block = K.similarity_rows(rows, *args, kind, support, float(shrinkage))
        block[np.arange(rows.size), rows] = -np.inf  # never one's own neighbour
        block[block <= 0] = -np.inf
        idx, v = topk_rows(block, top_k)
        cols.append(idx)
        vals.append(v)
    idx = np.concatenate(cols) if cols else np.empty((0, top_k), np.int32)
    v = np.concatenate(vals) if vals else np.empty((0, top_k))
    keep = idx >= 0
    indptr = np.zeros(n_x + 1, np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    out = sp.csr_matrix((v[keep], idx[keep], indptr), shape=(n_x, n_x))
    out.sort_indices()
    logger.info("sparse %s similarity: %d x %d, top %d per row, %d stored, %.1f MB", name, n_x,
                n_x, top_k, out.nnz, similarity_nbytes(out) / 1e6)
    return out


def similarity_nbytes(sim) -> int:
    """Memory held by a similarity matrix (dense array or CSR), in bytes."""
    if sp.issparse(sim):
        return int(sim.data.nbytes + sim.indices.nbytes + sim.indptr.nbytes)
    return int(np.asarray(sim).nbytes)


def similarity_rows(matrix: sp.spmatrix, rows, name: str = "msd", *, min_support: int = 1,
                    shrinkage: float = 100.0, baselines=None) -> np.ndarray:
    """Similarity of the given rows with every row of ``matrix``: (len(rows), n_x) float64."""
    name = check_similarity_name(name)
    m, kind = prepare_values(matrix, name, baselines)
    rows = np.asarray(rows, dtype=np.int64)
    with compiled():
        return K.similarity_rows(rows, *_kernel_args(m), kind,
                                 _effective_support(name, min_support), float(shrinkage))
