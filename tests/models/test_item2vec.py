"""item2vec: the Numba SGNS kernel against a slow Python transcription, planted item groups,
and the query side."""

from __future__ import annotations

import numpy as np
import pytest

from recforge.data import Interactions
from recforge.models.item2vec import (
    Item2Vec,
    keep_probabilities,
    negative_weights,
    train_sgns,
)
from tests.models.contract import check_fold_in_exact, contract_data

MASK64 = (1 << 64) - 1


def _lcg(state: int) -> int:
    return (state * 25214903917 + 11) & MASK64


def _train_python(items, offsets, keep_prob, syn0, syn1, cum, negative, window, epochs, alpha,
                  min_alpha, seed, contexts=0, fixed=(), meta=None):
    """word2vec's skip-gram with negative sampling, one pair at a time, in plain Python; with
    ``meta = (indptr, tokens, weight, meta_cum)`` the meta-prod2vec pairs of Vasile et al.
    (2016): per kept position I|M, per item pair J|I then M|I, J|M and M|M, one metadata
    token drawn per item and pair."""
    state = seed

    def pair(inp, target, weights, lr):
        nonlocal state
        grad_in = np.zeros(syn0.shape[1])
        for n in range(negative + 1):
            if n == 0:
                out, label = target, 1.0
            else:
                state = _lcg(state)
                r = (state >> 16) / 2.0**48 * weights[-1]
                out = int(np.searchsorted(weights, r, side="right"))
                if out == target:
                    continue
                label = 0.0
            g = (label - 1.0 / (1.0 + np.exp(-syn0[inp] @ syn1[out]))) * lr
            grad_in += g * syn1[out]
            if out not in fixed:
                syn1[out] += g * syn0[inp]
        if inp not in fixed:
            syn0[inp] += grad_in

    def token(item):  # one metadata token drawn uniformly, as the kernel draws it
        nonlocal state
        n = meta[0][item + 1] - meta[0][item]
        if n == 0:
            return None
        state = _lcg(state)
        return int(meta[1][meta[0][item] + (state >> 16) % n])

    total = len(items)
    for epoch in range(epochs):
        for s in range(len(offsets) - 1):
            start, end = offsets[s], offsets[s + 1]
            lr = max(alpha - (alpha - min_alpha) * (epoch * total + start) / (epochs * total),
                     min_alpha)
            mlr = 0.0 if meta is None else meta[2] * lr
            kept = []
            for it in items[start:end]:
                if keep_prob[it] < 1.0:
                    state = _lcg(state)
                    if keep_prob[it] < (state & 0xFFFF) / 65536.0:
                        continue
                kept.append(it)
            for pos, center in enumerate(kept):
                if meta is not None:  # I|M
                    b = token(center)
                    if b is not None:
                        pair(b, center, cum, mlr)
                        pair(center, b, meta[3], mlr)
                if window <= 0 and contexts > 0:  # drawn one at a time, before its update
                    if len(kept) < 2:
                        break
                    picks = [None] * contexts
                else:
                    picks = [q for q in range(len(kept))
                             if q != pos and not (window > 0 and abs(q - pos) > window)]
                for q in picks:
                    if q is None:
                        state = _lcg(state)
                        q = (state >> 16) % (len(kept) - 1)
                        q = q + 1 if q >= pos else q
                    ctx = kept[q]
                    pair(ctx, center, cum, lr)  # J|I
                    if meta is None:
                        continue
                    a = token(center)
                    if a is not None:  # M|I
                        pair(ctx, a, meta[3], mlr)
                    b = token(ctx)
                    if b is not None:
                        pair(b, center, cum, mlr)  # J|M
                        if a is not None:  # M|M
                            pair(b, a, meta[3], mlr)
    return state


NO_META = (np.zeros(0, np.int64), np.zeros(0, np.int64), 0.0, np.zeros(0, np.float64))


@pytest.mark.parametrize("window, sample, contexts, fixed", [
    (0, 0.0, 0, ()), (1, 0.02, 0, ()), (2, 0.0, 0, ()), (0, 0.05, 0, ()),
    (0, 0.0, 3, ()), (0, 0.05, 2, ()), (0, 0.0, 3, (1, 4)), (1, 0.0, 0, (2,))])
def test_kernel_equals_the_python_transcription(window, sample, contexts, fixed):
    rng = np.random.default_rng(3)
    items = np.array([0, 1, 2, 3, 1, 2, 4, 0, 0, 3, 4, 5, 2, 1], dtype=np.int64)
    offsets = np.array([0, 4, 7, 11, 14], dtype=np.int64)
    counts = np.bincount(items, minlength=7)  # item 6 never occurs: never a negative
    keep, cum = keep_probabilities(counts, sample), negative_weights(counts, 0.75)
    assert sample == 0 or keep.min() < 1
    syn0 = (rng.random((7, 4)) - 0.5) / 4
    syn1 = rng.normal(0, 0.1, (7, 4))
    a0, a1, b0, b1 = syn0.copy(), syn1.copy(), syn0.copy(), syn1.copy()
    mask = np.zeros(7, dtype=bool)
    mask[list(fixed)] = True
    s_kernel = train_sgns(items, offsets, keep, a0, a1, cum, 3, window, 2, 0.05, 0.001, 12345,
                          contexts, mask if fixed else np.zeros(0, dtype=bool), *NO_META)
    s_python = _train_python(items, offsets, keep, b0, b1, cum, 3, window, 2, 0.05, 0.001, 12345,
                             contexts, fixed)
    assert int(s_kernel) == s_python
    np.testing.assert_allclose(a0, b0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a1, b1, rtol=1e-12, atol=1e-14)
    assert not np.allclose(a0, syn0)  # it trained
    np.testing.assert_array_equal(a1[6], syn1[6])
    for k in fixed:  # fixed items are read, never written
        np.testing.assert_array_equal(a0[k], syn0[k])
        np.testing.assert_array_equal(a1[k], syn1[k])


def test_negative_weights_follow_the_unigram_power():
    cum = negative_weights(np.array([16, 0, 1]), 0.75)
    np.testing.assert_allclose(np.diff(np.concatenate([[0.0], cum])), [8.0, 0.0, 1.0])


def _planted(n_groups=3, per_group=6, n_users=240, seed=0):
    """Each user interacts with 4 items of one group: groups are the only co-occurrences."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        g = u % n_groups
        chosen = rng.choice(per_group, 4, replace=False) + g * per_group
        users += [u] * 4
        items += chosen.tolist()
    return Interactions.from_arrays(np.array(users), np.array(items) + 1000,
                                    timestamps=np.arange(len(users), dtype=np.float64))


@pytest.mark.parametrize("window", [None, 1])
def test_similar_items_recover_planted_groups(window):
    data = _planted()
    model = Item2Vec(vector_size=16, epochs=10, window=window, sample=0.0, random_state=1).fit(data)
    raw = data.item_map.raw
    group = (raw - 1000) // 6
    sims = model.similar_items(raw, k=5)
    for j in range(raw.size):
        assert set(group[data.item_map.to_inner(sims.items[j])]) == {group[j]}, raw[j]
    # an anonymous history from group 1 gets group-1 items
    rec = model.recommend(history=[[1006, 1007]], k=4)
    assert set((rec.items[0].astype(int) - 1000) // 6) == {1}


def test_two_fits_with_one_seed_agree_and_another_seed_differs():
    data = _planted(n_users=30)
    a = Item2Vec(vector_size=8, epochs=2, random_state=5).fit(data)
    b = Item2Vec(vector_size=8, epochs=2, random_state=5).fit(data)
    c = Item2Vec(vector_size=8, epochs=2, random_state=6).fit(data)
    np.testing.assert_array_equal(a.item_vectors_, b.item_vectors_)
    assert not np.allclose(a.item_vectors_, c.item_vectors_)


def test_scores_are_cosines_with_the_mean_history_vector():
    data = contract_data()
    model = Item2Vec(vector_size=8, epochs=3, scoring="cosine", random_state=0).fit(data)
    v = model.item_vectors_.astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(v[data.item_counts > 0], axis=1), 1.0, rtol=1e-6)
    assert np.all(v[data.item_counts == 0] == 0)  # item 113: no vector
    rec_hist = [1, 4, 5]
    q = v[rec_hist].mean(axis=0)
    want = v @ q / np.linalg.norm(q)
    got = model.score_inner(np.array([-1]), history=np.eye(data.n_items)[rec_hist].sum(axis=0)[None])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    check_fold_in_exact(model, data)


def test_recency_weight_favours_the_latest_items():
    data = _planted()
    model = Item2Vec(vector_size=16, epochs=10, sample=0.0, recency_weight=0.1,
                     random_state=1).fit(data)
    older_first = model.recommend(history=[[1000, 1001, 1012]], k=3)  # group 2 latest
    latest_first = model.recommend(history=[[1012, 1000, 1001]], k=3)  # group 0 latest
    assert set((older_first.items[0].astype(int) - 1000) // 6) == {2}
    assert set((latest_first.items[0].astype(int) - 1000) // 6) == {0}


def test_threshold_drops_low_values_and_min_count_rare_items():
    data = contract_data()
    model = Item2Vec(vector_size=8, epochs=2, threshold=3.0, min_count=3, random_state=0).fit(data)
    assert model.feedback_dropped_ == int((data.values < 3).sum())
    counts = np.bincount(data.items[data.values >= 3], minlength=data.n_items)
    assert np.all(model.item_vectors_[counts < 3] == 0)
    assert np.all(np.linalg.norm(model.item_vectors_[counts >= 3], axis=1) > 0.99)
    low = model.recommend(history=[{int(data.item_map.raw[0]): 1.0}], k=3)
    assert low.fallback[0] == "no usable history: popularity"


@pytest.mark.parametrize("params, field", [({"vector_size": 0}, "vector_size"),
                                           ({"window": -1}, "window"),
                                           ({"alpha": 0}, "alpha"),
                                           ({"recency_weight": 1.5}, "recency_weight"),
                                           ({"threshold": float("inf")}, "threshold")])
def test_bad_hyperparameters_are_named(params, field):
    with pytest.raises(ValueError, match=f"item2vec: {field}"):
        Item2Vec(**params).fit(contract_data())


def test_context_scoring_is_the_mean_input_vector_against_output_vectors():
    data = contract_data()
    model = Item2Vec(vector_size=8, epochs=3, random_state=0).fit(data)
    assert model.scoring == "context"
    u, v = model.input_vectors_.astype(np.float64), model.output_vectors_.astype(np.float64)
    rec_hist = [1, 4, 5]
    want = v @ u[rec_hist].mean(axis=0)
    got = model.score_inner(np.array([-1]), history=np.eye(data.n_items)[rec_hist].sum(axis=0)[None])
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    check_fold_in_exact(model, data)


def test_partial_fit_places_new_items_beside_their_group_and_keeps_old_vectors():
    data = _planted()
    raw_items = data.item_map.raw
    newest = np.isin(data.items, data.item_map.to_inner([1005, 1011]))  # one item of groups 0, 1
    late_users = data.users >= 200
    first = data.subset(~newest & ~late_users)
    model = Item2Vec(vector_size=16, epochs=10, random_state=1).fit(first)
    before = model.input_vectors_.copy()
    rest = data.subset(newest | late_users)
    rest = type(rest).from_arrays(data.user_map.raw[rest.users], raw_items[rest.items],
                                  rest.values, timestamps=rest.timestamps)
    model.partial_fit(rest)
    assert model.n_items_ == data.n_items and model.n_users_ == data.n_users
    assert model.user_vectors_.shape == (data.n_users, 16)
    had = np.any(before != 0, axis=1)  # 1005 and 1011 are in the map but had no vector
    assert had.sum() == before.shape[0] - 2
    np.testing.assert_array_equal(model.input_vectors_[:before.shape[0]][had], before[had])
    for item, group in ((1005, 0), (1011, 1)):
        sims = model.similar_items([item], k=3)
        assert set((sims.items[0].astype(int) - 1000) // 6) == {group}
    rec = model.recommend(history=[[1006, 1007, 1008]], k=6)  # group 1 history
    assert 1011 in set(rec.items[0].astype(int))
