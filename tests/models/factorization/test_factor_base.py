"""The factor-model base: scores, vectors, fold-in against a direct least-squares solve."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recforge.models.base import register
from recforge.models.factorization import FactorModel, fold_in_least_squares

from ..contract import check_model_contract, contract_data


@register("_ToyFactorModel")
class ToyFactorModel(FactorModel):
    """Biases by one ALS pass, factors from a rank-2 SVD of the residuals: enough to test the
    shared plumbing."""

    def __init__(self, rank: int = 2, reg_all: float = 0.1):
        self.rank = rank
        self.reg_all = reg_all

    def _fit(self, train, *, item_features=None, validation=None):
        r = train.csr.toarray().astype(np.float64)
        seen = r > 0
        self.mu_ = float(r[seen].mean())
        self.item_bias_ = np.where(seen.any(0), (np.where(seen, r - self.mu_, 0).sum(0))
                                   / (seen.sum(0) + 5.0), 0.0)
        self.user_bias_ = (np.where(seen, r - self.mu_ - self.item_bias_, 0).sum(1)
                           / (seen.sum(1) + 5.0))
        resid = np.where(seen, r - self.mu_ - self.item_bias_ - self.user_bias_[:, None], 0.0)
        u, s, vt = np.linalg.svd(resid, full_matrices=False)
        self.user_factors_ = u[:, :self.rank] * np.sqrt(s[:self.rank])
        self.item_factors_ = vt[:self.rank].T * np.sqrt(s[:self.rank])


def test_contract(tmp_path):
    check_model_contract(lambda: ToyFactorModel(), contract_data(), tmp_path=tmp_path, atol=1e-5)


def test_fold_in_equals_a_direct_least_squares_solve():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(12, 3))
    bi = rng.normal(size=12)
    hist = sp.csr_matrix(np.where(rng.random((4, 12)) < 0.5, rng.integers(1, 6, (4, 12)), 0.0))
    f, b = fold_in_least_squares(hist, q, bi, 3.5, reg_factors=0.3, reg_bias=0.7)
    for r in range(4):
        items = hist[r].indices
        x = np.hstack([q[items], np.ones((items.size, 1))])
        y = hist[r].data - 3.5 - bi[items]
        # ridge as an augmented least-squares problem
        xa = np.vstack([x, np.diag(np.sqrt([0.3, 0.3, 0.3, 0.7]))])
        ya = np.concatenate([y, np.zeros(4)])
        w = np.linalg.lstsq(xa, ya, rcond=None)[0]
        np.testing.assert_allclose(np.append(f[r], b[r]), w, rtol=1e-10, atol=1e-12)


def test_vectors_give_the_scores_and_predictions():
    data = contract_data()
    model = ToyFactorModel().fit(data)
    users = np.arange(data.n_users)
    scores = model.query_vectors(users) @ model.item_vectors().T
    np.testing.assert_allclose(scores, model.score_inner(users, history=data.csr), rtol=1e-5, atol=1e-5)
    uu, ii = np.meshgrid(users, np.arange(data.n_items), indexing="ij")
    np.testing.assert_allclose(model.predict_inner(uu.ravel(), ii.ravel(), clip=False),
                               scores.ravel(), rtol=1e-5, atol=1e-5)
