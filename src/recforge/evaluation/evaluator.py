"""The bake-off: every model on exactly the same splits, measured the same way.

>>> from recforge.evaluation import Evaluator, RatingCV, TopNLeaveOneOut
>>> ev = Evaluator(dataset, [RatingCV(n_folds=5), TopNLeaveOneOut(k=10)])  # doctest: +SKIP
>>> ev.add(BaselineOnly(), "BaselineOnly"); ev.add(MostPopular())          # doctest: +SKIP
>>> results = ev.run(sample_user=85)                                       # doctest: +SKIP
>>> print(results); results.save("out/")                                   # doctest: +SKIP

Each protocol splits the data once; every model that the protocol applies to (decided from the
model's declared ``capabilities``, never from its name) is cloned, fitted on each fold's
training part and scored on its test part. Wall times come from ``time.perf_counter`` on
untraced runs. Peak memory comes from :mod:`tracemalloc` during one extra fit + evaluation of
the first fold per model (tracing slows allocation-heavy Python code, so it is kept apart from
the timed runs); it sees Python and NumPy allocations (NumPy reports its buffers to
tracemalloc) but not memory that torch or Numba-compiled code allocate natively, so for those
models the number is a lower bound. ``memory=False`` skips the extra run.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .._version import __version__
from ..data.dataset import Dataset
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..models.base import RANKING, RATING, SESSION, clone
from .protocols import Fold, FoldEval, Protocol
from .results import SQRT_METRICS, ModelResult, Results

log = logging.getLogger(__name__)

MEMORY_METHOD = ("tracemalloc peak during a separate fit + evaluation of the first fold (Python "
                 "and NumPy allocations; native torch/Numba buffers not included); times come "
                 "from untraced runs")


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency; stay usable without it anyway
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


class Evaluator:
    """Run a bake-off of recommenders under one or more protocols.

    Parameters
    ----------
    data : Dataset, Interactions or SessionEvents
        What to split. A :class:`Dataset` also provides item titles for sample top-N lists.
    protocol : Protocol or list of Protocol
        E.g. ``[RatingCV(5), TopNLeaveOneOut(10)]``.
    seed : int
        Seed of the bootstrap intervals (protocols carry their own split seeds).
    confidence : float
        Coverage of bootstrap intervals (default 0.95).
    n_resamples : int
        Bootstrap resamples.
    memory : bool
        Measure peak memory with tracemalloc, in one extra traced run of the first fold per
        model and protocol (times always come from the untraced runs).
    progress : bool
        Show tqdm progress bars.

    Attributes
    ----------
    models : dict[str, Recommender]
        Models added, by display name (unfitted prototypes; each fold fits a clone).
    """

    def __init__(self, data, protocol, *, seed: int = 0, confidence: float = 0.95,
                 n_resamples: int = 1000, memory: bool = True, progress: bool = True):
        if not isinstance(data, (Dataset, Interactions, SessionEvents)):
            raise TypeError(f"data must be a Dataset, Interactions or SessionEvents, got {type(data).__name__}")
        protocols = list(protocol) if isinstance(protocol, (list, tuple)) else [protocol]
        if not protocols or not all(isinstance(p, Protocol) for p in protocols):
            raise TypeError("protocol must be a Protocol or a list of Protocol objects")
        names = [p.name for p in protocols]
        if len(set(names)) != len(names):
            raise ValueError(f"each protocol kind can be used once per bake-off, got {names}")
        self.data = data
        self.protocols = protocols
        self.seed = seed
        self.confidence = confidence
        self.n_resamples = n_resamples
        self.memory = memory
        self.progress = progress
        self.models: dict = {}
        self._folds: dict[str, list[Fold]] = {}
        self._contexts: dict[tuple[str, int], dict] = {}

    # ------------------------------------------------------------------ models
    def add(self, model, name: str | None = None) -> Evaluator:
        """Add a model (an unfitted instance) under a display name (default: its class name)."""
        name = name or getattr(model, "name", None) or type(model).__name__
        if name in self.models:
            raise ValueError(f"a model named {name!r} was already added; give another name")
        self.models[name] = model
        return self

    # ------------------------------------------------------------------ splits
    @property
    def dataset(self) -> Dataset | None:
        return self.data if isinstance(self.data, Dataset) else None

    def folds(self, protocol: Protocol) -> list[Fold]:
        """The protocol's folds, made once and shared by every model."""
        if protocol.name not in self._folds:
            t0 = time.perf_counter()
            self._folds[protocol.name] = protocol.folds(self.data)
            log.info("%s: %d fold(s) in %.2fs", protocol.label, len(self._folds[protocol.name]),
                     time.perf_counter() - t0)
        return self._folds[protocol.name]

    def _context(self, protocol: Protocol, fold: Fold) -> dict:
        key = (protocol.name, fold.index)
        if key not in self._contexts:
            self._contexts[key] = protocol.context(fold, self.dataset)
        return self._contexts[key]

    # ------------------------------------------------------------------ running
    def run(self, sample_user=None, sample_k: int = 10, raise_errors: bool = False) -> Results:
        """Fit and score every applicable model on every fold of every protocol.

        Parameters
        ----------
        sample_user : raw user id, optional
            Also fit each user-based model on all the data and list its top ``sample_k`` for
            this user, with item titles when the dataset has them.
        raise_errors : bool
            Re-raise a model's exception instead of recording it and going on.
        """
        if not self.models:
            raise ValueError("no models added; call add() first")
        if sample_user is not None:
            self.check_sample_user(sample_user)  # fail before hours of fitting, not after
        entries: list[ModelResult] = []
        protocols_conf: dict[str, dict] = {}
        for protocol in self.protocols:
            folds = self.folds(protocol)
            protocols_conf[protocol.name] = {
                "label": protocol.label, "sampled": protocol.sampled, "task": protocol.task,
                "config": protocol.config(), "n_folds": len(folds),
                "folds": [fold.report for fold in folds],
            }
            todo = [(name, m) for name, m in self.models.items() if protocol.applicable(m)]
            skipped = [name for name, m in self.models.items() if not protocol.applicable(m)]
            if skipped:
                log.info("%s: not applicable to %s (capabilities)", protocol.label, ", ".join(skipped))
                protocols_conf[protocol.name]["not_applicable"] = skipped
            steps = [(name, m, fold, False) for name, m in todo for fold in folds]
            if self.memory:  # one extra traced run of the first fold per model
                steps += [(name, m, folds[0], True) for name, m in todo]
            current: dict[str, ModelResult] = {}
            for name, proto_model, fold, trace in _progress(steps, len(steps), protocol.name, self.progress):
                entry = current.get(name)
                if entry is None:
                    entry = current[name] = ModelResult(
                        model=name, protocol=protocol.name, params=proto_model.get_params(),
                        model_class=type(proto_model).__name__)
                    entries.append(entry)
                if entry.error is not None:
                    continue
                try:
                    if trace:
                        self._measure_memory(protocol, fold, proto_model, entry)
                    else:
                        self._run_fold(protocol, fold, proto_model, entry)
                except Exception as exc:  # one failing model must not sink the bake-off
                    if raise_errors:
                        raise
                    log.exception("%s failed on %s fold %d", name, protocol.name, fold.index)
                    entry.error = f"{type(exc).__name__}: {exc}"
        results = Results(entries=entries, protocols=protocols_conf, config=self.config(),
                          confidence=self.confidence, n_resamples=self.n_resamples, seed=self.seed)
        if sample_user is not None:
            results.sample_user = sample_user
            results.samples = self.sample_top_n(sample_user, k=sample_k)
        return results

    def evaluate_model(self, protocol: Protocol, model, name: str | None = None) -> ModelResult:
        """Fit and score one model on every fold of ``protocol`` (folds shared with every other
        call); the building block of :meth:`run` and of hyperparameter search."""
        name = name or getattr(model, "name", type(model).__name__)
        entry = ModelResult(model=name, protocol=protocol.name, params=model.get_params(),
                            model_class=type(model).__name__)
        folds = self.folds(protocol)
        for fold in folds:
            self._run_fold(protocol, fold, model, entry)
        if self.memory and folds:
            self._measure_memory(protocol, folds[0], model, entry)
        return entry

    def _run_fold(self, protocol: Protocol, fold: Fold, proto_model, entry: ModelResult) -> None:
        """Fit a clone on the fold and score it; times are taken without memory tracing."""
        ctx = self._context(protocol, fold)
        model = clone(proto_model)
        t0 = time.perf_counter()
        model.fit(protocol.fit_part(fold), **self._fit_kwargs(model, fold))
        t1 = time.perf_counter()
        ev: FoldEval = protocol.evaluate(model, fold, ctx)
        t2 = time.perf_counter()
        entry.fit_seconds.append(t1 - t0)
        entry.eval_seconds.append(t2 - t1)
        for reason, n in ev.fallbacks.items():
            entry.fallbacks[reason] = entry.fallbacks.get(reason, 0) + int(n)
        _accumulate(entry, ev)

    def _measure_memory(self, protocol: Protocol, fold: Fold, proto_model, entry: ModelResult) -> None:
        """Peak memory of one more fit + evaluation of ``fold`` under tracemalloc.

        A separate run, so that tracing (which slows allocation-heavy Python code) never
        inflates the reported times; its metrics are discarded.
        """
        ctx = self._context(protocol, fold)
        model = clone(proto_model)
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            model.fit(protocol.fit_part(fold), **self._fit_kwargs(model, fold))
            protocol.evaluate(model, fold, ctx)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            if not was_tracing:
                tracemalloc.stop()
        entry.peak_memory_bytes = int(peak)

    def _fit_kwargs(self, model, fold: Fold) -> dict:
        from ..models.base import CLICK, ITEM_FEATURES

        kw = {}
        caps = getattr(model, "capabilities", ())
        ds = self.dataset
        if ITEM_FEATURES in caps:
            if ds is None or ds.item_features is None:
                raise ValueError(f"{type(model).__name__} needs item features; the data has none")
            kw["item_features"] = ds.item_features
        if CLICK in caps and ds is not None:
            # feature models use whatever side features the data has
            if ds.item_features is not None:
                kw["item_features"] = ds.item_features
            if ds.user_features is not None:
                kw["user_features"] = ds.user_features
        if fold.validation is not None:
            kw["validation"] = fold.validation
        return kw

    # ------------------------------------------------------------------ samples
    def sample_top_n(self, user, k: int = 10) -> dict[str, list[dict]]:
        """Top-``k`` of each model for raw ``user`` after fitting on all interactions.

        Returns model name -> rows ``{"rank", "item", "title", "score"}``; session-only models
        are left out (they recommend for sessions, not users).
        """
        inter = self.check_sample_user(user)
        feats = self.dataset.item_features if self.dataset is not None else None
        out: dict[str, list[dict]] = {}
        for name, proto in self.models.items():
            caps = getattr(proto, "capabilities", ())
            if SESSION in caps and RATING not in caps and RANKING not in caps:
                continue
            try:
                model = clone(proto).fit(inter, **self._fit_kwargs(proto, Fold(0, inter, inter)))
                rec = model.recommend([user], k=k)
            except Exception as exc:
                log.warning("sample top-N for %s failed: %s", name, exc)
                continue
            inner = rec.inner[0]
            ok = inner >= 0
            titles = (feats.title(inner[ok]) if feats is not None
                      else inter.item_map.to_raw(inner[ok]).astype(str))
            out[name] = [{"rank": r + 1, "item": _plain_id(item), "title": str(t), "score": float(s)}
                         for r, (item, t, s) in enumerate(zip(rec.items[0][ok], titles, rec.scores[0][ok], strict=True))]
        return out

    def check_sample_user(self, user) -> Interactions:
        """The interactions, after checking that raw ``user`` is in them (KeyError if not)."""
        inter = self.data.interactions if isinstance(self.data, Dataset) else self.data
        if not isinstance(inter, Interactions):
            raise ValueError("sample top-N lists need user x item interactions")
        if inter.user_map.to_inner([user], missing="mask")[0] < 0:
            raise KeyError(f"sample user {user!r} is not in the data")
        return inter

    # ------------------------------------------------------------------ configuration
    def config(self) -> dict:
        """Everything needed to reproduce the run: dataset, protocols, models, versions."""
        return {
            "dataset": _dataset_config(self.data),
            "protocols": {p.name: p.config() for p in self.protocols},
            "models": {name: {"class": type(m).__name__,
                              "registered_name": getattr(m, "name", type(m).__name__),
                              "params": m.get_params()} for name, m in self.models.items()},
            "seed": self.seed,
            "bootstrap": {"confidence": self.confidence, "n_resamples": self.n_resamples},
            "memory_method": MEMORY_METHOD if self.memory else None,
            "timing_method": "time.perf_counter wall time",
            "versions": package_versions(),
            "git_commit": git_commit(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


def _accumulate(entry: ModelResult, ev: FoldEval) -> None:
    """Add one fold's per-unit sums to the entry and record each metric's fold value."""
    for metric, (num, den) in ev.units.items():
        num = np.asarray(num, dtype=np.float64)
        den = np.asarray(den, dtype=np.float64)
        tot = den.sum()
        val = num.sum() / tot if tot > 0 else float("nan")
        if metric in SQRT_METRICS and np.isfinite(val):
            val = float(np.sqrt(val))
        entry.fold_metrics.setdefault(metric, []).append(float(val))
        if metric in entry.unit_num and entry.unit_num[metric].shape == num.shape:
            entry.unit_num[metric] = entry.unit_num[metric] + num
            entry.unit_den[metric] = entry.unit_den[metric] + den
        else:
            entry.unit_num[metric] = num.copy()
            entry.unit_den[metric] = den.copy()
    for metric, val in ev.scalars.items():
        entry.fold_metrics.setdefault(metric, []).append(float(val))
    if ev.curve:
        n_prev = len(entry.fit_seconds) - 1  # folds already folded into the curve mean
        for k, v in ev.curve.items():
            old = entry.curve.get(k)
            entry.curve[k] = v if old is None or n_prev <= 0 else (old * n_prev + v) / (n_prev + 1)


def _plain_id(x):
    return x.item() if isinstance(x, np.generic) else x


def _dataset_config(data) -> dict:
    try:
        summary = data.summary()
    except Exception:  # a summary is informative only
        summary = {}
    name = getattr(data, "name", None)
    src = getattr(data, "source", None)
    return {"name": name, "source": src, "type": type(data).__name__, "summary": summary}


def package_versions() -> dict:
    """Versions of recforge and the numeric stack (absent packages are left out)."""
    import importlib.metadata as md

    out = {"recforge": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "torch", "scikit-learn", "numba", "matplotlib",
                "scikit-surprise", "optuna"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """The commit of the recforge source tree, when it is a git checkout (else None)."""
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    commit = res.stdout.strip()
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        dirty = ""
    return commit + ("-dirty" if dirty else "")
