"""Evaluation: the bake-off evaluator, protocols, significance tests, reports and tuning.

* :class:`Evaluator` runs every model on the same splits of a protocol and returns
  :class:`Results` (console table, JSON, CSV, HTML report);
* protocols: :class:`RatingCV`, :class:`TopNLeaveOneOut`, :class:`TopNHoldout`,
  :class:`SampledNegatives` (labelled *sampled* everywhere), :class:`SessionNextItem`;
* :mod:`~recforge.evaluation.significance`: paired t / Wilcoxon tests, bootstrap intervals;
* :mod:`~recforge.evaluation.tuning`: grid, random and Optuna search with cross-validation.

See ``docs/evaluation.md``.
"""

from .evaluator import Evaluator
from .protocols import (
    Protocol,
    RatingCV,
    SampledNegatives,
    SessionNextItem,
    TopNHoldout,
    TopNLeaveOneOut,
    make_protocol,
)
from .results import ModelResult, Results
from .significance import bootstrap_ci, holm, paired_test, pairwise_tests
from .tuning import GridSearchCV, OptunaSearch, RandomizedSearchCV, expand_grid

__all__ = [
    "Evaluator", "Protocol", "RatingCV", "TopNLeaveOneOut", "TopNHoldout", "SampledNegatives",
    "SessionNextItem", "make_protocol", "Results", "ModelResult", "paired_test", "pairwise_tests",
    "bootstrap_ci", "holm", "GridSearchCV", "RandomizedSearchCV", "OptunaSearch", "expand_grid",
]
