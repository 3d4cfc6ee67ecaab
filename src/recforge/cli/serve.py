"""``recforge serve MODEL_DIR``: the HTTP service (see ``docs/serving.md``).

``MODEL_DIR`` (a directory written by ``recforge train`` or ``Recommender.save``) is
registered as a model version, checked and made live before the server starts; the models
root (``--models-root``, default: the folder holding ``MODEL_DIR``) confines later
``POST /models`` registrations. The store (``--store``, default ``recforge-store.sqlite`` in
the models root, or a ``postgresql://`` URL) keeps events and versions, shared by every worker.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _announce(args, version, model, path, store) -> None:
    print(f"serving model version {version} ({model}, {path}) on "
          f"http://{args.host}:{args.port} (docs at /docs, store {store})", flush=True)


def _cmd_serve(args: argparse.Namespace) -> int:
    from .main import UsageError

    try:
        import uvicorn

        from ..serving.ann import AnnSettings
        from ..serving.app import SETTINGS_ENV, create_app
        from ..serving.config import (
            ConfigError,
            Limits,
            Rules,
            Settings,
            read_ann,
            read_config,
            read_sections,
            read_tokens,
        )
        from ..serving.store import StoreError, open_store
        from ..serving.versions import ModelVersions, VersionError
    except ImportError as e:
        raise UsageError(f"serving needs the 'serve' extra (pip install 'recforge[serve]'): {e}") from None

    model_dir = Path(args.model_dir).resolve()
    root = Path(args.models_root).resolve() if args.models_root else model_dir.parent
    if args.store and args.store.startswith(("postgresql://", "postgres://")):
        store_spec = args.store
    else:
        store_spec = str((Path(args.store) if args.store else root / "recforge-store.sqlite")
                         .resolve())
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    try:
        limits, rules = read_config(args.config) if args.config else (Limits(), Rules())
        ann = read_ann(args.config) if args.config else AnnSettings()
        exploration, updates = read_sections(args.config) if args.config else (None, None)
        if args.index:
            ann.index = args.index
        if args.token_file:
            read_tokens(args.token_file)  # fail now, not in a worker
    except ConfigError as e:
        raise UsageError(str(e)) from None
    settings = Settings(models_root=str(root), store=store_spec,
                        token_file=str(Path(args.token_file).resolve()) if args.token_file else None,
                        limits=limits, rules=rules, ann=ann)
    if exploration is not None:
        settings.exploration, settings.updates = exploration, updates
    if args.workers == 1:
        # one process: the app registers, checks and promotes MODEL_DIR (its index built once)
        settings.model_dir = str(model_dir)
        try:
            app = create_app(settings)
        except (StoreError, VersionError) as e:
            raise UsageError(f"cannot serve {model_dir}: {e}") from None
        rec = app.state.versions.live()
        _announce(args, rec.version, rec.model.name, rec.bundle.path, settings.store)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
        return 0
    # several workers: register and promote once here, so that workers (and restarted workers)
    # follow the store; each worker loads the live version before it takes requests
    try:
        store = open_store(settings.store)
    except StoreError as e:
        raise UsageError(str(e)) from None
    try:
        versions = ModelVersions(root, store, rules, ann=ann)
        rec = versions.register(model_dir)
        versions.promote(rec.version)
    except VersionError as e:
        raise UsageError(f"cannot serve {model_dir}: {e}") from None
    finally:
        store.close()
    _announce(args, rec.version, rec.model, rec.path, settings.store)
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run("recforge.serving.app:app_from_env", factory=True, host=args.host,
                port=args.port, workers=args.workers, log_level="info")
    return 0


def _cmd_export_log(args: argparse.Namespace) -> int:
    from ..serving.store import StoreError, export_impressions, open_store
    from .main import UsageError

    if not args.store.startswith(("postgresql://", "postgres://")) and \
            not Path(args.store).is_file():
        raise UsageError(f"{args.store}: no such store file")
    try:
        store = open_store(args.store)
        n = export_impressions(store, args.out, after_id=args.after)
    except (StoreError, ValueError) as e:
        raise UsageError(str(e)) from None
    print(f"{n} shown slots written to {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Add ``serve`` and ``export-log``."""
    e = subparsers.add_parser(
        "export-log", help="export the service's log of shown lists (for offline evaluation)",
        description="Every list the service showed, one row per slot: list_id, position, item, "
                    "whether the slot was exploratory and its propensity (see docs/serving.md).")
    e.add_argument("store", help="SQLite store path or postgresql:// URL")
    e.add_argument("--out", required=True, help="output file: .jsonl or .parquet")
    e.add_argument("--after", type=int, default=0, help="only rows after this id")
    e.set_defaults(func=_cmd_export_log)
    p = subparsers.add_parser(
        "serve", help="serve a saved model over HTTP (recommendations, sessions, events)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", help="saved model directory to serve")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--store", help="SQLite store path (default: recforge-store.sqlite in the "
                                   "models root), or a postgresql://user@host:port/db URL")
    p.add_argument("--models-root", help="folder that model versions must be inside (default: "
                                         "the folder holding MODEL_DIR)")
    p.add_argument("--token-file", help="file of bearer tokens for writes, one per line "
                                        "(without it, writes are refused)")
    p.add_argument("--config", help="TOML file with [limits], [rules] (stoplist, popularity "
                                    "filter, cold start), [ann], [exploration] and [updates]")
    p.add_argument("--index", choices=("auto", "exact", "hnsw", "ivf"),
                   help="retrieval index of MODEL_DIR's version (default: [ann] index, auto)")
    p.set_defaults(func=_cmd_serve)
