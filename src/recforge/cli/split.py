"""``recforge split``: split a data set and write the parts as files.

Interaction data are written one row per interaction (``user,item,rating[,timestamp]``, with
``weight`` instead of ``rating`` for implicit data), session data one row per event
(``session,item,timestamp``), so that every written part reads back with ``recforge datasets
info``. The format follows the file extension (``.csv``, ``.tsv``, ``.parquet``). A JSON
report holds the split's configuration (seed included), the counts of every part and what was
dropped.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..data.interactions import Interactions
from ..data.sessions import SessionEvents
from .datasets import add_input_arguments, load_input

METHODS = ("holdout", "kfold", "leave-one-out", "temporal", "temporal-user", "session")


def write_part(part: Interactions | SessionEvents, path: Path) -> int:
    """Write one part to ``path`` (format by extension); return the number of rows."""
    if isinstance(part, SessionEvents):
        df = part.to_dataframe()
    else:
        df = part.to_dataframe(raw_ids=True)
        if not part.is_explicit:
            df = df.rename(columns={"rating": "weight"})
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix in (".parquet", ".pq"):
        df.to_parquet(tmp, index=False)
    elif suffix in (".csv", ".tsv", ".txt"):
        df.to_csv(tmp, index=False, sep="\t" if suffix != ".csv" else ",")
    else:
        from .main import UsageError
        raise UsageError(f"unknown output format {path.suffix!r} (use .csv, .tsv or .parquet)")
    tmp.replace(path)  # a reader never sees a half-written part
    return len(df)


def _run_split(args: argparse.Namespace, ds):
    from .. import split as S
    from .main import UsageError

    m = args.method
    if m == "session":
        if ds.sessions is None:
            raise UsageError(f"{ds.name} has no sessions; the session split needs session data")
        return S.session_split(ds.sessions, test_days=args.test_days,
                               validation_days=args.validation_days)
    data = ds.interactions
    if data is None:
        raise UsageError(f"{ds.name} has no user-item interactions; use --method session")
    if m == "holdout":
        return S.holdout(data, test_ratio=args.test_ratio, seed=args.seed)
    if m == "kfold":
        return S.kfold(data, n_folds=args.n_folds, seed=args.seed)
    if m == "leave-one-out":
        return S.leave_one_out(data, mode=args.mode, seed=args.seed)
    if m == "temporal":
        if args.cutoff_time is not None:
            return S.temporal_global(data, cutoff_time=args.cutoff_time)
        return S.temporal_global(data, test_ratio=args.test_ratio)
    return S.temporal_per_user(data, test_ratio=args.test_ratio, seed=args.seed)


def _paths(args: argparse.Namespace) -> dict[str, Path]:
    from .main import UsageError

    ext = "." + args.format
    out = Path(args.out) if args.out else None
    paths = {}
    for part in ("train", "test", "validation"):
        given = getattr(args, part)
        if given:
            paths[part] = Path(given)
        elif out is not None:
            paths[part] = out / f"{part}{ext}"
    if "train" not in paths or "test" not in paths:
        raise UsageError("give --out DIR, or both --train and --test paths")
    paths["report"] = Path(args.report) if args.report else (
        (out or paths["train"].parent) / "split_report.json")
    return paths


def _fold_path(path: Path, fold: int) -> Path:
    return path.with_name(f"{path.stem}-fold{fold}{path.suffix}")


def _cmd_split(args: argparse.Namespace) -> int:
    paths = _paths(args)
    ds = load_input(args)
    try:
        result = _run_split(args, ds)
    except ValueError as e:  # parameters the split rejects (e.g. a ratio outside (0, 1))
        from .main import UsageError
        raise UsageError(str(e)) from None
    folds = result if isinstance(result, list) else [result]
    reports = []
    for k, res in enumerate(folds, start=1):
        written = {}
        for part in ("train", "test", "validation"):
            obj = getattr(res, part)
            if obj is None:
                continue
            if part not in paths:
                paths[part] = paths["train"].with_name("validation" + paths["train"].suffix)
            target = _fold_path(paths[part], k) if len(folds) > 1 else paths[part]
            written[part] = {"path": str(target), "rows": write_part(obj, target)}
        for extra, obj in res.parts.items():  # e.g. the session split's train_tr
            base = paths["train"].with_name(f"{extra}{paths['train'].suffix}")
            target = _fold_path(base, k) if len(folds) > 1 else base
            written[extra] = {"path": str(target), "rows": write_part(obj, target)}
        reports.append({"config": res.config, "report": res.report, "files": written})
    doc = {"source": ds.source or args.source, "dataset": ds.name,
           "read_drops": ds.drops.to_dict() if ds.drops else {},
           "splits": reports if len(folds) > 1 else reports[0]}
    paths["report"].parent.mkdir(parents=True, exist_ok=True)
    paths["report"].write_text(json.dumps(doc, indent=1, default=_json_default), encoding="utf-8")
    for rep in reports:
        print(", ".join(f"{part}: {f['rows']:,} rows -> {f['path']}" for part, f in rep["files"].items()))
    print(f"report: {paths['report']}")
    return 0


def _json_default(o):
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (pd.Timestamp,)):
        return o.isoformat()
    return str(o)


def add_parser(subparsers) -> None:
    """Add ``split``."""
    p = subparsers.add_parser(
        "split", help="split a data set into train/test files",
        description="Split a data set and write train / test (and validation) files with a "
                    "JSON report. Parts keep raw ids; their format follows the extension.")
    add_input_arguments(p)
    s = p.add_argument_group("split")
    s.add_argument("--method", choices=METHODS, default="holdout",
                   help="holdout (random), kfold, leave-one-out, temporal (global cutoff), "
                        "temporal-user (latest per user), session (last days of a session log)")
    s.add_argument("--test-ratio", type=float, default=0.2, help="test share (default 0.2)")
    s.add_argument("--n-folds", type=int, default=5, help="folds for kfold (default 5)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--mode", choices=["latest", "random"], default="latest",
                   help="leave-one-out: hold out the latest or a random interaction")
    s.add_argument("--cutoff-time", type=float,
                   help="temporal: unix time from which interactions are test")
    s.add_argument("--test-days", type=float, default=1.0,
                   help="session: sessions of the last N days are test (default 1)")
    s.add_argument("--validation-days", type=float,
                   help="session: also split the training part into train_tr / validation")
    o = p.add_argument_group("output")
    o.add_argument("--out", help="output directory (train.csv, test.csv, split_report.json)")
    o.add_argument("--format", choices=["csv", "tsv", "parquet"], default="csv",
                   help="file format with --out (default csv)")
    o.add_argument("--train", help="train file path (format by extension)")
    o.add_argument("--test", help="test file path")
    o.add_argument("--validation", help="validation file path")
    o.add_argument("--report", help="report path (default: split_report.json beside the parts)")
    p.set_defaults(func=_cmd_split)
