"""What EASE and SLIM share: the query rows' feedback on the same footing as training."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def history_feedback(matrix: sp.csr_matrix, threshold: float | None, binarize: bool) -> sp.csr_matrix:
    """A query history (rows x items, the values as given) turned into implicit feedback the way
    :func:`~recforge.models.feedback.implicit_feedback` turns the training data: entries below
    ``threshold`` or not positive are dropped, ``binarize`` sets the rest to 1. float64 CSR."""
    h = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    keep = h.data > 0
    if threshold is not None:
        keep &= h.data >= float(threshold)
    h.data = np.where(keep, 1.0 if binarize else h.data, 0.0)
    h.eliminate_zeros()
    return h


def check_positive(owner: str, name: str, value, allow_zero: bool = False) -> float:
    """``value`` as a float; a ``ValueError`` naming ``owner.name`` unless it is finite and
    positive (or zero with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be a finite number {bound}, got {value!r}")
    return v


def check_int(owner: str, name: str, value, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an int; a ``ValueError`` naming ``owner.name`` unless it is an integer >=
    ``minimum`` (or None with ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}"
                         f"{' or None' if allow_none else ''}, got {value!r}")
    return int(value)
