"""FM, Wide & Deep, DeepFM and DCN-v2: formulas against slow transcriptions, out-of-vocabulary
values at query time, cold items, save/load with the feature spec, the click task."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from recforge.data import Dataset, FeatureSpec, IdMap, Interactions, ItemFeatures, UserFeatures
from recforge.models import load_model
from recforge.models.features.dcn import CrossLayers, DCNv2
from recforge.models.features.deepfm import DeepFM
from recforge.models.features.embedding import fm_pairwise
from recforge.models.features.fm import FM
from recforge.models.features.wide_deep import WideDeep


def _data(n_users=12, n_items=10, seed=3):
    """Users like items of their own 'side' (even users: genre A, odd: genre B): clicks are
    rating 5, others 1; every user rates 6 items."""
    rng = np.random.default_rng(seed)
    users, items, values = [], [], []
    genre = np.array(["A" if i % 2 == 0 else "B" for i in range(n_items)])
    for u in range(n_users):
        for i in rng.choice(n_items, 6, replace=False):
            users.append(u)
            items.append(i)
            like = (genre[i] == "A") == (u % 2 == 0)
            values.append(5.0 if like else 1.0)
    umap = IdMap(np.array([f"u{u}" for u in range(n_users)]))
    imap = IdMap(np.arange(100, 100 + n_items))
    inter = Interactions(np.array(users), np.array(items), np.array(values), user_map=umap, item_map=imap,
                         timestamps=1.7e9 + 3600.0 * np.arange(len(users)), rating_scale=(1.0, 5.0))
    items_df = pd.DataFrame({"item": imap.raw, "genres": genre, "title": [f"film {g}" for g in genre]})
    itf = ItemFeatures.from_dataframe(items_df, imap, title="title", categorical={"genres": "|"})
    side = np.array(["even" if u % 2 == 0 else "odd" for u in range(n_users)])
    uf = UserFeatures.from_dataframe(pd.DataFrame({"side": side}, index=umap.raw), umap)
    return inter, itf, uf


# ---------------------------------------------------------------------- formulas
def test_fm_identity_equals_the_explicit_pairwise_sum():
    """Rendle (2010) lemma 3.1: 1/2 sum_f [(sum_i v_if x_i)^2 - sum_i v_if^2 x_i^2]
    == sum_{i<j} <v_i, v_j> x_i x_j."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn(3, 7, 5, generator=g, dtype=torch.float64)
    x = torch.randn(3, 7, generator=g, dtype=torch.float64)
    x[0, 2] = 0.0  # a zero feature contributes nothing
    slow = torch.zeros(3, dtype=torch.float64)
    for b in range(3):
        for i, j in itertools.combinations(range(7), 2):
            slow[b] += (v[b, i] @ v[b, j]) * x[b, i] * x[b, j]
    fast = fm_pairwise(v * x.unsqueeze(-1))
    torch.testing.assert_close(fast, slow)


def test_fm_model_output_is_rendle_equation_one():
    inter, itf, uf = _data()
    model = FM(embedding_dim=3, n_epochs=1, batch_size=8, init_std=0.3).fit(inter, item_features=itf,
                                                                          user_features=uf)
    net = model.net_
    idx = np.concatenate([model.user_idx_[[2]], model.item_idx_[[5]],
                          model.feature_spec_.encode_context(None, 1).idx], axis=1)
    val = np.concatenate([model.user_val_[[2]], model.item_val_[[5]],
                          model.feature_spec_.encode_context(None, 1).val], axis=1)
    w = net.emb.linear.weight.detach().double().numpy()[:, 0]
    V = net.emb.embedding.weight.detach().double().numpy()
    i, x = idx[0], val[0].astype(np.float64)
    y = float(net.emb.bias.detach()) + sum(w[i[a]] * x[a] for a in range(i.size))
    y += sum(V[i[a]] @ V[i[b]] * x[a] * x[b] for a, b in itertools.combinations(range(i.size), 2))
    got = model._forward_encoded(model.user_idx_[[2]], model.user_val_[[2]], model.item_idx_[[5]],
                                 model.item_val_[[5]], idx[:, 0:0], val[:, 0:0])
    assert got[0] == pytest.approx(y, rel=1e-4, abs=1e-6)


def test_dcn_cross_layer_is_equation_one():
    g = torch.Generator().manual_seed(1)
    layers = CrossLayers(4, 2)
    layers.reset_parameters(g)
    with torch.no_grad():
        layers.b.normal_(generator=g)
    x0 = torch.randn(5, 4, generator=g)
    x = x0
    for lyr in range(2):
        x = x0 * (x @ layers.w[lyr].detach().T + layers.b[lyr].detach()) + x
    torch.testing.assert_close(layers(x0), x)
    low = CrossLayers(4, 1, rank=2)
    low.reset_parameters(g)
    w = low.u[0] @ low.v[0].T
    torch.testing.assert_close(low(x0), x0 * (x0 @ w.T + low.b[0]) + x0)


# ---------------------------------------------------------------------- learning and cold start
@pytest.mark.parametrize("cls", [FM, DeepFM, WideDeep, DCNv2])
def test_learns_the_side_rule_and_scores_cold_items_from_features(cls):
    inter, itf, uf = _data()
    kw = dict(embedding_dim=4, n_epochs=30, batch_size=16, learning_rate=0.05, init_std=0.1,
              columns={"item_id": None, "user_id": None, "item.title": None})
    if cls is not FM:
        kw["hidden"] = [8]
    if cls is WideDeep:  # the wide part memorises the side x genre cross (Cheng et al. eq. 1)
        kw.update(crosses=[["user.side", "item.genres"]], cross_buckets=16)
    model = cls(**kw).fit(inter, item_features=itf, user_features=uf)
    y, p = model.click_labels_and_probabilities(inter)
    from recforge.metrics import roc_auc

    assert roc_auc(y, p) > 0.95
    # a brand-new item (not in the id map) given as a feature row: even users like genre A
    pa, log = model.predict_proba(["u0", "u1"], [999, 999], item_table={"genres": ["A", "A"]},
                                  return_fallbacks=True)
    assert pa[0] > pa[1]
    assert log == {}  # no id field here, and genre A is known: nothing fell back


def test_unseen_value_at_query_time_uses_the_oov_row_and_is_counted():
    inter, itf, uf = _data()
    model = DeepFM(embedding_dim=4, hidden=[8], n_epochs=2, batch_size=16).fit(
        inter, item_features=itf, user_features=uf)
    oov_row = model.feature_spec_.field("item.genres").offset
    assert np.all(model.net_.emb.embedding.weight.detach().numpy()[oov_row] == 0)  # never trained
    p, log = model.predict_proba(["u0", "u0", "nobody"], [100, 100, 101],
                                 item_table={"genres": ["Western", "A", "A"], "title": ["x", "y", "z"]},
                                 return_fallbacks=True)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    assert log["unseen item.genres value: out-of-vocabulary row"] == 1
    assert log["unknown user: out-of-vocabulary id and missing features"] == 1
    # the OOV genre scores as 'no genre': the same as an item row with the genre left out
    q = model.predict_proba(["u0"], [100], item_table={"genres": [""], "title": ["x"]})
    assert p[0] == pytest.approx(q[0], rel=1e-6)


def test_save_load_keeps_spec_tables_and_scores(tmp_path):
    inter, itf, uf = _data()
    model = WideDeep(embedding_dim=4, hidden=[8], n_epochs=2, batch_size=16, context=["hour", "weekday"],
                     crosses=[["user.side", "item_id"]], cross_buckets=32).fit(
        inter, item_features=itf, user_features=uf)
    path = model.save(tmp_path / "wd")
    spec_json = json.loads((path / "feature_spec.json").read_text())
    assert spec_json["format"] == "recforge-feature-spec"
    loaded = load_model(path)
    assert loaded.feature_spec_ == model.feature_spec_
    ctx = {"hour": np.array([3, 25]), "weekday": np.array([1, 1])}  # hour 25: unseen -> OOV
    a = model.predict_proba(["u1", "u2"], [101, 102], context=ctx)
    b, log = loaded.predict_proba(["u1", "u2"], [101, 102], context=ctx, return_fallbacks=True)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert log["unseen context.hour value: out-of-vocabulary row"] == 1
    (path / "feature_spec.json").write_text("{}")
    with pytest.raises(Exception, match="feature_spec.json"):
        load_model(path)


def test_implicit_data_needs_negatives_and_bad_params_are_named():
    inter, itf, uf = _data()
    implicit = Interactions(inter.users, inter.items, np.ones(len(inter), np.float32),
                            user_map=inter.user_map, item_map=inter.item_map, kind="implicit")
    with pytest.raises(ValueError, match="n_negatives"):
        FM(n_epochs=1).fit(implicit)
    FM(n_epochs=1, n_negatives=2).fit(implicit)
    with pytest.raises(ValueError, match="loss must be one of"):
        FM(loss="hinge").fit(inter)
    with pytest.raises(ValueError, match="crosses: no field"):
        WideDeep(crosses=[["user.side", "nope"]], n_epochs=1).fit(inter, user_features=uf)
    with pytest.raises(ValueError, match="structure"):
        DCNv2(structure="zigzag", n_epochs=1).fit(inter)
    with pytest.raises(TypeError, match="user_features"):
        FM(n_epochs=1).fit(inter, user_features=[1, 2])


def test_squared_loss_and_a_prebuilt_spec():
    inter, itf, uf = _data()
    spec = FeatureSpec.build(inter, user_features=uf, item_features=itf, columns={"item.title": None})
    model = FM(loss="squared", n_epochs=3, batch_size=16, init_std=0.1, learning_rate=0.05).fit(
        inter, item_features=itf, user_features=uf, feature_spec=spec)
    assert model.feature_spec_ is spec
    _, p = model.click_labels_and_probabilities(inter)
    assert p.min() >= 0 and p.max() <= 1


def test_fm_vectors_serve_cold_items():
    """FM's item vectors come from the item's features: an item without training interactions
    (in the id map) gets a vector, and query . item equals the model's score."""
    inter, itf, uf = _data()
    keep = inter.items != 9  # item 109 never seen in training
    train = inter.subset(keep)
    model = FM(embedding_dim=4, n_epochs=5, batch_size=16, init_std=0.1).fit(train, item_features=itf,
                                                                           user_features=uf)
    assert model.feature_spec_.field("item_id").unseen_ids == [9]
    scores = model.score_inner(np.arange(12), history=None)
    q, v = model.query_vectors(np.arange(12)), model.item_vectors()
    np.testing.assert_allclose(q @ v.T, scores, rtol=1e-4, atol=1e-5)
    assert np.isfinite(v[9]).all() and np.abs(v[9]).sum() > 0


# ---------------------------------------------------------------------- the click task
def test_click_task_in_the_evaluator():
    from recforge.evaluation import Evaluator
    from recforge.evaluation.protocols import Protocol
    from recforge.evaluation.tasks import ClickPrediction

    inter, itf, uf = _data(n_users=20)
    ds = Dataset(name="toy", interactions=inter, item_features=itf,
                 user_features=pd.DataFrame({"side": uf.categorical["side"]}, index=inter.user_map.raw))
    proto = Protocol({"name": "holdout", "test_ratio": 0.3}, ClickPrediction(), seed=0)
    ev = Evaluator(ds, proto, progress=False, n_resamples=50)
    ev.add(FM(embedding_dim=4, n_epochs=20, batch_size=16, learning_rate=0.05, init_std=0.1), "fm")
    res = ev.run(raise_errors=True)
    assert res.value("fm", "auc") > 0.9
    assert 0 < res.value("fm", "logloss") < 0.69
