"""Rating-prediction accuracy: MAE, RMSE and their per-user parts.

All functions are vectorized over flat arrays of held-out ratings ``y_true`` and predictions
``y_pred`` (same length). Per-user variants return one value per user so that an evaluator can
average them, or bootstrap over users, without touching the raw pairs again.

References
----------
Herlocker, Konstan, Terveen & Riedl (2004). Evaluating collaborative filtering recommender
systems. ACM TOIS 22(1), section 4.1 (predictive accuracy metrics).
"""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "rmse", "per_user_squared_error", "per_user_absolute_error"]


def _pairs(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if t.size == 0:
        raise ValueError("no ratings to evaluate (y_true is empty)")
    for name, arr in (("y_true", t), ("y_pred", p)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s), first at "
                             f"position {int(np.flatnonzero(bad)[0])}")
    return t, p


def rmse(y_true, y_pred) -> float:
    r"""Root mean squared error.

    .. math:: \mathrm{RMSE} = \sqrt{\frac{1}{|T|} \sum_{(u,i) \in T} (\hat r_{ui} - r_{ui})^2}

    over the held-out pairs :math:`T`.

    Parameters
    ----------
    y_true, y_pred : array-like of float, shape (n,)
        Held-out ratings and the model's predictions for the same pairs.

    Returns
    -------
    float

    Examples
    --------
    >>> rmse([1, 2, 3], [1, 2, 5])
    1.1547005383792515
    """
    t, p = _pairs(y_true, y_pred)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(y_true, y_pred) -> float:
    r"""Mean absolute error.

    .. math:: \mathrm{MAE} = \frac{1}{|T|} \sum_{(u,i) \in T} |\hat r_{ui} - r_{ui}|

    Examples
    --------
    >>> mae([1, 2, 3], [1, 2, 5])
    0.6666666666666666
    """
    t, p = _pairs(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


def _per_user(users, errors: np.ndarray, n_users: int) -> np.ndarray:
    u = np.asarray(users).ravel()
    if u.size != errors.size:
        raise ValueError(f"users has {u.size} entries but there are {errors.size} ratings")
    if u.size and (u.min() < 0 or u.max() >= n_users):
        raise ValueError(f"user index out of range [0, {n_users})")
    u = u.astype(np.int64, copy=False)
    total = np.bincount(u, weights=errors, minlength=n_users)
    count = np.bincount(u, minlength=n_users)
    out = np.full(n_users, np.nan)
    has = count > 0
    out[has] = total[has] / count[has]
    return out


def per_user_squared_error(users, y_true, y_pred, n_users: int) -> np.ndarray:
    r"""Mean squared error of each user's held-out ratings.

    .. math:: \mathrm{MSE}_u = \frac{1}{|T_u|} \sum_{i \in T_u} (\hat r_{ui} - r_{ui})^2

    Parameters
    ----------
    users : array-like of int, shape (n,)
        Inner user index of each held-out pair.
    y_true, y_pred : array-like of float, shape (n,)
    n_users : int
        Length of the output (the user index space).

    Returns
    -------
    ndarray of float64, shape (n_users,)
        ``NaN`` for users without held-out ratings. The pooled RMSE is
        ``sqrt(nansum(mse * counts) / counts.sum())`` with ``counts`` the ratings per user.

    Examples
    --------
    >>> per_user_squared_error([0, 0, 2], [1, 2, 3], [2, 2, 5], 3)
    array([0.5, nan, 4. ])
    """
    t, p = _pairs(y_true, y_pred)
    return _per_user(users, (p - t) ** 2, int(n_users))


def per_user_absolute_error(users, y_true, y_pred, n_users: int) -> np.ndarray:
    r"""Mean absolute error of each user's held-out ratings (``NaN`` without any).

    .. math:: \mathrm{MAE}_u = \frac{1}{|T_u|} \sum_{i \in T_u} |\hat r_{ui} - r_{ui}|
    """
    t, p = _pairs(y_true, y_pred)
    return _per_user(users, np.abs(p - t), int(n_users))
