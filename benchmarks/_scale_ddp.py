"""The ``ddp`` section of ``bench_scale.py``: throughput of data-parallel training, 1 and 2 processes.

Prints (or yields, from :func:`rows`) one JSON object per model and process count::

    {"name": "ddp", "processes": 1, "model": "SASRec", "events_per_second": ..., "final_loss": ...}

Models and data: SASRec on the RSC15 100K sample's ``train_full`` (sessions; events = target
positions, i.e. events with a previous event in their session, within ``max_len``) and Mult-VAE
on ML-100K as implicit feedback (events = interactions, each user row read once per epoch);
without the shared data, the synthetic session and implicit generators stand in. Each run
goes through :func:`recforge.scale.distributed.fit_distributed` (gloo, 127.0.0.1), the
1-process run too, each process with one torch thread (``--threads``), so the 2-process row
measures data parallelism on two cores rather than two threads against two processes (on a
busy machine two torch threads in one process can be several times slower than one).
``events_per_second`` = events per epoch x epochs / the summed training time of the epochs
(``history_["seconds"]``: process start-up, imports and validation excluded);
``final_loss`` = the last epoch's mean training loss (the same global batches in both runs,
so the two losses differ only by the per-process dropout / sampling noise).

Usage::

    python benchmarks/_scale_ddp.py [--models SASRec,MultVAE] [--epochs 2] [--processes 1,2]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

MODELS = ("SASRec", "MultVAE")
DEFAULT_EPOCHS = 2


DATA_DIR: Path | None = None  # bench_scale.py's --data-dir, when it passes one


def shared_data() -> Path:
    if DATA_DIR is not None:
        return Path(DATA_DIR)
    env = os.environ.get("RECFORGE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def _sasrec_case(epochs: int):
    import numpy as np

    from recforge.models.session.sasrec import SASRec

    folder = shared_data() / "rsc15-100k"
    if folder.exists():
        from recforge.data.readers import read_gru4rec_sessions

        train = read_gru4rec_sessions(folder).parts["train_full"]
    else:
        from recforge.data.synthetic import generate_sessions

        train = generate_sessions(n_sessions=10_000, seed=0).parts["train"]
    model = SASRec(hidden=64, max_len=20, num_blocks=2, dropout=0.2, batch_size=256,
                   learning_rate=1e-3, epochs=epochs, random_state=0)
    events = int(np.minimum(np.maximum(train.lengths - 1, 0), model.max_len).sum())
    return model, train, events


def _multvae_case(epochs: int):
    from recforge.models.neural_cf.autoencoders import MultVAE

    folder = shared_data() / "ml-100k"
    if folder.exists():
        from recforge.data import load

        train = load(str(folder)).interactions
    else:
        from recforge.data.synthetic import generate_implicit

        train = generate_implicit(seed=0).interactions
    model = MultVAE(hidden_dims=[600, 200], batch_size=100, epochs=epochs, total_anneal_steps=200,
                    random_state=0)
    return model, train, int(train.csr.nnz)


CASES = {"SASRec": _sasrec_case, "MultVAE": _multvae_case}


def rows(args=None):
    """Yield the ``ddp`` rows: for each model (``args.ddp_models``, default SASRec and MultVAE)
    and process count (``args.ddp_processes``, default 1 and 2), train ``args.ddp_epochs``
    epochs (default 2) with ``args.ddp_threads`` torch threads per process (default 1). ``args``
    may be any object with some of these attributes (``bench_scale.py`` passes its own; besides
    the ``ddp_`` names only ``quick``, one epoch, and ``data_dir``, the shared data, are read),
    or ``None``."""
    from recforge.scale.distributed import fit_distributed

    global DATA_DIR
    if getattr(args, "data_dir", None) is not None:
        DATA_DIR = Path(args.data_dir)

    def option(name, default):
        value = getattr(args, name, None)
        return default if value is None else value

    models = option("ddp_models", MODELS)
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    processes = option("ddp_processes", (1, 2))
    if isinstance(processes, str):
        processes = [int(p) for p in processes.split(",")]
    # bench_scale.py's --quick: one epoch
    epochs = int(option("ddp_epochs", 1 if getattr(args, "quick", False) else DEFAULT_EPOCHS))
    threads = int(option("ddp_threads", 1))
    for name in models:
        if name not in CASES:
            raise ValueError(f"unknown model {name!r} for the ddp section (known: {', '.join(CASES)})")
        model, train, events = CASES[name](epochs)
        for nproc in processes:
            result = fit_distributed(model, train, int(nproc), threads=threads)
            history = result["history"]
            seconds = float(sum(history["seconds"]))
            yield {"name": "ddp", "processes": int(nproc), "model": name,
                   "events_per_second": round(events * len(history["epoch"]) / seconds, 1),
                   "final_loss": round(float(history["train_loss"][-1]), 6)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", dest="ddp_models", default=",".join(MODELS))
    parser.add_argument("--processes", dest="ddp_processes", default="1,2")
    parser.add_argument("--epochs", dest="ddp_epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--threads", dest="ddp_threads", type=int, default=1,
                        help="torch threads per process")
    args = parser.parse_args(argv)
    for row in rows(args):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
