"""Rating accuracy metrics: hand-computed cases, properties, agreement with scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import mean_absolute_error, mean_squared_error

from recforge.metrics import mae, per_user_absolute_error, per_user_squared_error, rmse


def test_hand_computed():
    # errors: 0, -1, 2 -> squared 0, 1, 4 (mean 5/3), absolute 0, 1, 2 (mean 1)
    y, p = [3.0, 4.0, 1.0], [3.0, 3.0, 3.0]
    assert rmse(y, p) == pytest.approx(np.sqrt(5 / 3))
    assert mae(y, p) == pytest.approx(1.0)


def test_per_user_hand_computed():
    users = [2, 0, 2, 0]
    y = [1.0, 5.0, 3.0, 4.0]
    p = [2.0, 5.0, 5.0, 2.0]
    # user 0: errors 0, -2 -> mse 2, mae 1 ; user 1: none ; user 2: errors 1, 2 -> mse 2.5, mae 1.5
    mse = per_user_squared_error(users, y, p, n_users=3)
    np.testing.assert_allclose(mse, [2.0, np.nan, 2.5])
    np.testing.assert_allclose(per_user_absolute_error(users, y, p, 3), [1.0, np.nan, 1.5])
    counts = np.bincount(users, minlength=3)
    pooled = np.sqrt(np.nansum(mse * counts) / counts.sum())
    assert pooled == pytest.approx(rmse(y, p))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-10, 10), st.floats(-10, 10)), min_size=1, max_size=50))
def test_agrees_with_sklearn_and_bounds(pairs):
    y = np.array([a for a, _ in pairs])
    p = np.array([b for _, b in pairs])
    assert rmse(y, p) == pytest.approx(np.sqrt(mean_squared_error(y, p)), abs=1e-9)
    assert mae(y, p) == pytest.approx(mean_absolute_error(y, p), abs=1e-9)
    assert mae(y, p) <= rmse(y, p) + 1e-9  # power-mean inequality
    assert rmse(y, y) == 0.0


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        rmse([1, 2], [1])
    with pytest.raises(ValueError, match="empty"):
        mae([], [])
    with pytest.raises(ValueError, match="y_pred has 1 non-finite.*position 1"):
        rmse([1, 2], [1, np.nan])
    with pytest.raises(ValueError, match="out of range"):
        per_user_squared_error([0, 3], [1, 2], [1, 2], n_users=3)
