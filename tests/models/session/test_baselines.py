"""Session baselines: hand-computed scores, naive reference implementations, streaming, persistence.

Training sessions of the tiny fixture (raw item id = inner index, times increase by session)::

    s0 (t=0..2)   [0, 1, 2]
    s1 (t=10..11) [1, 2]
    s2 (t=20..22) [2, 3, 2]
    s3 (t=30..31) [0, 3]
    s4 (t=40)     [4]

Event counts (popularity) 2, 2, 4, 2, 1; sessions per item 2, 2, 3, 2, 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recforge.data import SessionEvents
from recforge.evaluation.session_replay import evaluate_next_item
from recforge.models.base import Recommender, clone, get_model_class
from recforge.models.query import FallbackLog
from recforge.models.session.augment import prefix_index, prefix_sequences
from recforge.models.session.baselines import SKNN, VSKNN, ItemKNNSession, MarkovChain, SPop

S6 = np.sqrt(6.0)


def _events(sessions: list[list[int]], times: list[float] | None = None) -> SessionEvents:
    rows = []
    for s, seq in enumerate(sessions):
        t0 = 10.0 * s if times is None else times[s]
        rows += [(s + 1, item, t0 + t) for t, item in enumerate(seq)]
    return SessionEvents.from_dataframe(pd.DataFrame(rows, columns=["session", "item", "timestamp"]))


@pytest.fixture(scope="module")
def train():
    return _events([[0, 1, 2], [1, 2], [2, 3, 2], [0, 3], [4]])


def _score(model, *sessions, fallbacks=None):
    return model._score_next([np.asarray(s, dtype=np.int32) for s in sessions], fallbacks)


# ---------------------------------------------------------------------- hand-computed cases
def test_spop_hand_computed(train):
    model = SPop().fit(train)
    # counts in [3, 1, 3]: item 3 twice, item 1 once; tie-breaker pop / (1 + 4)
    np.testing.assert_allclose(_score(model, [3, 1, 3])[0], [0.4, 1.4, 0.8, 2.4, 0.2], rtol=1e-6)
    rec = model.recommend_next([[3, 1, 3]], k=5)
    assert rec.items.tolist() == [[3, 1, 2, 0, 4]]  # 0 (pop 2) before 4 (pop 1)


def test_markov_hand_computed_and_fallback(train):
    model = MarkovChain().fit(train)
    # transitions 0->1, 1->2, 1->2, 2->3, 3->2, 0->3
    np.testing.assert_allclose(_score(model, [2, 0], [0, 1], [1, 3]),
                               [[0, .5, 0, .5, 0], [0, 0, 1, 0, 0], [0, 0, 1, 0, 0]])
    # item 4 is never followed by anything: popularity / max pop, counted
    log = FallbackLog(1)
    np.testing.assert_allclose(_score(model, [4], fallbacks=log)[0], [.5, .5, 1, .5, .25])
    assert log.as_dict() == {"no observed successor: popularity": 1}


def test_itemknn_cosine_hand_computed(train):
    model = ItemKNNSession(lmbd=0.0, alpha=0.5, n_neighbors=None).fit(train)
    # co-sessions: (0,1)=1 (0,2)=1 (0,3)=1 (1,2)=2 (2,3)=1; session supports 2, 2, 3, 2, 1
    np.testing.assert_allclose(_score(model, [0, 2])[0], [1 / S6, 2 / S6, 0, 1 / S6, 0], rtol=1e-6)
    np.testing.assert_allclose(_score(model, [0])[0], [0, .5, 1 / S6, .5, 0], rtol=1e-6)
    # only the last item matters
    np.testing.assert_array_equal(_score(model, [3, 1, 0]), _score(model, [0]))


def test_itemknn_regularised_asymmetric_and_pruned(train):
    reg = ItemKNNSession(lmbd=20.0, alpha=0.5, n_neighbors=None).fit(train)
    assert _score(reg, [2])[0, 1] == pytest.approx(2 / np.sqrt(23 * 22), rel=1e-6)
    conf = ItemKNNSession(lmbd=0.0, alpha=1.0, n_neighbors=None).fit(train)
    np.testing.assert_allclose(_score(conf, [2])[0], [1 / 3, 2 / 3, 0, 1 / 3, 0], rtol=1e-6)
    np.testing.assert_allclose(_score(conf, [1])[0], [.5, 0, 1, 0, 0], rtol=1e-6)
    top1 = ItemKNNSession(lmbd=0.0, n_neighbors=1).fit(train)
    np.testing.assert_allclose(_score(top1, [2])[0], [0, 2 / S6, 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(_score(top1, [0])[0], [0, .5, 0, 0, 0])  # tie 1/3 -> lower index


def test_itemknn_event_counts(train):
    model = ItemKNNSession(lmbd=0.0, n_neighbors=None, binary=False).fit(train)
    # s2 holds item 2 twice: co(2,3) = 2, event support of 2 is 4
    np.testing.assert_allclose(_score(model, [2])[0], [1 / np.sqrt(8), 2 / np.sqrt(8), 0, 2 / np.sqrt(8), 0],
                               rtol=1e-6)


def test_itemknn_fallback_counted(train):
    model = ItemKNNSession().fit(train)
    log = FallbackLog(1)
    np.testing.assert_allclose(_score(model, [4], fallbacks=log)[0], [.5, .5, 1, .5, .25])
    assert log.as_dict() == {"no similar item: popularity": 1}


def test_sknn_hand_computed(train):
    # current {2, 3}: sims s0 1/sqrt6, s1 .5, s2 1, s3 .5; k=2 keeps s2 and s3 (tie -> more recent)
    model = SKNN(k=2, sample_size=10).fit(train)
    np.testing.assert_allclose(_score(model, [2, 3])[0], [.5, 0, 1, 1.5, 0], rtol=1e-6)
    nb = model.neighbours([np.array([2, 3])])
    assert sorted(nb.indices.tolist()) == [2, 3]
    # repeated items are a set: [2, 3, 3, 2] scores like [2, 3]
    np.testing.assert_allclose(_score(model, [2, 3, 3, 2]), _score(model, [2, 3]))
    # sampling: only the most recent candidate (s3) survives
    np.testing.assert_allclose(_score(SKNN(k=2, sample_size=1).fit(train), [2, 3])[0], [.5, 0, 0, .5, 0])
    np.testing.assert_allclose(_score(SKNN(k=1, sample_size=2).fit(train), [2, 3])[0], [0, 0, 1, 1, 0])


def test_vsknn_hand_computed(train):
    # [0, 2, 3] linear weights 1/3, 2/3, 1 -> sims s0 1, s1 2/3, s2 5/3, s3 4/3; top 2: s2, s3
    model = VSKNN(k=2, sample_size=10).fit(train)
    np.testing.assert_allclose(_score(model, [0, 2, 3])[0], [4 / 3, 0, 5 / 3, 3, 0], rtol=1e-6)
    harmonic = VSKNN(k=2, sample_size=10, weighting="harmonic").fit(train)
    # weights 1/3, 1/2, 1 -> sims s0 5/6, s1 1/2, s2 3/2, s3 4/3
    np.testing.assert_allclose(_score(harmonic, [0, 2, 3])[0], [4 / 3, 0, 3 / 2, 17 / 6, 0], rtol=1e-6)
    # an item's weight is that of its latest occurrence
    w = model.position_weights([np.array([3, 2, 3])]).toarray()
    np.testing.assert_allclose(w[0], [0, 0, 2 / 3, 1, 0])
    with pytest.raises(ValueError, match="weighting"):
        VSKNN(weighting="log").fit(train)


# ---------------------------------------------------------------------- naive references
def _random_sessions(seed: int, n_sessions: int = 120, n_items: int = 25):
    rng = np.random.default_rng(seed)
    sessions = [list(rng.integers(0, n_items, size=rng.integers(1, 7))) for _ in range(n_sessions)]
    sessions.append(list(range(n_items)))  # every item occurs
    times = list(rng.permutation(len(sessions)) * 100.0 + rng.random(len(sessions)))
    return sessions, times


def _naive_itemknn(sessions, n_items, lmbd, alpha, binary):
    """Loop over sessions and item pairs: co-occurrence and support, then the paper's formula."""
    co = np.zeros((n_items, n_items))
    support = np.zeros(n_items)
    for seq in sessions:
        counts = {}
        for item in seq:
            counts[item] = counts.get(item, 0) + 1
        for i, ci in counts.items():
            support[i] += 1 if binary else ci
            for j, cj in counts.items():
                if i != j:
                    co[i, j] += 1 if binary else ci * cj
    denom = (support[:, None] + lmbd) ** alpha * (support[None, :] + lmbd) ** (1 - alpha)
    return co / denom


@pytest.mark.parametrize("binary", [True, False])
def test_itemknn_matches_naive_reference(binary):
    sessions, times = _random_sessions(1)
    train = _events(sessions, times)
    model = ItemKNNSession(n_neighbors=None, lmbd=20.0, alpha=0.3, binary=binary).fit(train)
    # raw ids are the inner indices here (all 25 items occur)
    expected = _naive_itemknn(sessions, 25, 20.0, 0.3, binary)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)


def _naive_knn(train_sessions, times, current, k, sample_size, weights):
    """Session-kNN by loops: candidates sharing an item, most recent first, then most similar."""
    cand = [n for n, seq in enumerate(train_sessions) if set(seq) & set(current)]
    cand.sort(key=lambda n: (-times[n], n))
    cand = cand[:sample_size]
    sims = []
    for n in cand:
        if weights is None:
            common = set(train_sessions[n]) & set(current)
            sims.append(len(common) / np.sqrt(len(set(current)) * len(set(train_sessions[n]))))
        else:
            sims.append(sum(w for item, w in weights.items() if item in set(train_sessions[n])))
    order = sorted(range(len(cand)), key=lambda r: (-round(sims[r], 9), r))[:k]
    scores = np.zeros(25)
    for r in order:
        for item in set(train_sessions[cand[r]]):
            scores[item] += sims[r]
    return scores


def _linear_weights(current):
    return {item: (p + 1) / len(current) for p, item in enumerate(current)}  # later overwrite


@pytest.mark.parametrize("cls", [SKNN, VSKNN])
def test_session_knn_matches_naive_reference(cls):
    sessions, times = _random_sessions(2)
    train = _events(sessions, times)
    # the events' own times are t0 + position; recency is the last event
    last_times = [t + len(s) - 1 for s, t in zip(sessions, times, strict=True)]
    model = cls(k=7, sample_size=15).fit(train)
    rng = np.random.default_rng(3)
    currents = [list(rng.integers(0, 25, size=rng.integers(1, 6))) for _ in range(30)]
    got = _score(model, *currents)
    for row, current in zip(got, currents, strict=True):
        weights = None if cls is SKNN else _linear_weights(current)
        np.testing.assert_allclose(row, _naive_knn(sessions, last_times, current, 7, 15, weights), rtol=1e-5)


# ---------------------------------------------------------------------- streaming and batching
MODELS = [SPop(), MarkovChain(), ItemKNNSession(), SKNN(k=5, sample_size=20), VSKNN(k=5, sample_size=20)]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_streaming_equals_prefix_scores_and_batch_equals_single(model):
    sessions, times = _random_sessions(4)
    model = clone(model).fit(_events(sessions, times))
    rng = np.random.default_rng(5)
    walk = [list(rng.integers(0, 25, size=rng.integers(1, 5))) for _ in range(3)]
    state = model.init_state(3)
    pos = [0, 0, 0]
    for _ in range(6):
        items = np.array([walk[j][pos[j]] for j in range(3)])
        reset = np.array([pos[j] == 0 for j in range(3)])
        got = model.advance(state, items, reset)
        prefixes = [np.array(walk[j][:pos[j] + 1]) for j in range(3)]
        np.testing.assert_allclose(got, model._score_next(prefixes), rtol=1e-6)
        for j, p in enumerate(prefixes):  # batch == single
            np.testing.assert_allclose(got[j], model._score_next([p])[0], rtol=1e-6)
        for j in range(3):
            pos[j] += 1
            if pos[j] == len(walk[j]):
                walk[j] = list(rng.integers(0, 25, size=rng.integers(1, 5)))
                pos[j] = 0


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_save_load_same_scores(model, tmp_path, train):
    model = clone(model).fit(train)
    sessions = [np.array([0, 2]), np.array([3, 3, 1]), np.array([4])]
    path = model.save(tmp_path / model.name)
    loaded = Recommender.load(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded._score_next(sessions), model._score_next(sessions))
    assert get_model_class(model.name) is type(model)


def test_bad_hyperparameters(train):
    with pytest.raises(ValueError):
        ItemKNNSession(alpha=1.5).fit(train)
    with pytest.raises(ValueError):
        SKNN(k=0).fit(train)


# ---------------------------------------------------------------------- augmentation
def test_prefix_sequences():
    idx, off, src = prefix_index(np.array([0, 3, 4, 6]))
    assert idx.tolist() == [0, 1, 0, 1, 2, 4, 5]
    assert off.tolist() == [0, 2, 5, 7] and src.tolist() == [0, 0, 2]
    ev = _events([[5, 6, 7], [8], [9, 5]])
    aug = prefix_sequences(ev)
    assert [aug.session(s).tolist() for s in range(aug.n_sessions)] == [[0, 1], [0, 1, 2], [4, 0]]
    assert aug.item_map is ev.item_map
    assert aug.timestamps.tolist() == [0.0, 1.0, 0.0, 1.0, 2.0, 20.0, 21.0]
    lists = prefix_sequences([np.array([1, 2, 3])], min_length=1)
    assert [x.tolist() for x in lists] == [[1], [1, 2], [1, 2, 3]]


# ---------------------------------------------------------------------- real data floors
def _shared_data() -> Path:
    env = os.environ.get("RECFORGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.mark.realdata
def test_rsc15_minimum_quality():
    folder = _shared_data() / "rsc15-100k"
    if not (folder / "yoochoose-clicks-100k_train_full.txt").exists():
        pytest.skip("rsc15-100k not available")
    from recforge.data.readers import read_gru4rec_sessions

    parts = read_gru4rec_sessions(folder).parts
    test = parts["test"].select(np.arange(1000))
    floors = {"SPop": 0.33, "MarkovChain": 0.50, "ItemKNNSession": 0.36, "VSKNN": 0.60}
    for name, floor in floors.items():
        model = get_model_class(name)().fit(parts["train_full"])
        res = evaluate_next_item(model, test, ks=(20,))
        assert res["recall@20"] >= floor, (name, res["recall@20"])
