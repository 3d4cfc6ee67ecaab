"""Runs the TensorFlow Recommenders (0.7.x) retrieval, ranking and multitask models for
``bench_features.py``.

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

With ``job["task"] == "multitask"`` (the TFRS basic-ranking and multitask tutorials) the same
towers feed a rating model — ``Dense(h, relu)`` per ``rating_hidden`` entry and ``Dense(1)``
over the concatenated tower outputs — trained with ``tfrs.tasks.Ranking`` (mean squared error)
on ``train_ratings``; the loss is ``rating_weight * ranking loss + retrieval_weight *
retrieval loss`` (weights (1, 0): the ranking model alone). Its predictions for the pairs
``test_users``, ``test_items`` are written as ``pred`` beside the vectors.
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

    multitask = job.get("task", "retrieval") == "multitask"
    rating_weight = float(p.get("rating_weight", 0.0)) if multitask else 0.0
    retrieval_weight = float(p.get("retrieval_weight", 1.0)) if multitask else 1.0

    class Retrieval(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.query = Tower("user", job["user_fields"])
            self.candidate = Tower("item", job["item_fields"])
            self.task = tfrs.tasks.Retrieval(remove_accidental_hits=True)
            if multitask:
                self.rating_model = tf.keras.Sequential(
                    [tf.keras.layers.Dense(int(h), activation="relu") for h in p["rating_hidden"]]
                    + [tf.keras.layers.Dense(1)])
                self.rating_model.build((None, 2 * out_dim))  # weights exist even when its loss weight is 0
                self.rating_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError())

        def rating(self, q, v):
            return self.rating_model(tf.concat([q, v], axis=1))

        def compute_loss(self, features, training=False):
            u, i = features["user"], features["item"]
            q, v = self.query(u), self.candidate(i)
            loss = 0.0
            if retrieval_weight > 0:
                loss += retrieval_weight * self.task(
                    q, v, candidate_sampling_probability=tf.gather(item_prob, i), candidate_ids=i,
                    compute_metrics=False)
            if rating_weight > 0:
                loss += rating_weight * self.rating_task(labels=features["rating"], predictions=self.rating(q, v),
                                                         compute_metrics=False)
            return loss

    model = Retrieval()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=float(p["learning_rate"])))
    columns = {"user": data["train_users"].astype(np.int32), "item": data["train_items"].astype(np.int32)}
    if multitask:
        columns["rating"] = data["train_ratings"].astype(np.float32)[:, None]
    train = tf.data.Dataset.from_tensor_slices(columns)
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
    out = {"users": users.astype(np.float32), "items": items.astype(np.float32)}
    if multitask:
        tu, ti = data["test_users"].astype(np.int32), data["test_items"].astype(np.int32)
        pred = [model.rating(model.query(tu[s:s + 65536]), model.candidate(ti[s:s + 65536])).numpy()[:, 0]
                for s in range(0, len(tu), 65536)]
        out["pred"] = np.concatenate(pred).astype(np.float32)
    np.savez(job["out"], **out)
    print(json.dumps({"seconds_per_epoch": seconds, "tensorflow_version": tf.__version__,
                      "tfrs_version": tfrs.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
