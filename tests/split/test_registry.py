"""The splitter registry: lookups by name, errors, one split vs k folds."""

from __future__ import annotations

import numpy as np
import pytest

import recforge.split as S
from recforge.data import Interactions


def _data() -> Interactions:
    users = np.repeat(np.arange(4), 5)
    items = np.tile(np.arange(5), 4)
    return Interactions.from_arrays(users, items, np.ones(20), timestamps=np.arange(20.0))


def test_every_split_function_is_registered_by_name():
    assert S.available_splitters() == ["holdout", "holdout_per_user", "kfold", "leave_one_out", "session_split",
                                       "temporal_global", "temporal_per_user"]
    assert S.get_splitter("kfold").function is S.kfold
    assert S.get_splitter("temporal_per_user").function is S.temporal_per_user
    assert S.get_splitter("session_split").input == "sessions"
    assert S.get_splitter("holdout").input == "interactions"
    assert S.get_splitter("temporal_per_user").params == ("test_ratio", "seed")
    assert S.get_splitter("temporal_per_user").seeded
    assert not S.get_splitter("temporal_global").seeded


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown split 'temporal'.*temporal_global, temporal_per_user"):
        S.get_splitter("temporal")


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="takes test_ratio, seed; unknown: n_folds"):
        S.get_splitter("temporal_per_user").split(_data(), n_folds=3)


def test_one_split_and_k_folds_both_come_back_as_lists():
    data = _data()
    one = S.get_splitter("temporal_per_user").split(data, test_ratio=0.4)
    assert len(one) == 1
    # each user's 2 latest of 5 interactions (times 3, 4 within the user) are test
    assert sorted(one[0].test.timestamps.tolist()) == [3.0, 4.0, 8.0, 9.0, 13.0, 14.0, 18.0, 19.0]
    folds = S.get_splitter("kfold").split(data, n_folds=4, seed=0)
    assert len(folds) == 4
    assert sum(f.test.nnz for f in folds) == 20


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        S.registry.splitter("interactions")(S.holdout)
    with pytest.raises(ValueError, match="input must be one of"):
        S.registry.splitter("graphs")
