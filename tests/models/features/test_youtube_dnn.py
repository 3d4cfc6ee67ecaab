"""YouTube DNN: history windows, example age, scoring from a watch history."""

from __future__ import annotations

import numpy as np

from recforge.data import IdMap, Interactions
from recforge.models.features.youtube_dnn import YouTubeDNN, history_windows


def test_history_windows_take_the_last_items_before_each_event():
    items = np.array([4, 5, 6, 7, 1, 2])
    starts = np.array([0, 0, 0, 4, 4])
    ends = np.array([0, 1, 3, 4, 6])
    got = history_windows(items, starts, ends, 2)
    # +1 on items, 0 = padding
    assert got.tolist() == [[0, 0], [0, 5], [6, 7], [0, 0], [2, 3]]


def _two_camps(n_users=16, n_items=12, length=6, seed=0):
    """Even users watch only items 0-5, odd users only items 6-11."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(n_users):
        pool = np.arange(0, 6) if u % 2 == 0 else np.arange(6, 12)
        seq = rng.choice(pool, length, replace=False)
        users += [u] * length
        items += seq.tolist()
        times += (1.6e9 + 86400.0 * np.arange(length) + 10 * u).tolist()
    return Interactions(np.array(users), np.array(items), np.ones(len(users), np.float32),
                        user_map=IdMap(np.arange(n_users)), item_map=IdMap(np.arange(100, 100 + n_items)),
                        timestamps=np.array(times), kind="implicit")


def test_scores_follow_the_watch_history_and_vectors_match():
    data = _two_camps()
    model = YouTubeDNN(embedding_dim=8, hidden=[16], out_dim=8, max_history=4, n_negatives=4, n_epochs=20,
                       batch_size=16, learning_rate=0.02).fit(data)
    assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]
    assert 0 < model.example_age_scale_
    # anonymous histories (FOLD_IN): two items of one camp -> that camp's other items score higher
    rec = model.recommend(history=[[100, 101], [106, 107]], k=2)
    assert all(f is None for f in rec.fallback)
    assert set(rec.items[0].tolist()) <= set(range(100, 106))
    assert set(rec.items[1].tolist()) <= set(range(106, 112))
    import scipy.sparse as sp

    from recforge.models.query import History

    hist = History.from_csr(sp.csr_matrix(([1.0, 1.0, 1.0, 1.0], ([0, 0, 1, 1], [0, 1, 6, 7])), shape=(2, 12)))
    s = model.score_inner(np.array([-1, -1]), history=hist)
    assert s[0, 2:6].mean() > s[0, 8:12].mean() and s[1, 8:12].mean() > s[1, 2:6].mean()
    users = np.arange(data.n_users)
    np.testing.assert_allclose(model.query_vectors(users) @ model.item_vectors().T,
                               model.score_inner(users, history=data.csr), rtol=1e-5, atol=1e-5)
