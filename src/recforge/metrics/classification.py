"""Click-prediction (binary classification) metrics over labelled pairs: ROC AUC and log loss.

These score a model's predicted click probabilities for held-out (user, item[, context]) pairs
whose labels are known (e.g. rating >= 4 on MovieLens), the CTR protocol of Rendle (2010),
Cheng et al. (2016), Guo et al. (2017) and Wang et al. (2021). Unlike
:func:`recforge.metrics.ranking.auc` (one AUC per user over the full item ranking), the AUC
here is global: one ranking of all test pairs.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["roc_auc", "log_loss", "per_row_log_loss"]


def _labels_scores(y_true, y_score, name: str = "y_score") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true and {name} differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("no pairs to evaluate (y_true is empty)")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must hold binary labels 0 / 1")
    if np.isnan(s).any():
        raise ValueError(f"{name} contains NaN")
    return y, s


def roc_auc(y_true, y_score) -> float:
    r"""Area under the ROC curve of scores for binary labels.

    .. math:: \mathrm{AUC} = \frac{1}{|P||N|} \sum_{i \in P} \sum_{j \in N}
              \left([s_i > s_j] + \tfrac12 [s_i = s_j]\right)

    computed from average ranks (Mann–Whitney U; Hanley & McNeil 1982), O(n log n); equals
    ``sklearn.metrics.roc_auc_score``. NaN when only one class is present.

    Examples
    --------
    >>> roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.5, 0.5])  # (1 + 1 + 1 + 0.5) / 4
    0.875
    """
    y, s = _labels_scores(y_true, y_score)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks, ties shared
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def per_row_log_loss(y_true, y_prob, eps: float = 1e-7) -> np.ndarray:
    r"""Per-pair binary cross-entropy :math:`-y\log p - (1-y)\log(1-p)`, with :math:`p` clipped
    to :math:`[\epsilon, 1-\epsilon]`."""
    y, p = _labels_scores(y_true, y_prob, "y_prob")
    if (p < 0).any() or (p > 1).any():
        raise ValueError("y_prob must be probabilities in [0, 1]")
    p = np.clip(p, eps, 1.0 - eps)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


def log_loss(y_true, y_prob, eps: float = 1e-7) -> float:
    r"""Mean binary cross-entropy (log loss) of predicted probabilities.

    .. math:: \mathrm{LogLoss} = -\frac{1}{n}\sum_{j} y_j \log p_j + (1-y_j)\log(1-p_j)

    Examples
    --------
    >>> round(log_loss([1, 0], [0.8, 0.2]), 6)  # -log 0.8
    0.223144
    """
    return float(per_row_log_loss(y_true, y_prob, eps).mean())
