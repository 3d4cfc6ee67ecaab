"""``recforge train``: fit one registered model on a data set and save it for serving.

The data come as for the other subcommands (a catalog name, ``synthetic``, a directory or a
file), or from a TOML file given instead of the source::

    source = "synthetic"           # or data_dir = ..., as in [dataset] of a bake-off
    model = "ItemKNNTopN"
    out = "models/knn-v1"
    [params]
    k = 20

Flags override the file. The output directory is a serving bundle
(:func:`recforge.serving.bundle.save_bundle`): the saved model (checksummed), the training
interactions and the item titles where the data have them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .datasets import add_input_arguments, load_input

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TOML_KEYS = {"source", "data_dir", "model", "params", "out"}


def _read_toml(path: Path) -> dict:
    from .main import UsageError

    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: invalid TOML: {e}") from None
    unknown = set(conf) - _TOML_KEYS
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(_TOML_KEYS))})")
    if "params" in conf and not isinstance(conf["params"], dict):
        raise UsageError(f"{path}: [params] must be a table")
    base = path.resolve().parent
    for key in ("out", "data_dir"):
        if key in conf:
            conf[key] = str((base / conf[key]).resolve())
    if "source" in conf and (base / conf["source"]).exists():
        conf["source"] = str((base / conf["source"]).resolve())
    return conf


def _cmd_train(args: argparse.Namespace) -> int:
    from ..models import SESSION, get_model_class
    from ..serving.bundle import save_bundle, titles_from_features
    from .bakeoff import _parse_value
    from .main import UsageError

    conf: dict = {}
    if str(args.source).endswith(".toml"):
        conf = _read_toml(Path(args.source))
        if "source" not in conf:
            raise UsageError(f"{args.source}: 'source' (the data) is missing")
        args.source = conf["source"]
        if args.data_dir is None:
            args.data_dir = conf.get("data_dir")
    name = args.model or conf.get("model")
    out = args.out or conf.get("out")
    if not name or not out:
        raise UsageError("give --model NAME and --out DIR (or 'model' and 'out' in the TOML file)")
    params = dict(conf.get("params", {}))
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {item!r}: use KEY=VALUE")
        params[key] = _parse_value(value)
    try:
        cls = get_model_class(name)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    try:
        model = cls(**params).check_params()  # before the data is read
    except TypeError as e:
        raise UsageError(f"{name}: {e}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    ds = load_input(args)
    is_session = SESSION in cls.capabilities
    train = ds.sessions if is_session else ds.interactions
    if train is None:
        raise UsageError(f"{ds.name} has no {'sessions' if is_session else 'user-item interactions'} "
                         f"for {name}")
    t0 = time.perf_counter()
    try:
        model.fit(train, item_features=ds.item_features)
    except ValueError as e:
        raise UsageError(f"{name}: {e}") from None
    seconds = time.perf_counter() - t0
    path = save_bundle(model, out, titles=titles_from_features(ds.item_features))
    print(json.dumps({"model": name, "params": model.get_params(), "data": ds.name,
                      "fit_seconds": round(seconds, 3), "out": str(path)}, default=str))
    return 0


def add_parser(subparsers) -> None:
    """Add ``train``."""
    p = subparsers.add_parser(
        "train", help="fit a registered model and save it for serving",
        description="Fit one registered model on a data set (or as a TOML file says) and save "
                    "it with its training history and item titles, ready for `recforge serve`.")
    add_input_arguments(p)
    m = p.add_argument_group("model")
    m.add_argument("--model", help="registered model name, e.g. ItemKNNTopN, MarkovChain")
    m.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a hyperparameter (repeatable), e.g. --param k=20")
    m.add_argument("--out", help="output directory (the model version to serve)")
    p.set_defaults(func=_cmd_train)
