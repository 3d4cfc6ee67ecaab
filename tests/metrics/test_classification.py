"""Click metrics: global ROC AUC and log loss against hand-computed values and scikit-learn."""

import numpy as np
import pytest

from recforge.metrics import log_loss, per_row_log_loss, roc_auc


def test_hand_computed_auc_with_ties():
    # positives 0.9 and 0.5; negatives 0.1 and 0.5: pairs (0.9>0.1, 0.9>0.5, 0.5>0.1, 0.5=0.5)
    assert roc_auc([1, 0, 1, 0], [0.9, 0.1, 0.5, 0.5]) == pytest.approx(3.5 / 4)
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert roc_auc([0, 0, 1], [0.9, 0.8, 0.1]) == 0.0
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_log_loss_by_hand_and_clipping():
    assert log_loss([1, 0], [0.8, 0.2]) == pytest.approx(-np.log(0.8))
    assert np.isfinite(log_loss([1], [0.0]))  # clipped, not infinite
    np.testing.assert_allclose(per_row_log_loss([1, 0], [0.5, 0.25]), [np.log(2), -np.log(0.75)])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="binary labels"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="differ in length"):
        roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="probabilities"):
        log_loss([0, 1], [0.1, 1.5])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [np.nan, 0.1])


def test_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = rng.integers(0, 30, 500) / 30  # many ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s))
    p = np.clip(s, 0.01, 0.99)
    assert log_loss(y, p) == pytest.approx(sk.log_loss(y, p))
