"""The synthetic generator: determinism, sizes, scales, long tail, and learnable structure."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import Dataset, SessionEvents
from recforge.data.synthetic import (
    GENRES,
    generate_implicit,
    generate_ratings,
    generate_sessions,
    load_synthetic,
)
from recforge.split import holdout, leave_one_out, session_split


@pytest.fixture(scope="module")
def ratings() -> Dataset:
    return generate_ratings(seed=0)


@pytest.fixture(scope="module")
def sessions() -> Dataset:
    return generate_sessions(n_sessions=8000, n_items=400, seed=0)


def _same_interactions(a, b) -> bool:
    return (np.array_equal(a.users, b.users) and np.array_equal(a.items, b.items)
            and np.array_equal(a.values, b.values) and np.array_equal(a.timestamps, b.timestamps))


def test_ratings_are_deterministic_for_a_seed(ratings):
    again = generate_ratings(seed=0)
    assert _same_interactions(ratings.interactions, again.interactions)
    assert np.array_equal(ratings.item_features.titles, again.item_features.titles)
    assert (ratings.item_features.categorical["genres"][0] != again.item_features.categorical["genres"][0]).nnz == 0
    other = generate_ratings(seed=1)
    assert not np.array_equal(ratings.interactions.items, other.interactions.items)


def test_ratings_sizes_scale_and_timestamps(ratings):
    x = ratings.interactions
    assert (x.n_users, x.n_items, x.nnz) == (943, 1682, 100_000)
    assert x.kind == "explicit" and x.rating_scale == (1.0, 5.0)
    assert set(np.unique(x.values).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    keys = x.users.astype(np.int64) * x.n_items + x.items
    assert np.unique(keys).size == x.nnz  # (user, item) pairs are distinct
    assert x.user_counts.min() >= 20  # MovieLens-like minimum activity
    # realistic rating distribution: mean and spread near MovieLens 100K's 3.53 / 1.13
    assert 3.3 < x.values.mean() < 3.8 and 0.9 < x.values.std() < 1.3
    assert x.timestamps.min() >= 946684800 and x.timestamps.max() <= 946684800 + 3 * 365 * 86400
    assert x.user_map.raw.tolist() == list(range(1, 944))


def test_half_stars():
    x = generate_ratings(n_users=60, n_items=80, n_ratings=2000, half_stars=True, seed=2).interactions
    assert x.rating_scale == (0.5, 5.0)
    assert np.all(x.values * 2 == np.round(x.values * 2))
    assert x.values.min() >= 0.5 and x.values.max() <= 5.0
    assert np.unique(x.values).size > 5  # half steps actually occur


def test_popularity_is_long_tailed(ratings):
    counts = np.sort(ratings.interactions.item_counts)[::-1]
    top_decile_share = counts[: counts.size // 10].sum() / counts.sum()
    assert top_decile_share > 0.3  # uniform would give 0.1
    assert counts[0] > 10 * np.median(counts)  # MovieLens 100K: 583 vs 27


def test_item_features(ratings):
    f = ratings.item_features
    assert f.item_map is ratings.interactions.item_map
    genres, vocab = f.categorical["genres"]
    assert vocab == list(GENRES) and genres.shape == (1682, len(GENRES))
    per_item = np.diff(genres.indptr)
    assert per_item.min() >= 1 and 1.2 < per_item.mean() < 2.5
    assert f.has("genres").all() and f.has("year").all() and f.has("title").all()
    year = f.numeric["year"]
    assert np.all(year == np.round(year)) and 1920 <= year.min() and year.max() <= 2024
    assert len(set(f.titles.tolist())) == f.n_items  # titles are unique and readable
    assert all(t.endswith(")") and "(" in t for t in f.titles[:50])


def test_genres_carry_rating_signal(ratings):
    """A user's mean residual on each genre predicts held-out ratings better than the user mean."""
    x = ratings.interactions
    split = holdout(x, 0.2, seed=0)
    tr, te = split.train, split.test
    user_mean = np.bincount(tr.users, weights=tr.values, minlength=tr.n_users) / np.maximum(tr.user_counts, 1)
    genres = ratings.item_features.categorical["genres"][0]
    resid = sp.csr_matrix((tr.values - user_mean[tr.users], (tr.users, tr.items)), shape=tr.shape)
    ones = sp.csr_matrix((np.ones(tr.nnz), (tr.users, tr.items)), shape=tr.shape)
    user_genre = np.asarray((resid @ genres).todense()) / (np.asarray((ones @ genres).todense()) + 5.0)
    g = np.asarray(genres[te.items].todense())
    by_genre = user_mean[te.users] + (user_genre[te.users] * g).sum(1) / g.sum(1)

    def rmse(pred):
        return float(np.sqrt(np.mean((pred - te.values) ** 2)))

    assert rmse(by_genre) < rmse(user_mean[te.users]) - 0.03


def test_year_is_related_to_genres(ratings):
    """Both come from the item factors, so genres explain a good share of the year's variance."""
    f = ratings.item_features
    design = np.c_[f.categorical["genres"][0].toarray(), np.ones(f.n_items)]
    year = f.numeric["year"]
    beta = np.linalg.lstsq(design, year, rcond=None)[0]
    assert 1 - np.var(year - design @ beta) / np.var(year) > 0.1


def test_which_items_are_rated_is_personal(ratings):
    """Item co-occurrence beats popularity at recovering a held-out item (selection is not random)."""
    split = leave_one_out(ratings.interactions, mode="random", seed=0)
    tr, te = split.train, split.test
    seen = tr.csr.astype(bool).astype(np.float32)
    co = (seen.T @ seen).toarray()
    np.fill_diagonal(co, 0)
    co /= np.sqrt(np.outer(co.sum(1) + 1, co.sum(0) + 1))
    knn = seen @ co
    pop = np.tile(tr.item_counts.astype(float), (tr.n_users, 1))

    def hit_rate(score):
        score[seen.nonzero()] = -np.inf
        target = score[te.users, te.items]
        return float(((score[te.users] > target[:, None]).sum(1) < 10).mean())

    assert hit_rate(knn) > hit_rate(pop) + 0.02


def test_saturated_sizes_use_every_cell():
    x = generate_ratings(n_users=5, n_items=6, n_ratings=30, seed=0).interactions
    assert x.nnz == 30 and np.array_equal(np.bincount(x.users), np.full(5, 6))


def test_implicit_counts():
    data = generate_implicit(n_users=200, n_items=300, n_events=20_000, seed=3)
    x = data.interactions
    assert x.kind == "implicit" and x.rating_scale is None
    assert x.values.sum() == 20_000 and x.values.min() >= 1 and x.values.max() > 1
    assert x.nnz < 20_000
    assert np.array_equal(x.values, generate_implicit(n_users=200, n_items=300, n_events=20_000, seed=3).interactions.values)
    assert data.item_features.categorical["genres"][0].shape == (300, len(GENRES))


def test_bad_sizes():
    with pytest.raises(ValueError, match="n_ratings"):
        generate_ratings(n_users=3, n_items=3, n_ratings=10)
    with pytest.raises(ValueError, match="n_users"):
        generate_ratings(n_users=0)
    with pytest.raises(ValueError, match="mean_length"):
        generate_sessions(mean_length=0.5)


def test_load_synthetic_dispatches_by_name():
    assert load_synthetic("synthetic", n_users=30, n_items=20, n_ratings=100).interactions.nnz == 100
    assert load_synthetic("synthetic-implicit", n_users=10, n_items=20, n_events=50).interactions.kind == "implicit"
    assert load_synthetic("synthetic-sessions", n_sessions=100, n_items=50).sessions.n_sessions == 100
    with pytest.raises(KeyError, match="synthetic-sessions"):
        load_synthetic("movielens")


def test_sessions_shape_and_parts(sessions):
    se = sessions.sessions
    assert isinstance(se, SessionEvents) and se.n_sessions == 8000 and se.n_items == 400
    assert 4.5 < se.lengths.mean() < 5.5 and se.lengths.min() == 1
    # time-ordered within sessions; sessions numbered by start time; about 14 days
    same = se.session_of_event[1:] == se.session_of_event[:-1]
    assert np.all(np.diff(se.timestamps)[same] > 0)
    assert np.all(np.diff(se.start_times) >= 0)
    assert 13 * 86400 < se.timestamps.max() - se.timestamps.min() < 15 * 86400
    again = session_split(se, test_days=1)
    train, test = sessions.parts["train"], sessions.parts["test"]
    assert np.array_equal(train.items, again.train.items) and np.array_equal(test.items, again.test.items)
    assert test.item_map is train.item_map and 0.04 < test.n_sessions / se.n_sessions < 0.1
    assert sessions.drops.counts["sessions shorter than min_length (before splitting)"] == (se.lengths < 2).sum()
    b = generate_sessions(n_sessions=8000, n_items=400, seed=0).sessions
    assert np.array_equal(se.items, b.items) and np.array_equal(se.timestamps, b.timestamps)


def _mrr_first_vs_second_order(train: SessionEvents, test: SessionEvents, k: int = 20):
    """MRR@k of next-item predictors conditioned on the last item vs. the last two items."""
    n = train.n_items
    sess = train.session_of_event
    same1 = sess[1:] == sess[:-1]
    first = np.zeros((n, n))
    np.add.at(first, (train.items[:-1][same1], train.items[1:][same1]), 1)
    same2 = sess[2:] == sess[:-2]
    second = defaultdict(lambda: np.zeros(n))
    ctx = train.items[:-2][same2].astype(np.int64) * n + train.items[1:-1][same2]
    for c, nxt in zip(ctx.tolist(), train.items[2:][same2].tolist(), strict=True):
        second[c][nxt] += 1
    pop = np.bincount(train.items, minlength=n) * 1e-6
    rr = {"first": [], "second": []}
    for s in range(test.n_sessions):
        x = test.session(s)
        for j in range(1, x.size):
            f = first[x[j - 1]] + pop
            c = int(x[j - 2]) * n + int(x[j - 1]) if j >= 2 else -1
            s2 = second[c] + 1e-3 * f / f.max() if c in second else f
            for name, score in (("first", f), ("second", s2)):
                rank = int((score > score[x[j]]).sum())
                rr[name].append(1.0 / (rank + 1) if rank < k else 0.0)
    return float(np.mean(rr["first"])), float(np.mean(rr["second"]))


def test_sessions_have_higher_order_structure(sessions):
    """Knowing the last two items predicts the next one clearly better than the last item alone."""
    mrr_first, mrr_second = _mrr_first_vs_second_order(sessions.parts["train"], sessions.parts["test"])
    assert mrr_first > 0.1  # first-order structure exists ...
    assert mrr_second > 1.15 * mrr_first  # ... and a longer memory helps clearly


def test_generated_session_parts_are_the_session_split():
    data = generate_sessions(n_sessions=600, n_items=80, seed=3)
    split = session_split(data.sessions, test_days=1)
    for part, want in (("train", split.train), ("test", split.test)):
        got = data.parts[part]
        np.testing.assert_array_equal(got.items, want.items)
        np.testing.assert_array_equal(got.offsets, want.offsets)
        np.testing.assert_array_equal(got.item_map.raw, want.item_map.raw)
    assert dict(data.drops.counts) == split.report["dropped"]
    assert sum(split.report["dropped"].values()) > 0
