"""The shared model contract: every recforge model family runs :func:`check_model_contract`.

Usage in a family's tests::

    from tests.models.contract import check_model_contract, contract_data

    @pytest.mark.parametrize("factory", [lambda: MyModel(random_state=0), ...])
    def test_contract(factory, tmp_path):
        check_model_contract(factory, contract_data(), tmp_path=tmp_path)

``model_factory`` must return a new, unfitted model whose randomness (if any) is fixed by its
hyperparameters, so that two fits give the same result. Each check raises ``AssertionError``
with a message naming the model and the broken rule. The contract is for models trained on
:class:`Interactions` (user x item); session models have their own streaming contract.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recforge.data import IdMap, Interactions
from recforge.models.base import RANKING, RATING, Recommender, clone, get_model_class


def contract_data(kind: str = "explicit", seed: int = 7) -> Interactions:
    """A small, asymmetric, seeded data set for the contract (9 users x 14 items).

    * users ``"u0"`` … ``"u8"`` with raw string ids, items ``100`` … ``113`` (int ids), so
      raw and inner ids never coincide and a transposed use of the two maps fails;
    * ratings 1–5 on the scale (1, 5) (or implicit weights 1 with ``kind='implicit'``),
      timestamps increasing with the row;
    * user ``"u8"`` is in the map but has **no** interaction (the empty-history case); user
      ``"u0"`` has seen 12 of the 14 items (so ``k`` beyond the unseen catalog is exercised);
      item ``113`` is in the map but never interacted with.
    """
    rng = np.random.default_rng(seed)
    n_users, n_items = 9, 14
    rows, cols = [], []
    for u in range(n_users - 1):
        n = 12 if u == 0 else int(rng.integers(2, 9))
        items = rng.choice(n_items - 1, size=n, replace=False)
        rows += [u] * n
        cols += items.tolist()
    rows, cols = np.array(rows), np.array(cols)
    values = rng.integers(1, 6, rows.size).astype(np.float32) if kind == "explicit" \
        else np.ones(rows.size, np.float32)
    return Interactions(rows, cols, values,
                        user_map=IdMap(np.array([f"u{u}" for u in range(n_users)])),
                        item_map=IdMap(np.arange(100, 100 + n_items)),
                        timestamps=1.0e9 + 3600.0 * np.arange(rows.size),
                        kind=kind, rating_scale=(1.0, 5.0) if kind == "explicit" else None,
                        name="contract")


def check_model_contract(model_factory: Callable[[], Recommender], data: Interactions | None = None,
                         *, k: int = 5, tmp_path: Path | None = None, check_seed: bool = True,
                         atol: float = 0.0) -> Recommender:
    """Run every rule of the model contract on ``model_factory()`` fitted on ``data``.

    Rules checked:

    1. ``fit`` returns ``self``; a fitted model has ``fallbacks_``;
    2. ``clone`` round-trips the hyperparameters, which are JSON-serializable, and the model is
       constructible by its registered name;
    3. ranking models: ``recommend`` returns ``(n, min(k, n_items))`` arrays, scores
       non-increasing along each row, raw ids that match the inner indices, no item twice;
    4. items seen in training are never recommended (and are when ``exclude_seen=False``);
       scores have no NaN;
    5. a batch of users gives the same lists as one user at a time;
    6. two fits from the factory (same seed) give identical scores / predictions
       (``check_seed=False`` for models that are not seeded);
    7. ``save`` / ``load`` give identical scores and predictions;
    8. ``k`` larger than the catalog returns every unseen item the model can score (score
       above ``-inf``), padded with ``-1``;
    9. an unknown user gets the popularity fallback, counted in ``fallbacks_``; a user with an
       empty history gets a full list;
    10. rating models: predictions are finite and inside the rating scale; unknown pairs are
        counted as fallbacks.

    Returns the fitted model for further, family-specific checks.
    """
    data = contract_data() if data is None else data
    model = model_factory()
    name = type(model).__name__

    # 1. fit returns self
    fitted = model.fit(data)
    assert fitted is model, f"{name}.fit must return self"
    assert isinstance(model.fallbacks_, dict), f"{name}: fit must reset fallbacks_"

    # 2. clone and params
    params = model.get_params()
    json.dumps(params)  # raises TypeError when a hyperparameter is not JSON-serializable
    twin = clone(model)
    assert type(twin) is type(model) and twin.get_params() == params, f"{name}: clone changed params"
    assert not hasattr(twin, "item_map_"), f"{name}: clone must be unfitted"
    by_name = get_model_class(model.name)(**params)
    assert by_name.get_params() == params, f"{name}: construction by registered name failed"

    users_raw = data.user_map.raw
    users_inner = np.arange(data.n_users, dtype=np.int32)
    seen = data.csr

    if model.has(RANKING) or model.has(RATING):
        k_eff = min(k, data.n_items)
        recs = model.recommend(users_raw, k=k)
        assert recs.inner.shape == (data.n_users, k_eff), f"{name}: recommend shape {recs.inner.shape}"
        assert recs.scores.shape == recs.inner.shape
        # 3. best first, consistent ids, no duplicates
        s = recs.scores.astype(np.float64)
        assert np.all(s[:, 1:] <= s[:, :-1]), f"{name}: scores must be non-increasing (best first)"
        valid = recs.inner >= 0
        assert np.all(valid[:, 1:] <= valid[:, :-1]), f"{name}: padding must come last"
        assert np.all(np.isneginf(s[~valid])), f"{name}: padding must carry -inf scores"
        np.testing.assert_array_equal(
            recs.items[valid], data.item_map.to_raw(recs.inner[valid]),
            err_msg=f"{name}: raw ids do not match inner indices")
        for row in recs.inner:
            r = row[row >= 0]
            assert r.size == np.unique(r).size, f"{name}: an item is recommended twice"
        # 4. seen items excluded
        for u in range(data.n_users):
            items = set(seen.indices[seen.indptr[u]:seen.indptr[u + 1]].tolist())
            assert not items & set(recs.inner[u][recs.inner[u] >= 0].tolist()), \
                f"{name}: user {users_raw[u]!r} was recommended an item seen in training"
        scores = np.asarray(model.score_inner(users_inner), dtype=np.float64)
        assert scores.shape == (data.n_users, data.n_items), f"{name}: score_inner shape"
        assert not np.isnan(scores).any(), f"{name}: NaN scores"
        scorable = scores > -np.inf  # a model may mark items it cannot score with -inf
        heavy = int(np.argmax(data.user_counts))
        with_seen = model.recommend(users_raw[[heavy]], k=data.n_items, exclude_seen=False)
        listed = set(with_seen.inner[0][with_seen.inner[0] >= 0].tolist())
        assert listed == set(np.flatnonzero(scorable[heavy]).tolist()), \
            f"{name}: exclude_seen=False must rank every scorable item, seen ones included"
        # 5. batch equals single
        for u in range(data.n_users):
            one = model.recommend(users_raw[[u]], k=k)
            np.testing.assert_array_equal(one.inner[0], recs.inner[u],
                                          err_msg=f"{name}: batch and single lists differ")
            np.testing.assert_allclose(one.scores[0], recs.scores[u], atol=atol)
        small_batches = model.recommend(users_raw, k=k, batch_size=2)
        np.testing.assert_array_equal(small_batches.inner, recs.inner,
                                      err_msg=f"{name}: result depends on batch_size")
        # 8. k larger than the catalog
        big = model.recommend(users_raw, k=data.n_items + 5)
        assert big.inner.shape == (data.n_users, data.n_items)
        unseen_scorable = scorable & (seen.toarray() == 0)
        np.testing.assert_array_equal((big.inner >= 0).sum(axis=1), unseen_scorable.sum(axis=1),
                                      err_msg=f"{name}: k > catalog must list every unseen item")
        # 9. unknown user and empty history
        before = sum(model.fallbacks_.values())
        unknown = model.recommend(np.array([_unknown_id(users_raw)]), k=k)
        assert sum(model.fallbacks_.values()) == before + 1, \
            f"{name}: an unknown user must be counted in fallbacks_"
        assert (unknown.inner[0] >= 0).sum() == k_eff, f"{name}: unknown user got no fallback list"
        empty_users = np.flatnonzero(data.user_counts == 0)
        for u in empty_users:
            assert (recs.inner[u] >= 0).sum() == k_eff, f"{name}: empty-history user got a short list"

    if model.has(RATING):
        # 10. predictions in scale; unknown pairs counted
        uu = np.repeat(users_raw, data.n_items)
        ii = np.tile(data.item_map.raw, data.n_users)
        pred = model.predict(uu, ii)
        assert pred.shape == uu.shape and np.isfinite(pred).all(), f"{name}: bad predictions"
        if data.rating_scale is not None:
            lo, hi = data.rating_scale
            assert pred.min() >= lo and pred.max() <= hi, f"{name}: predictions outside the scale"
        before = sum(model.fallbacks_.values())
        unk = model.predict(np.array([_unknown_id(users_raw)]), data.item_map.raw[:1])
        assert sum(model.fallbacks_.values()) == before + 1, f"{name}: unknown pair not counted"
        assert np.isfinite(unk).all()
        one_by_one = np.array([model.predict(uu[[j]], ii[[j]])[0] for j in range(0, uu.size, 7)])
        np.testing.assert_allclose(one_by_one, pred[::7], atol=atol,
                                   err_msg=f"{name}: batch and single predictions differ")

    # 6. same seed, same result
    if check_seed:
        again = model_factory().fit(data)
        _assert_same(model, again, data, atol, f"{name}: two fits with the same seed differ")

    # 7. save / load
    if tmp_path is None:
        with tempfile.TemporaryDirectory() as tmp:
            _check_save_load(model, data, Path(tmp), atol, name)
    else:
        _check_save_load(model, data, Path(tmp_path), atol, name)
    return model


def _unknown_id(raw: np.ndarray):
    if raw.dtype.kind in "iu":
        return int(raw.max()) + 1_000_003
    return "__not_a_known_user__"


def _assert_same(a: Recommender, b: Recommender, data: Interactions, atol: float, msg: str) -> None:
    users = np.arange(data.n_users, dtype=np.int32)
    if a.has(RANKING) or a.has(RATING):
        np.testing.assert_allclose(np.asarray(a.score_inner(users), np.float64),
                                   np.asarray(b.score_inner(users), np.float64), atol=atol, err_msg=msg)
    if a.has(RATING):
        u = data.user_map.raw[data.users]
        i = data.item_map.raw[data.items]
        np.testing.assert_allclose(a.predict(u, i), b.predict(u, i), atol=atol, err_msg=msg)


def _check_save_load(model: Recommender, data: Interactions, tmp: Path, atol: float, name: str) -> None:
    path = model.save(tmp / f"{name}-model")
    loaded = Recommender.load(path)
    assert type(loaded) is type(model), f"{name}: load returned {type(loaded).__name__}"
    assert loaded.get_params() == model.get_params(), f"{name}: params changed by save/load"
    _assert_same(model, loaded, data, atol, f"{name}: save/load changed the scores")
    if model.has(RANKING) or model.has(RATING):
        a = model.recommend(data.user_map.raw, k=5)
        b = loaded.recommend(data.user_map.raw, k=5)
        np.testing.assert_array_equal(a.inner, b.inner, err_msg=f"{name}: save/load changed lists")
