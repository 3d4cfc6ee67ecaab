"""Bake-off results: per-fold and per-unit metrics of every model, with the full configuration.

A :class:`Results` object is what :meth:`Evaluator.run` returns. It keeps, for every
(protocol, model) pair, each fold's metric values and the per-unit numerators/denominators
summed over folds, so confidence intervals and paired tests can be computed at any time. It
writes itself as JSON (everything, including per-fold values, significance tables, sample
recommendations and the configuration), as CSV (one row per protocol and model, each row
carrying the dataset, split configuration, seeds, hyperparameters and package versions) and as
an HTML report (:mod:`recforge.evaluation.report`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._json import jsonable as _jsonable
from .metric_table import SQRT_METRICS, higher_is_better
from .significance import bootstrap_ci, pairwise_tests

log = logging.getLogger(__name__)

__all__ = ["ModelResult", "Results", "SQRT_METRICS"]


@dataclass
class ModelResult:
    """Everything measured for one model under one protocol.

    Attributes
    ----------
    model, protocol : str
        The model's display name and the protocol's name.
    params : dict
        The model's hyperparameters.
    fold_metrics : dict[str, list[float]]
        Each metric on each fold (the headline value is their mean).
    unit_num, unit_den : dict[str, ndarray]
        Per-unit numerators and denominators summed over folds (see protocols).
    curve : dict[int, float]
        Recall@k (mean over folds) for the recall curve.
    fit_seconds, eval_seconds : list[float]
        Wall time of ``fit`` and of scoring/recommending, per fold (``time.perf_counter``).
    peak_memory_bytes : int or None
        Largest tracemalloc peak over the folds' fit + evaluation (None when not measured).
    fallbacks : dict
        Fallback counts the model reported (unknown users, ...), summed over folds.
    error : str, optional
        Why the model failed, when it did (the bake-off goes on with the others).
    ranks_by_rating : bool
        The model is a rating predictor whose top-N lists are its predicted ratings, sorted
        (marked in the table and the report: such lists favour items with few, high ratings).
    """

    model: str
    protocol: str
    params: dict = field(default_factory=dict)
    model_class: str = ""
    fold_metrics: dict = field(default_factory=dict)
    unit_num: dict = field(default_factory=dict)
    unit_den: dict = field(default_factory=dict)
    curve: dict = field(default_factory=dict)
    fit_seconds: list = field(default_factory=list)
    eval_seconds: list = field(default_factory=list)
    peak_memory_bytes: int | None = None
    fallbacks: dict = field(default_factory=dict)
    error: str | None = None
    ranks_by_rating: bool = False

    def metric_names(self) -> list[str]:
        return list(self.fold_metrics)

    def value(self, metric: str) -> float:
        """Headline value: the mean over folds."""
        vals = [v for v in self.fold_metrics.get(metric, []) if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    def fold_std(self, metric: str) -> float:
        vals = np.asarray(self.fold_metrics.get(metric, []), dtype=np.float64)
        return float(vals.std(ddof=1)) if vals.size > 1 else float("nan")

    def per_unit(self, metric: str) -> np.ndarray:
        """Per-unit value (``num / den``, NaN where the unit was not evaluated)."""
        if metric not in self.unit_num:
            raise KeyError(f"{metric} has no per-unit values")
        num, den = self.unit_num[metric], self.unit_den[metric]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    def ci(self, metric: str, confidence: float = 0.95, n_resamples: int = 1000,
           seed: int = 0) -> tuple[float, float]:
        """Bootstrap CI of the pooled metric, resampling units (users or events)."""
        if metric not in self.unit_num:
            return float("nan"), float("nan")
        den = self.unit_den[metric]
        values = self.per_unit(metric)
        return bootstrap_ci(values, den, confidence=confidence, n_resamples=n_resamples, seed=seed,
                            transform=np.sqrt if metric in SQRT_METRICS else None)


@dataclass
class Results:
    """The outcome of a bake-off (see the module docstring).

    Attributes
    ----------
    entries : list[ModelResult]
    protocols : dict[str, dict]
        Protocol name -> its configuration (label, ``sampled``, split parameters and reports).
    config : dict
        Dataset, seeds, package versions, git commit, models and their hyperparameters.
    samples : dict[str, list[dict]]
        Model -> sample top-N rows (rank, item, title, score) for the chosen user.
    confidence, n_resamples, seed : bootstrap settings used for intervals.
    warnings : list[str]
        Degenerate evaluations reported as warnings (``Evaluator(degenerate="warn")``).
    """

    entries: list[ModelResult]
    protocols: dict
    config: dict
    samples: dict = field(default_factory=dict)
    sample_user: object = None
    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    warnings: list = field(default_factory=list)
    _ci_cache: dict = field(default_factory=dict, repr=False)  # intervals and tests, computed once

    # ------------------------------------------------------------------ access
    def get(self, model: str, protocol: str | None = None) -> ModelResult:
        for e in self.entries:
            if e.model == model and (protocol is None or e.protocol == protocol):
                return e
        raise KeyError(f"no result for model {model!r}" + (f" under {protocol!r}" if protocol else ""))

    def value(self, model: str, metric: str, protocol: str | None = None) -> float:
        """The headline value of ``metric`` for ``model`` (first protocol that has it)."""
        for e in self.entries:
            if e.model == model and (protocol is None or e.protocol == protocol) and metric in e.fold_metrics:
                return e.value(metric)
        raise KeyError(f"no {metric!r} for model {model!r}")

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(e.model for e in self.entries))

    def ci(self, entry: ModelResult, metric: str) -> tuple[float, float]:
        key = (entry.protocol, entry.model, metric)
        if key not in self._ci_cache:
            self._ci_cache[key] = entry.ci(metric, self.confidence, self.n_resamples, self.seed)
        return self._ci_cache[key]

    # ------------------------------------------------------------------ tables
    def to_frame(self, ci: bool = True) -> pd.DataFrame:
        """One row per (protocol, model): metric means over folds (with CI bounds), times."""
        rows = []
        for e in self.entries:
            p = self.protocols.get(e.protocol, {})
            row = {"protocol": e.protocol, "sampled": bool(p.get("sampled", False)),
                   "model": e.model, "ranks_by_rating": e.ranks_by_rating}
            for m in e.metric_names():
                row[m] = e.value(m)
                if ci:
                    lo, hi = self.ci(e, m)
                    row[f"{m}_ci_low"], row[f"{m}_ci_high"] = lo, hi
            row["fit_seconds"] = float(np.sum(e.fit_seconds)) if e.fit_seconds else float("nan")
            row["eval_seconds"] = float(np.sum(e.eval_seconds)) if e.eval_seconds else float("nan")
            row["peak_memory_mb"] = (e.peak_memory_bytes / 2**20 if e.peak_memory_bytes is not None
                                     else float("nan"))
            row["error"] = e.error
            rows.append(row)
        return pd.DataFrame(rows)

    def folds_frame(self) -> pd.DataFrame:
        """One row per (protocol, model, fold, metric) with the fold's value."""
        rows = []
        for e in self.entries:
            for m, vals in e.fold_metrics.items():
                for j, v in enumerate(vals):
                    rows.append({"protocol": e.protocol, "model": e.model, "fold": j, "metric": m,
                                 "value": v})
        return pd.DataFrame(rows, columns=["protocol", "model", "fold", "metric", "value"])

    def significance(self, metric: str | None = None, protocol: str | None = None,
                     methods=("t", "wilcoxon")) -> pd.DataFrame:
        """Paired tests between every pair of models on the same units, per protocol and metric.

        Units are users (rating / top-N protocols; for k-fold CV a user's errors are pooled
        over the folds) or ranked events (session protocol). p-values are also given
        Holm-adjusted over the pairs of one metric.
        """
        key = ("significance", metric, protocol, tuple(methods))
        if key in self._ci_cache:
            return self._ci_cache[key].copy()
        frames = []
        for pname in self.protocols:
            if protocol is not None and pname != protocol:
                continue
            es = [e for e in self.entries if e.protocol == pname and e.error is None]
            if len(es) < 2:
                continue
            metrics = [m for m in es[0].unit_num if metric is None or m == metric]
            for m in metrics:
                vecs = {e.model: e.per_unit(m) for e in es if m in e.unit_num}
                if len(vecs) < 2:
                    continue
                df = pairwise_tests(vecs, methods=methods)
                unit = "event" if self.protocols[pname].get("task") == "session" else "user"
                df.insert(0, "compared", {"rmse": f"per-{unit} mean squared error",
                                          "mae": f"per-{unit} mean absolute error"}.get(
                                              m.split("@")[0], f"per-{unit} {m}"))
                df.insert(0, "metric", m)
                df.insert(0, "protocol", pname)
                df["sampled"] = bool(self.protocols[pname].get("sampled", False))
                frames.append(df)
        if frames:
            out = pd.concat(frames, ignore_index=True)
        else:
            out = pd.DataFrame(columns=["protocol", "metric", "compared", "model_a", "model_b", "method", "n",
                                        "mean_diff", "statistic", "pvalue", "pvalue_holm", "sampled"])
        self._ci_cache[key] = out
        return out.copy()

    def best(self, metric: str, protocol: str | None = None) -> str:
        """The model with the best headline value of ``metric``."""
        cands = [(e.value(metric), e.model) for e in self.entries
                 if metric in e.fold_metrics and (protocol is None or e.protocol == protocol)
                 and np.isfinite(e.value(metric))]
        if not cands:
            raise KeyError(f"no model has {metric!r}")
        sign = 1.0 if higher_is_better(metric) else -1.0
        return max(cands, key=lambda t: sign * t[0])[1]

    def table(self) -> str:
        """The console table: per protocol, one line per model, metric means and times."""
        lines = []
        if self.config.get("partial"):
            lines.append("PARTIAL RESULT: the run was interrupted; only finished models are shown")
        for w in self.warnings:
            lines.append(f"WARNING: {w}")
        for pname, pconf in self.protocols.items():
            es = [e for e in self.entries if e.protocol == pname]
            if not es:
                continue
            label = pconf.get("label", pname)
            lines.append(f"== {label}" + ("  [SAMPLED, not full ranking]" if pconf.get("sampled") else ""))
            metrics = list(dict.fromkeys(m for e in es for m in e.metric_names()))
            header = ["model"] + metrics + ["fit s", "eval s", "peak MB"]
            body = []
            for e in es:
                if e.error:
                    body.append([e.model, f"FAILED: {e.error}"])
                    continue
                row = [e.model + (" *" if e.ranks_by_rating else "")] + [_fmt(e.value(m)) for m in metrics]
                row += [f"{np.sum(e.fit_seconds):.2f}", f"{np.sum(e.eval_seconds):.2f}",
                        "-" if e.peak_memory_bytes is None else f"{e.peak_memory_bytes / 2**20:.1f}"]
                body.append(row)
            widths = [max(len(str(r[c])) for r in [header] + [b for b in body if len(b) > c])
                      for c in range(len(header))]
            lines.append("  ".join(h.rjust(w) if c else h.ljust(w) for c, (h, w) in enumerate(zip(header, widths, strict=True))))
            for b in body:
                if len(b) == 2 and str(b[1]).startswith("FAILED"):
                    lines.append(f"{b[0]}  {b[1]}")
                    continue
                lines.append("  ".join(str(v).rjust(w) if c else str(v).ljust(w)
                                       for c, (v, w) in enumerate(zip(b, widths, strict=True))))
            if any(e.ranks_by_rating and not e.error for e in es):
                lines.append("* ranks by predicted rating (a rating predictor's estimates, sorted; "
                             "see popularity@k for how obscure its lists are)")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def __str__(self) -> str:
        return self.table()

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        summary = _records(self.to_frame())
        entries = []
        for e in self.entries:
            entries.append({
                "model": e.model, "model_class": e.model_class, "protocol": e.protocol,
                "sampled": bool(self.protocols.get(e.protocol, {}).get("sampled", False)),
                "params": _jsonable(e.params),
                "metrics": {m: e.value(m) for m in e.metric_names()},
                "fold_std": {m: e.fold_std(m) for m in e.metric_names()},
                "ci": {m: list(self.ci(e, m)) for m in e.metric_names()},
                "folds": {m: list(v) for m, v in e.fold_metrics.items()},
                "recall_curve": {str(k): v for k, v in e.curve.items()},
                "fit_seconds": list(e.fit_seconds), "eval_seconds": list(e.eval_seconds),
                "peak_memory_bytes": e.peak_memory_bytes, "fallbacks": e.fallbacks,
                "error": e.error, "ranks_by_rating": e.ranks_by_rating,
            })
        return _jsonable({
            "config": self.config,
            "protocols": self.protocols,
            "bootstrap": {"confidence": self.confidence, "n_resamples": self.n_resamples,
                          "seed": self.seed, "method": "percentile, resampling units"},
            "summary": summary,
            "results": entries,
            "significance": _records(self.significance()),
            "sample_user": self.sample_user,
            "samples": self.samples,
            "warnings": list(self.warnings),
        })

    def to_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False, default=str))
        return path

    def to_csv(self, path) -> Path:
        """Summary table; every row also carries the configuration it was produced with."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        df = self.to_frame()
        ds = self.config.get("dataset", {})
        df.insert(0, "dataset", ds.get("name"))
        df.insert(2, "protocol_label", [self.protocols.get(p, {}).get("label", p) for p in df["protocol"]])
        df["protocol_config"] = [json.dumps(_jsonable(self.protocols.get(p, {}).get("config", {})),
                                            sort_keys=True) for p in df["protocol"]]
        df["hyperparameters"] = [json.dumps(_jsonable(self.get(m, p).params), sort_keys=True)
                                 for m, p in zip(df["model"], df["protocol"], strict=True)]
        df["seed"] = self.config.get("seed")
        df["versions"] = json.dumps(self.config.get("versions", {}), sort_keys=True)
        df["git_commit"] = self.config.get("git_commit")
        df["dataset_config"] = json.dumps(_jsonable(ds), sort_keys=True)
        df.to_csv(path, index=False)
        return path

    def save(self, directory, formats=("json", "csv", "html")) -> dict[str, Path]:
        """Write ``results.json``, ``results.csv`` (+ ``folds.csv``, ``significance.csv``) and
        ``report.html`` into ``directory``; returns the paths written.

        Everything is written into a temporary folder beside ``directory`` first and renamed
        into place only when complete, so a failure or an interrupt while writing leaves any
        earlier results in ``directory`` untouched. The folder gets the user's umask."""
        directory = Path(directory)
        parent = directory.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=parent))
        try:
            _apply_umask(tmp)
            written = self._write_into(tmp, formats)
            if directory.exists():
                old = parent / f".{directory.name}.old-{os.getpid()}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(directory, old)
                os.replace(tmp, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("results written to %s", directory)
        return {k: directory / p.name for k, p in written.items()}

    def _write_into(self, directory: Path, formats) -> dict[str, Path]:
        out = {}
        if "json" in formats:
            out["json"] = self.to_json(directory / "results.json")
        if "csv" in formats:
            out["csv"] = self.to_csv(directory / "results.csv")
            self.folds_frame().to_csv(directory / "folds.csv", index=False)
            out["folds_csv"] = directory / "folds.csv"
            self.significance().to_csv(directory / "significance.csv", index=False)
            out["significance_csv"] = directory / "significance.csv"
        if "html" in formats:
            from .report import write_report

            out["html"] = write_report(self, directory / "report.html")
        return out


def _apply_umask(path: Path) -> None:
    """``mkdtemp`` makes 0700 folders; give ``path`` the mode a plain ``mkdir`` would."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o777 & ~mask)


def _fmt(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:.4f}"


def _records(df: pd.DataFrame) -> list[dict]:
    return [_jsonable(r) for r in df.to_dict(orient="records")]
