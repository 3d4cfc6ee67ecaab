"""Validation callbacks of the deep-CF models for :class:`~recforge.models.neural.TrainingLoop`.

A model trained with ``fit(train, validation=...)`` scores the validation part after every
epoch: top-N models by NDCG@k / HR@k of full ranking with the training items excluded, rating
models by the RMSE of the validation ratings. The validation part shares the training part's
id maps (a :mod:`recforge.split` part); validation users or items unknown to the model are
left out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ...topk import mask_rows, topk_rows
from ..query import FallbackLog, History


def _check_validation(model, validation) -> None:
    n_users, n_items = getattr(validation, "n_users", None), getattr(validation, "n_items", None)
    if n_users is None or n_items is None:
        raise TypeError(f"{type(model).__name__}: validation must be Interactions, got "
                        f"{type(validation).__name__}")
    if n_items != model.n_items_ or n_users != model.n_users_:
        raise ValueError(f"{type(model).__name__}: validation must share the training part's id "
                         f"maps ({model.n_users_} users x {model.n_items_} items), got "
                         f"{n_users} x {n_items}")


def topn_validator(model, validation, train, k: int = 10,
                   batch_size: int = 1024) -> Callable[[int], dict]:
    """``validate(epoch) -> {"ndcg@k": ..., "hr@k": ...}``: each validation user's held-out
    items ranked among every item not in the user's training row (the model's ``_score``),
    binary-gain NDCG@k and hit rate averaged over users with a validation item."""
    from ...metrics import hit_rate, ndcg_at_k

    _check_validation(model, validation)
    relevant = sp.csr_matrix(validation.csr, dtype=np.float32)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int32)
    seen = sp.csr_matrix(train.csr)
    hist = History.from_csr(seen[users])

    def validate(epoch: int) -> dict:
        model._eval_mode()
        try:
            top = np.empty((users.size, min(k, model.n_items_)), dtype=np.int32)
            for b in range(0, users.size, batch_size):
                rows = np.arange(b, min(b + batch_size, users.size))
                scores = np.array(model._score(users[rows], hist.take(rows), FallbackLog(rows.size)),
                                  dtype=np.float32, copy=True)
                mask_rows(scores, hist.matrix, rows)
                top[rows] = topk_rows(scores, k)[0]
        finally:
            model._train_mode()
        rel = relevant[users]
        return {f"ndcg@{k}": float(np.nanmean(ndcg_at_k(top, rel))),
                f"hr@{k}": float(np.nanmean(hit_rate(top, rel)))}

    return validate


def rating_validator(model, validation) -> Callable[[int], dict]:
    """``validate(epoch) -> {"rmse": ...}`` over the validation ratings (predictions clipped to
    the rating scale, as the rating protocols score them)."""
    _check_validation(model, validation)
    users = np.asarray(validation.users, dtype=np.int32)
    items = np.asarray(validation.items, dtype=np.int32)
    truth = np.asarray(validation.values, dtype=np.float64)

    def validate(epoch: int) -> dict:
        model._eval_mode()
        try:
            pred = model.predict_inner(users, items, clip=True)
        finally:
            model._train_mode()
        return {"rmse": float(np.sqrt(np.mean((pred - truth) ** 2)))}

    return validate
