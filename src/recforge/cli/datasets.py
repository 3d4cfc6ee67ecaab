"""``recforge datasets list | download | info``.

``info`` accepts a catalog name (looked up in ``--data-dir``, then the download cache), a
directory in a known format, or one CSV / TSV / Parquet file (columns ``user,item,rating[,
timestamp]`` by default; others mapped with ``--user`` / ``--item`` / ``--rating`` /
``--timestamp``). The helpers :func:`add_input_arguments` and :func:`load_input` are shared
with the other subcommands that read data (``recforge split``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

from ..data import catalog
from ..data import download as dl
from ..data.dataset import Dataset
from ..data.interactions import DUPLICATE_POLICIES
from ..data.readers import SYNTHETIC, detect_format, load, read_path

_TABLE_FLAGS = ("user", "item", "rating", "timestamp", "session", "sep", "encoding", "kind")


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments naming a data source and how to read it."""
    p.add_argument("source", help="catalog name (see `recforge datasets list`), 'synthetic', "
                                  "a directory in a known format, or a CSV/TSV/Parquet file")
    p.add_argument("--data-dir", help="folder holding data sets under their catalog names")
    p.add_argument("--cache-dir", help="download cache (default: $RECFORGE_DATA or the user "
                                       "cache directory)")
    p.add_argument("--download", action="store_true",
                   help="download a known data set that is not cached yet")
    g = p.add_argument_group("single-file input (CSV / TSV / Parquet)")
    g.add_argument("--user", help="user id column (default: user)")
    g.add_argument("--item", help="item id column (default: item)")
    g.add_argument("--rating", help="rating column (default: rating; 'none' for implicit data)")
    g.add_argument("--timestamp", help="time column (default: timestamp; unix s or ISO 8601)")
    g.add_argument("--session", help="session id column: read the file as a session log")
    g.add_argument("--sep", help="field separator (default: from the extension; 'tab' for tab)")
    g.add_argument("--no-header", dest="header", action="store_false",
                   help="the file has no header line (columns are user,item[,rating[,timestamp]])")
    g.add_argument("--encoding", help="text encoding (default utf-8; 'auto' falls back to latin-1)")
    g.add_argument("--kind", choices=["explicit", "implicit"], help="kind of feedback")
    r = p.add_argument_group("reading rules")
    r.add_argument("--rating-scale", nargs=2, type=float, metavar=("LO", "HI"),
                   help="declared rating scale; ratings outside it are errors")
    r.add_argument("--duplicates", choices=DUPLICATE_POLICIES,
                   help="merge rule for repeated (user, item) pairs (default: last)")
    r.add_argument("--skip-bad-rows", action="store_true",
                   help="drop malformed rows and report how many (default: stop at the first)")


def load_input(args: argparse.Namespace) -> Dataset:
    """Load the data source described by the arguments of :func:`add_input_arguments`."""
    from .main import UsageError

    src = args.source
    common = {"on_error": "skip" if args.skip_bad_rows else None,
              "duplicates": args.duplicates,
              "rating_scale": tuple(args.rating_scale) if args.rating_scale else None}
    common = {k: v for k, v in common.items() if v is not None}
    table = {k: getattr(args, k) for k in _TABLE_FLAGS if getattr(args, k) is not None}
    if "rating" in table and table["rating"].lower() == "none":
        table["rating"] = None
    if not args.header:
        table["header"] = False
    if src in SYNTHETIC:
        if table or common:
            raise UsageError("synthetic data take no reading options")
        return load(src)
    p = Path(src)
    try:
        if p.is_file():
            fmt = detect_format(p)
            if fmt != "table" and table:
                raise UsageError(f"{src} is read as {fmt}; column options apply to single "
                                 "CSV/TSV/Parquet files only")
            if not args.header and p.suffix.lower() in (".parquet", ".pq"):
                raise UsageError("--no-header does not apply to Parquet")
            return read_path(p, format=fmt, **table, **common)
        if table:
            raise UsageError("column options apply to single CSV/TSV/Parquet files only")
        return load(src, data_dir=args.data_dir, download=args.download,
                    cache_dir=args.cache_dir, **common)
    except TypeError as e:  # an option the chosen reader does not take
        raise UsageError(str(e)) from None


# ---------------------------------------------------------------------------------- list
def _cmd_list(args: argparse.Namespace) -> int:
    from ..data.errors import DataError

    cache = dl.cache_dir(args.cache_dir)
    have = dl.cached(args.cache_dir)
    data_dir = Path(args.data_dir).expanduser() if args.data_dir else None
    if data_dir is not None and not data_dir.is_dir():
        raise DataError("directory not found", path=str(data_dir))
    rows = []
    for info in catalog.CATALOG.values():
        # the same order as `datasets info` and load(): the data dir first, then the cache
        local = data_dir / info.name if data_dir is not None else None
        if local is not None and local.exists():
            status, path = "in data dir", str(local)
        elif info.name in have:
            status, path = "cached", str(cache / info.name)
        else:
            status, path = ("manual download" if info.manual else "downloadable"), None
        rows.append({"name": info.name, "status": status, "kind": info.kind,
                     "format": info.format, "description": info.description,
                     "url": info.url, "homepage": info.homepage, "path": path})
    for name, manifest in have.items():
        if name not in catalog.CATALOG:
            rows.append({"name": name, "status": "cached", "kind": None, "format": None,
                         "description": f"downloaded from {manifest.get('url')}",
                         "url": manifest.get("url"), "homepage": None, "path": str(cache / name)})
    for name in SYNTHETIC:
        rows.append({"name": name, "status": "generated", "kind": None, "format": "synthetic",
                     "description": "seeded synthetic data (offline)", "url": None,
                     "homepage": None, "path": None})
    if args.json:
        print(json.dumps({"cache_dir": str(cache),
                          "data_dir": str(data_dir) if data_dir is not None else None,
                          "datasets": rows}, indent=1))
        return 0
    width = max(len(r["name"]) for r in rows)
    if data_dir is not None:
        print(f"data dir: {data_dir}")
    print(f"cache: {cache}")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['status']:<15}  {r['description']}")
    return 0


# ---------------------------------------------------------------------------------- download
def _cmd_download(args: argparse.Namespace) -> int:
    path = dl.download(args.name, cache_dir=args.cache_dir, url=args.url, sha256=args.sha256,
                       force=args.force, timeout=args.timeout)
    print(path)
    return 0


# ---------------------------------------------------------------------------------- info
def _date(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_summary(summary: dict) -> str:
    """A readable multi-line rendering of :meth:`Dataset.summary`."""
    out = [f"name:     {summary['name']}"]
    if summary.get("source"):
        out.append(f"source:   {summary['source']}")
    inter = summary.get("interactions")
    if inter:
        out.append(f"kind:     {inter['kind']}")
        out.append(f"interactions: {inter['interactions']:,}  users: {inter['users']:,}  "
                   f"items: {inter['items']:,}  density: {inter['density']:.4%}")
        if inter.get("rating_scale"):
            lo, hi = inter["rating_scale"]
            line = f"rating scale: {lo:g} .. {hi:g}"
            if "rating_mean" in inter:
                line += f"  mean: {inter['rating_mean']:.3f}"
            if inter.get("rating_values"):
                line += f"  values: {', '.join(f'{v:g}' for v in inter['rating_values'])}"
            out.append(line)
        if inter.get("time_range"):
            a, b = inter["time_range"]
            out.append(f"time:     {_date(a)} .. {_date(b)}")
    sess = summary.get("sessions")
    if sess and "parts" not in summary:
        out.append(_session_line("sessions", sess))
    for name, part in summary.get("parts", {}).items():
        if "sessions" in part:
            out.append(_session_line(name, part))
        else:
            out.append(f"{name}: {part.get('interactions', 0):,} interactions")
    feats = summary.get("item_features")
    if feats:
        n = feats.get("items", 0)
        have = ", ".join(f"{k} {v:,}/{n:,}" for k, v in feats.items()
                         if k not in ("items", "unmatched_rows", "duplicate_rows"))
        out.append(f"item features: {have}")
        if feats.get("unmatched_rows"):
            out.append(f"  feature rows for items without interactions: {feats['unmatched_rows']:,}")
        if feats.get("duplicate_rows"):
            out.append(f"  repeated feature rows (first kept): {feats['duplicate_rows']:,}")
    uf = summary.get("user_features")
    if uf:
        out.append(f"user features: {uf['users']:,} users ({', '.join(uf['columns'])})")
    dropped = summary.get("dropped")
    if dropped and dropped["counts"]:
        out.append("dropped / merged:")
        for reason, n in dropped["counts"].items():
            ex = dropped["examples"].get(reason)
            out.append(f"  {n:,} {reason}" + (f" (e.g. lines {', '.join(map(str, ex))})" if ex else ""))
    else:
        out.append("dropped / merged: nothing")
    if dropped and dropped.get("notes"):
        out.append("kept but changed:")
        out.extend(f"  {n:,} {what}" for what, n in dropped["notes"].items())
    return "\n".join(out)


def _session_line(name: str, s: dict) -> str:
    line = (f"{name}: {s['sessions']:,} sessions, {s['events']:,} events, {s['items']:,} items, "
            f"length {s['session_length']['min']}..{s['session_length']['max']} "
            f"(mean {s['session_length']['mean']:.2f})")
    if s.get("time_range"):
        line += f", {_date(s['time_range'][0])} .. {_date(s['time_range'][1])}"
    return line


def _cmd_info(args: argparse.Namespace) -> int:
    ds = load_input(args)
    summary = ds.summary()
    if args.json:
        json.dump(summary, sys.stdout, indent=1, default=str)
        print()
    else:
        print(format_summary(summary))
    return 0


# ---------------------------------------------------------------------------------- parser
def add_parser(subparsers) -> None:
    """Add ``datasets`` and its subcommands."""
    p = subparsers.add_parser("datasets", help="list, download and inspect data sets",
                              description="List, download and inspect data sets.")
    p.set_defaults(group_parser=p)
    sub = p.add_subparsers(dest="datasets_command", metavar="SUBCOMMAND")

    lp = sub.add_parser("list", help="known and cached data sets")
    lp.add_argument("--data-dir", help="folder holding data sets under their catalog names "
                                       "(listed as 'in data dir', as `info` would read them)")
    lp.add_argument("--cache-dir", help="download cache (default: $RECFORGE_DATA or the user "
                                        "cache directory)")
    lp.add_argument("--json", action="store_true", help="machine-readable output")
    lp.set_defaults(func=_cmd_list)

    dp = sub.add_parser("download", help="download a known data set into the cache",
                        description="Download a data set from its official URL into the cache "
                                    "(checked, extracted atomically; a no-op when cached).")
    dp.add_argument("name", help="catalog name (see `recforge datasets list`)")
    dp.add_argument("--cache-dir", help="download cache (default: $RECFORGE_DATA or the user "
                                        "cache directory)")
    dp.add_argument("--url", help="download from this URL instead (a mirror)")
    dp.add_argument("--sha256", help="expected SHA-256 of the archive")
    dp.add_argument("--force", action="store_true", help="download again even if cached")
    dp.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    dp.set_defaults(func=_cmd_download)

    ip = sub.add_parser("info", help="load a data set and print its counts",
                        description="Load a data set (name, directory or file) and print its "
                                    "counts, rating scale and what was dropped.")
    add_input_arguments(ip)
    ip.add_argument("--json", action="store_true", help="machine-readable output")
    ip.set_defaults(func=_cmd_info)
