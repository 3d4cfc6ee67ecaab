"""Next-click benchmark of the session models, side by side with the official GRU4Rec.

Prints one JSON object per line and per model::

    {"model": "gru4rec-xe", "dataset": "rsc15-100k", "impl": "recforge", "recall@20": ...,
     "mrr@20": ..., "recall@10": ..., "mrr@10": ..., "train_seconds": ...,
     "events_per_second": ...}

for ``gru4rec-xe``, ``gru4rec-bprmax``, ``item-knn``, ``v-sknn``, ``s-pop`` and ``sasrec``.
With ``--official PATH`` (a checkout of the official PyTorch GRU4Rec, run by the Python of a
separate environment, ``--official-python``) the two GRU4Rec settings are also trained and
evaluated by the official code on the same files, one run after the other (never concurrently),
and for each a line with ``"impl": "official"`` and a line with ``"impl": "ratio"`` follow:
relative differences of the metrics and the throughput ratio (recforge / official).

Protocol (Hidasi et al. 2016; Hidasi & Czapp 2023): train on ``train_full``, rank the next item
of every test event against all items, ties counted against the target ("conservative" in the
official code). ``events_per_second`` is training targets (events that have a previous event in
their session) times epochs, divided by the whole ``fit`` time, for both implementations.
Both run with the same number of torch threads (``--threads``).

Usage::

    python benchmarks/bench_sessions.py [--dataset rsc15-100k|synthetic]
        [--official .official/GRU4Rec_PyTorch_Official --official-python .official/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The reference hyperparameters of the official code's paper (Hidasi & Czapp 2023) for RSC15.
GRU4REC_SETTINGS = {
    "gru4rec-xe": dict(loss="cross-entropy", layers=[100], batch_size=32, dropout_p_embed=0.0,
                       dropout_p_hidden=0.4, learning_rate=0.2, momentum=0.2, n_sample=2048,
                       sample_alpha=0.5, bpreg=0.0, logq=1.0, elu_param=0.0,
                       constrained_embedding=True, embedding=0),
    "gru4rec-bprmax": dict(loss="bpr-max", layers=[224], batch_size=80, dropout_p_embed=0.5,
                           dropout_p_hidden=0.05, learning_rate=0.05, momentum=0.4, n_sample=2048,
                           sample_alpha=0.4, bpreg=1.95, logq=0.0, elu_param=0.5,
                           constrained_embedding=True, embedding=0),
}

BASELINES = {  # benchmark name -> (registered class, constructor arguments)
    "item-knn": ("ItemKNNSession", {}),
    "v-sknn": ("VSKNN", {}),
    "s-pop": ("SPop", {}),
    "sasrec": ("SASRec", {"random_state": 0}),
}


def shared_data() -> Path:
    env = os.environ.get("RECFORGE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def load(dataset: str, seed: int):
    """(train, test) SessionEvents and the two files in the GRU4Rec format (train, test)."""
    if dataset == "rsc15-100k":
        from recforge.data.readers import read_gru4rec_sessions

        folder = shared_data() / "rsc15-100k"
        if not folder.exists():
            sys.exit(f"{folder} not found (set RECFORGE_SHARED_DATA)")
        ds = read_gru4rec_sessions(folder)
        files = (folder / "yoochoose-clicks-100k_train_full.txt", folder / "yoochoose-clicks-100k_test.txt")
        return ds.parts["train_full"], ds.parts["test"], files
    if dataset == "synthetic":
        from recforge.data.synthetic import generate_sessions

        ds = generate_sessions(seed=seed)
        return ds.parts["train"], ds.parts["test"], None
    sys.exit(f"unknown dataset {dataset!r}")


def write_gru4rec_files(train, test, folder: Path) -> tuple[Path, Path]:
    """The parts as tab-separated SessionId / ItemId / Time files (the official code's input)."""
    paths = []
    for name, part in (("train", train), ("test", test)):
        df = part.to_dataframe().rename(columns={"session": "SessionId", "item": "ItemId",
                                                 "timestamp": "Time"})
        p = folder / f"{name}.txt"
        df.to_csv(p, sep="\t", index=False)
        paths.append(p)
    return paths[0], paths[1]


def n_targets(part) -> int:
    lengths = part.lengths
    return int((lengths[lengths >= 2] - 1).sum())


def evaluate(model, test) -> dict:
    from recforge.evaluation.session_replay import evaluate_next_item

    res = evaluate_next_item(model, test, ks=(10, 20), ties="pessimistic")
    return {k: round(float(res[k]), 6) for k in ("recall@20", "mrr@20", "recall@10", "mrr@10")}


def run_ours(name: str, params: dict, train, test, epochs: int, seed: int) -> dict:
    from recforge.models.session.gru4rec import GRU4Rec

    model = GRU4Rec(**params, n_epochs=epochs, random_state=seed)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    return {"model": name, **evaluate(model, test), "train_seconds": round(seconds, 3),
            "events_per_second": round(n_targets(train) * epochs / seconds, 1),
            "final_loss": round(model.history_["train_loss"][-1], 6) if model.history_["train_loss"] else None}


def run_official(name: str, params: dict, files, code: Path, python: str, epochs: int,
                 threads: int) -> dict:
    """Trains and evaluates with the official ``run.py`` in a subprocess; parses its output."""
    keys = ("loss", "layers", "batch_size", "dropout_p_embed", "dropout_p_hidden", "learning_rate",
            "momentum", "n_sample", "sample_alpha", "bpreg", "logq", "elu_param",
            "constrained_embedding", "embedding")
    ps = ",".join(f"{k}={'/'.join(map(str, params[k])) if k == 'layers' else params[k]}" for k in keys)
    ps += f",n_epochs={epochs}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [python, str(code / "run.py"), str(files[0]), "-t", str(files[1]), "-m", "10", "20",
           "-e", "conservative", "-d", "cpu", "-ps", ps]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"official run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    text = out.stdout
    seconds = float(re.search(r"Total training time: ([0-9.]+)s", text).group(1))
    metrics = {}
    for k, rec, mrr in re.findall(r"Recall@(\d+): ([0-9.]+) MRR@\d+: ([0-9.]+)", text):
        metrics[f"recall@{k}"] = float(rec)
        metrics[f"mrr@{k}"] = float(mrr)
    losses = re.findall(r"loss: ([0-9.]+)", text)
    return {"model": name, **{k: metrics[k] for k in ("recall@20", "mrr@20", "recall@10", "mrr@10")},
            "train_seconds": seconds, "final_loss": float(losses[-1]) if losses else None}


def run_baseline(name: str, cls_name: str, kwargs: dict, train, test, threads: int) -> dict | None:
    from recforge.models.base import get_model_class

    try:
        cls = get_model_class(cls_name)
    except KeyError:
        return None
    if "n_threads" in cls._param_names():
        kwargs = {**kwargs, "n_threads": threads}
    model = cls(**kwargs)
    started = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - started
    return {"model": name, **evaluate(model, test), "train_seconds": round(seconds, 3),
            "events_per_second": round(train.n_events / seconds, 1)}


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="rsc15-100k", choices=("rsc15-100k", "synthetic"))
    ap.add_argument("--official", type=Path, default=None,
                    help="checkout of hidasib/GRU4Rec_PyTorch_Official (run side by side)")
    ap.add_argument("--official-python", default=None,
                    help="Python of the official code's environment (numpy<2, pandas<2.2); "
                         "default: ../venv/bin/python beside the checkout, else this one")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, for both implementations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="all",
                    help="comma-separated subset of: " + ", ".join([*GRU4REC_SETTINGS, *BASELINES]))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    wanted = set(args.models.split(",")) if args.models != "all" else None
    train, test, files = load(args.dataset, args.seed)
    python = args.official_python
    if args.official is not None and python is None:
        cand = args.official.resolve().parent / "venv" / "bin" / "python"
        python = str(cand) if cand.exists() else sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        if args.official is not None and files is None:
            files = write_gru4rec_files(train, test, Path(tmp))
        for name, params in GRU4REC_SETTINGS.items():
            if wanted and name not in wanted:
                continue
            ours = {**run_ours(name, params, train, test, args.epochs, args.seed),
                    "dataset": args.dataset, "impl": "recforge", "threads": args.threads}
            emit(ours)
            if args.official is None:
                continue
            off = run_official(name, params, files, args.official, python, args.epochs, args.threads)
            off.update(dataset=args.dataset, impl="official", threads=args.threads,
                       events_per_second=round(n_targets(train) * args.epochs / off["train_seconds"], 1))
            emit(off)
            ratio = {"model": name, "dataset": args.dataset, "impl": "ratio"}
            for k in ("recall@20", "mrr@20", "recall@10", "mrr@10"):
                ratio[f"{k}_rel_diff"] = round(ours[k] / off[k] - 1.0, 5)
            ratio["throughput_ratio"] = round(ours["events_per_second"] / off["events_per_second"], 3)
            ratio["within_2pct"] = bool(abs(ratio["recall@20_rel_diff"]) <= 0.02
                                        and abs(ratio["mrr@20_rel_diff"]) <= 0.02)
            emit(ratio)
        for name, (cls_name, kwargs) in BASELINES.items():
            if wanted and name not in wanted:
                continue
            line = run_baseline(name, cls_name, kwargs, train, test, args.threads)
            if line is None:
                emit({"model": name, "dataset": args.dataset, "skipped": f"{cls_name} not available"})
                continue
            emit({**line, "dataset": args.dataset, "impl": "recforge", "threads": args.threads})


if __name__ == "__main__":
    main()
