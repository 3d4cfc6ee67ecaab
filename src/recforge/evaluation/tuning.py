"""Hyperparameter search with cross-validation: grid, random and Optuna.

Every candidate is scored on the same folds of one protocol (made once), so candidates differ
only by their hyperparameters. The best candidate is the one with the best mean over folds of
``metric`` (lowest for RMSE/MAE, highest otherwise); every candidate's per-fold values of every
metric are kept in ``cv_results_``. The API follows scikit-learn's and Surprise's
``GridSearchCV``: ``fit(data)`` then ``best_params_``, ``best_score_``, ``best_estimator_``.

>>> from recforge.evaluation.tuning import GridSearchCV
>>> gs = GridSearchCV("BaselineOnly", {"reg_u": [5, 15], "reg_i": [5, 10]},
...                   protocol=RatingCV(n_folds=3), metric="rmse")   # doctest: +SKIP
>>> gs.fit(data).best_params_                                         # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..models.base import RATING, get_model_class
from .evaluator import Evaluator
from .metric_table import higher_is_better
from .protocols import Protocol, RatingCV, TopNLeaveOneOut

log = logging.getLogger(__name__)


def _resolve(model) -> tuple[type, dict]:
    """Model class and base hyperparameters from a class, a registered name or an instance."""
    if isinstance(model, str):
        return get_model_class(model), {}
    if isinstance(model, type):
        return model, {}
    return type(model), dict(model.get_params())


def expand_grid(param_grid: Mapping | Sequence[Mapping]) -> list[dict]:
    """Every combination of a grid ``{name: [values]}`` (or a list of such grids), in order.

    >>> expand_grid({"a": [1, 2], "b": ["x"]})
    [{'a': 1, 'b': 'x'}, {'a': 2, 'b': 'x'}]
    """
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    out = []
    for grid in grids:
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
                raise ValueError(f"grid values for {name!r} must be a list, got {values!r}")
            if len(values) == 0:
                raise ValueError(f"grid for {name!r} is empty")
        keys = list(grid)
        for combo in itertools.product(*(list(grid[k]) for k in keys)):
            out.append(dict(zip(keys, combo, strict=True)))
    return out


class _SearchCV:
    """Shared machinery: score candidates on shared folds, keep everything, pick the best."""

    def __init__(self, model, *, protocol: Protocol | None = None, metric: str | None = None,
                 refit: bool = True, progress: bool = False):
        self.model = model
        self.protocol = protocol
        self.metric = metric
        self.refit = refit
        self.progress = progress

    def _setup(self, data) -> None:
        self.model_class_, self._base_params = _resolve(self.model)
        caps = getattr(self.model_class_, "capabilities", frozenset())
        protocol = self.protocol
        if protocol is None:
            protocol = RatingCV(n_folds=3) if RATING in caps else TopNLeaveOneOut(k=10)
        self.protocol_ = protocol
        if not protocol.applicable(self.model_class_):
            raise ValueError(f"{self.model_class_.__name__} cannot be evaluated by {protocol.label}")
        self.metric_ = self.metric or ("rmse" if protocol.task == RATING else f"ndcg@{getattr(protocol, 'k', 10)}")
        self.higher_is_better_ = higher_is_better(self.metric_)
        self._evaluator = Evaluator(data, protocol, memory=False, progress=False)
        self._rows: list[dict] = []
        self._data = data

    def _score(self, params: dict) -> float:
        """Mean over folds of ``metric`` for one candidate; the row is kept in ``cv_results_``."""
        full = {**self._base_params, **params}
        model = self.model_class_(**full)
        t0 = time.perf_counter()
        entry = self._evaluator.evaluate_model(self.protocol_, model, name=repr(params))
        row: dict = {"params": dict(params), "seconds": time.perf_counter() - t0}
        if self.metric_ not in entry.fold_metrics:
            raise KeyError(f"metric {self.metric_!r} not measured by {self.protocol_.label}; "
                           f"available: {', '.join(entry.fold_metrics)}")
        for m, vals in entry.fold_metrics.items():
            row[f"mean_{m}"] = float(np.nanmean(vals))
            row[f"std_{m}"] = float(np.nanstd(vals))
            for j, v in enumerate(vals):
                row[f"fold{j}_{m}"] = v
        self._rows.append(row)
        score = row[f"mean_{self.metric_}"]
        log.info("%s %s: %s = %.5f", self.model_class_.__name__, params, self.metric_, score)
        return score

    def _finish(self) -> None:
        df = pd.DataFrame(self._rows)
        col = f"mean_{self.metric_}"
        key = -df[col] if self.higher_is_better_ else df[col]
        # rank 1 = best; NaN scores rank last; ties keep search order
        df[f"rank_{self.metric_}"] = key.rank(method="first", na_option="bottom").astype(int)
        self.cv_results_ = df
        if df[col].notna().sum() == 0:
            raise ValueError(f"no candidate produced a finite {self.metric_}")
        self.best_index_ = int(np.flatnonzero(df[f"rank_{self.metric_}"].to_numpy() == 1)[0])
        self.best_params_ = dict(df.loc[self.best_index_, "params"])
        self.best_score_ = float(df.loc[self.best_index_, col])
        if self.refit:
            train = self._full_train()
            self.best_estimator_ = self.model_class_(**{**self._base_params, **self.best_params_}).fit(train)

    def _full_train(self):
        from ..data.dataset import Dataset

        data = self._data
        if isinstance(data, Dataset):
            return data.interactions if data.interactions is not None else data.sessions
        return data


class GridSearchCV(_SearchCV):
    """Exhaustive search over a hyperparameter grid with cross-validation.

    Parameters
    ----------
    model : Recommender class, registered name or instance
        An instance's own hyperparameters are the base the grid overrides.
    param_grid : dict[str, list] or list of such dicts
    protocol : Protocol, optional
        Default :class:`RatingCV` with 3 folds for rating models, else leave-one-out top-10.
    metric : str, optional
        Selection metric, e.g. ``'rmse'`` (default for ratings) or ``'ndcg@10'`` (top-N).
    refit : bool
        Fit the best candidate on all the data as ``best_estimator_``.

    Attributes
    ----------
    cv_results_ : DataFrame
        One row per candidate: ``params``, ``mean_<m>``, ``std_<m>``, ``fold<j>_<m>`` for
        every metric, ``rank_<metric>``, ``seconds``.
    best_params_, best_score_, best_index_, best_estimator_
    """

    def __init__(self, model, param_grid, *, protocol: Protocol | None = None,
                 metric: str | None = None, refit: bool = True, progress: bool = False):
        super().__init__(model, protocol=protocol, metric=metric, refit=refit, progress=progress)
        self.param_grid = param_grid

    def fit(self, data) -> GridSearchCV:
        candidates = expand_grid(self.param_grid)
        self._setup(data)
        for params in _progress(candidates, self.progress, "grid search"):
            self._score(params)
        self._finish()
        return self


class RandomizedSearchCV(_SearchCV):
    """Random search: ``n_iter`` candidates drawn from per-parameter distributions.

    Bergstra & Bengio, "Random search for hyper-parameter optimization", JMLR 13 (2012).

    Parameters
    ----------
    param_distributions : dict
        ``name -> list`` (drawn uniformly) or an object with ``rvs(random_state=...)`` such as
        a frozen ``scipy.stats`` distribution.
    n_iter : int
    seed : int
        Draws come from ``numpy.random.default_rng(seed)``.
    """

    def __init__(self, model, param_distributions: Mapping, *, n_iter: int = 10, seed: int = 0,
                 protocol: Protocol | None = None, metric: str | None = None, refit: bool = True,
                 progress: bool = False):
        super().__init__(model, protocol=protocol, metric=metric, refit=refit, progress=progress)
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.seed = seed

    def sample(self) -> list[dict]:
        rng = np.random.default_rng(self.seed)
        out = []
        for _ in range(self.n_iter):
            params = {}
            for name, dist in self.param_distributions.items():
                if hasattr(dist, "rvs"):
                    v = dist.rvs(random_state=rng)
                    params[name] = v.item() if isinstance(v, np.generic) else v
                elif isinstance(dist, Sequence) and not isinstance(dist, str) and len(dist):
                    v = dist[int(rng.integers(len(dist)))]
                    params[name] = v.item() if isinstance(v, np.generic) else v
                else:
                    raise ValueError(f"distribution for {name!r} must be a non-empty list or have rvs()")
            out.append(params)
        return out

    def fit(self, data) -> RandomizedSearchCV:
        candidates = self.sample()
        self._setup(data)
        for params in _progress(candidates, self.progress, "random search"):
            self._score(params)
        self._finish()
        return self


class OptunaSearch(_SearchCV):
    """Bayesian search with Optuna's TPE sampler (Akiba et al., KDD 2019), cross-validated.

    Parameters
    ----------
    search_space : dict or callable
        ``name -> list`` (categorical), ``name -> ("int", lo, hi)``, ``("float", lo, hi)`` or
        ``("float", lo, hi, "log")``; or a callable ``trial -> params dict``.
    n_trials : int
    seed : int
        Seed of the TPE sampler.
    timeout : float, optional
        Seconds after which no new trial starts.

    Raises
    ------
    ImportError
        When optuna is not installed (``pip install recforge[tune]``).
    """

    def __init__(self, model, search_space: Mapping | Callable, *, n_trials: int = 20, seed: int = 0,
                 timeout: float | None = None, protocol: Protocol | None = None,
                 metric: str | None = None, refit: bool = True, progress: bool = False):
        super().__init__(model, protocol=protocol, metric=metric, refit=refit, progress=progress)
        self.search_space = search_space
        self.n_trials = n_trials
        self.seed = seed
        self.timeout = timeout

    def _suggest(self, trial) -> dict:
        if callable(self.search_space):
            return dict(self.search_space(trial))
        params = {}
        for name, spec in self.search_space.items():
            if isinstance(spec, tuple) and spec and spec[0] in ("int", "float"):
                kind, lo, hi = spec[:3]
                log_scale = len(spec) > 3 and spec[3] == "log"
                if kind == "int":
                    params[name] = trial.suggest_int(name, int(lo), int(hi), log=log_scale)
                else:
                    params[name] = trial.suggest_float(name, float(lo), float(hi), log=log_scale)
            elif isinstance(spec, Sequence) and not isinstance(spec, str):
                params[name] = trial.suggest_categorical(name, list(spec))
            else:
                raise ValueError(f"search space for {name!r}: use a list or ('int'|'float', lo, hi[, 'log'])")
        return params

    def fit(self, data) -> OptunaSearch:
        try:
            import optuna
        except ImportError as exc:
            raise ImportError("OptunaSearch needs optuna: pip install 'recforge[tune]'") from exc
        self._setup(data)

        def objective(trial):
            score = self._score(self._suggest(trial))
            if not np.isfinite(score):
                raise optuna.TrialPruned(f"{self.metric_} is not finite")
            return score

        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # trial lines go to our log instead
        try:
            sampler = optuna.samplers.TPESampler(seed=self.seed)
            direction = "maximize" if self.higher_is_better_ else "minimize"
            self.study_ = optuna.create_study(direction=direction, sampler=sampler)
            self.study_.optimize(objective, n_trials=self.n_trials, timeout=self.timeout,
                                 show_progress_bar=self.progress)
        finally:
            optuna.logging.set_verbosity(verbosity)
        self._finish()
        return self


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)
