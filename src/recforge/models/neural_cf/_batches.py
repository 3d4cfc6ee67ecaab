"""Batches of CSR rows for the deep collaborative-filtering models.

The models of :mod:`recforge.models.neural_cf` read a user's row of the interaction matrix as
their input; the whole users x items matrix never goes to the device, only a batch of rows at a
time (``batch_size x n_items`` floats), built from the CSR arrays with NumPy indexing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def binary_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """The rows as a float32 CSR of presence (every stored, non-zero entry becomes 1): these
    models take implicit feedback, so a rating says only that the user interacted."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """Rows ``rows`` of the CSR ``matrix`` as a dense float32 tensor (len(rows), n_cols) on
    ``device`` — one batch, never the whole matrix."""
    rows = np.asarray(rows, dtype=np.int64)
    indptr = matrix.indptr
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    flat = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) \
        + np.arange(int(lengths.sum()))
    r = np.repeat(np.arange(rows.size), lengths)
    out = np.zeros((rows.size, matrix.shape[1]), dtype=np.float32)
    out[r, matrix.indices[flat]] = matrix.data[flat]
    return torch.from_numpy(out).to(device)


def row_batches(n_rows: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Row indices cut into batches of ``batch_size``, shuffled by ``rng`` (in order without)."""
    order = rng.permutation(n_rows) if rng is not None else np.arange(n_rows)
    return [order[b:b + batch_size] for b in range(0, n_rows, batch_size)]
