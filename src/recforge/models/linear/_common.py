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


def grow_maps(model, interactions) -> tuple[np.ndarray, np.ndarray]:
    """The shared bookkeeping of ``partial_fit``: ``model``'s id maps grown by the users and
    items of ``interactions`` (new ones appended, inner indices of the old unchanged), its user
    counts and item popularity extended and increased by the new interactions. Returns the
    inner indices, in the grown maps, of ``interactions``' users and items."""
    model.user_map_, new_users = model.user_map_.grow(interactions.user_map.raw)
    model.item_map_, new_items = model.item_map_.grow(interactions.item_map.raw)
    n_users, n_items = len(model.user_map_), len(model.item_map_)
    counts = np.zeros(n_users, np.int64)
    counts[:model.user_counts_.size] = model.user_counts_
    model.user_counts_ = counts + np.bincount(new_users[interactions.users], minlength=n_users)
    pop = np.zeros(n_items, np.float32)
    pop[:model.item_popularity_.size] = model.item_popularity_
    model.item_popularity_ = pop + np.bincount(new_items[interactions.items],
                                               minlength=n_items).astype(np.float32)
    model.n_users_, model.n_items_ = n_users, n_items
    return new_users, new_items


def grow_feedback(old: sp.csr_matrix, added: sp.csr_matrix, new_users: np.ndarray,
                  new_items: np.ndarray, shape: tuple[int, int], binarize: bool) -> sp.csr_matrix:
    """``old`` (users x items feedback) grown to ``shape`` with ``added`` (rows and columns in
    its own index space, mapped by ``new_users`` / ``new_items``) summed in; with ``binarize``
    a pair seen again stays 1. Sorted float64 CSR."""
    o, a = old.tocoo(), added.tocoo()
    grown = sp.csr_matrix((np.concatenate([o.data, a.data]),
                           (np.concatenate([o.row, new_users[a.row]]),
                            np.concatenate([o.col, new_items[a.col]]))), shape=shape,
                          dtype=np.float64)
    grown.sum_duplicates()
    if binarize:
        grown.data[:] = 1.0
    grown.sort_indices()
    return grown
