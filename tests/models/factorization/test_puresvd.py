"""PureSVD: the truncated SVD of the zero-filled matrix, and scores r_u Q Q^T."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.models.base import RATING
from recforge.models.factorization import PureSVD
from recforge.models.query import History

from ..contract import check_fold_in_exact, contract_data


def test_factors_are_the_top_singular_subspace():
    data = contract_data()
    model = PureSVD(n_factors=4, random_state=0).fit(data)
    r = data.csr.toarray().astype(np.float64)
    u, s, vt = np.linalg.svd(r, full_matrices=False)
    np.testing.assert_allclose(model.singular_values_, s[:4], rtol=1e-8)
    q = model.item_factors_
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-10)
    # same subspace as the dense SVD (signs and rotations aside): equal projectors
    np.testing.assert_allclose(q @ q.T, vt[:4].T @ vt[:4], atol=1e-8)
    np.testing.assert_allclose(model.user_factors_, r @ q, atol=1e-10)


def test_scores_are_the_projection_of_the_row():
    data = contract_data()
    model = PureSVD(n_factors=3, random_state=0).fit(data)
    r = data.csr.toarray().astype(np.float64)
    users = np.arange(data.n_users, dtype=np.int32)
    scores = model.score_inner(users, history=data.csr)
    q = model.item_factors_
    np.testing.assert_allclose(scores, r @ q @ q.T, rtol=1e-5, atol=1e-5)
    assert not model.has(RATING)


def test_anonymous_history_equal_to_a_training_row_gives_that_user_s_scores():
    data = contract_data()
    model = PureSVD(n_factors=3, random_state=0).fit(data)
    check_fold_in_exact(model, data, k=10)
    csr = data.csr
    u = 3
    items = csr.indices[csr.indptr[u]:csr.indptr[u + 1]]
    row = csr[u]
    anon = model.score_inner(np.array([-1]), history=History.from_csr(row))
    known = model.score_inner(np.array([u]))  # no history: the fitted projection
    np.testing.assert_allclose(anon, known, rtol=1e-6, atol=1e-6)
    assert items.size > 0


def test_a_known_user_with_a_new_history_is_scored_from_it():
    data = contract_data()
    model = PureSVD(n_factors=3, random_state=0).fit(data)
    other = sp.csr_matrix(data.csr[5])
    as_user_2 = model.score_inner(np.array([2]), history=History.from_csr(other))
    as_user_5 = model.score_inner(np.array([5]), history=History.from_csr(other))
    np.testing.assert_allclose(as_user_2, as_user_5, rtol=1e-6)
    assert not np.allclose(as_user_2, model.score_inner(np.array([2])))


def test_two_seeds_give_the_same_scores_and_big_ranks_are_lowered():
    data = contract_data()
    a = PureSVD(n_factors=50, random_state=1).fit(data)
    b = PureSVD(n_factors=50, random_state=2).fit(data)
    assert a.item_factors_.shape[1] == min(data.n_users, data.n_items) - 1
    users = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_allclose(a.score_inner(users, history=data.csr),
                               b.score_inner(users, history=data.csr), atol=1e-4)
    with pytest.raises(ValueError, match="n_factors"):
        PureSVD(n_factors=0).fit(data)
