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

import hashlib
import json
import logging
import os
import platform
import subprocess
import time
import tracemalloc
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import interrupt
from .._version import __version__
from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from ..models.base import RANKING, RATING, SESSION, clone
from ._json import jsonable
from .protocols import Fold, FoldEval, Protocol
from .results import SQRT_METRICS, ModelResult, Results

log = logging.getLogger(__name__)

DEGENERATE_ACTIONS = ("error", "warn")


class DegenerateEvaluation(DataError):
    """An evaluation whose numbers would mean nothing: no test users, a single test user, or no
    unit evaluated at all (every user has too few interactions for the protocol)."""


class DegenerateWarning(UserWarning):
    """:class:`DegenerateEvaluation` reported as a warning (``degenerate="warn"``)."""

MEMORY_METHOD = ("tracemalloc peak during a separate fit + evaluation of the first fold (Python "
                 "and NumPy allocations; native torch/Numba buffers not included); times come "
                 "from untraced runs")


def _progress(iterable, total: int, desc: str, enabled: bool):
    import sys

    if not enabled or not sys.stderr.isatty():  # no bars in logs and pipes
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
    memory : bool, default False
        Measure peak memory with tracemalloc, in one extra traced run of the first fold per
        model and protocol (times always come from the untraced runs). Off by default: the
        extra run doubles the time of single-fold protocols.
    progress : bool
        Show tqdm progress bars (only on a terminal).
    degenerate : {"error", "warn"}, default "error"
        What to do with an evaluation whose numbers would mean nothing (no test users, one
        test user, no unit evaluated): raise :class:`DegenerateEvaluation` before any model is
        fitted (or as soon as it shows), or record a warning in ``Results.warnings`` (shown in
        the table and the report).
    cache_dir : path, optional
        Write each finished (protocol, model, fold) result there as it completes; with
        ``resume=True`` such results are read back instead of fitting again. A result is found
        again only for the same data, protocol, fold, model class and hyperparameters.

    Attributes
    ----------
    models : dict[str, Recommender]
        Models added, by display name (unfitted prototypes; each fold fits a clone).
    """

    def __init__(self, data, protocol, *, seed: int = 0, confidence: float = 0.95,
                 n_resamples: int = 1000, memory: bool = False, progress: bool = True,
                 degenerate: str = "error", cache_dir=None, resume: bool = False):
        if not isinstance(data, (Dataset, Interactions, SessionEvents)):
            raise TypeError(f"data must be a Dataset, Interactions or SessionEvents, got {type(data).__name__}")
        protocols = list(protocol) if isinstance(protocol, (list, tuple)) else [protocol]
        if not protocols or not all(isinstance(p, Protocol) for p in protocols):
            raise TypeError("protocol must be a Protocol or a list of Protocol objects")
        names = [p.name for p in protocols]
        if len(set(names)) != len(names):
            raise ValueError(f"each protocol kind can be used once per bake-off, got {names}")
        if degenerate not in DEGENERATE_ACTIONS:
            raise ValueError(f"degenerate must be one of {DEGENERATE_ACTIONS}, got {degenerate!r}")
        if not 0.0 < float(confidence) < 1.0:
            raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
        if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
            raise ValueError(f"n_resamples must be an integer >= 1, got {n_resamples!r}")
        self.data = data
        self.protocols = protocols
        self.seed = seed
        self.confidence = confidence
        self.n_resamples = n_resamples
        self.memory = memory
        self.progress = progress
        self.degenerate = degenerate
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.resume = bool(resume)
        self.warnings: list[str] = []
        #: The finished part of an interrupted :meth:`run` (None otherwise).
        self.partial: Results | None = None
        self.models: dict = {}
        self._folds: dict[str, list[Fold]] = {}
        self._contexts: dict[tuple[str, int], dict] = {}

    # ------------------------------------------------------------------ models
    def add(self, model, name: str | None = None) -> Evaluator:
        """Add a model (an unfitted instance) under a display name (default: its class name)."""
        name = name or getattr(model, "name", None) or type(model).__name__
        if name in self.models:
            raise ValueError(f"a model named {name!r} was already added; give another name")
        check = getattr(model, "check_params", None)
        if check is not None:  # a bad hyperparameter fails now, not after hours of other fits
            check()
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
            folds = protocol.folds(self.data)
            log.info("%s: %d fold(s) in %.2fs", protocol.label, len(folds), time.perf_counter() - t0)
            for fold in folds:
                self._check_fold(protocol, fold)
            self._folds[protocol.name] = folds
        return self._folds[protocol.name]

    def prepare(self, protocol: Protocol) -> list[Fold]:
        """Make the protocol's folds and their evaluation contexts (relevant items, sampled
        negatives, ...) now: everything that can fail on the data alone fails before any model
        is fitted. Both are cached for :meth:`run`."""
        folds = self.folds(protocol)
        for fold in folds:
            self._context(protocol, fold)
        return folds

    def _degenerate(self, message: str) -> None:
        if self.degenerate == "error":
            raise DegenerateEvaluation(message + " (pass degenerate='warn' / --allow-degenerate "
                                       "to report it as a warning instead)")
        if message not in self.warnings:
            self.warnings.append(message)
            warnings.warn(message, DegenerateWarning, stacklevel=3)

    def _check_fold(self, protocol: Protocol, fold: Fold) -> None:
        """No test units, or a single test user, make numbers that mean nothing."""
        test = fold.test
        where = f"{protocol.label}, fold {fold.index}"
        if isinstance(test, Interactions):
            n_users = int(np.unique(test.users).size) if test.nnz else 0
            if n_users == 0:
                self._degenerate(f"{where}: the test part is empty — no user has enough "
                                 "interactions for this protocol, nothing can be evaluated")
            elif n_users == 1:
                self._degenerate(f"{where}: only one user in the test part; its metrics describe "
                                 "one person")
        elif isinstance(test, SessionEvents) and len(test.items) == 0:
            self._degenerate(f"{where}: the test part has no session events; nothing can be "
                             "evaluated")

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
        self.partial = None
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
            try:
                for name, proto_model, fold, trace in _progress(steps, len(steps), protocol.name,
                                                                self.progress):
                    interrupt.check()
                    entry = current.get(name)
                    if entry is None:
                        entry = current[name] = ModelResult(
                            model=name, protocol=protocol.name, params=proto_model.get_params(),
                            model_class=type(proto_model).__name__,
                            ranks_by_rating=_ranks_by_rating(protocol, proto_model))
                        entries.append(entry)
                    if entry.error is not None:
                        continue
                    try:
                        if trace:
                            self._measure_memory(protocol, fold, proto_model, entry)
                        else:
                            self._run_fold_cached(protocol, fold, proto_model, entry, name)
                    except DegenerateEvaluation:
                        raise
                    except Exception as exc:  # one failing model must not sink the bake-off
                        _reraise_interrupt(exc)
                        if raise_errors:
                            raise
                        log.error("%s failed on %s fold %d: %s: %s", name, protocol.name,
                                  fold.index, type(exc).__name__, exc)
                        log.debug("traceback of the failure", exc_info=True)
                        entry.error = f"{type(exc).__name__}: {exc}"
            except KeyboardInterrupt:
                # keep what finished: whole (model, protocol) entries, every fold done
                n_folds = len(folds)
                done = [e for e in entries if e.error is not None
                        or (e.protocol != protocol.name or len(e.fit_seconds) == n_folds)]
                self.partial = Results(entries=done, protocols=protocols_conf, config=self.config(),
                                       confidence=self.confidence, n_resamples=self.n_resamples,
                                       seed=self.seed, warnings=list(self.warnings))
                self.partial.config["partial"] = True
                raise
        results = Results(entries=entries, protocols=protocols_conf, config=self.config(),
                          confidence=self.confidence, n_resamples=self.n_resamples, seed=self.seed,
                          warnings=list(self.warnings))
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
        _apply_fold(entry, *self._fit_and_score(protocol, fold, proto_model))

    def _fit_and_score(self, protocol: Protocol, fold: Fold, proto_model):
        ctx = self._context(protocol, fold)
        model = clone(proto_model)
        t0 = time.perf_counter()
        model.fit(protocol.fit_part(fold), **self._fit_kwargs(model, fold))
        t1 = time.perf_counter()
        interrupt.check()
        ev: FoldEval = protocol.evaluate(model, fold, ctx)
        t2 = time.perf_counter()
        if not any(np.any(np.asarray(den) > 0) for _, den in ev.units.values()) and ev.units:
            self._degenerate(f"{protocol.label}, fold {fold.index}: {type(proto_model).__name__} "
                             "was evaluated on no test unit at all")
        return t1 - t0, t2 - t1, ev

    def _cache_key(self, protocol: Protocol, fold: Fold, proto_model, name: str) -> str:
        what = {"data": _dataset_config(self.data).get("summary"), "dataset": getattr(self.data, "name", None),
                "protocol": protocol.name, "protocol_config": protocol.config(), "fold": fold.index,
                "fold_report": fold.report, "model": type(proto_model).__name__, "label": name,
                "params": proto_model.get_params(), "recforge": __version__}
        text = json.dumps(jsonable(what), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _run_fold_cached(self, protocol: Protocol, fold: Fold, proto_model, entry: ModelResult,
                         name: str) -> None:
        """:meth:`_run_fold` through the on-disk cache of finished folds (``cache_dir``)."""
        if self.cache_dir is None:
            return self._run_fold(protocol, fold, proto_model, entry)
        path = self.cache_dir / f"{self._cache_key(protocol, fold, proto_model, name)}.npz"
        if self.resume and path.is_file():
            try:
                fit_s, eval_s, ev = _read_fold(path)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("cached fold %s unreadable (%s); running it again", path, exc)
            else:
                log.info("%s, %s fold %d: reused from %s", name, protocol.name, fold.index, path)
                _apply_fold(entry, fit_s, eval_s, ev)
                return None
        fit_s, eval_s, ev = self._fit_and_score(protocol, fold, proto_model)
        _write_fold(path, fit_s, eval_s, ev)
        _apply_fold(entry, fit_s, eval_s, ev)
        return None

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


def _ranks_by_rating(protocol: Protocol, model) -> bool:
    """A rating predictor evaluated on top-N lists: its lists are its estimates, sorted."""
    return protocol.evaluation_task.name in ("topn", "sampled") and RATING in getattr(model, "capabilities", ())


def _reraise_interrupt(exc: BaseException) -> None:
    """A Ctrl-C that landed inside a compiled kernel's Python callback comes back as another
    exception (``SystemError``) caused by the ``KeyboardInterrupt``: raise that instead."""
    seen = set()
    cause = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, KeyboardInterrupt):
            raise cause
        cause = cause.__cause__ or cause.__context__
    if interrupt.stop_requested():
        interrupt.check()


def _apply_fold(entry: ModelResult, fit_s: float, eval_s: float, ev: FoldEval) -> None:
    entry.fit_seconds.append(float(fit_s))
    entry.eval_seconds.append(float(eval_s))
    for reason, n in ev.fallbacks.items():
        entry.fallbacks[reason] = entry.fallbacks.get(reason, 0) + int(n)
    _accumulate(entry, ev)


def _write_fold(path: Path, fit_s: float, eval_s: float, ev: FoldEval) -> None:
    """One finished fold as ``.npz`` (no pickle), written to a temporary name and renamed."""
    metrics = list(ev.units)
    arrays = {}
    for j, m in enumerate(metrics):
        arrays[f"num_{j}"] = np.asarray(ev.units[m][0], dtype=np.float64)
        arrays[f"den_{j}"] = np.asarray(ev.units[m][1], dtype=np.float64)
    meta = {"metrics": metrics, "scalars": ev.scalars, "curve": {str(k): v for k, v in ev.curve.items()},
            "n_units": ev.n_units, "unit_name": ev.unit_name, "fallbacks": ev.fallbacks,
            "fit_seconds": fit_s, "eval_seconds": eval_s}
    arrays["meta"] = np.array(json.dumps(jsonable(meta)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def _read_fold(path: Path):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        units = {m: (z[f"num_{j}"], z[f"den_{j}"]) for j, m in enumerate(meta["metrics"])}
    ev = FoldEval(units=units, scalars={k: float(v) for k, v in meta["scalars"].items()},
                  curve={int(k): float(v) for k, v in meta["curve"].items()},
                  n_units=int(meta["n_units"]), unit_name=meta["unit_name"],
                  fallbacks={k: int(v) for k, v in meta["fallbacks"].items()})
    return float(meta["fit_seconds"]), float(meta["eval_seconds"]), ev


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
