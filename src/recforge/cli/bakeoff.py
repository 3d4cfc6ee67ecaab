"""``recforge bakeoff``: run models side by side on the same splits and write a report.

Driven by flags, by a TOML experiment file, or both (flags override the file)::

    recforge bakeoff                                   # the main job: synthetic ratings and
                                                       # sessions, one model of every family
    recforge bakeoff examples/ml100k-baselines.toml
    recforge bakeoff --dataset ml-100k --data-dir ../shared/data --protocol rating-cv loo \\
        --models BaselineOnly MostPopular --param BaselineOnly.reg_u=10 --out results/

Experiment file (paths inside it are relative to the file's own folder)::

    [dataset]
    name = "ml-100k"              # catalog name, "synthetic", or a path (path = "...")
    data_dir = "../data"          # optional folder holding data sets by catalog name
    options = {}                  # passed to the reader / synthetic generator

    [[protocols]]
    type = "rating_cv"            # rating_cv | loo_topn | holdout_topn | sampled_loo |
    n_folds = 5                   # session_next_item (aliases: cv, loo, holdout, sampled, session)

    [[protocols]]                 # any preset with another registered splitter:
    type = "holdout_topn"         # holdout | kfold | leave_one_out | temporal_global |
    split = { name = "temporal_per_user", test_ratio = 0.2 }   # temporal_per_user | session_split
    metrics = ["hr", "ndcg", "recall"]                         # optional, from the metric table

    [[models]]
    name = "BaselineOnly"         # registered model name
    label = "Baseline (ALS)"      # display name, optional
    params = { reg_u = 15.0 }

    [output]
    dir = "results"               # JSON, CSV and HTML go here
    formats = ["json", "csv", "html"]

    [run]
    seed = 0                      # bootstrap seed
    sample_user = 85              # optional: top-N lists for this user, with titles
    progress = true
    memory = false                # true: one extra traced run per model for peak memory
    allow_degenerate = false      # true: an empty / one-user test part is a warning, not an error

Everything is checked before the first fit: the file's keys and types (a typo gets a "did you
mean"), every model's hyperparameters, every protocol against the data (timestamps, ratings,
sessions), every model against the protocols, and that the output folder can be written.

Results are written to a temporary folder and renamed into ``--out`` only when the run is
complete and no model failed; earlier results there are never replaced by a failed or an
interrupted run. Such a run writes what finished to ``<out>.partial`` instead, and every
finished (model, fold) is kept in ``<out>.cache``: ``--resume`` reuses them.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import shutil
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("Random", "BaselineOnly", "MostPopular")
#: The main job (``recforge bakeoff`` with no data, model or protocol given): one model of every
#: family on the synthetic ratings (with item features) and the synthetic sessions.
MAIN_JOB_MODELS = (
    {"name": "Random", "params": {"random_state": 0}},
    {"name": "BaselineOnly", "params": {}},
    {"name": "MostPopular", "params": {}},
    {"name": "KNNBaseline", "params": {"k": 40, "sim": "pearson_baseline", "user_based": False}},
    {"name": "SVD", "params": {"random_state": 0}},
    {"name": "UserKNNTopN", "params": {"k": 20}},
    {"name": "ALS", "params": {"factors": 32, "regularization": 10.0, "random_state": 0,
                               "binarize": True}},
    {"name": "ContentKNN", "params": {"components": {"genres": 1.0, "year": 1.0}}},
    {"name": "MarkovChain", "params": {}},
    {"name": "VSKNN", "params": {}},
)
MAIN_JOB_PROTOCOLS = ({"type": "rating_cv", "n_folds": 3}, {"type": "loo_topn"},
                      {"type": "session_next_item"})
DEFAULT_OUT = "results/bakeoff"
_FORMATS = ("json", "csv", "html")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bakeoff", help="evaluate several models on the same splits; write JSON, CSV, HTML",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="TOML experiment file (optional)")
    p.add_argument("--dataset", help="catalog name, 'synthetic' (default), or a path")
    p.add_argument("--data-dir", help="folder holding data sets under their catalog names")
    p.add_argument("--protocol", nargs="+", metavar="P",
                   help="protocols: rating-cv, loo, holdout, sampled, session "
                        "(default: rating-cv and loo on ratings, loo on implicit data)")
    p.add_argument("--folds", type=int, help="folds of rating-cv (default 5)")
    p.add_argument("--k", type=int, help="list length of top-N protocols (default 10)")
    p.add_argument("--negatives", type=int, help="negatives per user of the sampled protocol (default 100)")
    p.add_argument("--split", nargs="+", metavar="NAME_OR_KEY=VALUE",
                   help="replace the split of every protocol on that kind of data with a registered "
                        "splitter, e.g. --split temporal_per_user test_ratio=0.2 (splitters: "
                        "holdout, kfold, leave_one_out, temporal_global, temporal_per_user, "
                        "session_split)")
    p.add_argument("--split-seed", type=int, help="seed of every protocol's split (default 0)")
    p.add_argument("--mode", choices=("latest", "random"),
                   help="which interaction leave-one-out protocols hold out: the latest (needs "
                        "timestamps; the default) or a random one")
    p.add_argument("--min-interactions", type=int, metavar="N",
                   help="users with fewer interactions are not tested by leave-one-out (default 2)")
    p.add_argument("--test-ratio", type=float, metavar="R",
                   help="share of each user's interactions held out by the holdout protocol "
                        "(default 0.2)")
    p.add_argument("--relevance-threshold", type=float, metavar="R",
                   help="ratings at or above this count as relevant in top-N protocols")
    p.add_argument("--test-days", type=float, metavar="D",
                   help="days of sessions held out by the session protocol (default 1)")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help=f"registered model names (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--param", action="append", default=[], metavar="MODEL.KEY=VALUE",
                   help="set a hyperparameter, e.g. BaselineOnly.reg_u=10 (repeatable)")
    p.add_argument("--out", help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--formats", nargs="+", choices=_FORMATS, help="what to write (default: all)")
    p.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
    p.add_argument("--sample-user", help="also list each model's top-N for this raw user id")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--memory", action="store_true",
                   help="also measure peak memory (one extra traced run of each model's first fold)")
    p.add_argument("--no-memory", action="store_true", help=argparse.SUPPRESS)  # the old default
    p.add_argument("--resume", action="store_true",
                   help="reuse the finished (model, fold) results of an earlier interrupted or "
                        "failed run with the same arguments (kept in <out>.cache)")
    p.add_argument("--allow-degenerate", action="store_true",
                   help="report an empty or one-user test part as a warning instead of an error")
    p.set_defaults(func=run)


def _usage(msg: str):
    from .main import UsageError

    return UsageError(msg)


def read_experiment(path) -> dict:
    """Parse and check a TOML experiment file (:mod:`recforge.cli.experiment`); paths in it are
    resolved against its folder. A bad file is a usage error naming file, line and key."""
    from .experiment import ExperimentError, load_experiment

    try:
        return load_experiment(path)
    except ExperimentError as e:
        raise _usage(str(e)) from None


def _parse_value(text: str):
    """``'10'`` -> 10, ``'0.5'`` -> 0.5, ``'true'`` -> True, ``'none'`` -> None, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _protocol_specs(args, conf: dict, explicit: bool | None) -> list[dict]:
    if args.protocol:
        specs = [{"type": p} for p in args.protocol]
    elif conf.get("protocols"):
        specs = [dict(p) for p in conf["protocols"]]
    else:
        specs = [{"type": "rating_cv"}, {"type": "loo_topn"}] if explicit is not False else [{"type": "loo_topn"}]
    from ..evaluation.protocols import ALIASES

    for s in specs:
        kind = ALIASES.get(s["type"], s["type"])
        if args.folds is not None and kind == "rating_cv":
            s["n_folds"] = args.folds
        if args.k is not None and kind in ("loo_topn", "holdout_topn", "sampled_loo"):
            s["k"] = args.k
        if args.negatives is not None and kind == "sampled_loo":
            s["n_negatives"] = args.negatives
        if args.split_seed is not None and kind != "session_next_item":
            s["seed"] = args.split_seed
        if getattr(args, "mode", None) is not None and kind in ("loo_topn", "sampled_loo"):
            s["mode"] = args.mode
        if getattr(args, "min_interactions", None) is not None and kind in ("loo_topn", "sampled_loo"):
            s["min_interactions"] = args.min_interactions
        if getattr(args, "test_ratio", None) is not None and kind == "holdout_topn":
            s["test_ratio"] = args.test_ratio
        if getattr(args, "relevance_threshold", None) is not None and kind in ("loo_topn", "holdout_topn"):
            s["relevance_threshold"] = args.relevance_threshold
        if getattr(args, "test_days", None) is not None and kind == "session_next_item":
            s["test_days"] = args.test_days
    split = _split_spec(getattr(args, "split", None))
    if split is not None:
        from ..split import get_splitter

        on_sessions = get_splitter(split["name"]).input == "sessions"
        hits = [s for s in specs if (ALIASES.get(s["type"], s["type"]) == "session_next_item") == on_sessions]
        if not hits:
            raise _usage(f"--split {split['name']}: no protocol of this bake-off evaluates "
                         f"{'sessions' if on_sessions else 'interactions'}")
        for s in hits:
            s["split"] = dict(split)
    return specs


def _split_spec(words) -> dict | None:
    """``['temporal_per_user', 'test_ratio=0.2']`` -> ``{'name': ..., 'test_ratio': 0.2}``."""
    if not words:
        return None
    from ..split import get_splitter

    try:
        splitter = get_splitter(words[0])
    except ValueError as e:
        raise _usage(f"--split: {e}") from None
    spec = {"name": splitter.name}
    for item in words[1:]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _usage(f"--split {item!r}: use KEY=VALUE after the splitter name")
        spec[key] = _parse_value(value)
    try:
        splitter.check_params({k: v for k, v in spec.items() if k != "name"})
    except ValueError as e:
        raise _usage(f"--split: {e}") from None
    return spec


def _is_main_job(args, conf: dict) -> bool:
    return not (conf or args.dataset or args.models or args.protocol or getattr(args, "split", None))


def _model_specs(args, conf: dict) -> list[dict]:
    if _is_main_job(args, conf):
        specs = [{"name": m["name"], "params": dict(m["params"])} for m in MAIN_JOB_MODELS]
    elif args.models:
        specs = [{"name": n, "params": {}} for n in args.models]
    elif conf.get("models"):
        specs = [{"name": m["name"], "label": m.get("label"), "params": dict(m.get("params", {}))}
                 for m in conf["models"]]
    else:
        specs = [{"name": n, "params": {}} for n in DEFAULT_MODELS]
    for item in args.param:
        target, sep, value = item.partition("=")
        model, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise _usage(f"--param {item!r}: use MODEL.KEY=VALUE")
        hits = [s for s in specs if model in (s["name"], s.get("label"))]
        if not hits:
            raise _usage(f"--param {item!r}: no model {model!r} in this bake-off")
        for s in hits:
            s["params"][key] = _parse_value(value)
    return specs


def _load_dataset(args, conf: dict):
    from ..data.readers import load

    ds_conf = conf.get("dataset", {})
    source = args.dataset or ds_conf.get("path") or ds_conf.get("name") or "synthetic"
    data_dir = args.data_dir or ds_conf.get("data_dir")
    options = dict(ds_conf.get("options", {}))
    kwargs = {} if data_dir is None or str(source).startswith("synthetic") else {"data_dir": data_dir}
    t0 = time.perf_counter()
    if _is_main_job(args, conf):  # synthetic ratings with item features, and sessions beside them
        ds = load("synthetic")
        ds.sessions = load("synthetic-sessions").sessions
        ds.name = "synthetic (ratings + sessions)"
        log.info("loaded the synthetic main-job data in %.2fs", time.perf_counter() - t0)
        return ds
    try:
        ds = load(source, **kwargs, **options)
    except FileNotFoundError as e:
        raise _usage(f"data set {source!r} not found ({e}); give --data-dir or a path") from None
    except TypeError as e:
        raise _usage(f"data set {source!r}: {e}") from None
    log.info("loaded %s in %.2fs", source, time.perf_counter() - t0)
    return ds


def _check_writable(out: Path) -> None:
    """The output folder (and its ``.partial`` / ``.cache`` siblings) can be created and
    written: a folder is made and removed beside it now, before any work, not after it."""
    import tempfile

    if out.exists() and not out.is_dir():
        raise _usage(f"--out {out}: exists and is not a folder")
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent)
        os.rmdir(probe)
        if out.exists() and not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {out}")
    except OSError as e:
        raise _usage(f"--out {out}: cannot write there ({e.strerror or e})") from None


def _sibling(out: Path, suffix: str) -> Path:
    return out.with_name(out.name + suffix)


def _build_models(args, conf: dict) -> list[tuple[str, object]]:
    """Every model of the bake-off, constructed and with its hyperparameters checked."""
    from ..models import get_model_class
    from .experiment import line_of

    models = []
    for j, spec in enumerate(_model_specs(args, conf)):
        at = line_of(conf, ("models", j, "params")) if conf.get("models") and not args.models else ""
        try:
            cls = get_model_class(spec["name"])
        except KeyError as e:
            raise _usage(at + str(e.args[0])) from None
        try:
            model = cls(**spec["params"])
            model.check_params()
        except TypeError as e:
            raise _usage(f"{at}model {spec['name']}: {e}") from None
        except ValueError as e:
            raise _usage(f"{at}{e}") from None
        models.append((spec.get("label") or spec["name"], model))
    labels = [name for name, _ in models]
    dupes = sorted({n for n in labels if labels.count(n) > 1})
    if dupes:
        raise _usage(f"model name(s) {', '.join(dupes)} used twice; give each a distinct label")
    return models


def run(args: argparse.Namespace) -> int:
    from .. import progress as fit_progress
    from ..evaluation import Evaluator, make_protocol
    from ..evaluation.evaluator import DegenerateEvaluation

    conf = read_experiment(args.config) if args.config else {}
    run_conf = conf.get("run", {})
    out_conf = conf.get("output", {})
    out = Path(args.out) if args.out else Path(out_conf.get("dir") or DEFAULT_OUT)
    formats = args.formats or out_conf.get("formats", list(_FORMATS))
    _check_writable(out)
    models = _build_models(args, conf)  # hyperparameters: before the data is even read
    if run_conf.get("threads") is not None and getattr(args, "threads", None) is None:
        from ..threads import set_threads

        set_threads(int(run_conf["threads"]))
    ds = _load_dataset(args, conf)
    inter = ds.interactions
    explicit = None if inter is None else inter.is_explicit
    if _is_main_job(args, conf):
        protocol_specs = [dict(p) for p in MAIN_JOB_PROTOCOLS]
    elif inter is None and ds.sessions is not None and not args.protocol and not conf.get("protocols"):
        protocol_specs = [{"type": "session_next_item"}]
    else:
        protocol_specs = _protocol_specs(args, conf, explicit)
    protocols = []
    for spec in protocol_specs:
        params = {k: v for k, v in spec.items() if k != "type"}
        try:
            protocols.append(make_protocol(spec["type"], **params))
        except (TypeError, ValueError) as e:
            raise _usage(str(e)) from None
    quiet = bool(getattr(args, "quiet", False))
    progress = not args.no_progress and not quiet and bool(run_conf.get("progress", True))
    fit_progress.set_enabled(progress)
    memory = bool(args.memory or run_conf.get("memory", False)) and not args.no_memory
    seed = args.seed if args.seed is not None else int(run_conf.get("seed", 0))
    degenerate = "warn" if (args.allow_degenerate or run_conf.get("allow_degenerate")) else "error"
    cache_dir = _sibling(out, ".cache")
    try:
        ev = Evaluator(ds, protocols, seed=seed, progress=progress, memory=memory,
                       confidence=float(run_conf.get("confidence", 0.95)),
                       n_resamples=int(run_conf.get("n_resamples", 1000)), degenerate=degenerate,
                       cache_dir=cache_dir, resume=args.resume)
        for name, model in models:
            ev.add(model, name)
    except (TypeError, ValueError) as e:
        raise _usage(str(e)) from None
    sample_user = args.sample_user if args.sample_user is not None else run_conf.get("sample_user")
    if sample_user is not None and inter is not None and inter.user_map.raw.dtype.kind in "iu":
        sample_user = _parse_value(str(sample_user))
    for p in protocols:  # split problems (e.g. rating CV on implicit data) are usage errors
        try:
            ev.prepare(p)
        except DegenerateEvaluation:
            raise
        except (TypeError, ValueError, KeyError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise _usage(f"{p.label}: {msg}{_protocol_advice(p, str(msg))}") from None
    for name, model in models:  # every model must be evaluated by at least one protocol
        if not any(p.applicable(model) for p in protocols):
            caps = ", ".join(sorted(getattr(model, "capabilities", ()))) or "none"
            raise _usage(f"model {name} ({type(model).__name__}, capabilities: {caps}) is evaluated "
                         f"by none of the protocols of this bake-off "
                         f"({', '.join(p.name for p in protocols)}); "
                         + ("a session model needs session data and --protocol session"
                            if "session" in caps and "rating" not in caps and "ranking" not in caps
                            else "choose a protocol for its task with --protocol"))
    if sample_user is not None:
        try:
            ev.check_sample_user(sample_user)
        except (KeyError, ValueError) as e:
            raise _usage(str(e.args[0])) from None
    partial_dir = _sibling(out, ".partial")
    t0 = time.perf_counter()
    try:
        results = ev.run(sample_user=sample_user, sample_k=int(run_conf.get("sample_k", 10)))
    except KeyboardInterrupt:
        if ev.partial is not None and ev.partial.entries:
            _annotate(ev.partial, conf, time.perf_counter() - t0)
            # tables only: a stop should be quick, and the report's plots take seconds
            paths = ev.partial.save(partial_dir, formats=tuple(f for f in formats if f != "html"))
            print(f"recforge bakeoff: interrupted; what finished is in {partial_dir} "
                  f"({', '.join(p.name for p in paths.values())}); {out} was left as it was; "
                  f"finished folds are kept in {cache_dir} (--resume reuses them)",
                  file=sys.stderr)
        raise
    elapsed = time.perf_counter() - t0
    _annotate(results, conf, elapsed)
    print(results.table(), end="")
    failed = [e for e in results.entries if e.error is not None]
    if failed:
        paths = results.save(partial_dir, formats=tuple(formats))
        print(f"{len(failed)} model run(s) failed; results written to {partial_dir} "
              f"({', '.join(p.name for p in paths.values())}); {out} was left as it was; "
              f"finished folds are kept in {cache_dir} (--resume reuses them)", file=sys.stderr)
        return 1
    paths = results.save(out, formats=tuple(formats))
    for leftover in (cache_dir, partial_dir):
        shutil.rmtree(leftover, ignore_errors=True)
    print(f"bake-off ran in {elapsed:.1f}s; wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _annotate(results, conf: dict, elapsed: float) -> None:
    results.config["experiment_file"] = conf.get("_source")
    results.config["command"] = "recforge bakeoff " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bakeoff"] else None
    results.config["run_seconds"] = elapsed


def _protocol_advice(protocol, message: str) -> str:
    """What flag follows the advice of a split error (e.g. ``mode='random'``)."""
    if "mode='random'" in message or "timestamp" in message.lower():
        return " (use --mode random, or [[protocols]] mode = \"random\" in the experiment file)"
    if "n_negatives" in message:
        return " (--negatives N, or n_negatives in the experiment file)"
    return ""
