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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recforge.data import IdMap, Interactions, SessionEvents
from recforge.models.base import (
    EMBEDDINGS,
    FOLD_IN,
    RANKING,
    RATING,
    Recommender,
    clone,
    get_model_class,
)
from recforge.models.query import History


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
                         atol: float = 0.0, fit_kwargs: dict | None = None) -> Recommender:
    """Run every rule of the model contract on ``model_factory()`` fitted on ``data``.

    Rules checked:

    1. ``fit`` returns ``self`` and sets every declared state attribute;
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
    9. an unknown user gets the popularity fallback, reported in the result; a user with an
       empty history gets a full list;
    10. rating models: predictions are finite and inside the rating scale; unknown pairs are
        counted as fallbacks;
    11. queries: the training data is the default history; anonymous rows given as
        ``{item: rating}`` histories never get their own items back, and are scored by the
        model itself when it declares ``FOLD_IN`` (else their fallback is reported); per-row
        stoplists and candidate sets hold; ``recommend`` leaves every attribute unchanged, and
        concurrent calls give the serial answer; ``EMBEDDINGS`` models' vectors give their
        scores.

    Returns the fitted model for further, family-specific checks.
    """
    data = contract_data() if data is None else data
    model = model_factory()
    name = type(model).__name__

    # 1. fit returns self
    fit_kwargs = fit_kwargs or {}
    fitted = model.fit(data, **fit_kwargs)
    assert fitted is model, f"{name}.fit must return self"
    for key in model._state_names():
        if key not in ("user_map_", "n_users_", "user_counts_", "global_mean_", "rating_scale_"):
            assert hasattr(model, key), f"{name}: declared state {key!r} not set by fit"

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
        scores = np.asarray(model.score_inner(users_inner, history=seen), dtype=np.float64)
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
        unknown = model.recommend(np.array([_unknown_id(users_raw)]), k=k)
        assert unknown.fallback[0] is not None and sum(unknown.fallbacks.values()) >= 1, \
            f"{name}: an unknown user without history must get a reported fallback"
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
        unk, counts = model.predict(np.array([_unknown_id(users_raw)]), data.item_map.raw[:1],
                                    return_fallbacks=True)
        assert sum(counts.values()) == 1, f"{name}: unknown pair not counted"
        assert np.isfinite(unk).all()
        one_by_one = np.array([model.predict(uu[[j]], ii[[j]])[0] for j in range(0, uu.size, 7)])
        np.testing.assert_allclose(one_by_one, pred[::7], atol=atol,
                                   err_msg=f"{name}: batch and single predictions differ")

    if model.has(RANKING) or model.has(RATING):
        _check_queries(model, data, k, name)

    # 6. same seed, same result
    if check_seed:
        again = model_factory().fit(data, **fit_kwargs)
        _assert_same(model, again, data, atol, f"{name}: two fits with the same seed differ")

    # 7. save / load
    if tmp_path is None:
        with tempfile.TemporaryDirectory() as tmp:
            _check_save_load(model, data, Path(tmp), atol, name)
    else:
        _check_save_load(model, data, Path(tmp_path), atol, name)
    return model


def _snapshot(model) -> dict:
    out = {}
    for key, value in vars(model).items():
        if isinstance(value, np.ndarray):
            out[key] = ("array", value.copy())
        elif sp.issparse(value):
            out[key] = ("sparse", value.copy())
        elif isinstance(value, (int, float, str, bool, list, dict, tuple, type(None))):
            out[key] = ("plain", json.dumps(value, sort_keys=True, default=str))
        else:
            out[key] = ("object", id(value))
    return out


def _assert_unchanged(before: dict, after: dict, name: str) -> None:
    assert before.keys() == after.keys(), \
        f"{name}: recommend changed the model's attributes {set(before) ^ set(after)}"
    for key, (kind, value) in before.items():
        kind2, value2 = after[key]
        if kind == "array":
            assert np.array_equal(value, value2, equal_nan=value.dtype.kind == "f"), \
                f"{name}: recommend mutated {key}"
        elif kind == "sparse":
            assert (value != value2).nnz == 0, f"{name}: recommend mutated {key}"
        else:
            assert value == value2, f"{name}: recommend mutated {key}"


def _check_queries(model: Recommender, data: Interactions, k: int, name: str) -> None:
    """History-carrying queries, per-row filters, no mutation, thread safety, embeddings."""
    users_raw = data.user_map.raw
    before = _snapshot(model)
    by_id = model.recommend(users_raw, k=k, history=data)
    default = model.recommend(users_raw, k=k)
    np.testing.assert_array_equal(by_id.inner, default.inner,
                                  err_msg=f"{name}: the training data is the default history")
    # a history given as {item: rating} mappings (anonymous rows): FOLD_IN models score them
    csr = data.csr
    mappings = [dict(zip(data.item_map.raw[csr.indices[csr.indptr[u]:csr.indptr[u + 1]]].tolist(),
                         csr.data[csr.indptr[u]:csr.indptr[u + 1]].tolist(), strict=True))
                for u in range(data.n_users)]
    anon = model.recommend(history=mappings, k=k)
    has_history = np.diff(csr.indptr) > 0
    for u in np.flatnonzero(has_history):
        got = set(anon.inner[u][anon.inner[u] >= 0].tolist())
        assert not got & set(csr.indices[csr.indptr[u]:csr.indptr[u + 1]].tolist()), \
            f"{name}: an anonymous row was recommended an item of its history"
    if model.has(FOLD_IN):
        assert all(anon.fallback[u] is None for u in np.flatnonzero(has_history)), \
            f"{name}: a FOLD_IN model must score anonymous rows with history itself"
    else:
        assert all(anon.fallback[u] is not None for u in range(data.n_users)), \
            f"{name}: rows the model cannot score must report their fallback"
    # per-row stoplists and candidate sets
    items = data.item_map.raw
    stop = [[items[j % data.n_items]] for j in range(data.n_users)]
    cands = [list(items[j % 3::3]) for j in range(data.n_users)]
    filtered = model.recommend(users_raw, k=k, exclude=stop, candidates=cands)
    for j in range(data.n_users):
        got = filtered.inner[j][filtered.inner[j] >= 0]
        assert j % data.n_items not in got, f"{name}: per-row stoplist ignored"
        assert set(got.tolist()) <= set(range(j % 3, data.n_items, 3)), \
            f"{name}: per-row candidates ignored"
    # recommend never mutates the model, and concurrent requests give the serial answer
    _assert_unchanged(before, _snapshot(model), name)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(model.recommend, users_raw[[u]], k=k, history=data)
                   for u in range(data.n_users)]
        for u, fut in enumerate(futures):
            np.testing.assert_array_equal(fut.result().inner[0], by_id.inner[u],
                                          err_msg=f"{name}: concurrent recommend differs")
    if model.has(EMBEDDINGS):
        users_inner = np.arange(data.n_users, dtype=np.int32)
        q = model.query_vectors(users_inner)
        v = model.item_vectors()
        sims = q @ v.T
        if model.similarity == "cosine":
            sims = sims / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(v, axis=1))
        np.testing.assert_allclose(sims, model.score_inner(users_inner, history=data.csr),
                                   rtol=1e-5, atol=1e-5, err_msg=f"{name}: vectors != scores")


def check_fold_in_exact(model: Recommender, data: Interactions, k: int = 10) -> None:
    """A user queried anonymously with their own training ratings gets exactly the list they
    get when queried by id."""
    csr = data.csr
    for u in np.flatnonzero(np.diff(csr.indptr) > 0):
        sl = slice(csr.indptr[u], csr.indptr[u + 1])
        hist = dict(zip(data.item_map.raw[csr.indices[sl]].tolist(), csr.data[sl].tolist(), strict=True))
        anon = model.recommend(history=[hist], k=k)
        by_id = model.recommend(data.user_map.raw[[u]], k=k, history=data)
        np.testing.assert_array_equal(anon.inner[0], by_id.inner[0],
                                      err_msg=f"{type(model).__name__}: anonymous != by id")
        np.testing.assert_allclose(anon.scores[0], by_id.scores[0], rtol=1e-6)


def _unknown_id(raw: np.ndarray):
    if raw.dtype.kind in "iu":
        return int(raw.max()) + 1_000_003
    return "__not_a_known_user__"


def _assert_same(a: Recommender, b: Recommender, data: Interactions, atol: float, msg: str) -> None:
    users = np.arange(data.n_users, dtype=np.int32)
    if a.has(RANKING) or a.has(RATING):
        np.testing.assert_allclose(np.asarray(a.score_inner(users, history=data.csr), np.float64),
                                   np.asarray(b.score_inner(users, history=data.csr), np.float64),
                                   atol=atol, err_msg=msg)
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
        a = model.recommend(data.user_map.raw, k=5, history=data)
        b = loaded.recommend(data.user_map.raw, k=5, history=data)
        np.testing.assert_array_equal(a.inner, b.inner, err_msg=f"{name}: save/load changed lists")


def contract_sessions() -> SessionEvents:
    """Tiny training sessions (raw item ids 10..15; item 15 appears once, last)."""
    seqs = [[10, 11, 12], [11, 12], [12, 13, 12], [10, 13], [11, 14, 10], [12, 10, 11, 13], [15]]
    rows = [(s + 1, item, 10.0 * s + t) for s, seq in enumerate(seqs) for t, item in enumerate(seq)]
    return SessionEvents.from_dataframe(pd.DataFrame(rows, columns=["session", "item", "timestamp"]))


def check_session_contract(model_factory: Callable[[], Recommender], sessions: SessionEvents | None = None,
                           *, k: int = 3, tmp_path: Path | None = None, atol: float = 1e-6) -> Recommender:
    """The contract for session models: anonymous rows whose history is the session so far.

    ``recommend(history=...)`` equals ``recommend_next`` with the session's items excluded;
    batch equals single; the streaming ``advance`` equals rescoring the prefix; unknown items
    are dropped and counted, an empty session gets the reported popularity fallback;
    ``recommend`` never mutates the model; save/load keeps the scores.
    """
    sessions = contract_sessions() if sessions is None else sessions
    model = model_factory()
    name = type(model).__name__
    assert model.fit(sessions) is model, f"{name}.fit must return self"
    assert model.has(FOLD_IN), f"{name}: session models score from the session (FOLD_IN)"
    queries = [[10, 11], [12], [13, 12, 10], [11, 999], []]
    before = _snapshot(model)
    nxt = model.recommend_next(queries, k=k)
    again = model.recommend(history=queries, k=k, exclude_seen=False)
    np.testing.assert_array_equal(nxt.inner, again.inner, err_msg=f"{name}: recommend_next")
    assert nxt.fallbacks.get("unknown item in history: dropped") == 1, f"{name}: unknown item"
    assert nxt.fallback[4] is not None and (nxt.inner[4] >= 0).all(), f"{name}: empty session"
    for j, q in enumerate(queries):
        one = model.recommend_next([q], k=k)
        np.testing.assert_array_equal(one.inner[0], nxt.inner[j], err_msg=f"{name}: batch != single")
    excl = model.recommend(history=queries[:3], k=k)
    for j, q in enumerate(queries[:3]):
        got = set(model.item_map_.to_raw(excl.inner[j][excl.inner[j] >= 0]).tolist())
        assert not got & set(q), f"{name}: exclude_seen must drop the session's items"
    _assert_unchanged(before, _snapshot(model), name)
    # streaming equals rescoring each prefix
    seq = model.item_map_.to_inner(np.array([13, 12, 10]))
    state = model.init_state(1)
    for t in range(seq.size):
        streamed = np.asarray(model.advance(state, seq[t:t + 1], np.array([t == 0])), np.float64)
        prefix = seq[:t + 1].astype(np.int32)
        hist = History(sp.csr_matrix((np.ones(t + 1, np.float32), (np.zeros(t + 1, int), prefix)),
                                     shape=(1, model.n_items_)), np.array([0, t + 1]), prefix)
        direct = np.asarray(model.score_inner(np.array([-1]), history=hist), np.float64)
        if t == 0 or type(model).__name__ not in ("SKNN", "VSKNN"):  # V-SKNN weighs positions
            np.testing.assert_allclose(streamed[0], direct[0], atol=atol,
                                       err_msg=f"{name}: advance != scoring the prefix")
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp_path or tmp) / f"{name}-model")
        loaded = Recommender.load(path)
        np.testing.assert_array_equal(loaded.recommend_next(queries, k=k).inner, nxt.inner,
                                      err_msg=f"{name}: save/load changed the lists")
    return model
