"""The model base: top-k selection, masking, recommend, predict, fallbacks, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from recforge.data import IdMap, Interactions, SessionEvents
from recforge.models import (
    EMBEDDINGS,
    FOLD_IN,
    RANKING,
    RATING,
    SESSION,
    SIMILAR_ITEMS,
    Recommender,
    SessionRecommender,
    clone,
    register,
)
from recforge.topk import mask_rows, topk_rows


# ---------------------------------------------------------------------------- top-k
def _brute_topk(scores: np.ndarray, k: int):
    """Reference: sort each row by (-score, column), keep k, pad -inf with (-1, -inf)."""
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    idx = np.full((n_rows, k), -1)
    val = np.full((n_rows, k), -np.inf)
    for r in range(n_rows):
        order = sorted(range(n_cols), key=lambda c: (-scores[r, c], c))[:k]
        for j, c in enumerate(order):
            if scores[r, c] > -np.inf:
                idx[r, j], val[r, j] = c, scores[r, c]
    return idx, val


# small integers make ties common; -inf marks excluded items
_scores = arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 12)),
                 elements=st.sampled_from([-np.inf, 0.0, 1.0, 2.0, 3.0, 0.5]))


@settings(max_examples=150, deadline=None)
@given(_scores, st.integers(1, 15))
def test_topk_rows_matches_brute_force(scores, k):
    idx, val = topk_rows(scores, k)
    ref_idx, ref_val = _brute_topk(scores, k)
    assert idx.dtype == np.int32 and val.dtype == scores.dtype
    assert np.array_equal(idx, ref_idx)
    assert np.array_equal(val, ref_val)


def test_topk_rows_hand_example():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0], [-np.inf, -np.inf, 0.0, -np.inf, -np.inf]])
    idx, val = topk_rows(scores, 3)
    assert idx.tolist() == [[1, 2, 4], [2, -1, -1]]  # tie 3.0/3.0 -> lower index first
    assert val.tolist() == [[3.0, 3.0, 2.0], [0.0, -np.inf, -np.inf]]
    idx, val = topk_rows(scores, 0)
    assert idx.shape == (2, 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), st.data())
def test_mask_rows_matches_dense(n_rows, n_cols, data):
    dense = np.array(data.draw(st.lists(st.booleans(), min_size=n_rows * n_cols, max_size=n_rows * n_cols)),
                     dtype=bool).reshape(n_rows, n_cols)
    rows = np.array(data.draw(st.lists(st.integers(0, n_rows - 1), min_size=1, max_size=6)))
    scores = np.arange(rows.size * n_cols, dtype=np.float32).reshape(rows.size, n_cols)
    expected = scores.copy()
    expected[dense[rows]] = -np.inf
    mask_rows(scores, sp.csr_matrix(dense.astype(np.float32)), rows)
    assert np.array_equal(scores, expected)


# ---------------------------------------------------------------------------- toy models
@register("_ToyBias")
class ToyBias(Recommender):
    """r_ui = mu + b_u + b_i with plain means (no shrinkage): enough to test the plumbing."""

    capabilities = frozenset({RATING, RANKING, SIMILAR_ITEMS})
    state = ("user_bias_", "item_bias_", "notes_")

    def __init__(self, damping: float = 0.0, tag: str = "toy"):
        self.damping = damping
        self.tag = tag

    def _fit(self, train, *, item_features=None, validation=None):
        mu = train.global_mean
        n_u = np.bincount(train.users, minlength=train.n_users) + self.damping
        n_i = np.bincount(train.items, minlength=train.n_items) + self.damping
        self.user_bias_ = np.bincount(train.users, train.values - mu, train.n_users) / np.maximum(n_u, 1)
        self.item_bias_ = np.bincount(train.items, train.values - mu, train.n_items) / np.maximum(n_i, 1)
        self.notes_ = {"fitted_on": int(train.nnz)}

    def _predict(self, u, i, fallbacks=None):
        return self.global_mean_ + self.user_bias_[u] + self.item_bias_[i]

    def _similar(self, items):
        return -np.abs(self.item_bias_[items][:, None] - self.item_bias_[None, :])


@register("_ToyMarkov")
class ToyMarkov(SessionRecommender):
    """Next-item scores = transition counts from the session's last item."""

    state = ("transitions_",)

    def __init__(self):
        pass

    def _fit(self, train, *, item_features=None, validation=None):
        same = train.session_of_event[1:] == train.session_of_event[:-1]
        counts = np.zeros((train.n_items, train.n_items), np.float32)
        np.add.at(counts, (train.items[:-1][same], train.items[1:][same]), 1)
        self.transitions_ = counts

    def _score_next(self, sessions):
        return self.transitions_[[s[-1] for s in sessions]]


@pytest.fixture
def ratings() -> Interactions:
    """Users a, b, c x items 10..14; nobody rated 13, c rated only 14.

    ========  ==  ==  ==  ==  ==
    user      10  11  12  13  14
    ========  ==  ==  ==  ==  ==
    a          5   .   4   .   1
    b          .   2   5   .   2
    c          .   .   .   .   3
    ========  ==  ==  ==  ==  ==
    """
    return Interactions.from_arrays(["a", "a", "a", "b", "b", "b", "c"], [10, 12, 14, 11, 12, 14, 14],
                                    [5, 4, 1, 2, 5, 2, 3], item_map=IdMap([10, 11, 12, 13, 14]))


def test_fit_returns_self_and_records_state(ratings):
    model = ToyBias()
    assert model.fit(ratings) is model
    assert model.n_items_ == 5 and model.n_users_ == 3
    assert model.item_popularity_.tolist() == [1, 1, 2, 0, 3]
    assert model.user_counts_.tolist() == [3, 3, 1]
    assert not hasattr(model, "seen_")  # the history comes with each query
    assert model.global_mean_ == pytest.approx(22 / 7)
    with pytest.raises(TypeError, match="expects Interactions"):
        ToyBias().fit(ratings.to_dataframe())
    with pytest.raises(RuntimeError, match="not fitted"):
        ToyBias().recommend(["a"])


def test_recommend_excludes_seen_and_ranks_by_score(ratings):
    model = ToyBias().fit(ratings)
    scores = model.score_inner(np.arange(3))
    recs = model.recommend(["a", "b", "c"], k=3)
    seen = ratings.csr.toarray() > 0
    for u in range(3):
        expected = [int(c) for c in np.lexsort((np.arange(5), -scores[u])) if not seen[u, c]][:3]
        got = [c for c in recs.inner[u].tolist() if c >= 0]
        assert got == expected
    # user a has seen 3 of 5 items: two recommendations, then padding
    assert recs.inner[0, 2] == -1 and recs.items[0, 2] is None and recs.scores[0, 2] == -np.inf
    assert recs.items[0, 0] in (11, 13)
    everything = model.recommend(["a"], k=10, exclude_seen=False)
    assert everything.inner.shape == (1, 5) and (everything.inner >= 0).all()  # k > catalogue


def test_batch_equals_single(ratings):
    model = ToyBias().fit(ratings)
    batch = model.recommend(["c", "a", "b"], k=4)
    for j, user in enumerate(["c", "a", "b"]):
        single = model.recommend([user], k=4)
        assert np.array_equal(single.inner[0], batch.inner[j])
        assert np.array_equal(single.scores[0], batch.scores[j])
    small = model.recommend(["c", "a", "b"], k=4, batch_size=1)
    assert np.array_equal(small.inner, batch.inner)
    assert np.array_equal(model.recommend("a", k=4).inner, model.recommend(["a"], k=4).inner)


def test_unknown_users_get_popularity_and_are_counted(ratings):
    model = ToyBias().fit(ratings)
    recs = model.recommend(["zz", "a", "yy"], k=2)
    assert recs.items[0].tolist() == [14, 12]  # popularity 3, 2
    assert recs.items[2].tolist() == [14, 12]
    assert recs.fallbacks == {"unknown user, no history: popularity": 2}
    assert recs.fallback.tolist() == ["unknown user, no history: popularity", None,
                                      "unknown user, no history: popularity"]
    assert not hasattr(model, "fallbacks_")  # returned, never stored


def test_candidates_and_filter(ratings):
    model = ToyBias().fit(ratings)
    recs = model.recommend(["c"], k=5, candidates=[10, 13, 999])
    assert sorted(x for x in recs.items[0].tolist() if x is not None) == [10, 13]
    recs = model.recommend(["c"], k=5, exclude=[10, 11])
    assert set(x for x in recs.items[0].tolist() if x is not None) == {12, 13}
    recs = model.recommend(["zz"], k=5, exclude=[14])
    assert 14 not in recs.items[0].tolist()
    # per row: each row its own stoplist and candidate set
    recs = model.recommend(["c", "c"], k=5, exclude=[[10], [12]], candidates=[[10, 12], [10, 12]])
    assert [[x for x in row if x is not None] for row in recs.items.tolist()] == [[12], [10]]
    with pytest.raises(ValueError, match="exclude: 3 per-row lists for 2 rows"):
        model.recommend(["c", "c"], exclude=[[10], [11], [12]])


def test_predict_falls_back_to_the_mean_and_clips(ratings):
    model = ToyBias().fit(ratings)
    pred, fallbacks = model.predict(["a", "zz", "a"], [10, 10, 99], return_fallbacks=True)
    mu = 22 / 7
    assert pred[0] == pytest.approx(min(5.0, mu + model.user_bias_[0] + model.item_bias_[0]))
    assert pred[1] == pytest.approx(mu) and pred[2] == pytest.approx(mu)
    assert fallbacks == {"unknown user or item: global mean": 2}
    raw = model.predict_inner(np.array([0]), np.array([0]), clip=False)[0]
    assert raw > 5.0 and model.predict(["a"], [10])[0] == 5.0  # clipped to the scale
    with pytest.raises(ValueError, match="same length"):
        model.predict_inner(np.array([0, 1]), np.array([0]))


def test_similar_items_exclude_the_item_itself(ratings):
    model = ToyBias().fit(ratings)
    sims = model.similar_items([10, 12], k=4)
    assert 10 not in sims.items[0].tolist() and 12 not in sims.items[1].tolist()
    assert (np.diff(sims.scores, axis=1) <= 0).all()


def test_params_and_clone():
    model = ToyBias(damping=2.0, tag="x")
    assert model.get_params() == {"damping": 2.0, "tag": "x"}
    assert repr(model) == "ToyBias(damping=2.0, tag='x')"
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    assert model.set_params(damping=1.0) is model and model.damping == 1.0
    with pytest.raises(ValueError, match="no hyperparameter 'alpha'"):
        model.set_params(alpha=1)
    assert model.name == "_ToyBias" and model.has(RATING) and not model.has(SESSION)


def test_register_rejects_a_second_class_under_one_name():
    with pytest.raises(ValueError, match="registered twice"):
        register("_ToyBias")(type("Other", (Recommender,), {}))


def test_save_load_round_trip(ratings, tmp_path):
    model = ToyBias(damping=1.0, tag="saved").fit(ratings)
    path = model.save(tmp_path / "m")
    config = json.loads((path / "config.json").read_text())
    assert config["model"] == "_ToyBias" and config["params"] == {"damping": 1.0, "tag": "saved"}
    assert config["format"] == "recforge-model" and "recforge_version" in config
    with np.load(path / "arrays.npz", allow_pickle=False) as npz:  # no pickle anywhere
        assert "user_bias_" in npz.files
    for loader in (Recommender.load, ToyBias.load):
        back = loader(path)
        assert type(back) is ToyBias and back.get_params() == model.get_params()
        assert back.user_map_ == model.user_map_ and back.item_map_ == model.item_map_
        assert np.array_equal(back.score_inner(np.arange(3)), model.score_inner(np.arange(3)))
        assert np.array_equal(back.recommend(["a", "b", "zz"], k=3, history=ratings).inner,
                              model.recommend(["a", "b", "zz"], k=3).inner)
        assert back.notes_ == {"fitted_on": 7} and back.rating_scale_ == [1.0, 5.0]
    with pytest.raises(TypeError, match="not a ToyMarkov"):
        ToyMarkov.load(path)
    model.save(path)  # overwriting an existing directory is atomic and leaves no debris
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_load_rejects_other_directories(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(ValueError, match="not a recforge model"):
        Recommender.load(tmp_path)


# ---------------------------------------------------------------------------- session models
@pytest.fixture
def clicks() -> SessionEvents:
    import pandas as pd

    df = pd.DataFrame({"session": [1, 1, 1, 2, 2, 3, 3], "item": [7, 8, 9, 7, 8, 8, 9],
                       "timestamp": [0, 1, 2, 3, 4, 5, 6]})
    return SessionEvents.from_dataframe(df)


def test_session_model_recommend_next(clicks):
    model = ToyMarkov().fit(clicks)
    assert model.item_popularity_.tolist() == [2, 3, 2]
    recs = model.recommend_next([[7], [7, 8], [], [42, 8]], k=2)
    assert recs.items[0].tolist() == [8, 7]  # 7 -> 8 observed; then the 0-score tie, lower index
    assert recs.items[1].tolist() == [9, 7]
    assert recs.items[2].tolist() == [8, 7]  # empty session: popularity
    assert recs.items[3].tolist() == [9, 7]  # unknown 42 skipped
    assert recs.fallbacks == {"unknown item in history: dropped": 1,
                              "unknown user, no history: popularity": 1}
    assert recs.fallback.tolist() == [None, None, "unknown user, no history: popularity", None]
    assert model.recommend_next([[7]], k=3, exclude=[8]).items[0].tolist() == [7, 9, None]
    with pytest.raises(TypeError, match="session model"):
        model.recommend(["x"])


def test_session_streaming_default_equals_prefix_scoring(clicks):
    model = ToyMarkov().fit(clicks)
    state = model.init_state(2)
    # slot 0 walks 7, 8; slot 1 walks 8 then starts a new session with 7
    s1 = model.advance(state, np.array([0, 1]), np.array([True, True]))
    s2 = model.advance(state, np.array([1, 0]), np.array([False, True]))
    assert np.array_equal(s1, model._score_next([np.array([0]), np.array([1])]))
    assert np.array_equal(s2, model._score_next([np.array([0, 1]), np.array([0])]))
    assert state == [[0, 1], [0]]


# ---------------------------------------------------------------------------- embeddings
@register("_ToyFactors")
class ToyFactors(Recommender):
    """Scores = user factors . item factors (a truncated SVD of the ratings): an EMBEDDINGS model
    whose anonymous rows fold in by projecting their history onto the item factors."""

    capabilities = frozenset({RANKING, FOLD_IN, EMBEDDINGS})
    state = ("item_factors_", "user_factors_")

    def __init__(self, rank: int = 2):
        self.rank = rank

    def _fit(self, train, *, item_features=None, validation=None):
        u, s, vt = np.linalg.svd(train.csr.toarray(), full_matrices=False)
        self.item_factors_ = (vt[:self.rank].T * s[:self.rank]).astype(np.float32)
        self.user_factors_ = u[:, :self.rank].astype(np.float32)

    def item_vectors(self):
        return self.item_factors_

    def query_vectors(self, users, history=None):
        users = np.asarray(users)
        out = np.zeros((users.size, self.rank), np.float32)
        known = users >= 0
        out[known] = self.user_factors_[users[known]]
        if (~known).any() and history is not None:
            h = history.matrix if hasattr(history, "matrix") else history
            proj = h[np.flatnonzero(~known)] @ self.item_factors_
            out[~known] = proj / np.maximum((self.item_factors_ ** 2).sum(axis=0), 1e-12)
        return out

    def _score(self, users, history, fallbacks):
        return self.query_vectors(users, history) @ self.item_factors_.T


def test_embeddings_model_runs_the_contract(tmp_path):
    from .contract import check_model_contract, contract_data

    model = check_model_contract(lambda: ToyFactors(rank=2), contract_data(), tmp_path=tmp_path,
                                 check_seed=False, atol=1e-5)
    assert model.item_vectors().shape == (14, 2) and model.similarity == "dot"
    with pytest.raises(TypeError, match="no EMBEDDINGS capability"):
        ToyBias().fit(contract_data()).item_vectors()
