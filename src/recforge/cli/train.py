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

A torch model that supports data-parallel training (SASRec, ...) trains in ``--nproc N`` local
processes (gloo on CPU, NCCL for GPUs; rendezvous on 127.0.0.1), or in the processes ``torchrun``
starts (``torchrun --nproc-per-node N --no-python recforge train ...``): each process trains on
its shard of every global mini-batch and only rank 0 saves the bundle and prints the summary
(see ``docs/scaling.md``).
"""

from __future__ import annotations

import argparse
import functools
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
    nproc = int(args.nproc)
    if nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {nproc}")
    from ..scale.distributed import launched_by_torchrun

    torchrun = launched_by_torchrun()
    if torchrun and nproc > 1:
        raise UsageError("--nproc: this process was started by torchrun already (WORLD_SIZE is set); "
                         "let torchrun start the processes")
    if (torchrun or nproc > 1) and not getattr(cls, "supports_distributed", False):
        raise UsageError(f"{name} does not support distributed data-parallel training "
                         f"({getattr(cls, 'distributed_refusal', 'it is not a data-parallel torch model')}); "
                         "train it without --nproc / torchrun")
    ds = load_input(args)
    is_session = SESSION in cls.capabilities
    train = ds.sessions if is_session else ds.interactions
    if train is None:
        raise UsageError(f"{ds.name} has no {'sessions' if is_session else 'user-item interactions'} "
                         f"for {name}")
    titles = titles_from_features(ds.item_features)
    summary = {"model": name, "params": model.get_params(), "data": ds.name}
    t0 = time.perf_counter()
    if nproc > 1:
        from ..scale.distributed import fit_distributed

        result = fit_distributed(model, train, nproc, item_features=ds.item_features,
                                 save=functools.partial(_save_bundle, out=out, titles=titles))
        summary.update(fit_seconds=round(time.perf_counter() - t0, 3), nproc=nproc,
                       train_fit_seconds=round(result["fit_seconds"], 3), out=str(Path(out)))
        print(json.dumps(summary, default=str))
        return 0
    ctx = None
    if torchrun:
        from ..scale.distributed import init_from_env

        ctx = init_from_env()
    try:
        try:
            model.fit(train, item_features=ds.item_features)
        except ValueError as e:
            raise UsageError(f"{name}: {e}") from None
        seconds = time.perf_counter() - t0
        if ctx is None or ctx.is_main:  # in a process group only rank 0 saves and reports
            path = save_bundle(model, out, titles=titles)
            if ctx is not None:
                summary["nproc"] = ctx.world_size
            print(json.dumps({**summary, "fit_seconds": round(seconds, 3), "out": str(path)}, default=str))
    finally:
        if ctx is not None:
            from ..scale.distributed import shutdown

            shutdown()
    return 0


def _save_bundle(model, *, out: str, titles) -> None:
    """Rank 0's save of a data-parallel fit (module level: the spawned processes pickle it)."""
    from ..serving.bundle import save_bundle

    save_bundle(model, out, titles=titles)


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
    m.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train data-parallel in N local processes (torch models that support it, "
                        "e.g. SASRec; gloo on CPU, NCCL on GPUs, 127.0.0.1); default 1")
    p.set_defaults(func=_cmd_train)
