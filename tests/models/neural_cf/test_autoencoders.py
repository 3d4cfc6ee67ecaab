"""Mult-DAE / Mult-VAE (Liang et al. 2018) and CDAE (Wu et al. 2016): each loss against its
formula written out slowly on tiny tensors, the KL annealing schedule, input noise, fold-in,
seeds, validation early stopping, bad hyperparameters. Training runs a few steps on tiny data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.data import Interactions
from recforge.models.neural_cf._batches import binary_rows, row_batch
from recforge.models.neural_cf.autoencoders import (
    MultDAE,
    MultVAE,
    gaussian_kl,
    kl_weight,
    multinomial_nll,
)
from recforge.models.neural_cf.cdae import CDAE, cdae_loss
from recforge.split import holdout_per_user


def _data(n_users: int = 30, n_items: int = 12, seed: int = 0) -> Interactions:
    """Two groups of users, each clicking mostly in its own half of the catalogue."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        half = np.arange(n_items // 2) + (n_items // 2) * (u % 2)
        chosen = rng.choice(half, size=4, replace=False)
        users += [u] * chosen.size
        items += chosen.tolist()
    return Interactions.from_arrays(np.array(users), np.array(items), np.ones(len(users)))


# ---------------------------------------------------------------------- losses vs formulas
def test_multinomial_nll_is_the_formula():
    logits = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    expected = 0.0
    for r in range(2):
        z = sum(math.exp(v) for v in logits[r].tolist())
        expected -= sum(x[r, i].item() * math.log(math.exp(logits[r, i].item()) / z) for i in range(3))
    assert multinomial_nll(logits, x).item() == pytest.approx(expected / 2, rel=1e-12)


def test_gaussian_kl_is_the_formula():
    mu = torch.tensor([[0.3, -1.2], [0.0, 0.5]], dtype=torch.float64)
    logvar = torch.tensor([[0.1, -0.4], [0.0, 0.7]], dtype=torch.float64)
    expected = 0.0
    for r in range(2):
        for k in range(2):
            var = math.exp(logvar[r, k].item())
            expected += 0.5 * (var + mu[r, k].item() ** 2 - 1.0 - math.log(var))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected / 2, rel=1e-12)
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0  # q = prior


@pytest.mark.parametrize("loss", ["log", "square"])
def test_cdae_loss_is_the_formula(loss):
    s = torch.tensor([[0.4, -2.0, 1.1, 0.0], [3.0, 0.2, -0.7, 1.5]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)

    def slow(m):
        total = 0.0
        for r in range(2):
            for i in range(4):
                if m is not None and m[r, i] == 0:
                    continue
                yi, si = y[r, i].item(), s[r, i].item()
                if loss == "log":
                    p = 1.0 / (1.0 + math.exp(-si))
                    total += -(yi * math.log(p) + (1 - yi) * math.log(1 - p))
                else:
                    total += (yi - si) ** 2
        return total / 2

    assert cdae_loss(s, y, loss).item() == pytest.approx(slow(None), rel=1e-12)
    assert cdae_loss(s, y, loss, mask).item() == pytest.approx(slow(mask), rel=1e-12)


def test_kl_annealing_schedule():
    assert [kl_weight(t, 0.2, 10) for t in (0, 1, 2, 5)] == pytest.approx([0.0, 0.1, 0.2, 0.2])
    assert [kl_weight(t, 1.0, 4) for t in (0, 1, 2, 3, 4, 100)] == pytest.approx([0, .25, .5, .75, 1, 1])
    assert kl_weight(0, 0.3, 0) == 0.3  # no annealing: the cap from the first update
    model = MultVAE(hidden_dims=[6, 3], epochs=3, batch_size=10, anneal_cap=0.5, total_anneal_steps=4,
                    random_state=0).fit(_data())
    # 30 users / 10 = 3 updates an epoch; beta after the last update of epochs 1, 2, 3: 2/4, cap, cap
    assert model.history_["beta"] == pytest.approx([0.5, 0.5, 0.5])
    slow = MultVAE(hidden_dims=[6, 3], epochs=3, batch_size=10, anneal_cap=1.0, total_anneal_steps=20,
                   random_state=0).fit(_data())
    assert slow.history_["beta"] == pytest.approx([2 / 20, 5 / 20, 8 / 20])


@pytest.mark.parametrize("epsilon_std", [1.0, 0.01])
def test_mult_loss_is_the_beta_elbo_of_the_network(epsilon_std):
    """The Mult-VAE batch loss = multinomial NLL + beta * KL, computed here by hand from the
    network's layers (input L2-normalised, no dropout, the same noise draw)."""
    data = _data()
    model = MultVAE(hidden_dims=[6, 3], dropout=0.0, epochs=1, batch_size=30, anneal_cap=0.4,
                    total_anneal_steps=0, epsilon_std=epsilon_std, random_state=0).fit(data)
    x_csr = binary_rows(data.csr)
    batch = row_batch(x_csr, np.arange(5), torch.device("cpu"))
    net = model.net_
    with torch.no_grad():
        got = model._batch_loss(batch, {"updates": 7, "generator": torch.Generator().manual_seed(3)})
        x = batch.x.double()
        h = x / x.norm(dim=1, keepdim=True)
        w = {k: v.double() for k, v in net.state_dict().items()}
        h = torch.tanh(h @ w["encoder.0.weight"].T + w["encoder.0.bias"])
        enc = h @ w["to_latent.weight"].T + w["to_latent.bias"]
        mu, logvar = enc[:, :3], enc[:, 3:]
        eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float32).double()
        z = mu + epsilon_std * eps * torch.exp(0.5 * logvar)
        d = torch.tanh(z @ w["decoder.0.weight"].T + w["decoder.0.bias"])
        logits = d @ w["out.weight"].T + w["out.bias"]
        nll = -(torch.log_softmax(logits, 1) * x).sum(1).mean()
        kl = (0.5 * (logvar.exp() + mu ** 2 - 1 - logvar)).sum(1).mean()
    assert got.item() == pytest.approx((nll + 0.4 * kl).item(), rel=1e-5)


def test_input_noise_drops_stored_entries_only_and_rescales():
    m = sp.csr_matrix(np.array([[1, 0, 1, 1], [0, 1, 0, 0]], dtype=np.float32))
    batch = row_batch(m, np.array([0, 1]), torch.device("cpu"))
    np.testing.assert_array_equal(batch.corrupted(0.0, None).numpy(), m.toarray())
    noisy = batch.corrupted(0.5, torch.Generator().manual_seed(0)).numpy()
    assert set(np.unique(noisy[m.toarray() > 0])) <= {0.0, 2.0}  # dropped, or kept and x 1/(1-p)
    assert (noisy[m.toarray() == 0] == 0).all()


# ---------------------------------------------------------------------- the models
@pytest.mark.parametrize("factory", [
    lambda: MultDAE(hidden_dims=[8, 4], epochs=3, batch_size=8, learning_rate=1e-2, random_state=0),
    lambda: MultVAE(hidden_dims=[8, 4], epochs=3, batch_size=8, learning_rate=1e-2,
                    total_anneal_steps=10, random_state=0),
    lambda: CDAE(hidden=8, epochs=3, batch_size=8, learning_rate=1e-2, random_state=0),
    lambda: CDAE(hidden=8, epochs=3, batch_size=8, loss="square", negatives=2, activation="sigmoid",
                 random_state=0),
], ids=["MultDAE", "MultVAE", "CDAE", "CDAE-square-sampled"])
def test_same_seed_same_scores_and_a_different_seed_differs(factory):
    data = _data()
    users = np.arange(data.n_users, dtype=np.int32)
    a = factory().fit(data).score_inner(users, history=data.csr)
    b = factory().fit(data).score_inner(users, history=data.csr)
    np.testing.assert_array_equal(a, b)
    other = factory().set_params(random_state=1).fit(data).score_inner(users, history=data.csr)
    assert not np.array_equal(a, other)


def test_scores_come_from_the_history_alone_for_mult_models():
    data = _data()
    model = MultVAE(hidden_dims=[8, 4], epochs=2, batch_size=8, random_state=0).fit(data)
    raw = data.item_map.raw
    by_id = model.recommend(data.user_map.raw[[3]], k=4)
    row = data.csr[3]
    anon = model.recommend(history=[list(raw[row.indices])], k=4)
    np.testing.assert_array_equal(by_id.inner, anon.inner)
    assert anon.fallback[0] is None


def test_cdae_user_node_is_zero_for_anonymous_rows():
    data = _data()
    model = CDAE(hidden=8, epochs=2, batch_size=8, random_state=0).fit(data)
    hist = binary_rows(data.csr[[3]])
    known = model._hidden(np.array([3]), hist).numpy()
    anon = model._hidden(np.array([-1]), hist).numpy()
    v = model.net_.user.weight[3].detach().numpy()
    w, b = model.net_.encoder.weight.detach().numpy(), model.net_.encoder.bias.detach().numpy()
    x = hist.toarray()[0]
    np.testing.assert_allclose(known[0], np.maximum(w @ x + b + v, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(anon[0], np.maximum(w @ x + b, 0), rtol=1e-5, atol=1e-6)


def test_learns_the_two_groups():
    """After training, a user of group 0 ranks the unseen group-0 items above group 1's."""
    data = _data(n_users=60, seed=1)
    for model in (MultVAE(hidden_dims=[16, 4], epochs=40, batch_size=20, learning_rate=1e-2,
                          total_anneal_steps=50, random_state=0),
                  MultDAE(hidden_dims=[16, 4], epochs=40, batch_size=20, learning_rate=1e-2, random_state=0),
                  CDAE(hidden=8, epochs=40, batch_size=20, learning_rate=1e-2, random_state=0)):
        model.fit(data)
        rec = model.recommend(data.user_map.raw[[0, 1]], k=2)
        raw_items = data.item_map.raw
        assert all(int(i) < 6 for i in raw_items[rec.inner[0]]), type(model).__name__
        assert all(int(i) >= 6 for i in raw_items[rec.inner[1]]), type(model).__name__


def test_validation_early_stopping_records_ndcg_and_keeps_the_best_epoch():
    data = _data(n_users=60, seed=2)
    parts = holdout_per_user(data, test_ratio=0.25, seed=0)
    model = MultDAE(hidden_dims=[8, 4], epochs=6, batch_size=20, patience=2, val_k=3,
                    random_state=0).fit(parts.train, validation=parts.test)
    hist = model.history_
    assert set(hist) >= {"epoch", "train_loss", "seconds", "val_ndcg@3", "val_recall@3"}
    assert model.best_epoch_ == int(np.argmax(hist["val_ndcg@3"])) + 1
    with pytest.raises(ValueError, match="validation"):
        MultDAE(epochs=1).fit(parts.train, validation=Interactions.from_arrays([0], [0], [1.0]))


def test_item_and_query_vectors_give_the_scores():
    data = _data()
    model = CDAE(hidden=8, epochs=2, batch_size=8, random_state=0).fit(data)
    users = np.arange(data.n_users, dtype=np.int32)
    q, v = model.query_vectors(users), model.item_vectors()
    assert v.shape == (data.n_items, 9) and q.shape == (data.n_users, 9)
    np.testing.assert_allclose(q @ v.T, model.score_inner(users, history=data.csr), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_dims": []}, "hidden_dims"),
    ({"dropout": 1.0}, "dropout"),
    ({"epochs": 0}, "epochs"),
    ({"learning_rate": 0}, "learning_rate"),
    ({"l2": -1}, "l2"),
    ({"total_anneal_steps": -1}, "total_anneal_steps"),
    ({"epsilon_std": -1.0}, "epsilon_std"),
])
def test_bad_hyperparameters_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultVAE(**kwargs).fit(_data())


@pytest.mark.parametrize("kwargs, match", [
    ({"activation": "softmax"}, "activation"), ({"loss": "hinge"}, "loss"),
    ({"corruption": -0.1}, "corruption"), ({"negatives": 0}, "negatives"), ({"hidden": 0}, "hidden"),
])
def test_bad_cdae_hyperparameters_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CDAE(**kwargs).fit(_data())
