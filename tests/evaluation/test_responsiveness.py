"""Responsiveness (a driver that refits models): hand-computed cases."""

import numpy as np
import pytest

from recforge.data import IdMap, Interactions
from recforge.evaluation.responsiveness import responsiveness
from recforge.models.base import RANKING, Recommender


class _Popular(Recommender):
    """Counts of training interactions as scores (a test double for responsiveness)."""

    capabilities = frozenset({RANKING})

    def _fit(self, train, **_):
        self.counts_ = train.item_counts.astype(np.float32)

    def _score(self, users, history=None, fallbacks=None):
        return np.tile(self.counts_, (users.size, 1))


def _toy():
    """Four users, five items. Counts in train: item0 3, item1 2, item2 1, items 3-4 0.

    User 3 has nothing in train; held out: user 3 gets items 3, 4, 3's time first.
    """
    umap, imap = IdMap(np.arange(4)), IdMap(np.arange(5))
    train = Interactions([0, 1, 2, 0, 1, 0], [0, 0, 0, 1, 1, 2], np.ones(6), user_map=umap,
                         item_map=imap, timestamps=np.arange(6.0), kind="implicit")
    new = Interactions([3, 3, 2], [4, 3, 0], np.ones(3), user_map=umap, item_map=imap,
                       timestamps=[20.0, 10.0, 5.0], kind="implicit")
    return train, new


def test_responsiveness_hand_computed():
    train, new = _toy()
    # user 3, top-2 = [0, 1]. Adding item 3 (time 10) gives it count 1, ties item 2 but the
    # set {0, 1} stays -> no change; adding item 4 too: still {0, 1} -> inf with k=2.
    r = responsiveness(_Popular, train, [3], new, k=2, max_new=5)
    assert r.tolist() == [np.inf]
    # k = 3: base {0, 1, 2}; after item 3 (seen, count 1 vs item 2's 1: tie -> lower index 2
    # stays, item 3 is excluded as seen) -> same; after item 4: same again -> inf
    assert responsiveness(_Popular, train, [3], new, k=3).tolist() == [np.inf]
    # k = 5 lists every unseen item: adding item 3 removes it from the list -> change at 1
    assert responsiveness(_Popular, train, [3], new, k=5).tolist() == [1.0]
    # user 2 (pair (2, 0) is already in train: skipped) and user 1 (nothing new) -> NaN
    assert np.isnan(responsiveness(_Popular, train, [2, 1], new, k=2)).all()


def test_responsiveness_counts_steps():
    """A model whose list flips only once the user has two new interactions."""
    train, new = _toy()

    class Threshold(_Popular):
        def _fit(self, train, **_):
            super()._fit(train)
            self.n3_ = int(train.user_counts[3])

        def _score(self, users, history=None, fallbacks=None):
            s = super()._score(users)
            if self.n3_ >= 2:
                s[:, 2] = 100.0
            return s

    assert responsiveness(Threshold, train, [3], new, k=2).tolist() == [2.0]
    assert responsiveness(Threshold, train, [3], new, k=2, max_new=1).tolist() == [np.inf]
    with pytest.raises(ValueError, match="compare"):
        responsiveness(Threshold, train, [3], new, compare="bag")
