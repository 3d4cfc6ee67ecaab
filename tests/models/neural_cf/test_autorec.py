"""AutoRec (Sedhain et al. 2015): the masked loss and the network against eq. 1-3, the mean
fallbacks, clipping, fold-in of U-AutoRec, seeds, on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recforge.data import IdMap, Interactions
from recforge.models.neural_cf.autorec import (
    MEAN_FALLBACK,
    AutoRecNet,
    IAutoRec,
    UAutoRec,
    autorec_loss,
)
from tests.models.contract import contract_data


def test_masked_loss_is_eq_2():
    pred = torch.tensor([[3.0, 1.0, 4.5], [2.0, 5.0, 0.5]], dtype=torch.float64)
    target = torch.tensor([[4.0, 0.0, 5.0], [0.0, 3.0, 0.0]], dtype=torch.float64)
    mask = (target > 0).to(torch.float64)
    w1 = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    w2 = torch.tensor([[0.5], [3.0]], dtype=torch.float64)
    # observed: (3-4)^2 + (4.5-5)^2 + (5-3)^2 = 1 + 0.25 + 4; penalty (1+4) + (0.25+9) = 14.25
    got = autorec_loss(pred, target, mask, [w1, w2], reg=2.0, reg_share=0.5)
    assert float(got) == pytest.approx(5.25 + 0.5 * 2.0 * 0.5 * 14.25, rel=1e-12)
    # unobserved entries pulled to 0 with weight 0.1: 1^2 + 2^2 + 0.5^2 = 5.25
    got = autorec_loss(pred, target, mask, [w1, w2], reg=0.0, unobserved_weight=0.1)
    assert float(got) == pytest.approx(5.25 + 0.1 * 5.25, rel=1e-12)


def test_network_is_eq_1():
    net = AutoRecNet(4, 3).double()
    torch.nn.init.normal_(net.encoder.weight, generator=torch.Generator().manual_seed(0))
    r = torch.tensor([[5.0, 0.0, 3.0, 0.0]], dtype=torch.float64)
    v, mu = net.encoder.weight.detach().numpy(), net.encoder.bias.detach().numpy()
    w, b = net.decoder.weight.detach().numpy(), net.decoder.bias.detach().numpy()
    hidden = [1 / (1 + np.exp(-(sum(v[j, c] * r[0, c].item() for c in range(4)) + mu[j]))) for j in range(3)]
    expected = [sum(w[o, j] * hidden[j] for j in range(3)) + b[o] for o in range(4)]
    np.testing.assert_allclose(net(r).detach().numpy()[0], expected, rtol=1e-12)


@pytest.mark.parametrize("cls", [IAutoRec, UAutoRec])
def test_prediction_reconstructs_the_input_vector(cls):
    """I-AutoRec: R_ui = h(r^(i))_u (eq. 3); U-AutoRec: R_ui = h(r^(u))_i."""
    data = contract_data()
    model = cls(hidden=5, epochs=3, batch_size=4, random_state=0).fit(data)
    dense = data.csr.toarray()
    u, i = 1, int(np.flatnonzero(dense.sum(axis=0))[2])
    vector = dense[:, i] if cls is IAutoRec else dense[u]
    with torch.no_grad():
        out = model.net_(torch.tensor(vector[None], dtype=torch.float32)).numpy()[0]
    expected = out[u] if cls is IAutoRec else out[i]
    got = model.predict_inner(np.array([u]), np.array([i]), clip=False)[0]
    assert got == pytest.approx(float(expected), abs=1e-5)


def _with_cold_parts() -> Interactions:
    """3 users x 4 items; user 2 and item 3 have no rating."""
    users = np.array([0, 0, 0, 1, 1])
    items = np.array([0, 1, 2, 0, 2])
    values = np.array([5.0, 3.0, 4.0, 1.0, 2.0], np.float32)
    return Interactions(users, items, values, user_map=IdMap(np.array([10, 11, 12])),
                        item_map=IdMap(np.array([20, 21, 22, 23])), kind="explicit", rating_scale=(1.0, 5.0))


@pytest.mark.parametrize("cls", [IAutoRec, UAutoRec])
def test_users_and_items_without_ratings_get_means_and_are_counted(cls):
    data = _with_cold_parts()
    model = cls(hidden=3, epochs=2, batch_size=2).fit(data)
    pred, counts = model.predict(np.array([12, 12, 10, 11, 12]), np.array([20, 22, 23, 23, 23]),
                                 return_fallbacks=True)
    # cold user: item means (20: 3.0, 22: 3.0); cold item: user means (10: 4.0, 11: 1.5);
    # both cold: the global mean 3.0
    np.testing.assert_allclose(pred, [3.0, 3.0, 4.0, 1.5, 3.0])
    assert counts[MEAN_FALLBACK] == 5


def test_predictions_are_clipped_to_the_scale():
    data = _with_cold_parts()
    model = IAutoRec(hidden=3, epochs=1, batch_size=2).fit(data)
    with torch.no_grad():
        model.net_.decoder.bias.fill_(100.0)
    assert model.predict(np.array([10]), np.array([21]))[0] == 5.0
    assert model.predict_inner(np.array([0]), np.array([1]), clip=False)[0] > 50


def test_training_fits_the_observed_ratings():
    data = contract_data()
    model = IAutoRec(hidden=20, reg=0.01, epochs=150, batch_size=14, learning_rate=0.02).fit(data)
    pred = model.predict_inner(data.users, data.items, clip=True)
    assert np.sqrt(np.mean((pred - data.values) ** 2)) < 0.5
    assert model.history_["train_loss"][-1] < 0.2 * model.history_["train_loss"][0]


def test_u_autorec_folds_in_an_anonymous_history():
    data = contract_data()
    model = UAutoRec(hidden=5, epochs=3, batch_size=4).fit(data)
    csr = data.csr
    hist = {int(data.item_map.raw[j]): float(v) for j, v in zip(csr.indices[csr.indptr[2]:csr.indptr[3]],
                                                                 csr.data[csr.indptr[2]:csr.indptr[3]], strict=True)}
    anon = model.recommend(history=[hist], k=4)
    assert anon.fallback[0] is None
    np.testing.assert_array_equal(anon.inner[0], model.recommend([data.user_map.raw[2]], k=4).inner[0])
    # I-AutoRec has no output unit for a new user
    i_model = IAutoRec(hidden=5, epochs=1, batch_size=4).fit(data)
    assert i_model.recommend(history=[hist], k=4).fallback[0] is not None


def test_validation_uses_rmse_on_ratings_and_ndcg_with_the_unobserved_weight():
    from recforge.split import holdout

    parts = holdout(contract_data(), test_ratio=0.2, seed=0)
    m = IAutoRec(hidden=4, epochs=3, batch_size=4).fit(parts.train, validation=parts.test)
    assert "val_rmse" in m.history_ and m.best_epoch_ == 1 + int(np.argmin(m.history_["val_rmse"]))
    m = UAutoRec(hidden=4, epochs=2, batch_size=4, unobserved_weight=0.5).fit(parts.train, validation=parts.test)
    assert "val_ndcg@10" in m.history_


def test_same_seed_same_predictions():
    data = contract_data()
    a = IAutoRec(hidden=5, epochs=3, batch_size=4, random_state=5).fit(data)
    b = IAutoRec(hidden=5, epochs=3, batch_size=4, random_state=5).fit(data)
    c = IAutoRec(hidden=5, epochs=3, batch_size=4, random_state=6).fit(data)
    def pred(m):
        return m.predict_inner(data.users, data.items, clip=False)

    np.testing.assert_array_equal(pred(a), pred(b))
    assert not np.array_equal(pred(a), pred(c))


@pytest.mark.parametrize("kwargs, match", [({"hidden": 0}, "hidden"), ({"reg": -1.0}, "reg"),
                                           ({"unobserved_weight": float("nan")}, "unobserved_weight"),
                                           ({"batch_size": 1.5}, "batch_size")])
def test_bad_hyperparameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IAutoRec(**kwargs).fit(contract_data())


def test_the_implicit_variant_keeps_its_own_outputs_for_unseen_items():
    """With unobserved_weight > 0 every output is trained towards 0 where nothing was observed,
    so an item nobody interacted with is not lifted to a mean (it would top every ranking)."""
    data = _with_cold_parts()
    model = IAutoRec(hidden=4, epochs=5, batch_size=4, unobserved_weight=1.0).fit(data)
    pred, counts = model.predict(np.array([10]), np.array([23]), return_fallbacks=True, clip=False)
    assert MEAN_FALLBACK not in counts
    with torch.no_grad():  # item 23's input is the zero vector; user 10 is output unit 0
        expected = float(model.net_(torch.zeros(1, 3))[0, 0])
    assert pred[0] == pytest.approx(expected, abs=1e-5)
    assert pred[0] != pytest.approx(3.0)  # not the item / global mean
