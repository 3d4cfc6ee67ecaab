import numpy as np
import pytest

from recforge.topk import SCAN_MAX_K, _topk_rows_partition, topk_rows


def reference(scores, k):
    """Sort each row by (-score, column); -inf and NaN never returned."""
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    idx = np.full((n_rows, k), -1, dtype=np.int32)
    val = np.full((n_rows, k), -np.inf, dtype=scores.dtype)
    for r in range(n_rows):
        ok = [c for c in range(n_cols) if scores[r, c] > -np.inf]
        ok.sort(key=lambda c: (-scores[r, c], c))
        ok = ok[:k]
        idx[r, :len(ok)] = ok
        val[r, :len(ok)] = scores[r, ok]
    return idx, val


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_topk_rows_equals_a_sort_with_ties_to_the_lower_column(dtype, k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 6, size=(30, 40)).astype(dtype)  # many ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    scores[3] = -np.inf  # a row with nothing to return
    scores[4, ::3] = np.nan
    want_idx, want_val = reference(scores, k)
    for got_idx, got_val in (topk_rows(scores, k), _topk_rows_partition(scores, k)):
        np.testing.assert_array_equal(got_idx, want_idx)
        np.testing.assert_array_equal(got_val, want_val)
        assert got_idx.dtype == np.int32 and got_val.dtype == dtype
    assert (topk_rows(scores, k)[0][3] == -1).all()


def test_topk_rows_one_pass_and_partition_agree_on_large_rows():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 20_000)).astype(np.float32)
    scores[:, 7] = scores[:, 12] = 50.0  # a tie at the top: column 7 first
    ascending = np.sort(rng.normal(size=(1, 5_000)))  # worst case for the buffer: every score enters
    for s, k in ((scores, 10), (scores, SCAN_MAX_K), (ascending, 25)):
        a_idx, a_val = topk_rows(s, k)
        b_idx, b_val = _topk_rows_partition(s, k)
        np.testing.assert_array_equal(a_idx, b_idx)
        np.testing.assert_array_equal(a_val, b_val)
    assert topk_rows(scores, 2)[0][:, :2].tolist() == [[7, 12]] * 5
    assert topk_rows(ascending, 3)[0].tolist() == [[4999, 4998, 4997]]


def test_topk_rows_other_dtypes_and_wide_k():
    scores = np.array([[3, 1, 3, 2]], dtype=np.int64)
    assert topk_rows(scores, 2)[0].tolist() == [[0, 2]]
    wide = np.random.default_rng(1).normal(size=(2, 400))
    np.testing.assert_array_equal(topk_rows(wide, 300)[0], reference(wide, 300)[0])
    assert topk_rows(wide, 0)[0].shape == (2, 0)
