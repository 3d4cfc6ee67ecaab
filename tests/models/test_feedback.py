"""The implicit-feedback matrix and its weightings against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Interactions
from recforge.models.feedback import (
    bm25_weight,
    confidence,
    implicit_feedback,
    tfidf_weight,
    weight,
)


def _ratings():
    return Interactions.from_arrays([1, 1, 2, 2, 3], [10, 20, 10, 30, 20], [5.0, 2.0, 4.0, 3.0, 0.0],
                                    rating_scale=(0, 5))


def test_threshold_keeps_and_counts():
    fb = implicit_feedback(_ratings(), threshold=4)
    assert fb.kept == 2 and fb.dropped == 3
    np.testing.assert_array_equal(fb.matrix.toarray(), [[5, 0, 0], [4, 0, 0], [0, 0, 0]])


def test_non_positive_values_are_dropped_and_binarize():
    fb = implicit_feedback(_ratings(), binarize=True)
    assert fb.dropped == 1 and fb.kept == 4
    np.testing.assert_array_equal(fb.matrix.toarray(), [[1, 1, 0], [1, 0, 1], [0, 0, 0]])


def test_bm25_by_hand():
    x = sp.csr_matrix(np.array([[2.0, 0, 1], [0, 3, 0], [1, 1, 0]]))
    w = bm25_weight(x, k1=1.2, b=0.5).toarray()
    n_users, df = 3, np.array([2, 2, 1])
    lens, avg = np.array([2, 1, 2]), 5 / 3
    for u, i in zip(*np.nonzero(x.toarray()), strict=True):
        r = x[u, i]
        expect = r * 2.2 / (1.2 * (0.5 + 0.5 * lens[u] / avg) + r) * np.log(n_users / df[i])
        assert w[u, i] == pytest.approx(expect)
    assert w[0, 1] == 0


def test_tfidf_and_confidence_by_hand():
    x = sp.csr_matrix(np.array([[4.0, 0], [1.0, 9.0]]))
    t = tfidf_weight(x).toarray()
    assert t[1, 1] == pytest.approx(3 * np.log(2)) and t[0, 0] == pytest.approx(0.0)
    c = confidence(x, alpha=2.0).toarray()
    np.testing.assert_allclose(c, [[9, 0], [3, 19]])
    c = confidence(x, alpha=2.0, scaling="log", epsilon=0.5).toarray()
    assert c[1, 1] == pytest.approx(1 + 2 * np.log(19.0))
    with pytest.raises(ValueError, match="weighting"):
        weight(x, "okapi")
    with pytest.raises(ValueError, match="scaling"):
        confidence(x, 1.0, scaling="sqrt")
