"""Ranking and multitask models on the two towers: the losses against their formulas, cold
items from their features, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recforge.data import Interactions
from recforge.models import load_model
from recforge.models.features.ranking import TwoTowerMultitask, TwoTowerRanking, rating_loss

from .test_feature_models import _data
from .test_two_tower import _slow_loss


def _small(**kw):
    params = dict(embedding_dim=8, out_dim=8, rating_hidden=[16, 8], n_epochs=20, batch_size=16,
                  optimizer="adam", learning_rate=0.01, columns={"item.title": None}, random_state=0)
    params.update(kw)
    return params


def test_rating_loss_matches_its_formula():
    """Mean squared error 1/B sum (r_hat - r)^2 and mean log loss
    -1/B sum [y log s(z) + (1 - y) log(1 - s(z))], written out per row."""
    pred = torch.tensor([3.5, 1.0, 4.2, 2.0], dtype=torch.float64)
    r = torch.tensor([4.0, 2.0, 5.0, 2.0], dtype=torch.float64)
    slow = sum((float(p) - float(t)) ** 2 for p, t in zip(pred, r, strict=True)) / 4
    assert float(rating_loss(pred, r)) == pytest.approx(slow, rel=1e-12)
    assert slow == pytest.approx((0.25 + 1.0 + 0.64 + 0.0) / 4)
    z = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    sig = [1 / (1 + math.exp(-float(v))) for v in z]
    slow = -sum(float(t) * math.log(s) + (1 - float(t)) * math.log(1 - s) for s, t in zip(sig, y, strict=True)) / 3
    assert float(rating_loss(z, y, "logloss")) == pytest.approx(slow, rel=1e-12)
    with pytest.raises(ValueError, match="loss"):
        rating_loss(z, y, "hinge")


def test_multitask_loss_is_the_weighted_sum_of_the_two_losses():
    inter, itf, uf = _data()
    model = TwoTowerMultitask(**_small(n_epochs=3), rating_weight=0.7, retrieval_weight=0.2)
    model.fit(inter, item_features=itf, user_features=uf)
    sel = np.arange(0, len(inter), 3)[:10]
    u, i, r = inter.users[sel], inter.items[sel], inter.values[sel]
    got = model.batch_losses(u, i, r)
    # the combination the training loop uses (float32 tensors)
    assert got["total"] == pytest.approx(0.7 * got["rating"] + 0.2 * got["retrieval"], rel=1e-6)
    # the rating term: mean squared error of the rating model's predictions
    pred = model.predict_inner(u, i, clip=False)
    assert got["rating"] == pytest.approx(float(np.mean((pred - r) ** 2)), rel=1e-5)
    # the retrieval term: the logQ-corrected batch softmax (Yi et al. eqs. 3-5), summed over the batch
    q = torch.from_numpy(model.query_vectors(u).astype(np.float64))
    v = torch.from_numpy(model.item_vectors()[i].astype(np.float64))
    log_q = torch.from_numpy(model.item_log_freq_[i].astype(np.float64)) + math.log(model.batch_size)
    slow = _slow_loss(q, v, torch.from_numpy(i.astype(np.int64)), log_q, 1.0) * sel.size
    assert got["retrieval"] == pytest.approx(slow, rel=1e-5)
    assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]


def test_ranking_is_the_multitask_model_with_weights_one_and_zero():
    inter, itf, uf = _data()
    rank = TwoTowerRanking(**_small(n_epochs=3)).fit(inter, item_features=itf, user_features=uf)
    joint = TwoTowerMultitask(**_small(n_epochs=3), rating_weight=1.0, retrieval_weight=0.0,
                              logq_correction=False).fit(inter, item_features=itf, user_features=uf)
    np.testing.assert_allclose(rank.history_["train_loss"], joint.history_["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(rank.predict_inner(inter.users, inter.items),
                               joint.predict_inner(inter.users, inter.items), rtol=1e-6)
    # the ranking model ranks by predicted rating
    scores = rank.score_inner(np.arange(3))
    np.testing.assert_allclose(scores[1], rank.predict_inner(np.full(10, 1), np.arange(10), clip=False),
                               rtol=1e-6)


def test_cold_item_is_predicted_from_its_features_and_learns_ratings():
    inter, itf, uf = _data()
    train = inter.subset(inter.items != 9)  # item 109 (genre B) never in training
    model = TwoTowerRanking(**_small(n_epochs=40)).fit(train, item_features=itf, user_features=uf)
    rmse = float(np.sqrt(np.mean((model.predict_inner(train.users, train.items) - train.values) ** 2)))
    assert rmse < 0.5  # ratings are 1 or 5: it fits them
    users = np.array([f"u{u}" for u in range(12)])
    cold = model.predict(users, np.full(12, 109))
    # the cold item is genre B: odd users (who rate B 5) get a higher prediction than even ones
    assert cold[1::2].mean() > cold[0::2].mean() + 1.0
    # a new item, not in the id map, with the same features gets the same predictions
    new, fb = model.predict_features(users, np.full(12, 999), item_table={"genres": ["B"] * 12},
                                     return_fallbacks=True)
    np.testing.assert_allclose(new, cold, rtol=1e-5)
    assert fb == {"unseen item_id value: out-of-vocabulary row": 12}  # the new id, counted
    _, fb = model.predict_features(users[:2], [999, 999], item_table={"genres": ["Z", "B"]}, return_fallbacks=True)
    assert fb == {"unseen item_id value: out-of-vocabulary row": 2,
                  "unseen item.genres value: out-of-vocabulary row": 1}


def test_save_load_round_trip(tmp_path):
    inter, itf, uf = _data()
    model = TwoTowerMultitask(**_small(n_epochs=2)).fit(inter, item_features=itf, user_features=uf)
    path = model.save(tmp_path / "m")
    assert (path / "feature_spec.json").exists() and (path / "weights.safetensors").exists()
    back = load_model(path)
    assert type(back) is TwoTowerMultitask and back.get_params() == model.get_params()
    np.testing.assert_array_equal(back.predict_inner(inter.users, inter.items),
                                  model.predict_inner(inter.users, inter.items))
    np.testing.assert_array_equal(back.score_inner(np.arange(12)), model.score_inner(np.arange(12)))
    users = np.array(["u1", "u2"])
    np.testing.assert_array_equal(back.predict_features(users, [999, 999], item_table={"genres": ["A", "B"]}),
                                  model.predict_features(users, [999, 999], item_table={"genres": ["A", "B"]}))


def test_click_variant_predicts_probabilities():
    inter, itf, uf = _data()
    model = TwoTowerRanking(**_small(n_epochs=20), loss="logloss").fit(inter, item_features=itf, user_features=uf)
    p = model.predict_inner(inter.users, inter.items)
    assert p.min() >= 0.0 and p.max() <= 1.0
    click = inter.values >= 4
    assert p[click].mean() > p[~click].mean() + 0.3


def test_bad_parameters_and_data_are_named():
    inter, itf, uf = _data()
    with pytest.raises(ValueError, match="loss"):
        TwoTowerRanking(loss="hinge").fit(inter, item_features=itf)
    with pytest.raises(ValueError, match="rating_weight and retrieval_weight"):
        TwoTowerMultitask(rating_weight=0.0, retrieval_weight=0.0).fit(inter, item_features=itf)
    with pytest.raises(ValueError, match="rating_hidden"):
        TwoTowerRanking(rating_hidden=[0]).fit(inter, item_features=itf)
    implicit = Interactions(inter.users, inter.items, np.ones(len(inter), np.float32), user_map=inter.user_map,
                            item_map=inter.item_map, kind="implicit")
    with pytest.raises(ValueError, match="explicit ratings"):
        TwoTowerRanking(n_epochs=1).fit(implicit, item_features=itf)
    with pytest.raises(TypeError, match="predicts ratings"):
        TwoTowerRanking(**_small(n_epochs=1)).fit(inter, item_features=itf).predict_proba(["u0"], [100])


def test_field_sums_and_their_gradient_equal_lookup_then_pooling():
    """The towers' one-pass field embeddings (embedding_bag forward, index_add backward) equal
    FeatureEmbedding.slots then .fields, values and table gradient."""
    from recforge.models.features.embedding import FeatureEmbedding, field_sums

    g = torch.Generator().manual_seed(0)
    slot_fields = np.array([0, 1, 1, 1, 2, 3, 3])
    emb = FeatureEmbedding(20, 4, slot_fields, np.array([0, 5, 10, 15])).double()
    with torch.no_grad():
        emb.embedding.weight.copy_(torch.randn(20, 4, generator=g, dtype=torch.float64))
    idx = torch.randint(0, 20, (5, 7), generator=g)
    idx[0, :3] = 3  # repeated rows within a batch row: their gradients add up
    val = torch.rand(5, 7, generator=g, dtype=torch.float64)
    val[1, 2] = 0.0
    upstream = torch.randn(5, 4, 4, generator=g, dtype=torch.float64)
    slow = emb.fields(emb.slots(idx, val))
    (slow * upstream).sum().backward()
    slow_grad = emb.embedding.weight.grad.clone()
    emb.embedding.weight.grad = None
    fast = field_sums(emb.embedding.weight, idx, val, torch.as_tensor(slot_fields), torch.tensor([0, 1, 4, 5]))
    (fast * upstream).sum().backward()
    torch.testing.assert_close(fast, slow)
    torch.testing.assert_close(emb.embedding.weight.grad, slow_grad)


def test_the_training_loss_is_the_weighted_sum():
    """One batch holding every rating and a negligible step: the epoch's recorded loss is the
    loss at the initial weights, rating_weight * MSE + retrieval_weight * summed softmax."""
    inter, itf, uf = _data()
    model = TwoTowerMultitask(**dict(_small(n_epochs=1), optimizer="sgd", learning_rate=1e-12,
                                     batch_size=len(inter)), rating_weight=0.5, retrieval_weight=2.0)
    model.fit(inter, item_features=itf, user_features=uf)
    got = model.batch_losses(inter.users, inter.items, inter.values)
    assert model.history_["train_loss"][0] == pytest.approx(got["total"], rel=1e-5)
    assert got["total"] == pytest.approx(0.5 * got["rating"] + 2.0 * got["retrieval"], rel=1e-6)
