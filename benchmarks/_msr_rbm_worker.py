"""Runs the Microsoft Recommenders RBM (``recommenders`` 1.2.x, TensorFlow) on one split for
``_deep_rbm_reference.py``; never imported by recforge.

Started by the python of the virtual environment that has ``recommenders`` and TensorFlow::

    .bench-envs/msrrbm/bin/python benchmarks/_msr_rbm_worker.py JOB.json

The job names an ``.npz`` with the dense users x items rating matrices ``train`` and ``test``
(0 = unrated; recforge inner ids), the model's constructor arguments and the output path. The
model is fitted on ``train``; then ``recommend_k_items`` is called twice, with the *training*
matrix as the visible input and with the *test* matrix (what the library's quick-start notebook
does); training items are masked both times (the model's own ``seen_mask``). Top-k lists come
back as ``ids_train_input`` / ``ids_test_input`` (users x k, ``-1`` padding). The last stdout
line is JSON with ``fit_seconds`` and ``version``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise ids of the ``k`` largest positive entries (the library returns a matrix that is
    zero outside each row's top-k), ``-1`` where a row has fewer."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    return np.where(top > 0, order, -1)


def main(path: str) -> int:
    job = json.loads(open(path).read())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import recommenders
    import tensorflow as tf
    from recommenders.models.rbm.rbm import RBM

    tf.config.threading.set_intra_op_parallelism_threads(int(job.get("threads", 1)))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    data = np.load(job["data"])
    xtr, xtst = data["train"].astype(np.float64), data["test"].astype(np.float64)
    k = int(job.get("k", 10))
    possible = np.setdiff1d(np.unique(xtr), np.array([0]))
    model = RBM(possible_ratings=possible, visible_units=xtr.shape[1], seed=int(job["seed"]),
                **job["params"])
    t0 = time.perf_counter()
    model.fit(xtr)
    fit_seconds = time.perf_counter() - t0
    out = {}
    for name, x in (("train_input", xtr), ("test_input", xtst)):
        out[f"ids_{name}"] = _topk(np.asarray(model.recommend_k_items(x, top_k=k)), k)
    np.savez(job["out"], **out)
    print(json.dumps({"fit_seconds": fit_seconds, "version": recommenders.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
