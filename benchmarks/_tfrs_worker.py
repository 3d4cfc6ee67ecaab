"""Runs the TensorFlow Recommenders (0.7.x) retrieval model for ``bench_features.py``.

Started by the python of the virtual environment that has ``tensorflow-recommenders``
installed (with ``TF_USE_LEGACY_KERAS=1``: TFRS 0.7 needs Keras 2, ``tf_keras``), never
imported by recforge::

    .bench-envs/tfrs/bin/python benchmarks/_tfrs_worker.py JOB.json

The model is the TFRS retrieval tutorial's, with features: a query tower and a candidate
tower, each concatenating one embedding per field (multi-valued fields: the mean of the
non-padding values' embeddings) into a dense layer of ``out_dim``; ``tfrs.tasks.Retrieval``
with in-batch softmax, accidental hits removed and the sampling-probability (logQ) correction
from each candidate's training frequency. Inputs are recforge's FeatureSpec codes (field-local,
0 = out of vocabulary / padding) in the ``data`` npz: ``user_<field>`` (n_users rows),
``item_<field>`` (n_items rows), ``train_users``, ``train_items``, ``item_prob``. Writes the
query vectors of every user and the candidate vectors of every item (``users``, ``items``) to
``job["out"]`` and prints one JSON object on its last stdout line: ``seconds_per_epoch`` (one
per epoch), versions.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(path: str) -> int:
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    job = json.loads(open(path).read())
    threads = int(job.get("threads", 2))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    p = job["params"]
    tf.keras.utils.set_random_seed(int(p["seed"]))
    data = np.load(job["data"])
    k, out_dim = int(p["embedding_dim"]), int(p["out_dim"])
    init = tf.keras.initializers.RandomNormal(0.0, float(p["init_std"]), seed=int(p["seed"]))

    class Tower(tf.keras.Model):
        def __init__(self, side: str, fields: list[dict]):
            super().__init__()
            self.fields = fields
            self.tables = {f["name"]: tf.constant(data[f"{side}_{f['name']}"].astype(np.int32)) for f in fields}
            self.embs = {f["name"]: tf.keras.layers.Embedding(int(f["size"]), k, embeddings_initializer=init)
                         for f in fields}
            self.dense = tf.keras.layers.Dense(out_dim)

        def call(self, rows):
            parts = []
            for f in self.fields:
                codes = tf.gather(self.tables[f["name"]], rows)
                e = self.embs[f["name"]](codes)
                if f["kind"] == "varlen":
                    mask = tf.cast(codes > 0, tf.float32)[..., None]
                    e = tf.reduce_sum(e * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
                parts.append(e)
            return self.dense(tf.concat(parts, axis=1))

    item_prob = tf.constant(data["item_prob"].astype(np.float32))

    class Retrieval(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.query = Tower("user", job["user_fields"])
            self.candidate = Tower("item", job["item_fields"])
            self.task = tfrs.tasks.Retrieval(remove_accidental_hits=True)

        def compute_loss(self, features, training=False):
            u, i = features["user"], features["item"]
            return self.task(self.query(u), self.candidate(i),
                             candidate_sampling_probability=tf.gather(item_prob, i), candidate_ids=i,
                             compute_metrics=False)

    model = Retrieval()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=float(p["learning_rate"])))
    train = tf.data.Dataset.from_tensor_slices({"user": data["train_users"].astype(np.int32),
                                                "item": data["train_items"].astype(np.int32)})
    train = train.shuffle(len(data["train_users"]), seed=int(p["seed"]), reshuffle_each_iteration=True)
    seconds: list[float] = []

    class Timer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.t0)

    model.fit(train.batch(int(p["batch_size"])), epochs=int(p["n_epochs"]), verbose=0, callbacks=[Timer()])
    n_users = len(data[f"user_{job['user_fields'][0]['name']}"])
    n_items = len(data[f"item_{job['item_fields'][0]['name']}"])
    users = model.query(tf.range(n_users)).numpy()
    items = model.candidate(tf.range(n_items)).numpy()
    np.savez(job["out"], users=users.astype(np.float32), items=items.astype(np.float32))
    print(json.dumps({"seconds_per_epoch": seconds, "tensorflow_version": tf.__version__,
                      "tfrs_version": tfrs.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
