"""Paired significance tests and bootstrap confidence intervals on per-unit metric vectors.

Every model in a bake-off is evaluated on the same units (users for top-N and rating protocols,
test events for session protocols), so two models' metric vectors are paired and the right
test is a paired one: the paired t-test (Student 1908) on the per-unit differences, and the
Wilcoxon signed-rank test (Wilcoxon 1945) when normality of the differences is doubtful.
Smucker, Allan & Carterette, "A comparison of statistical significance tests for information
retrieval evaluation", CIKM 2007, recommend the t-test and bootstrap for IR metrics.

Confidence intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13) over
units. A metric that is a ratio of sums (RMSE = sqrt(sum of squared errors / number of ratings))
is resampled as such: each resample draws units with replacement and recomputes the ratio from
the drawn numerators and denominators, so users with many ratings weigh as they do in the
point estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

TESTS = ("t", "wilcoxon")


def paired_test(a, b, method: str = "t") -> dict:
    """Paired test of ``mean(a - b) == 0`` over units where both values are finite.

    Parameters
    ----------
    a, b : array-like of float, shape (n_units,)
        Per-unit metric values of two models on the same units.
    method : {'t', 'wilcoxon'}
        ``'t'``: :func:`scipy.stats.ttest_rel`; ``'wilcoxon'``: :func:`scipy.stats.wilcoxon`
        (zero differences dropped, the ``'wilcox'`` convention).

    Returns
    -------
    dict
        ``statistic``, ``pvalue`` (two-sided), ``n`` (units used), ``mean_diff`` (mean of
        ``a - b``), ``method``. When every difference is zero the models are indistinguishable
        on these units and ``pvalue`` is 1.0 (SciPy would return NaN).
    """
    if method not in TESTS:
        raise ValueError(f"method must be one of {TESTS}, got {method!r}")
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired vectors must be 1-d of one length, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    diff = a - b
    out = {"method": method, "n": int(diff.size),
           "mean_diff": float(diff.mean()) if diff.size else float("nan")}
    if diff.size < 2:
        out.update(statistic=float("nan"), pvalue=float("nan"))
        return out
    if not np.any(diff):
        out.update(statistic=0.0, pvalue=1.0)
        return out
    if method == "t" and np.all(diff == diff[0]):
        # a constant non-zero difference: zero variance, t is infinite and p is 0
        out.update(statistic=float(np.copysign(np.inf, diff[0])), pvalue=0.0)
        return out
    if method == "t":
        res = stats.ttest_rel(a, b)
    else:
        res = stats.wilcoxon(a, b, zero_method="wilcox")
    out.update(statistic=float(res.statistic), pvalue=float(res.pvalue))
    return out


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (Holm 1979), NaN kept in place.

    The family-wise error rate over all pairs of models stays below the level at which the
    adjusted values are read.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def bootstrap_ci(values, weights=None, *, confidence: float = 0.95, n_resamples: int = 1000,
                 seed: int | np.random.Generator | None = 0,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 max_cells: int = 20_000_000) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a (weighted) mean over units.

    The statistic is ``transform(sum(w * v) / sum(w))`` over the resampled units; with unit
    weights it is the plain mean. Pass per-user mean squared errors as ``values``, rating counts
    as ``weights`` and ``numpy.sqrt`` as ``transform`` to get an RMSE interval.

    Parameters
    ----------
    values : array-like of float, shape (n_units,)
        Per-unit values; non-finite entries (units where the metric is undefined) are left out.
    weights : array-like of float, shape (n_units,), optional
        Non-negative unit weights (default 1).
    confidence : float
        Two-sided coverage, e.g. 0.95.
    n_resamples : int
    seed : int, Generator or None
        Resampling is reproducible for a fixed seed; the global NumPy state is never used.
    transform : callable, optional
        Applied to the resampled weighted means (vectorized).
    max_cells : int
        Resamples are drawn in chunks of at most this many indices, bounding memory.

    Returns
    -------
    (low, high) : tuple of float
        NaN when there are no units.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    v = np.asarray(values, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    if v.shape != w.shape or v.ndim != 1:
        raise ValueError("values and weights must be 1-d of one length")
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    v, w = v[ok], w[ok]
    n = v.size
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    wv = w * v
    stat = np.empty(n_resamples)
    chunk = max(1, int(max_cells // n))
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        stat[start:stop] = wv[idx].sum(axis=1) / w[idx].sum(axis=1)
    if transform is not None:
        stat = np.asarray(transform(stat), dtype=np.float64)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stat, [alpha, 1.0 - alpha])
    return float(low), float(high)


def pairwise_tests(vectors: dict[str, np.ndarray], methods=TESTS) -> pd.DataFrame:
    """Every pair of models compared on one metric with each paired test, Holm-adjusted.

    Parameters
    ----------
    vectors : dict[str, ndarray]
        Model name -> per-unit values on the same units (same order).
    methods : sequence of {'t', 'wilcoxon'}

    Returns
    -------
    DataFrame
        One row per (model_a, model_b, method): ``mean_diff`` (a - b), ``statistic``,
        ``pvalue``, ``pvalue_holm`` (adjusted within each method over all pairs), ``n``.
    """
    rows = []
    for a, b in combinations(list(vectors), 2):
        for method in methods:
            res = paired_test(vectors[a], vectors[b], method=method)
            rows.append({"model_a": a, "model_b": b, **res})
    df = pd.DataFrame(rows, columns=["model_a", "model_b", "method", "n", "mean_diff",
                                     "statistic", "pvalue"])
    df["pvalue_holm"] = np.nan
    for method in methods:
        sel = (df["method"] == method).to_numpy()
        if sel.any():
            df.loc[sel, "pvalue_holm"] = holm(df.loc[sel, "pvalue"].to_numpy())
    return df
