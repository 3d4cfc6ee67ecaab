"""Batches of CSR rows for the deep collaborative-filtering models.

The models of :mod:`recforge.models.neural_cf` read a user's row of the interaction matrix as
their input; the whole users x items matrix never goes to the device, only a batch of rows at a
time (``batch_size x n_items`` floats), built from the CSR arrays with NumPy indexing.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def row_batches(n_rows: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Row indices cut into batches of ``batch_size``, shuffled by ``rng`` (in order without)."""
    order = rng.permutation(n_rows) if rng is not None else np.arange(n_rows)
    return [order[b:b + batch_size] for b in range(0, n_rows, batch_size)]


@dataclass
class RowBatch:
    """One batch of CSR rows on the device.

    ``x``: the rows, dense (n, n_items) float32 (the targets); ``rows`` / ``cols``: the batch row
    and column of each stored entry (nnz,), so input noise is drawn for the stored entries only
    (dropping a zero changes nothing); ``users``: the rows' inner user ids (``-1`` unknown), or
    ``None`` when the model does not read them.
    """

    x: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    users: torch.Tensor | None = None

    def counts(self) -> torch.Tensor:
        """Stored entries per row (n,)."""
        return torch.bincount(self.rows, minlength=self.x.shape[0]).to(self.x.dtype)

    def corrupted(self, p: float, generator: torch.Generator | None,
                  values: torch.Tensor | None = None) -> torch.Tensor:
        """The rows with each stored entry (value ``values``, default 1) zeroed with probability
        ``p`` and the kept ones scaled by ``1 / (1 - p)`` (inverted dropout, Srivastava et al.
        2014), drawn from ``generator``; ``p = 0``: the rows themselves (with ``values``)."""
        vals = torch.ones_like(self.rows, dtype=self.x.dtype) if values is None else values
        if p > 0:
            keep = torch.rand(vals.shape, generator=generator, device=vals.device, dtype=vals.dtype) >= p
            vals = vals * keep.to(vals.dtype) / (1.0 - p)
        out = torch.zeros_like(self.x)
        out[self.rows, self.cols] = vals
        return out


def row_batch(matrix: sp.csr_matrix, rows: np.ndarray, device: torch.device,
              users: np.ndarray | None = None) -> RowBatch:
    """Rows ``rows`` of the binary CSR ``matrix`` as a :class:`RowBatch` on ``device``."""
    rows = np.asarray(rows, dtype=np.int64)
    indptr = matrix.indptr
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    flat = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths) \
        + np.arange(int(lengths.sum()))
    r = np.repeat(np.arange(rows.size), lengths)
    c = matrix.indices[flat].astype(np.int64)
    x = np.zeros((rows.size, matrix.shape[1]), dtype=np.float32)
    x[r, c] = matrix.data[flat]
    ids = None if users is None else torch.from_numpy(np.asarray(users, dtype=np.int64)).to(device)
    return RowBatch(torch.from_numpy(x).to(device), torch.from_numpy(r).to(device),
                    torch.from_numpy(c).to(device), ids)
