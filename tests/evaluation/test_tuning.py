"""Grid, random and Optuna search find the known best parameter of a toy problem."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recforge.data import Interactions
from recforge.evaluation import GridSearchCV, RandomizedSearchCV, RatingCV, expand_grid

from .conftest import Constant


@pytest.fixture
def fours():
    """Ratings 3, 4, 5 in equal shares around 4: the constant 4 has the lowest RMSE and MAE on
    every fold (fold means stay close to 4)."""
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"user": rng.integers(0, 40, n), "item": np.arange(n),
                       "rating": np.tile([3.0, 4.0, 5.0], n // 3)})
    return Interactions.from_dataframe(df, rating_scale=(1, 5))


def test_expand_grid():
    assert expand_grid({"a": [1, 2], "b": [0]}) == [{"a": 1, "b": 0}, {"a": 2, "b": 0}]
    assert expand_grid([{"a": [1]}, {"b": [2, 3]}]) == [{"a": 1}, {"b": 2}, {"b": 3}]
    with pytest.raises(ValueError, match="list"):
        expand_grid({"a": 1})


def test_grid_search_finds_the_best_constant(fours):
    gs = GridSearchCV(Constant, {"value": [2.0, 3.0, 4.0, 5.0]}, protocol=RatingCV(3), metric="rmse")
    gs.fit(fours)
    assert gs.best_params_ == {"value": 4.0}
    # RMSE of the constant 4 on ratings {3, 4, 5} is sqrt(2/3) on every fold, up to fold shares
    assert gs.best_score_ == pytest.approx(np.sqrt(2 / 3), abs=0.02)
    assert len(gs.cv_results_) == 4
    assert {"mean_rmse", "std_rmse", "mean_mae", "fold0_rmse", "fold2_mae", "rank_rmse"} <= set(gs.cv_results_)
    assert gs.cv_results_.loc[gs.best_index_, "rank_rmse"] == 1
    assert gs.best_estimator_.value == 4.0 and hasattr(gs.best_estimator_, "item_map_")
    # selection by MAE also picks 4
    assert GridSearchCV(Constant, {"value": [3.0, 4.0]}, protocol=RatingCV(3), metric="mae",
                        refit=False).fit(fours).best_params_ == {"value": 4.0}


def test_random_search_is_seeded_and_keeps_all(fours):
    rs = RandomizedSearchCV(Constant, {"value": stats.uniform(3.5, 1.0)}, n_iter=5, seed=3,
                            protocol=RatingCV(2))
    rs.fit(fours)
    assert len(rs.cv_results_) == 5
    vals = [p["value"] for p in rs.cv_results_["params"]]
    assert vals == [p["value"] for p in RandomizedSearchCV(Constant, {"value": stats.uniform(3.5, 1.0)},
                                                           n_iter=5, seed=3).sample()]
    # the best candidate is the one closest to 4
    assert rs.best_params_["value"] == min(vals, key=lambda v: abs(v - 4.0))


def test_unknown_metric(fours):
    with pytest.raises(KeyError, match="ndcg"):
        GridSearchCV(Constant, {"value": [3.0]}, protocol=RatingCV(2), metric="ndcg@10").fit(fours)


def test_optuna_search(fours):
    pytest.importorskip("optuna")
    from recforge.evaluation import OptunaSearch

    os_ = OptunaSearch(Constant, {"value": [2.0, 4.0, 5.0]}, n_trials=6, seed=0, protocol=RatingCV(2))
    os_.fit(fours)
    assert len(os_.cv_results_) == 6
    tried = {p["value"] for p in os_.cv_results_["params"]}
    assert os_.best_score_ == pytest.approx(os_.cv_results_["mean_rmse"].min())
    if 4.0 in tried:
        assert os_.best_params_ == {"value": 4.0}
    rng_space = OptunaSearch(Constant, {"value": ("float", 3.0, 5.0)}, n_trials=4, seed=1,
                             protocol=RatingCV(2), refit=False).fit(fours)
    assert all(3.0 <= p["value"] <= 5.0 for p in rng_space.cv_results_["params"])
