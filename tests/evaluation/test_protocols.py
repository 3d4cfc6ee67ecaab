"""Protocols on tiny data with known outcomes: oracle rankers, constant predictors, sampled
negatives (labelled, pessimistic ties, uniform and never seen), diversity parity."""

import numpy as np
import pytest
import scipy.sparse as sp

from recforge import metrics as M
from recforge.evaluation import (
    Evaluator,
    RatingCV,
    SampledNegatives,
    TopNHoldout,
    TopNLeaveOneOut,
    make_protocol,
)
from recforge.evaluation.protocols import intra_list_diversity, sample_negatives
from recforge.evaluation.tasks import _item_vectors

from .conftest import Constant, Flat, Oracle, loo_targets


def test_oracle_hits_everything_and_anti_oracle_nothing(toy):
    targets = loo_targets(toy)
    ev = Evaluator(toy, TopNLeaveOneOut(k=5), progress=False)
    ev.add(Oracle(targets), "oracle").add(Oracle(targets, anti=True), "anti")
    res = ev.run()
    for m in ("hr@5", "ndcg@5", "arhr@5", "mrr@5"):
        assert res.value("oracle", m) == 1.0
        assert res.value("anti", m) == 0.0
    # the recall curve of the oracle is 1 at every k, of the anti-oracle 0 below the catalogue size
    assert set(res.get("oracle").curve.values()) == {1.0}
    assert res.get("anti").curve[1] == 0.0
    # one unit per user, all 30 users evaluated
    assert np.isfinite(res.get("oracle").per_unit("hr@5")).sum() == 30


def test_rating_cv_constant_model_by_hand(toy):
    proto = RatingCV(n_folds=3, seed=0)
    ev = Evaluator(toy, proto, progress=False)
    ev.add(Constant(3.0), "c3")
    res = ev.run()
    e = res.get("c3")
    folds = ev.folds(proto)
    expected = [np.sqrt(np.mean((f.test.values - 3.0) ** 2)) for f in folds]
    np.testing.assert_allclose(e.fold_metrics["rmse"], expected, rtol=1e-6)
    np.testing.assert_allclose(e.fold_metrics["mae"], [np.mean(np.abs(f.test.values - 3.0)) for f in folds],
                               rtol=1e-6)
    assert res.value("c3", "rmse") == pytest.approx(np.mean(expected))
    # per-user pooled squared error: every rating is in exactly one test fold
    per_user = e.per_unit("rmse")
    sq = np.bincount(toy.users, weights=(toy.values - 3.0) ** 2) / np.bincount(toy.users)
    np.testing.assert_allclose(per_user, sq, rtol=1e-6)
    lo, hi = res.ci(e, "rmse")
    assert lo < res.value("c3", "rmse") < hi


def test_sampled_protocol_is_labelled_and_pessimistic(toy):
    targets = loo_targets(toy)
    proto = SampledNegatives(n_negatives=10, k=3)
    assert proto.sampled and "sampled" in proto.label
    ev = Evaluator(toy, proto, progress=False)
    ev.add(Oracle(targets), "oracle").add(Flat(), "flat")
    res = ev.run()
    assert res.value("oracle", "hr@3") == 1.0
    assert res.value("oracle", "mrr") == 1.0
    # all 11 candidates tie: the held-out item ranks last (11th) under pessimistic ties
    assert res.value("flat", "hr@3") == 0.0
    assert res.value("flat", "mrr") == pytest.approx(1 / 11)
    frame = res.to_frame()
    assert frame["sampled"].all()
    assert "SAMPLED" in res.table()
    assert res.to_dict()["results"][0]["sampled"] is True
    assert res.protocols["sampled_loo"]["sampled"] is True


def test_full_ranking_excludes_training_items(toy):
    """A model that scores seen items highest still gets ranked only over unseen items."""
    ev = Evaluator(toy, TopNLeaveOneOut(k=3, curve_ks=(3,)), progress=False)

    class SeenLover(Flat):
        def _score(self, users, history=None, fallbacks=None):
            return (history.matrix.toarray() != 0).astype(np.float32)

    ev.add(SeenLover(), "seen")
    res = ev.run()
    fold = ev.folds(ev.protocols[0])[0]
    seen = fold.train.csr.toarray() != 0
    targets = loo_targets(toy)
    # seen items are masked, the rest tie at 0 and go to the lowest indices
    expected = [float(targets[u] in np.flatnonzero(~seen[u])[:3]) for u in range(30)]
    assert res.value("seen", "hr@3") == pytest.approx(np.mean(expected))
    assert res.value("seen", "hr@3") > 0.0


def test_sample_negatives_are_unseen_distinct_uniform_and_seeded():
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 30
    seen = sp.random(n_users, n_items, density=0.3, format="csr", random_state=1)
    users = np.arange(n_users)
    neg = sample_negatives(seen, users, 12, np.random.default_rng(3))
    assert neg.shape == (n_users, 12)
    dense = seen.toarray() != 0
    for u in range(n_users):
        assert len(set(neg[u])) == 12
        assert not dense[u, neg[u]].any()
    np.testing.assert_array_equal(neg, sample_negatives(seen, users, 12, np.random.default_rng(3)))
    # uniform over a user's unseen items: counts over many draws are flat (chi-square)
    one = sp.csr_matrix(([1.0, 1.0], ([0, 0], [0, 1])), shape=(1, 10))
    draws = np.concatenate([sample_negatives(one, np.zeros(1, int), 3, rng)[0] for _ in range(3000)])
    counts = np.bincount(draws, minlength=10)
    assert counts[:2].sum() == 0
    from scipy.stats import chisquare

    assert chisquare(counts[2:]).pvalue > 0.001
    with pytest.raises(ValueError, match="fewer than"):
        sample_negatives(one, np.zeros(1, int), 9, rng)


def test_intra_list_diversity_equals_metrics_diversity(toy):
    vecs = _item_vectors(toy)
    dense_sim = (vecs @ vecs.T).toarray()
    rng = np.random.default_rng(0)
    rec = np.stack([rng.choice(toy.n_items, 6, replace=False) for _ in range(40)])
    rec[3, 4:] = -1
    rec[5, 1:] = -1
    ours = intra_list_diversity(rec, vecs, batch_size=7)
    ref = M.diversity(rec, dense_sim)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, equal_nan=True)
    assert np.isnan(ours[5])


def test_holdout_protocol_relevance_threshold(toy):
    targets_free = TopNHoldout(k=5, test_ratio=0.25, relevance_threshold=4.0)
    ev = Evaluator(toy, targets_free, progress=False)
    ev.add(Flat(), "flat")
    res = ev.run()
    fold = ev.folds(targets_free)[0]
    ctx = ev._context(targets_free, fold)
    assert (ctx["relevant"].data >= 4.0).all()
    assert {"precision@5", "recall@5", "ndcg@5", "map@5"} <= set(res.get("flat").fold_metrics)


def test_protocol_applicability_from_capabilities(toy):
    ev = Evaluator(toy, [RatingCV(2), TopNLeaveOneOut(3)], progress=False)
    ev.add(Flat(), "ranker").add(Constant(), "rater")
    res = ev.run()
    assert [e.model for e in res.entries if e.protocol == "rating_cv"] == ["rater"]
    assert res.protocols["rating_cv"]["not_applicable"] == ["ranker"]
    # rating models rank by predicted rating under top-N protocols
    assert {e.model for e in res.entries if e.protocol == "loo_topn"} == {"ranker", "rater"}


def test_make_protocol_names_and_errors():
    assert isinstance(make_protocol("loo", k=5), TopNLeaveOneOut)
    assert make_protocol("cv", n_folds=3).n_folds == 3
    with pytest.raises(ValueError, match="unknown protocol"):
        make_protocol("nope")
    with pytest.raises(ValueError, match="rating_cv"):
        make_protocol("rating_cv", bogus=1)
