"""meta-prod2vec: the metadata pairs of the SGNS kernel against the Python transcription, the
model on planted genres, and its input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recforge.data import Interactions, ItemFeatures
from recforge.models.item2vec import Item2Vec, keep_probabilities, negative_weights, train_sgns
from recforge.models.meta_prod2vec import MetaProd2Vec, meta_tokens
from tests.models.test_item2vec import _train_python


@pytest.mark.parametrize("window, contexts, sample", [(2, 0, 0.0), (0, 3, 0.0), (1, 0, 0.05)])
def test_kernel_with_metadata_equals_the_python_transcription(window, contexts, sample):
    """Items 0..5 and tokens 6..8: item 5 has no token, item 1 has two."""
    rng = np.random.default_rng(5)
    items = np.array([0, 1, 2, 3, 1, 2, 4, 0, 0, 3, 4, 5, 2, 1], dtype=np.int64)
    offsets = np.array([0, 4, 7, 11, 14], dtype=np.int64)
    n_items, n_tokens = 6, 3
    indptr = np.array([0, 1, 3, 4, 5, 6, 6], dtype=np.int64)
    tokens = np.array([6, 6, 7, 8, 7, 8], dtype=np.int64)
    counts = np.bincount(items, minlength=n_items)
    meta_counts = np.bincount(tokens - n_items, weights=np.repeat(counts, np.diff(indptr)),
                              minlength=n_tokens)
    meta_cum = negative_weights(np.concatenate([np.zeros(n_items), meta_counts]), 0.75)
    keep, cum = keep_probabilities(counts, sample), negative_weights(counts, 0.75)
    syn0 = (rng.random((n_items + n_tokens, 4)) - 0.5) / 4
    syn1 = rng.normal(0, 0.1, (n_items + n_tokens, 4))
    a0, a1, b0, b1 = syn0.copy(), syn1.copy(), syn0.copy(), syn1.copy()
    s_kernel = train_sgns(items, offsets, keep, a0, a1, cum, 2, window, 2, 0.05, 0.001, 777,
                          contexts, np.zeros(0, dtype=bool), indptr, tokens, 0.5, meta_cum)
    s_python = _train_python(items, offsets, keep, b0, b1, cum, 2, window, 2, 0.05, 0.001, 777,
                             contexts, (), meta=(indptr, tokens, 0.5, meta_cum))
    assert int(s_kernel) == s_python
    np.testing.assert_allclose(a0, b0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a1, b1, rtol=1e-12, atol=1e-14)
    assert not np.allclose(a0[n_items:], syn0[n_items:])  # the token vectors trained


def test_meta_negatives_never_draw_items():
    cum = negative_weights(np.concatenate([np.zeros(4), [3.0, 5.0]]), 1.0)
    r = np.linspace(0, cum[-1], 50, endpoint=False)
    assert set(np.searchsorted(cum, r, side="right").tolist()) == {4, 5}


def _planted(seed=0):
    """Three genres of 6 items; each user rates 4 items of one genre in a row; one extra item per
    genre (raw ids 2000+g) is rated once, by a user who rated nothing else: nothing co-occurs
    with it, only its genre tells where it belongs."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(150):
        g = u % 3
        items += (rng.choice(6, 4, replace=False) + 6 * g + 1000).tolist()
        users += [u] * 4
    for g in range(3):
        users.append(1000 + g)
        items.append(2000 + g)
    data = Interactions.from_arrays(np.array(users), np.array(items),
                                    timestamps=np.arange(len(users), dtype=np.float64))
    raw = data.item_map.raw
    genre = np.where(raw >= 2000, raw - 2000, (raw - 1000) // 6)
    names = np.array(["Drama", "Comedy", "Horror"])[genre]
    features = ItemFeatures.from_dataframe(pd.DataFrame({"item": raw, "genres": names}),
                                           data.item_map, categorical={"genres": "|"})
    return data, features, genre


def test_metadata_places_rarely_seen_items_among_their_genre():
    data, features, genre = _planted()
    params = dict(vector_size=16, epochs=15, window=2, negative=3, random_state=1)
    meta = MetaProd2Vec(meta_weight=1.0, **params).fit(data, item_features=features)
    plain = Item2Vec(**params).fit(data)
    rare = np.flatnonzero(data.item_map.raw >= 2000)

    def same_genre(model):
        top = model.similar_items(data.item_map.raw[rare], k=5).inner
        return np.mean(genre[top] == genre[rare][:, None])

    assert same_genre(meta) == 1.0
    assert same_genre(meta) > same_genre(plain)
    assert meta.meta_vectors_.shape == (3, 16)
    assert sorted(meta.meta_names_.tolist()) == ["Comedy", "Drama", "Horror"]


def test_two_fits_agree():
    data, features, _ = _planted()
    a = MetaProd2Vec(vector_size=8, epochs=2, random_state=3).fit(data, item_features=features)
    b = MetaProd2Vec(vector_size=8, epochs=2, random_state=3).fit(data, item_features=features)
    np.testing.assert_array_equal(a.input_vectors_, b.input_vectors_)
    np.testing.assert_array_equal(a.meta_vectors_, b.meta_vectors_)


def test_bad_input_names_the_parameter():
    data, features, _ = _planted()
    with pytest.raises(ValueError, match="needs item_features"):
        MetaProd2Vec().fit(data)
    with pytest.raises(ValueError, match="no categorical feature 'tags'"):
        MetaProd2Vec(feature="tags").fit(data, item_features=features)
    with pytest.raises(ValueError, match="meta_weight"):
        MetaProd2Vec(meta_weight=-1.0).fit(data, item_features=features)
    with pytest.raises(TypeError, match="without a refit"):
        MetaProd2Vec(epochs=1).fit(data, item_features=features).partial_fit(data)
    indptr, tokens, vocab = meta_tokens(features, "genres", data.n_items)
    assert indptr.size == data.n_items + 1 and tokens.min() >= data.n_items and len(vocab) == 3
