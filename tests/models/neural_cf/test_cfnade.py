"""CF-NADE: the hybrid cost against a slow per-user transcription of Zheng et al. (2016),
prediction, determinism and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recforge.models.neural_cf._ratings import RatingRows
from recforge.models.neural_cf.cfnade import CFNADE, CFNADENet, cfnade_loss, cfnade_loss_full
from tests.models.contract import contract_data


def _log_softmax(x):
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def _loss_slow(W, c, V, b, users, keys, lam):
    """Per user, per position of its ordering (ascending keys): eq. 10-11 (shared weights),
    the softmax NLL and the ordinal cost of eq. 12-13, mixed by eq. 14; mean over ratings."""
    K = W.shape[0]
    total, count, e0 = 0.0, 0, 0
    for rated in users:
        order = np.argsort(keys[e0:e0 + len(rated)], kind="stable")
        acc = np.zeros_like(c)
        for pos in order:
            i, k = rated[pos]
            h = np.tanh(c + acc)
            s = np.cumsum([b[j, i] + V[j, i] @ h for j in range(K)])
            reg = -_log_softmax(s)[k]
            ordinal = 0.0
            for j in range(k, -1, -1):  # k > k-1 > ... > 1
                ordinal -= s[j] - np.log(np.exp(s[:j + 1]).sum())
            for j in range(k, K):  # k > k+1 > ... > K
                ordinal -= s[j] - np.log(np.exp(s[j:]).sum())
            total += (1 - lam) * reg + lam * ordinal
            count += 1
            acc = acc + sum(W[j, i] for j in range(k + 1))  # rating k uses W^1..W^k
        e0 += len(rated)
    return total / count


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_loss_equals_the_slow_transcription(lam):
    rng = np.random.default_rng(1)
    n, K, H = 5, 3, 4
    net = CFNADENet(n, K, H).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.4, p.shape)))
    users = [[(0, 2), (3, 0), (4, 1)], [(1, 1)], [(0, 0), (1, 2), (2, 2), (4, 0)]]
    rows = np.repeat(np.arange(3), [len(r) for r in users])
    items = np.array([i for r in users for i, _ in r])
    levels = np.array([lvl for r in users for _, lvl in r])
    keys = rng.random(items.size)
    batch = RatingRows(torch.from_numpy(rows), torch.from_numpy(items), torch.from_numpy(levels), 3)
    got = float(cfnade_loss(net, batch, torch.from_numpy(keys), lam).detach())
    want = _loss_slow(*(t.detach().numpy() for t in (net.W, net.c, net.V, net.b)), users, keys, lam)
    assert got == pytest.approx(want, rel=1e-10)


def test_the_ordering_matters_and_entries_need_not_be_sorted():
    rng = np.random.default_rng(2)
    net = CFNADENet(4, 2, 3).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, p.shape)))
    rows = torch.tensor([1, 0, 1, 0, 0])
    items = torch.tensor([2, 0, 3, 1, 3])
    levels = torch.tensor([1, 0, 0, 1, 1])
    batch = RatingRows(rows, items, levels, 2)
    keys = torch.tensor([0.3, 0.9, 0.1, 0.5, 0.2], dtype=torch.float64)
    a = float(cfnade_loss(net, batch, keys, 0.0).detach())
    users = [[(0, 0), (1, 1), (3, 1)], [(2, 1), (3, 0)]]
    slow_keys = np.array([0.9, 0.5, 0.2, 0.3, 0.1])
    assert a == pytest.approx(_loss_slow(*(t.detach().numpy() for t in (net.W, net.c, net.V, net.b)),
                                         users, slow_keys, 0.0), rel=1e-10)
    assert a != pytest.approx(float(cfnade_loss(net, batch, 1.0 - keys, 0.0).detach()), rel=1e-6)


def test_prediction_is_the_expectation_given_every_rating():
    data = contract_data()
    model = CFNADE(n_hidden=6, epochs=2, batch_size=4, random_state=0).fit(data)
    W, c, V, b = (t.detach().double().numpy() for t in (model.net_.W, model.net_.c, model.net_.V,
                                                         model.net_.b))
    u = 3
    sl = slice(model.rows_indptr_[u], model.rows_indptr_[u + 1])
    acc = sum(W[:lvl + 1, i].sum(0) for i, lvl in zip(model.rows_items_[sl], model.rows_levels_[sl],
                                                      strict=True))
    h = np.tanh(c + acc)
    want = []
    for i in range(data.n_items):
        s = np.cumsum([b[j, i] + V[j, i] @ h for j in range(W.shape[0])])
        want.append(np.exp(_log_softmax(s)) @ model.levels_)
    got = model.predict(np.repeat(data.user_map.raw[u], data.n_items), data.item_map.raw, clip=False)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_training_lowers_the_loss_and_is_seeded():
    data = contract_data()
    kw = dict(n_hidden=8, epochs=10, batch_size=4, learning_rate=0.01, random_state=2)
    a, b = CFNADE(**kw).fit(data), CFNADE(**kw).fit(data)
    assert a.history_["train_loss"][-1] < a.history_["train_loss"][0]
    assert a.history_["train_loss"] == b.history_["train_loss"]
    for p, q in zip(a.net_.parameters(), b.net_.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("params, match", [
    ({"ordinal_weight": 1.5}, "ordinal_weight"), ({"batch_size": 0}, "batch_size"),
    ({"weight_decay": -1.0}, "weight_decay")])
def test_bad_hyperparameters_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        CFNADE(**params).fit(contract_data())


# ---------------------------------------------------------------------- unrated="level"
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_full_row_cost_equals_the_sparse_cost_over_every_item(lam):
    """unrated="level": the dense-block cost is eq. 14 over every (user, item) position."""
    torch.manual_seed(0)
    B, n, K, H = 3, 5, 4, 6
    net = CFNADENet(n, K, H).double()
    with torch.no_grad():
        for prm in net.parameters():
            prm.normal_(0, 0.5)
    states = torch.randint(0, K, (B, n))
    keys = torch.rand(B, n, dtype=torch.float64)
    rows, items = np.divmod(np.arange(B * n), n)
    batch = RatingRows(torch.from_numpy(rows), torch.from_numpy(items), states.reshape(-1), B)
    want = cfnade_loss(net, batch, keys.reshape(-1), lam)
    got = cfnade_loss_full(net, states, keys, lam)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("score", ["rated", "joint"])
def test_the_unrated_level_variant_runs_the_contract(score, tmp_path):
    from tests.models.contract import check_model_contract

    model = check_model_contract(lambda: CFNADE(n_hidden=5, epochs=3, batch_size=4, unrated="level",
                                                ranking_score=score, random_state=0),
                                 contract_data(), tmp_path=tmp_path)
    assert model.net_.W.shape[0] == 6  # five levels and "unrated"


def test_presence_scores_need_the_unrated_level():
    with pytest.raises(ValueError, match="ranking_score"):
        CFNADE(ranking_score="rated").fit(contract_data())
    with pytest.raises(ValueError, match="unrated"):
        CFNADE(unrated="zero").fit(contract_data())
