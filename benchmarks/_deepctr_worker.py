"""Runs one job of DeepCTR-Torch (``deepctr-torch`` 0.3.x) for ``bench_features.py``.

Started by the python of the virtual environment that has ``deepctr-torch`` installed, never
imported by recforge::

    .bench-envs/deepctr/bin/python benchmarks/_deepctr_worker.py JOB.json

The job file names the fields (``name``, ``kind`` = ``sparse`` | ``varlen``, ``size`` =
vocabulary size with index 0 for out-of-vocabulary / padding, ``width`` for ``varlen``),
``algo`` (``DeepFM``, ``WideDeep``, ``DCNv2``, ``FM``), ``params`` and the ``data`` npz
(plain arrays, no pickle: ``train_<field>``, ``test_<field>``, ``train_y``). The codes are the
ones recforge's FeatureSpec produced, field-local (row 0 of each field is index 0 here), so
both libraries see exactly the same inputs. Writes the test probabilities (``p``) to
``job["out"]`` and prints one JSON object on its last stdout line: ``seconds_per_epoch`` (a
list, one per epoch, timed around DeepCTR's own ``fit``), ``deepctr_torch_version``.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def main(path: str) -> int:
    import deepctr_torch
    import torch
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DCN, WDL, DeepFM

    job = json.loads(open(path).read())
    torch.set_num_threads(int(job.get("threads", 2)))
    p = job["params"]
    data = np.load(job["data"])
    k = int(p["embedding_dim"])
    cols = []
    for f in job["fields"]:
        sparse = SparseFeat(f["name"], vocabulary_size=int(f["size"]), embedding_dim=k)
        if f["kind"] == "varlen":
            cols.append(VarLenSparseFeat(sparse, maxlen=int(f["width"]), combiner="mean"))
        else:
            cols.append(sparse)
    common = dict(l2_reg_linear=p["l2_linear"], l2_reg_embedding=p["l2_embedding"],
                  init_std=p["init_std"], seed=int(p["seed"]), task="binary", device="cpu")
    hidden = tuple(int(h) for h in p["hidden"])
    algo = job["algo"]
    if algo == "DeepFM":
        model = DeepFM(cols, cols, dnn_hidden_units=hidden, **common)
    elif algo == "FM":  # DeepFM without its DNN: linear + FM over the field embeddings
        model = DeepFM(cols, cols, dnn_hidden_units=(), **common)
    elif algo == "WideDeep":
        model = WDL(cols, cols, dnn_hidden_units=hidden, **common)
    elif algo == "DCNv2":
        model = DCN(cols, cols, cross_num=int(p["n_cross"]), cross_parameterization="matrix",
                    dnn_hidden_units=hidden, l2_reg_cross=p["l2_cross"], **common)
    else:
        raise SystemExit(f"unknown algo {algo!r}")
    model.compile(torch.optim.Adam(model.parameters(), lr=float(p["learning_rate"])), "binary_crossentropy")

    def inputs(part: str) -> dict:
        return {f["name"]: data[f"{part}_{f['name']}"] for f in job["fields"]}

    x_train, y_train = inputs("train"), data["train_y"].astype(np.float32)
    seconds = []
    for _ in range(int(p["n_epochs"])):
        t0 = time.perf_counter()
        model.fit(x_train, y_train, batch_size=int(p["batch_size"]), epochs=1, verbose=0)
        seconds.append(time.perf_counter() - t0)
    prob = model.predict(inputs("test"), batch_size=65536).ravel()
    np.savez(job["out"], p=prob.astype(np.float64))
    print(json.dumps({"seconds_per_epoch": seconds, "deepctr_torch_version": deepctr_torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
