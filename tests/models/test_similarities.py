"""Similarity measures: hand-computed values and a dense, pair-by-pair reference on random data."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from recforge.models.neighborhood.similarities import (
    SIMILARITIES,
    row_average_ranks,
    similarity_matrix,
    similarity_nbytes,
    similarity_rows,
)


def _hand_matrix() -> sp.csr_matrix:
    """3 users x 4 items (0 = not rated)::

        u0: i0=5, i1=3,       i3=1
        u1: i0=4,       i2=4, i3=1
        u2: i0=1, i1=1, i2=5

    Common items: (u0, u1) -> i0, i3; (u0, u2) -> i0, i1; (u1, u2) -> i0, i2.
    """
    return sp.csr_matrix(np.array([[5, 3, 0, 1], [4, 0, 4, 1], [1, 1, 5, 0]], dtype=float))


HAND = {
    # (u0,u1): 21 / sqrt(26 * 17); (u0,u2): 8 / sqrt(34 * 2); (u1,u2): 24 / sqrt(32 * 26)
    "cosine": [21 / np.sqrt(442), 8 / np.sqrt(68), 24 / np.sqrt(832)],
    # msd = mean squared difference over common items, sim = 1 / (msd + 1)
    "msd": [1 / 1.5, 1 / 11, 1 / 6],
    # (u0,u1): (5,1) vs (4,1) perfectly correlated; u2 resp. u1 constant on the common items -> 0
    "pearson": [1.0, 0.0, 0.0],
    # ranks within rows: u0 (3,2,-,1), u1 (2.5,-,2.5,1), u2 (1.5,1.5,3,-)
    "spearman": [1.0, 0.0, 0.0],
    # ratings centred by item means (10/3, 2, 4.5, 1): u0 (5/3, 1, -, 0), u1 (2/3, -, -1/2, 0),
    # u2 (-7/3, -1, 1/2, -); (u1,u2): (2/3)(-7/3) + (-1/2)(1/2) over norms sqrt(4/9+1/4), sqrt(49/9+1/4)
    "adjusted_cosine": [1.0, -44 / np.sqrt(1972),
                        (-14 / 9 - 0.25) / np.sqrt((4 / 9 + 0.25) * (49 / 9 + 0.25))],
    # |common| / |union| = 2 / 4 for every pair
    "jaccard": [0.5, 0.5, 0.5],
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_computed(name):
    sim = similarity_matrix(_hand_matrix(), name)
    got = [sim[0, 1], sim[0, 2], sim[1, 2]]
    np.testing.assert_allclose(got, HAND[name], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sim, sim.T)
    np.testing.assert_array_equal(np.diag(sim), 1.0)


def test_pearson_baseline_hand_computed():
    """mu = 3, zero biases: residuals u0 (2, 0, -, -2), u1 (1, -, 1, -2), u2 (-2, -2, 2, -).
    (u0,u1) over i0, i3: 6 / sqrt(8 * 5); (u0,u2) over i0, i1: -4 / (2 * sqrt(8)); shrunk by
    (n - 1) / (n - 1 + shrinkage) with n = 2."""
    base = (3.0, np.zeros(3), np.zeros(4))
    raw = similarity_matrix(_hand_matrix(), "pearson_baseline", shrinkage=0, baselines=base)
    np.testing.assert_allclose([raw[0, 1], raw[0, 2]], [6 / np.sqrt(40), -4 / (2 * np.sqrt(8))])
    shrunk = similarity_matrix(_hand_matrix(), "pearson_baseline", shrinkage=100, baselines=base)
    np.testing.assert_allclose(shrunk[0, 1], 6 / np.sqrt(40) / 101)
    # biases move the residuals: b_x = (1, 0, 0) makes u0's residuals (1, -1, -, -3)
    moved = similarity_matrix(_hand_matrix(), "pearson_baseline", shrinkage=0,
                              baselines=(3.0, np.array([1.0, 0, 0]), np.zeros(4)))
    np.testing.assert_allclose(moved[0, 1], (1 * 1 + -3 * -2) / np.sqrt(10 * 5))


def test_min_support_and_msd_example():
    r = sp.csr_matrix([[5.0, 3.0, 0.0], [4.0, 0.0, 1.0], [5.0, 3.0, 2.0]])
    sim = similarity_matrix(r, "msd")
    np.testing.assert_allclose(sim[0], [1.0, 0.5, 1.0])
    # (u0, u1) share one item only: dropped with min_support=2
    sim2 = similarity_matrix(r, "msd", min_support=2)
    assert sim2[0, 1] == 0.0 and sim2[0, 2] == 1.0
    # pearson_baseline always needs two common items
    pb = similarity_matrix(r, "pearson_baseline", shrinkage=0,
                           baselines=(3.0, np.zeros(3), np.zeros(3)))
    assert pb[0, 1] == 0.0 and pb[0, 2] != 0.0


# ---------------------------------------------------------------------------- dense reference
def reference(dense: np.ndarray, name: str, min_support=1, shrinkage=100.0, baselines=None):
    """Pair-by-pair similarity from the definitions; ``dense`` has NaN where not rated."""
    n_x, n_y = dense.shape
    rated = ~np.isnan(dense)
    vals = dense.copy()
    if name == "adjusted_cosine":
        col_mean = np.array([np.mean(vals[rated[:, y], y]) if rated[:, y].any() else 0.0
                             for y in range(n_y)])
        vals = vals - col_mean[None, :]
    if name == "spearman":
        for x in range(n_x):
            vals[x, rated[x]] = rankdata(dense[x, rated[x]], method="average")
    if name == "pearson_baseline":
        mu, bx, by = baselines
        vals = vals - (mu + bx[:, None] + by[None, :])
        min_support = max(2, min_support)
    out = np.eye(n_x)
    for a in range(n_x):
        for b in range(n_x):
            if a == b:
                continue
            common = rated[a] & rated[b]
            n = common.sum()
            if n == 0 or n < min_support:
                out[a, b] = 0.0
                continue
            va, vb = vals[a, common], vals[b, common]
            if name in ("cosine", "adjusted_cosine", "pearson_baseline"):
                den = np.sqrt((va ** 2).sum() * (vb ** 2).sum())
                s = (va * vb).sum() / den if den > 0 else 0.0
                if name == "pearson_baseline":
                    s *= (n - 1) / (n - 1 + shrinkage)
            elif name in ("pearson", "spearman"):
                ca, cb = va - va.mean(), vb - vb.mean()
                den = np.sqrt((ca ** 2).sum() * (cb ** 2).sum())
                s = (ca * cb).sum() / den if den > 1e-12 else 0.0
            elif name == "msd":
                s = 1.0 / (np.mean((va - vb) ** 2) + 1.0)
            else:  # jaccard
                s = n / (rated[a] | rated[b]).sum()
            out[a, b] = s
    return out


def _random(seed: int, n_x: int, n_y: int, density: float):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_x, n_y)) < density
    values = rng.integers(1, 6, (n_x, n_y)).astype(float)
    dense = np.where(mask, values, np.nan)
    return dense, sp.csr_matrix(np.where(mask, values, 0.0))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_x=st.integers(2, 14), n_y=st.integers(1, 12),
       density=st.floats(0.1, 0.9), min_support=st.integers(1, 3),
       name=st.sampled_from(SIMILARITIES))
def test_matches_dense_reference(seed, n_x, n_y, density, min_support, name):
    dense, m = _random(seed, n_x, n_y, density)
    baselines = None
    if name == "pearson_baseline":
        rng = np.random.default_rng(seed + 1)
        baselines = (3.1, rng.normal(0, 0.5, n_x), rng.normal(0, 0.5, n_y))
    got = similarity_matrix(m, name, min_support=min_support, shrinkage=7.0, baselines=baselines)
    want = reference(dense, name, min_support=min_support, shrinkage=7.0, baselines=baselines)
    # pearson via the one-pass formula loses a few ulps when the spread is tiny
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert np.all(np.abs(got) <= 1.0 + 1e-12)


@pytest.mark.parametrize("name", ["cosine", "msd", "pearson", "jaccard", "adjusted_cosine"])
def test_rows_and_sparse_top_k_agree_with_dense(name):
    _, m = _random(3, 40, 25, 0.3)
    dense = similarity_matrix(m, name)
    rows = np.array([0, 7, 39])
    np.testing.assert_allclose(similarity_rows(m, rows, name), dense[rows])
    top = similarity_matrix(m, name, top_k=5, block_rows=16)
    assert sp.issparse(top) and top.shape == dense.shape
    assert similarity_nbytes(top) < similarity_nbytes(dense)
    for x in range(dense.shape[0]):
        row = dense[x].copy()
        row[x] = -np.inf
        row[row <= 0] = -np.inf
        order = np.lexsort((np.arange(row.size), -row))[:5]
        order = order[np.isfinite(row[order])]
        got = top[x]
        np.testing.assert_array_equal(np.sort(got.indices), np.sort(order))
        np.testing.assert_allclose(got.toarray().ravel()[order], row[order])


def test_row_average_ranks_match_scipy():
    _, m = _random(11, 9, 13, 0.6)
    ranks = row_average_ranks(m)
    for x in range(m.shape[0]):
        s, e = m.indptr[x], m.indptr[x + 1]
        np.testing.assert_allclose(ranks.data[s:e], rankdata(m.data[s:e], method="average"))


def test_unknown_name_and_missing_baselines():
    with pytest.raises(ValueError, match="unknown similarity"):
        similarity_matrix(_hand_matrix(), "euclid")
    with pytest.raises(ValueError, match="baselines"):
        similarity_matrix(_hand_matrix(), "pearson_baseline")
