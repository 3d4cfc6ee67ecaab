"""Paired tests against SciPy directly; Holm by hand; bootstrap intervals: coverage of the
point estimate, seeded reproducibility, agreement with scipy.stats.bootstrap, ratio metrics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from recforge.evaluation.significance import bootstrap_ci, holm, paired_test, pairwise_tests


def test_paired_t_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0.30, 0.1, 200)
    b = a - rng.normal(0.02, 0.05, 200)
    res = paired_test(a, b, "t")
    ref = stats.ttest_rel(a, b)
    assert res["pvalue"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert res["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert res["mean_diff"] == pytest.approx(np.mean(a - b))
    assert res["n"] == 200


def test_wilcoxon_matches_scipy_and_drops_nan_units():
    rng = np.random.default_rng(2)
    a = rng.random(80)
    b = a + rng.normal(0.05, 0.1, 80)
    a_nan = a.copy()
    a_nan[[3, 7]] = np.nan
    res = paired_test(a_nan, b, "wilcoxon")
    keep = np.ones(80, bool)
    keep[[3, 7]] = False
    ref = stats.wilcoxon(a[keep], b[keep], zero_method="wilcox")
    assert res["n"] == 78
    assert res["pvalue"] == pytest.approx(ref.pvalue, rel=1e-12)


def test_identical_vectors_are_not_significant():
    a = np.array([0.0, 1.0, 0.5, 0.2])
    assert paired_test(a, a.copy(), "t")["pvalue"] == 1.0
    assert paired_test(a, a.copy(), "wilcoxon")["pvalue"] == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        paired_test([1, 2], [1, 2], "z")
    with pytest.raises(ValueError, match="one length"):
        paired_test([1, 2, 3], [1, 2], "t")


def test_holm_by_hand():
    # sorted p: 0.01, 0.02, 0.04 -> 3*0.01=0.03, max(0.03, 2*0.02=0.04)=0.04, max(0.04, 0.04)=0.04
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    out = holm([0.5, np.nan, 0.9])
    assert np.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [1.0, 1.0])  # 2*0.5 = 1; max(1, 0.9) = 1


def test_pairwise_tests_cover_every_pair():
    rng = np.random.default_rng(3)
    vecs = {m: rng.random(50) for m in "ABC"}
    df = pairwise_tests(vecs)
    assert len(df) == 3 * 2
    assert set(zip(df.model_a, df.model_b, strict=True)) == {("A", "B"), ("A", "C"), ("B", "C")}
    row = df[(df.model_a == "A") & (df.model_b == "C") & (df.method == "t")].iloc[0]
    assert row.pvalue == pytest.approx(stats.ttest_rel(vecs["A"], vecs["C"]).pvalue)
    assert (df.pvalue_holm >= df.pvalue - 1e-15).all()


def test_bootstrap_contains_mean_and_is_seeded():
    rng = np.random.default_rng(4)
    x = rng.random(300)
    lo, hi = bootstrap_ci(x, seed=7)
    assert lo < x.mean() < hi
    assert (lo, hi) == bootstrap_ci(x, seed=7)
    assert (lo, hi) != bootstrap_ci(x, seed=8)
    # chunked resampling gives the same draws as one block
    assert (lo, hi) == bootstrap_ci(x, seed=7, max_cells=1000)


@pytest.mark.reference
def test_bootstrap_agrees_with_scipy_percentile():
    rng = np.random.default_rng(5)
    x = rng.exponential(1.0, 400)
    lo, hi = bootstrap_ci(x, n_resamples=4000, seed=0)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile",
                          rng=np.random.default_rng(0)).confidence_interval
    se = x.std() / np.sqrt(x.size)
    assert abs(lo - ref.low) < 0.15 * se * 4
    assert abs(hi - ref.high) < 0.15 * se * 4


def test_weighted_ratio_bootstrap_for_rmse():
    # per-user mean squared errors and rating counts: the pooled RMSE is sqrt(sum / count)
    rng = np.random.default_rng(6)
    counts = rng.integers(1, 30, 150).astype(float)
    mse = rng.gamma(2.0, 0.5, 150)
    pooled = np.sqrt((mse * counts).sum() / counts.sum())
    lo, hi = bootstrap_ci(mse, counts, transform=np.sqrt, seed=0)
    assert lo < pooled < hi
    # unit weights = plain mean; weights matter
    assert bootstrap_ci(mse, seed=0) != bootstrap_ci(mse, counts, seed=0)


def test_bootstrap_width_shrinks_with_more_units():
    rng = np.random.default_rng(8)
    small = bootstrap_ci(rng.random(50), seed=0)
    large = bootstrap_ci(rng.random(5000), seed=0, n_resamples=300)
    assert large[1] - large[0] < small[1] - small[0]


def test_bootstrap_empty_is_nan():
    lo, hi = bootstrap_ci(np.array([np.nan, np.nan]))
    assert np.isnan(lo) and np.isnan(hi)

_vals = arrays(np.float64, st.integers(2, 60), elements=st.floats(0, 1, allow_nan=False))


@settings(max_examples=40, deadline=None)
@given(_vals, st.integers(0, 2**31 - 1))
def test_bootstrap_bounds_property(x, seed):
    lo, hi = bootstrap_ci(x, n_resamples=200, seed=seed)
    assert x.min() - 1e-12 <= lo <= hi <= x.max() + 1e-12


@settings(max_examples=40, deadline=None)
@given(_vals, st.integers(0, 2**31 - 1))
def test_paired_tests_are_symmetric(a, seed):
    b = np.random.default_rng(seed).random(a.size)
    for method in ("t", "wilcoxon"):
        ab, ba = paired_test(a, b, method), paired_test(b, a, method)
        assert ab["mean_diff"] == pytest.approx(-ba["mean_diff"])
        assert ab["pvalue"] == pytest.approx(ba["pvalue"], nan_ok=True)
