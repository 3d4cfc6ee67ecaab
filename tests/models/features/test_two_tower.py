"""Two-tower retrieval: the logQ-corrected batch softmax against its formula, vectors, cold items."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recforge.models.features.two_tower import TwoTower, sampled_softmax_loss

from .test_feature_models import _data


def _slow_loss(q, v, items, log_q, tau, v_neg=None, items_neg=None, log_q_neg=None):
    """Yi et al. (2019) eqs. 3-5 written out per row: s^c(x_i, y_j) = <u_i, v_j>/tau - log p_j,
    accidental hits (another position holding row i's item) left out."""
    B = q.shape[0]
    total = 0.0
    for i in range(B):
        cands = []
        for j in range(B):
            if j != i and items[j] == items[i]:
                continue
            cands.append((j == i, float(q[i] @ v[j]) / tau - (0.0 if log_q is None else float(log_q[j]))))
        if v_neg is not None:
            for m in range(v_neg.shape[0]):
                if items_neg[m] == items[i]:
                    continue
                cands.append((False, float(q[i] @ v_neg[m]) / tau - float(log_q_neg[m])))
        pos = next(s for is_pos, s in cands if is_pos)
        total += -pos + math.log(sum(math.exp(s) for _, s in cands))
    return total / B


def test_logq_corrected_batch_softmax_matches_its_formula():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(4, 3, generator=g, dtype=torch.float64)
    v = torch.randn(4, 3, generator=g, dtype=torch.float64)
    items = torch.tensor([5, 7, 5, 2])  # rows 0 and 2 share an item: accidental hit
    log_q = torch.log(torch.tensor([0.5, 0.1, 0.5, 0.2], dtype=torch.float64))
    got = sampled_softmax_loss(q, v, items, log_q, temperature=0.5)
    assert float(got) == pytest.approx(_slow_loss(q, v, items, log_q, 0.5), rel=1e-10)
    # without the correction it is the plain batch softmax
    assert float(sampled_softmax_loss(q, v, items, None)) == pytest.approx(_slow_loss(q, v, items, None, 1.0))
    # extra sampled negatives, one of them equal to row 1's positive
    v_neg = torch.randn(3, 3, generator=g, dtype=torch.float64)
    items_neg = torch.tensor([7, 9, 11])
    lq_neg = torch.full((3,), math.log(3 / 20), dtype=torch.float64)
    got = sampled_softmax_loss(q, v, items, log_q, 1.0, v_neg, items_neg, lq_neg)
    assert float(got) == pytest.approx(_slow_loss(q, v, items, log_q, 1.0, v_neg, items_neg, lq_neg), rel=1e-10)


def test_two_tower_vectors_and_cold_items():
    inter, itf, uf = _data()
    train = inter.subset(inter.items != 9)  # item 109 never in training
    model = TwoTower(embedding_dim=8, out_dim=8, n_epochs=30, batch_size=16, learning_rate=0.2,
                     threshold=4.0, columns={"item.title": None}).fit(train, item_features=itf, user_features=uf)
    assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]
    v = model.item_vectors()
    assert v.shape == (10, 8) and np.abs(v[9]).sum() > 0  # cold item: vector from its features
    q = model.query_vectors(np.arange(12))
    np.testing.assert_allclose(q @ v.T, model.score_inner(np.arange(12)), rtol=1e-5, atol=1e-5)
    # the cold item (genre B) ranks higher for odd users (who like B) than for even users
    s = q @ v.T
    odd, even = s[1::2, 9].mean(), s[0::2, 9].mean()
    assert odd > even
    new, oov = model.item_vectors_from_features({"genres": ["B", "Z"]})
    np.testing.assert_allclose(new[0], v[9], rtol=1e-5, atol=1e-6)  # same features, same vector
    assert oov["item.genres"] == 1 and oov["item_id"] == 2
    with pytest.raises(TypeError, match="retrieval model"):
        model.predict_proba(["u0"], [100])
