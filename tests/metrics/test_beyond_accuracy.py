"""Beyond-accuracy metrics: hand-computed cases and properties."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.metrics import (
    catalog_coverage,
    churn,
    diversity,
    novelty,
    popularity_rank,
    user_coverage,
)


def test_catalog_coverage():
    # items 0, 1, 4 appear among 6 -> 1/2
    assert catalog_coverage([[0, 1], [1, 4], [-1, -1]], n_items=6) == 0.5
    with pytest.raises(ValueError, match="n_items is 3"):
        catalog_coverage([[0, 5]], n_items=3)


def test_user_coverage():
    scores = np.array([[4.2, 3.0], [3.99, 1.0], [4.0, -np.inf], [-np.inf, -np.inf]])
    # rows 0 and 2 reach 4.0 -> 2 of 4
    assert user_coverage(scores, threshold=4.0) == 0.5
    assert user_coverage(scores, threshold=0.0) == 0.75


SIM = np.array([[1.0, 0.5, 0.0, 0.2],
                [0.5, 1.0, 0.2, 0.0],
                [0.0, 0.2, 1.0, 0.9],
                [0.2, 0.0, 0.9, 1.0]])


def test_diversity_hand_computed_dense_sparse_callable():
    rec = np.array([[0, 1, 2], [2, 3, -1], [0, -1, -1]])
    # row 0: pairs (0,1)=.5 (0,2)=0 (1,2)=.2 -> 1 - .7/3 ; row 1: 1 - .9 ; row 2: one item -> NaN
    expected = [1 - 0.7 / 3, 1 - 0.9, np.nan]
    np.testing.assert_allclose(diversity(rec, SIM), expected)
    np.testing.assert_allclose(diversity(rec, sp.csr_matrix(SIM)), expected)
    np.testing.assert_allclose(diversity(rec, lambda a, b: SIM[a, b]), expected)
    np.testing.assert_allclose(diversity(rec, SIM, batch_size=1), expected)


def test_novelty_and_popularity_rank():
    pop = [50, 10, 10, 3]  # ranks 1, 2.5, 2.5, 4
    np.testing.assert_allclose(popularity_rank(pop), [1, 2.5, 2.5, 4])
    np.testing.assert_allclose(novelty([[0, 3], [1, -1], [-1, -1]], pop), [2.5, 2.5, np.nan])


def test_churn_hand_computed():
    a = [[0, 1, 2, 3], [4, 5, -1, -1], [-1, -1, -1, -1], [0, 1, 2, 3]]
    b = [[3, 2, 9, 8], [5, 4, -1, -1], [-1, -1, -1, -1], [0, 1, -1, -1]]
    # row 0: 2 of 4 kept -> .5 ; row 1: same set -> 0 ; row 2: both empty -> NaN ;
    # row 3: 2 common over max(4, 2) -> .5
    np.testing.assert_allclose(churn(a, b), [0.5, 0.0, np.nan, 0.5])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_churn_and_diversity_properties(seed, k):
    rng = np.random.default_rng(seed)
    n_items = 12
    a = np.stack([rng.permutation(n_items)[:k] for _ in range(5)])
    b = np.stack([rng.permutation(n_items)[:k] for _ in range(5)])
    ca = churn(a, b)
    assert np.all((ca >= 0) & (ca <= 1))
    np.testing.assert_allclose(ca, churn(b, a))  # symmetric
    np.testing.assert_allclose(churn(a, a), 0.0)
    np.testing.assert_allclose(churn(a, a[:, ::-1]), 0.0)  # order is ignored
    # identity similarity -> diversity 1; all-ones similarity -> 0
    if k >= 2:
        np.testing.assert_allclose(diversity(a, np.eye(n_items)), 1.0)
        np.testing.assert_allclose(diversity(a, np.ones((n_items, n_items))), 0.0, atol=1e-12)
    nov = novelty(a, rng.random(n_items))
    assert np.all((nov >= 1) & (nov <= n_items))
