"""NCF (He et al. 2017): the log loss and the three networks against their formulas, negative
sampling, pre-training, seeds, errors and the fallback of unknown users, on tiny data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.data import Interactions
from recforge.models.neural_cf.ncf import (
    GMF,
    MLP,
    NCFNet,
    NeuMF,
    load_pretrained,
    pointwise_log_loss,
    sample_negatives,
    training_pairs,
)
from tests.models.contract import contract_data


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _net(factors: int, layers: list[int], seed: int = 0) -> NCFNet:
    net = NCFNet(5, 7, factors, layers)
    net.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():  # larger weights than the N(0, 0.01) start, so every term matters
        for m in net.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed + 1))
    return net.double()


def test_pointwise_log_loss_is_eq_7_averaged():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    expected = -(math.log(_sigmoid(2.0)) + math.log(1 - _sigmoid(-1.0)) + math.log(_sigmoid(0.5))
                 + math.log(1 - _sigmoid(3.0))) / 4
    assert float(pointwise_log_loss(logits, labels)) == pytest.approx(expected, rel=1e-12)


def test_gmf_logit_is_eq_9():
    net = _net(3, [])
    u, i = 2, 5
    p, q = net.user_gmf.weight[u].detach().numpy(), net.item_gmf.weight[i].detach().numpy()
    h, b = net.out.weight[0].detach().numpy(), float(net.out.bias.detach()[0])
    expected = sum(h[f] * p[f] * q[f] for f in range(3)) + b
    got = float(net(torch.tensor([u]), torch.tensor([i])).detach()[0])
    assert got == pytest.approx(expected, rel=1e-12)


def _mlp_by_hand(net: NCFNet, u: int, i: int) -> np.ndarray:
    z = np.concatenate([net.user_mlp.weight[u].detach().numpy(), net.item_mlp.weight[i].detach().numpy()])
    for layer in net.tower:
        w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
        z = np.array([max(0.0, sum(w[r, c] * z[c] for c in range(z.size)) + b[r]) for r in range(w.shape[0])])
    return z


def test_mlp_logit_is_eq_10():
    net = _net(0, [6, 4, 2])
    u, i = 1, 6
    z = _mlp_by_hand(net, u, i)
    expected = float(net.out.weight[0].detach().numpy() @ z + float(net.out.bias.detach()[0]))
    assert float(net(torch.tensor([u]), torch.tensor([i])).detach()[0]) == pytest.approx(expected, rel=1e-12)


def test_neumf_logit_is_eq_11_12():
    net = _net(3, [6, 4])
    u, i = 4, 0
    gmf = (net.user_gmf.weight[u] * net.item_gmf.weight[i]).detach().numpy()
    phi = np.concatenate([gmf, _mlp_by_hand(net, u, i)])
    expected = float(net.out.weight[0].detach().numpy() @ phi + float(net.out.bias.detach()[0]))
    assert float(net(torch.tensor([u]), torch.tensor([i])).detach()[0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("factors, layers", [(3, []), (0, [6, 4, 2]), (0, [6]), (3, [6, 4])])
def test_score_all_equals_the_pairwise_forward(factors, layers):
    net = _net(factors, layers)
    users = torch.arange(5)
    with torch.no_grad():
        full = net.score_all(users, max_pairs=9).numpy()  # several user chunks
        pairs = net(users.repeat_interleave(7), torch.arange(7).repeat(5)).numpy().reshape(5, 7)
    np.testing.assert_allclose(full, pairs, rtol=1e-12, atol=1e-12)


def test_pretrained_neumf_is_the_alpha_mixture_of_gmf_and_mlp():
    """Section 3.4.1: with h = [a h_gmf; (1-a) h_mlp] and bias a b_gmf + (1-a) b_mlp, the NeuMF
    logit is exactly a * GMF logit + (1 - a) * MLP logit before fine-tuning."""
    gmf, mlp, neumf = _net(3, [], seed=1), _net(0, [6, 4], seed=2), _net(3, [6, 4], seed=3)
    load_pretrained(neumf, gmf, mlp, alpha=0.3)
    users, items = torch.arange(5).repeat_interleave(7), torch.arange(7).repeat(5)
    with torch.no_grad():
        np.testing.assert_allclose(neumf(users, items).numpy(),
                                   (0.3 * gmf(users, items) + 0.7 * mlp(users, items)).numpy(), rtol=1e-12)


def test_negatives_are_unseen_and_uniform():
    seen = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 1], [1, 1, 1, 1, 0]], np.float32))
    users = np.repeat([0, 1, 2], 20000)
    neg = sample_negatives(seen, users, np.random.default_rng(0))
    dense = seen.toarray()
    assert not dense[users, neg].any()
    assert set(neg[users == 2].tolist()) == {4}
    freq = np.bincount(neg[users == 0], minlength=5)[2:] / 20000
    np.testing.assert_allclose(freq, 1 / 3, atol=0.015)


def test_training_pairs_hold_every_positive_and_num_ng_negatives_each():
    seen = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]], np.float32))
    u, i, y = training_pairs(seen, 3, np.random.default_rng(0))
    pos = y == 1
    assert sorted(zip(u[pos].tolist(), i[pos].tolist(), strict=True)) == [(0, 0), (0, 2), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3)]
    # user 2 has seen every item: no negatives; the others get 3 per positive
    assert np.bincount(u[~pos], minlength=3).tolist() == [6, 3, 0]
    assert not seen.toarray()[u[~pos], i[~pos]].any()


def test_training_lowers_the_loss_and_learns_the_data():
    data = contract_data()
    model = GMF(factors=8, epochs=30, batch_size=16, learning_rate=0.05, random_state=0).fit(data)
    loss = model.history_["train_loss"]
    assert loss[-1] < 0.5 * loss[0]
    proba = model.predict_proba(data.users, data.items)
    assert proba.mean() > 0.7  # the observed pairs are now likely


def test_same_seed_same_scores_other_seed_other_scores():
    data = contract_data()
    users = np.arange(data.n_users, dtype=np.int32)

    def scores(seed):
        m = NeuMF(factors=4, layers=[8, 4], epochs=2, batch_size=8, random_state=seed).fit(data)
        return m.score_inner(users)

    np.testing.assert_array_equal(scores(3), scores(3))
    assert not np.array_equal(scores(3), scores(4))


def test_global_generators_are_untouched():
    before_torch = torch.random.get_rng_state().clone()
    before_np = np.random.get_state()[1].copy()  # noqa: NPY002 (the legacy global state itself)
    NeuMF(factors=4, layers=[8, 4], pretrain=True, epochs=1, batch_size=8).fit(contract_data())
    assert torch.equal(before_torch, torch.random.get_rng_state())
    assert np.array_equal(before_np, np.random.get_state()[1])  # noqa: NPY002


def test_pretrained_neumf_fine_tunes_with_sgd_and_keeps_the_pretraining_histories():
    data = contract_data()
    model = NeuMF(factors=4, layers=[8, 4], pretrain=True, pretrain_epochs=2, epochs=1,
                  batch_size=8, random_state=0).fit(data)
    assert isinstance(model._make_optimizer(), torch.optim.SGD)
    assert len(model.pretrain_history_["gmf"]["epoch"]) == 2
    assert len(model.pretrain_history_["mlp"]["epoch"]) == 2
    plain = NeuMF(factors=4, layers=[8, 4], epochs=1, batch_size=8).fit(data)
    assert isinstance(plain._make_optimizer(), torch.optim.Adam)
    assert plain.pretrain_history_ is None


def test_fit_pretrained_starts_from_the_given_models():
    data = contract_data()
    gmf = GMF(factors=4, epochs=2, batch_size=8, random_state=1).fit(data)
    mlp = MLP(layers=[8, 4], epochs=2, batch_size=8, random_state=2).fit(data)
    neumf = NeuMF(factors=4, layers=[8, 4], pretrain=True, epochs=1, batch_size=8, learning_rate=0.0)
    neumf.fit_pretrained(data, gmf, mlp)  # lr 0: the weights stay the loaded ones
    users = np.arange(data.n_users, dtype=np.int32)
    np.testing.assert_allclose(neumf.score_inner(users),
                               0.5 * gmf.score_inner(users) + 0.5 * mlp.score_inner(users), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="factors and layers"):
        NeuMF(factors=8, layers=[8, 4]).fit_pretrained(data, gmf, mlp)


def test_validation_records_ndcg_and_stops_early():
    data = contract_data()
    from recforge.split import leave_one_out

    parts = leave_one_out(data, mode="latest")
    model = GMF(factors=4, epochs=40, batch_size=8, learning_rate=0.0, patience=2,
                random_state=0).fit(parts.train, validation=parts.test)
    assert "val_ndcg@10" in model.history_ and "val_hr@10" in model.history_
    assert len(model.history_["epoch"]) == 3  # lr 0: nothing improves after the first epoch
    assert model.best_epoch_ == 1


def test_unknown_user_gets_the_reported_popularity_fallback():
    data = contract_data()
    model = GMF(factors=4, epochs=1, batch_size=8).fit(data)
    rec = model.recommend(["nobody"], k=3, history=[{100: 5.0}])
    assert rec.fallback[0] == "unknown user (model cannot fold in): popularity"


@pytest.mark.parametrize("cls, kwargs, match", [
    (GMF, {"factors": 0}, "factors"),
    (MLP, {"layers": [7, 4]}, "layers"),
    (NeuMF, {"alpha": 1.5}, "alpha"),
    (GMF, {"num_ng": -1}, "num_ng"),
    (GMF, {"optimizer": "rmsprop"}, "optimizer"),
    (MLP, {"epochs": 0}, "epochs"),
])
def test_bad_hyperparameters_are_named(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs).fit(contract_data())


def test_values_are_ignored_every_interaction_is_positive():
    data = contract_data()
    ones = Interactions(data.users, data.items, np.ones(data.nnz, np.float32), user_map=data.user_map,
                        item_map=data.item_map, kind="implicit")
    users = np.arange(data.n_users, dtype=np.int32)
    a = GMF(factors=4, epochs=2, batch_size=8).fit(data).score_inner(users)
    b = GMF(factors=4, epochs=2, batch_size=8).fit(ones).score_inner(users)
    np.testing.assert_array_equal(a, b)
