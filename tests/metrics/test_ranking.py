"""Top-N metrics: hand-computed cases, a per-user loop reference, hypothesis properties, and
agreement with scikit-learn's ndcg_score / roc_auc_score."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import ndcg_score, roc_auc_score

from recforge.metrics import (
    arhr,
    auc,
    average_precision_at_k,
    cumulative_hit_rate,
    hit_rate,
    hits_matrix,
    ndcg_at_k,
    precision_at_k,
    rating_hit_rate,
    recall_at_k,
    reciprocal_rank,
)


@pytest.fixture
def tiny():
    """Three users, six items, k = 4.

    user 0: list [5, 2, 0, 3]; held out {2: 5, 3: 3, 4: 4} -> hits at positions 2 and 4
    user 1: list [1, 0, -1, -1] (padded); held out {0: 2} -> hit at position 2
    user 2: list [0, 1, 2, 3]; nothing held out -> NaN everywhere
    """
    rec = np.array([[5, 2, 0, 3], [1, 0, -1, -1], [0, 1, 2, 3]])
    rel = sp.csr_matrix((np.array([5.0, 3.0, 4.0, 2.0]),
                         (np.array([0, 0, 0, 1]), np.array([2, 3, 4, 0]))), shape=(3, 6))
    return rec, rel


def test_hits_matrix(tiny):
    rec, rel = tiny
    np.testing.assert_array_equal(hits_matrix(rec, rel), [[0, 1, 0, 1], [0, 1, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(hits_matrix(rec, rel, k=2), [[0, 1], [0, 1], [0, 0]])


def test_hit_rate_and_cutoff(tiny):
    rec, rel = tiny
    np.testing.assert_array_equal(hit_rate(rec, rel), [1, 1, np.nan])
    np.testing.assert_array_equal(hit_rate(rec, rel, k=1), [0, 0, np.nan])


def test_arhr(tiny):
    rec, rel = tiny
    # user 0: (1/2 + 1/4) / 3 held-out items ; user 1: 1/2 / 1
    np.testing.assert_allclose(arhr(rec, rel), [0.75 / 3, 0.5, np.nan])


def test_cumulative_hit_rate(tiny):
    rec, rel = tiny
    # threshold 4: user 0 keeps items {2 (5), 4 (4)} -> item 2 hit; user 1 has only a 2 -> NaN
    np.testing.assert_array_equal(cumulative_hit_rate(rec, rel, threshold=4.0), [1, np.nan, np.nan])
    # threshold 5: only item 2 of user 0, at position 2 -> hit within k=2, not within k=1
    np.testing.assert_array_equal(cumulative_hit_rate(rec, rel, k=1, threshold=5), [0, np.nan, np.nan])


def test_rating_hit_rate(tiny):
    rec, rel = tiny
    # held out: 5 (hit), 3 (hit), 4 (miss), 2 (hit)
    assert rating_hit_rate(rec, rel) == {2.0: 1.0, 3.0: 1.0, 4.0: 0.0, 5.0: 1.0}
    # k = 2: 5 (hit, pos 2), 3 (pos 4: miss), 2 (pos 2: hit)
    assert rating_hit_rate(rec, rel, k=2) == {2.0: 1.0, 3.0: 0.0, 4.0: 0.0, 5.0: 1.0}


def test_precision_recall(tiny):
    rec, rel = tiny
    np.testing.assert_allclose(precision_at_k(rec, rel), [2 / 4, 1 / 4, np.nan])
    np.testing.assert_allclose(recall_at_k(rec, rel), [2 / 3, 1.0, np.nan])
    # k beyond the list length: missing positions are misses, precision still divides by k
    np.testing.assert_allclose(precision_at_k(rec, rel, k=8), [2 / 8, 1 / 8, np.nan])
    np.testing.assert_allclose(recall_at_k(rec, rel, k=8), [2 / 3, 1.0, np.nan])


def test_ndcg_binary_and_rating(tiny):
    rec, rel = tiny
    d = 1 / np.log2(np.arange(2, 6))  # discounts of positions 1..4
    # user 0 binary: hits at 2, 4; ideal has 3 relevant -> first 3 positions
    u0 = (d[1] + d[3]) / d[:3].sum()
    u1 = d[1] / d[0]
    np.testing.assert_allclose(ndcg_at_k(rec, rel), [u0, u1, np.nan])
    # rating gains: user 0 gains 5 at pos 2, 3 at pos 4; ideal 5, 4, 3
    u0r = (5 * d[1] + 3 * d[3]) / (5 * d[0] + 4 * d[1] + 3 * d[2])
    np.testing.assert_allclose(ndcg_at_k(rec, rel, gains="rating"), [u0r, u1, np.nan])
    # k = 2: IDCG over min(2, 3) = 2 positions
    np.testing.assert_allclose(ndcg_at_k(rec, rel, k=2), [d[1] / d[:2].sum(), u1, np.nan])


def test_average_precision(tiny):
    rec, rel = tiny
    # user 0: P@2 = 1/2, P@4 = 2/4, normalized by min(4, 3) = 3 ; user 1: P@2 = 1/2, /1
    np.testing.assert_allclose(average_precision_at_k(rec, rel), [(0.5 + 0.5) / 3, 0.5, np.nan])
    # k = 2: only the hit at 2 counts, normalized by min(2, 3) = 2
    np.testing.assert_allclose(average_precision_at_k(rec, rel, k=2), [0.25, 0.5, np.nan])


def test_reciprocal_rank(tiny):
    rec, rel = tiny
    np.testing.assert_allclose(reciprocal_rank(rec, rel), [0.5, 0.5, np.nan])
    np.testing.assert_allclose(reciprocal_rank(rec, rel, k=1), [0.0, 0.0, np.nan])


def test_auc_hand_computed():
    scores = np.array([[0.9, 0.1, 0.5, 0.5, 0.3],
                       [0.2, 0.4, 0.6, 0.8, 1.0]])
    rel = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    # user 0: positive 0.5 vs negatives 0.9 (0), 0.1 (1), 0.5 (tie 1/2), 0.3 (1) -> 2.5 / 4
    np.testing.assert_allclose(auc(scores, rel), [2.5 / 4, np.nan])
    # excluding items 0 and 3 (e.g. training items): negatives 0.1, 0.3 -> 1
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 1, 0], [0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(auc(scores, rel, exclude=exclude), [1.0, np.nan])
    # an item both excluded and relevant is left out: here the only positive -> NaN
    exclude2 = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))
    assert np.isnan(auc(scores, rel, exclude=exclude2)).all()


def test_bad_input():
    rel = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="more than once"):
        hit_rate([[0, 1, 0]], rel[:1])
    with pytest.raises(ValueError, match="rows"):
        hit_rate([[0, 1]], rel)
    with pytest.raises(ValueError, match="only 3 items"):
        hit_rate([[0, 7]], rel[:1])
    with pytest.raises(ValueError, match="k must be positive"):
        precision_at_k([[0, 1]], rel[:1], k=0)
    with pytest.raises(ValueError, match="gains"):
        ndcg_at_k([[0, 1]], rel[:1], gains="exp")
    with pytest.raises(ValueError, match="NaN"):
        auc([[0.0, np.nan, 1.0]], rel[:1])


# ---------------------------------------------------------------------- reference loop
def _random_case(rng, n_users=40, n_items=30, k=7):
    scores = rng.random((n_users, n_items))
    rec = np.argsort(-scores, axis=1)[:, :k].copy()
    rec[rng.random((n_users, k)) < 0.1] = -1  # some padding-like holes
    dense = (rng.random((n_users, n_items)) < 0.15) * rng.integers(1, 6, (n_users, n_items))
    return scores, rec, sp.csr_matrix(dense.astype(float))


def _loop_reference(rec, rel, k):
    """Straight per-user definitions, written independently of the vectorized code."""
    out = {m: [] for m in ("hr", "arhr", "p", "r", "ndcg", "ap", "rr")}
    for u in range(rec.shape[0]):
        relevant = set(rel[u].indices.tolist())
        lst = [int(i) for i in rec[u, :k]]
        if not relevant:
            for v in out.values():
                v.append(np.nan)
            continue
        hits = [i in relevant for i in lst]
        out["hr"].append(float(any(hits)))
        out["arhr"].append(sum(1 / (p + 1) for p, h in enumerate(hits) if h) / len(relevant))
        out["p"].append(sum(hits) / k)
        out["r"].append(sum(hits) / len(relevant))
        dcg = sum(1 / np.log2(p + 2) for p, h in enumerate(hits) if h)
        idcg = sum(1 / np.log2(p + 2) for p in range(min(k, len(relevant))))
        out["ndcg"].append(dcg / idcg)
        n_hit, ap = 0, 0.0
        for p, h in enumerate(hits):
            if h:
                n_hit += 1
                ap += n_hit / (p + 1)
        out["ap"].append(ap / min(k, len(relevant)))
        out["rr"].append(next((1 / (p + 1) for p, h in enumerate(hits) if h), 0.0))
    return {m: np.array(v) for m, v in out.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    _, rec, rel = _random_case(rng)
    for k in (1, 3, 7):
        ref = _loop_reference(rec, rel, k)
        np.testing.assert_allclose(hit_rate(rec, rel, k), ref["hr"])
        np.testing.assert_allclose(arhr(rec, rel, k), ref["arhr"])
        np.testing.assert_allclose(precision_at_k(rec, rel, k), ref["p"])
        np.testing.assert_allclose(recall_at_k(rec, rel, k), ref["r"])
        np.testing.assert_allclose(ndcg_at_k(rec, rel, k), ref["ndcg"])
        np.testing.assert_allclose(average_precision_at_k(rec, rel, k), ref["ap"])
        np.testing.assert_allclose(reciprocal_rank(rec, rel, k), ref["rr"])


@pytest.mark.reference
@pytest.mark.parametrize("seed", [0, 1])
def test_ndcg_agrees_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores, _, rel = _random_case(rng)
    rec = np.argsort(-scores, axis=1)[:, :5]
    rows = np.flatnonzero(np.diff(rel.indptr) > 0)
    dense = rel.toarray()
    for gains in ("binary", "rating"):
        truth = (dense > 0).astype(float) if gains == "binary" else dense
        ours = ndcg_at_k(rec, rel, k=5, gains=gains)[rows]
        theirs = [ndcg_score(truth[[u]], scores[[u]], k=5) for u in rows]
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@pytest.mark.reference
@pytest.mark.parametrize("seed", [0, 1])
def test_auc_agrees_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores, _, rel = _random_case(rng)
    scores = np.round(scores, 1)  # plenty of ties
    exclude = sp.csr_matrix(rng.random(scores.shape) < 0.2)
    ours = auc(scores, rel, exclude=exclude)
    pos, ex = rel.toarray() > 0, exclude.toarray()
    for u in range(scores.shape[0]):
        keep = ~ex[u]
        y = pos[u][keep]
        if y.all() or not y.any():
            assert np.isnan(ours[u])
        else:
            assert ours[u] == pytest.approx(roc_auc_score(y, scores[u][keep]), abs=1e-12)


# ---------------------------------------------------------------------- properties
@st.composite
def ranking_case(draw):
    n_items = draw(st.integers(2, 15))
    n_users = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scores = rng.random((n_users, n_items))
    dense = rng.random((n_users, n_items)) < draw(st.floats(0.05, 0.9))
    values = rng.integers(1, 6, dense.shape) * dense
    return scores, sp.csr_matrix(values.astype(float))


@settings(max_examples=60, deadline=None)
@given(ranking_case())
def test_properties(case):
    scores, rel = case
    n_items = scores.shape[1]
    full = np.argsort(-scores, axis=1)
    has = np.diff(rel.indptr) > 0
    prev_hr = None
    for k in range(1, n_items + 1):
        rec = full[:, :k]
        for metric in (hit_rate, arhr, precision_at_k, recall_at_k, ndcg_at_k,
                       average_precision_at_k, reciprocal_rank):
            v = metric(rec, rel, k)
            assert np.all(np.isnan(v) == ~has)
            assert np.all((v[has] >= -1e-12) & (v[has] <= 1 + 1e-12))
        hr = hit_rate(rec, rel, k)
        if prev_hr is not None:
            assert np.all(hr[has] >= prev_hr[has])  # HR is non-decreasing in k
        prev_hr = hr
    # the full list finds everything
    np.testing.assert_allclose(recall_at_k(full, rel)[has], 1.0)
    # a perfect ranking (relevant items first, by rating) scores 1
    perfect = np.argsort(-(rel.toarray() * 10 + scores), axis=1)
    for k in (1, 3, n_items):
        np.testing.assert_allclose(ndcg_at_k(perfect, rel, k)[has], 1.0)
        np.testing.assert_allclose(ndcg_at_k(perfect, rel, k, gains="rating")[has], 1.0)
        np.testing.assert_allclose(average_precision_at_k(perfect, rel, k)[has], 1.0)
        np.testing.assert_allclose(reciprocal_rank(perfect, rel, k)[has], 1.0)
    a = auc(rel.toarray() * 10 + scores, rel)
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], 1.0)
    np.testing.assert_allclose(auc(-(rel.toarray() * 10 + scores), rel)[ok], 0.0)


def test_ml1m_size_is_vectorized():
    """6,040 users x k=10 over 3,706 items: a big random case against a dense lookup."""
    rng = np.random.default_rng(3)
    n_users, n_items = 6040, 3706
    rec = np.argsort(rng.random((n_users, 40)), axis=1)[:, :10] * 90 + rng.integers(0, 90, (n_users, 1))
    rows = rng.integers(0, n_users, 120_000)
    cols = rng.integers(0, n_items, 120_000)
    rel = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_users, n_items))
    hits = hits_matrix(rec, rel)
    dense = np.zeros((n_users, n_items), dtype=bool)
    dense[rows, cols] = True
    np.testing.assert_array_equal(hits, np.take_along_axis(dense, rec, axis=1))
    assert hits.sum() > 100


def test_unsorted_csr_and_dense_relevant(tiny):
    rec, rel = tiny
    coo = rel.tocoo()
    order = np.array([2, 0, 1, 3])  # scrambled within row 0 -> non-canonical CSR
    scrambled = sp.csr_matrix((coo.data[order], coo.col[order], [0, 3, 4, 4]), shape=rel.shape)
    scrambled.has_sorted_indices = False
    np.testing.assert_array_equal(hits_matrix(rec, scrambled), hits_matrix(rec, rel))
    np.testing.assert_allclose(ndcg_at_k(rec, rel.toarray(), gains="rating"),
                               ndcg_at_k(rec, rel, gains="rating"))
