"""A self-contained HTML report of a bake-off, with matplotlib plots embedded as PNG.

The file needs nothing but a browser: no scripts, no network, images inlined as base64 data
URIs. Plots: each protocol's metrics as bars with bootstrap confidence intervals, accuracy
against novelty and catalogue coverage, recall@k curves, and fit times. Sampled protocols are
marked *SAMPLED* in every heading, table and plot title.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path

import numpy as np

from ._json import jsonable
from .metric_table import higher_is_better, metric_base

log = logging.getLogger(__name__)

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1300px;
color:#222;padding:0 16px}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ccc}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.best{font-weight:bold;background:#eef7ee}
.sampled{display:inline-block;background:#c0392b;color:#fff;padding:1px 6px;border-radius:3px;
font-size:.8em;margin-left:6px}
.ci{color:#777;font-size:.85em}img{max-width:100%;border:1px solid #eee;margin:6px 0}
pre{background:#f8f8f8;padding:8px;overflow:auto;font-size:.8em}.err{color:#c0392b}
"""


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless, file output only
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _title(results, pname: str) -> str:
    conf = results.protocols[pname]
    return conf.get("label", pname) + (" [SAMPLED]" if conf.get("sampled") else "")


def metric_bars(results, pname: str) -> str | None:
    """Each metric per model as a point with its bootstrap CI (PNG data URI). The value axis is
    fitted to the points and intervals, not forced to 0, so that 0.950 and 0.979 look apart."""
    plt = _plt()
    es = [e for e in results.entries if e.protocol == pname and e.error is None]
    if not es:
        return None
    metrics = list(dict.fromkeys(m for e in es for m in e.metric_names()))
    if not metrics:
        return None
    ncol = min(4, len(metrics))
    nrow = int(np.ceil(len(metrics) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.8 * nrow), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, m in zip(axes.ravel(), metrics, strict=False):
        x = np.arange(len(es))
        for j, e in enumerate(es):
            v = e.value(m)
            a, b = results.ci(e, m)
            err = None
            if np.isfinite(a) and np.isfinite(b):
                err = np.clip(np.array([[v - a], [b - v]]), 0.0, None)
            ax.errorbar([j], [v], yerr=err, fmt="o", capsize=4, color=colors[j % len(colors)],
                        markersize=5)
        ax.set_xticks(x)
        ax.set_xticklabels([e.model for e in es], rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(es) - 0.4)
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(m + ("  (lower is better)" if not higher_is_better(m) else ""), fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    fig.suptitle(f"{_title(results, pname)}: mean over folds, {results.confidence:.0%} bootstrap CI "
                 "(axes not from 0)", fontsize=10)
    # fixed margins: tight_layout measures every label and costs seconds per figure
    fig.subplots_adjust(left=0.06, right=0.98, top=1 - 0.75 / (2.8 * nrow), bottom=0.9 / (2.8 * nrow),
                        hspace=0.75, wspace=0.3)
    return _png(fig)


def _accuracy_metric(metrics: list[str]) -> str | None:
    for base in ("ndcg", "hr", "recall", "precision", "rmse"):
        for m in metrics:
            if metric_base(m) == base:
                return m
    return None


def tradeoff_scatter(results, pname: str) -> str | None:
    """Accuracy against novelty and against catalogue coverage, one point per model."""
    plt = _plt()
    es = [e for e in results.entries if e.protocol == pname and e.error is None]
    metrics = list(dict.fromkeys(m for e in es for m in e.metric_names()))
    acc = _accuracy_metric(metrics)
    others = [m for m in metrics if metric_base(m) in ("novelty", "coverage", "diversity")]
    if acc is None or not others:
        return None
    fig, axes = plt.subplots(1, len(others), figsize=(4.2 * len(others), 3.4), squeeze=False)
    for ax, other in zip(axes[0], others, strict=True):
        for e in es:
            x, y = e.value(other), e.value(acc)
            ax.scatter([x], [y], s=40)
            ax.annotate(e.model, (x, y), fontsize=8, xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel(other)
        ax.set_ylabel(acc)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{_title(results, pname)}: accuracy vs beyond-accuracy", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.97, top=0.85, bottom=0.16, wspace=0.35)
    return _png(fig)


def recall_curves(results, pname: str) -> str | None:
    """Recall@k against k, one line per model (mean over folds)."""
    plt = _plt()
    es = [e for e in results.entries if e.protocol == pname and e.error is None and e.curve]
    if not es:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for e in es:
        ks = sorted(int(k) for k in e.curve)
        ax.plot(ks, [e.curve[k] for k in ks], marker="o", label=e.model)
    ax.set_xscale("log")
    ax.set_xlabel("k (log scale)")
    ax.set_ylabel("recall@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{_title(results, pname)}: recall@k", fontsize=10)
    fig.subplots_adjust(left=0.13, right=0.97, top=0.88, bottom=0.15)
    return _png(fig)


def fit_times(results) -> str | None:
    """Total fit and evaluation time per model and protocol (horizontal bars)."""
    plt = _plt()
    es = [e for e in results.entries if e.error is None and e.fit_seconds]
    if not es:
        return None
    labels = [f"{e.model} | {e.protocol}" for e in es]
    fit = np.array([np.sum(e.fit_seconds) for e in es])
    ev = np.array([np.sum(e.eval_seconds) for e in es])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(es) + 1.2))
    y = np.arange(len(es))
    ax.barh(y, fit, label="fit")
    ax.barh(y, ev, left=fit, label="evaluate (predict / recommend)")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (sum over folds)")
    ax.legend(fontsize=8)
    ax.set_title("Fit and evaluation time", fontsize=10)
    fig.subplots_adjust(left=0.4, right=0.97, top=1 - 0.45 / (0.35 * len(es) + 1.2),
                        bottom=0.55 / (0.35 * len(es) + 1.2))
    return _png(fig)


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if j < left else ""}">{html.escape(h)}</th>' for j, h in enumerate(header))
    body = []
    for r in rows:
        body.append("<tr>" + "".join(f'<td class="{"l" if j < left else ""}">{c}</td>'
                                     for j, c in enumerate(r)) + "</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def _num(v, digits: int = 4) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _pval(p) -> str:
    if p is None or not np.isfinite(p):
        return "-"
    if p == 0.0:
        return "&lt; 1e-300"  # below double precision, not exactly zero
    return f"{p:.2e}" if p < 1e-4 else f"{p:.4f}"


def _compared(metric: str, conf: dict) -> str:
    """What the paired test compares for ``metric``: the per-unit values behind it."""
    unit = "event" if conf.get("task") == "session" else "user"
    base = metric_base(metric)
    if base == "rmse":
        return f"per-{unit} mean squared error"
    if base == "mae":
        return f"per-{unit} mean absolute error"
    return f"per-{unit} {metric}"


def _protocol_section(results, pname: str) -> str:
    conf = results.protocols[pname]
    es = [e for e in results.entries if e.protocol == pname]
    badge = '<span class="sampled">SAMPLED — not full ranking</span>' if conf.get("sampled") else ""
    parts = [f"<h2>{html.escape(conf.get('label', pname))}{badge}</h2>"]
    parts.append(f"<p>Protocol <code>{html.escape(pname)}</code>, {conf.get('n_folds', 1)} fold(s). "
                 f"Units for intervals and tests: "
                 f"{'test events' if conf.get('task') == 'session' else 'users'}.</p>")
    if conf.get("not_applicable"):
        parts.append("<p>Not applicable (capabilities): "
                     + html.escape(", ".join(conf["not_applicable"])) + "</p>")
    metrics = list(dict.fromkeys(m for e in es for m in e.metric_names()))
    ok = [e for e in es if e.error is None]
    best = {}
    for m in metrics:
        vals = [(e.value(m), e.model) for e in ok if np.isfinite(e.value(m))]
        if vals:
            sign = 1 if higher_is_better(m) else -1
            best[m] = max(vals, key=lambda t: sign * t[0])[1]
    rows = []
    for e in es:
        if e.error:
            rows.append([html.escape(e.model)] + [f'<span class="err">failed: {html.escape(e.error)}</span>']
                        + [""] * (len(metrics) + 2))
            continue
        row = [html.escape(e.model) + (" *" if e.ranks_by_rating else "")]
        for m in metrics:
            lo, hi = results.ci(e, m)
            cell = _num(e.value(m))
            if np.isfinite(lo):
                cell += f' <span class="ci">[{_num(lo)}, {_num(hi)}]</span>'
            if best.get(m) == e.model:
                cell = f'<span class="best">{cell}</span>'
            row.append(cell)
        row += [_num(float(np.sum(e.fit_seconds)), 2), _num(float(np.sum(e.eval_seconds)), 2),
                "-" if e.peak_memory_bytes is None else _num(e.peak_memory_bytes / 2**20, 1)]
        rows.append(row)
    parts.append(_table(["model"] + metrics + ["fit s", "eval s", "peak MB"], rows))
    by_rating = [e for e in ok if e.ranks_by_rating]
    if by_rating:
        pop = next((m for m in metrics if metric_base(m) == "popularity"), None)
        shown = ", ".join(html.escape(e.model) + (f" (mean popularity {_num(e.value(pop), 3)})"
                                                  if pop else "") for e in by_rating)
        parts.append("<p>* ranks by predicted rating: a rating predictor's estimates, sorted. Such "
                     "lists tend to be filled with items that have few, high ratings (low "
                     "popularity, counted as item training count / largest count); a support-"
                     f"damped score (e.g. <code>ranking_shrinkage</code> of the k-NN models) helps. "
                     f"{shown}.</p>")
    for maker, alt in ((metric_bars, "metric bars"), (tradeoff_scatter, "accuracy vs novelty/coverage"),
                       (recall_curves, "recall curves")):
        try:
            uri = maker(results, pname)
        except Exception as exc:  # a plot that cannot be drawn must not lose the report
            log.warning("%s for %s not drawn: %s", alt, pname, exc)
            uri = None
        if uri:
            parts.append(_img(uri, f"{alt}: {_title(results, pname)}"))
    sig = results.significance(protocol=pname)
    if len(sig):
        srows = []
        for r in sig.itertuples(index=False):
            p = r.pvalue_holm
            srows.append([html.escape(r.metric), html.escape(_compared(r.metric, conf)),
                          html.escape(r.model_a), html.escape(r.model_b),
                          html.escape(r.method), str(r.n), _num(r.mean_diff), _pval(r.pvalue),
                          ("<b>" if np.isfinite(p) and p < 0.05 else "") + _pval(p)
                          + ("</b>" if np.isfinite(p) and p < 0.05 else "")])
        parts.append("<h3>Paired significance tests</h3><p>Two-sided, on the per-unit values named "
                     "in the column <i>compared</i> (for RMSE that is each user's mean squared "
                     "error, so mean(A−B) is a difference of squared errors, not of RMSE); "
                     "Holm-adjusted over the pairs of each metric; bold: adjusted p &lt; 0.05.</p>")
        parts.append(_table(["metric", "compared", "model A", "model B", "test", "units",
                             "mean(A−B)", "p", "p (Holm)"], srows, left=5))
    fb = [(e.model, e.fallbacks) for e in es if e.fallbacks]
    if fb:
        parts.append("<h3>Fallbacks</h3><ul>" + "".join(
            f"<li>{html.escape(m)}: {html.escape(json.dumps(f))}</li>" for m, f in fb) + "</ul>")
    return "\n".join(parts)


def render_html(results) -> str:
    """The report as one HTML string."""
    cfg = results.config
    ds = cfg.get("dataset", {})
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>recforge bake-off: {html.escape(str(ds.get('name')))}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Bake-off on {html.escape(str(ds.get('name')))}</h1>",
             f"<p>recforge {html.escape(str(cfg.get('versions', {}).get('recforge')))}, "
             f"commit {html.escape(str(cfg.get('git_commit')))}, {html.escape(str(cfg.get('created_utc')))}. "
             f"Every model ran on the same splits; intervals are {results.confidence:.0%} percentile "
             f"bootstrap intervals ({results.n_resamples} resamples, seed {results.seed}).</p>"]
    for pname in results.protocols:
        parts.append(_protocol_section(results, pname))
    try:
        uri = fit_times(results)
    except Exception as exc:
        log.warning("fit-time plot not drawn: %s", exc)
        uri = None
    if uri:
        parts.append("<h2>Time</h2>" + _img(uri, "fit times"))
    if results.samples:
        parts.append(f"<h2>Sample top-N for user {html.escape(str(results.sample_user))}</h2>"
                     "<p>Each model fitted on all interactions.</p>")
        for model, rows in results.samples.items():
            parts.append(f"<h3>{html.escape(model)}</h3>")
            parts.append(_table(["rank", "item", "title", "score"],
                                [[str(r["rank"]), html.escape(str(r["item"])), html.escape(r["title"]),
                                  _num(r["score"])] for r in rows], left=0))
    parts.append("<h2>Configuration</h2><details><summary>Data set, protocols, models with "
                 "their hyperparameters, seeds, package versions (click to open)</summary><pre>"
                 + html.escape(json.dumps(_safe(cfg), indent=2, default=str)) + "</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _safe(obj):
    return jsonable(obj)


def write_report(results, path) -> Path:
    """Write :func:`render_html` to ``path`` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")
    log.info("report written to %s", path)
    return path
