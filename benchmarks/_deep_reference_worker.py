"""Runs one RecBole (1.2.x) job for ``bench_deep.py``; never imported by recforge.

Started by the python of the virtual environment that has RecBole installed::

    .bench-envs/recbole/bin/python benchmarks/_deep_reference_worker.py JOB.json

The job (written by ``_deep_common.ReferenceRunner``) names the model (``MultVAE``,
``MultDAE``, ``CDAE``, ``NeuMF``; RecBole's ``MultiVAE`` / ``MultiDAE`` for the first two), its
RecBole hyperparameters, the epochs, seed, thread count and the atomic files of one split
(``<data_path>/<dataset>/<dataset>.{train,valid,test}.inter``, ``benchmark_filename``; tokens
are recforge inner ids). RecBole trains for exactly ``epochs`` epochs: its validation is never
run (``eval_step`` beyond the last epoch), so the ``valid`` file — a copy of the test part,
which RecBole requires — is never read during training. Afterwards every user with a test item
is scored over the whole catalogue with the model's ``full_sort_predict`` (or ``predict`` on
every item, as RecBole's own full-sort evaluation does), training items are masked, and the
top-k lists go back as recforge inner ids in ``job["out"]`` (``ids``, users x k). The last
stdout line is JSON: ``epoch_seconds`` (RecBole's ``_train_epoch`` timed per call),
``fit_seconds``, ``version``, ``config`` (the hyperparameters RecBole used).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings

import numpy as np

RECBOLE_NAMES = {"MultVAE": "MultiVAE", "MultDAE": "MultiDAE", "CDAE": "CDAE", "NeuMF": "NeuMF"}
#: models RecBole trains on user rows (no negative sampling in its data loader)
NON_SAMPLING = {"MultiVAE", "MultiDAE", "CDAE"}


def main(path: str) -> int:
    job = json.loads(open(path).read())
    if job.get("library", "recbole") != "recbole":
        raise SystemExit(f"this worker runs RecBole only, not {job['library']!r}")
    import torch

    torch.set_num_threads(int(job["threads"]))
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.utils import get_model, get_trainer, init_seed

    model_name = RECBOLE_NAMES[job["algo"]]
    epochs = int(job["epochs"])
    config_dict = {
        "data_path": job["data_path"], "dataset": job["dataset"],
        "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id"]},
        "epochs": epochs, "eval_step": epochs + 1, "stopping_step": epochs + 1,
        "seed": int(job["seed"]), "reproducibility": True,
        "use_gpu": job.get("device", "cpu") != "cpu", "device": job.get("device", "cpu"),
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "metrics": ["NDCG"], "topk": [10], "valid_metric": "NDCG@10",
        "show_progress": False, "save_dataset": False, "save_dataloaders": False,
        "checkpoint_dir": job["data_path"] + "/saved", "worker": 0, "log_wandb": False,
        "state": "ERROR",
    }
    if model_name in NON_SAMPLING:
        config_dict["train_neg_sample_args"] = None
    config_dict.update(job["params"])
    config = Config(model=model_name, dataset=job["dataset"], config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    logging.disable(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epoch_seconds: list[float] = []
    inner_train_epoch = trainer._train_epoch

    def timed_train_epoch(*a, **kw):
        t = time.perf_counter()
        out = inner_train_epoch(*a, **kw)
        epoch_seconds.append(time.perf_counter() - t)
        return out

    trainer._train_epoch = timed_train_epoch
    t0 = time.perf_counter()
    trainer.fit(train_data, valid_data=None, saved=False, show_progress=False, verbose=False)
    fit_seconds = time.perf_counter() - t0

    # score every user with a test item over the whole catalogue, in recforge's ids
    q = np.load(job["query"])
    users = q["users"].astype(np.int64)
    n_items = int(q["n_items"])
    seen_indptr, seen_indices = q["seen_indptr"], q["seen_indices"]
    uid, iid = dataset.uid_field, dataset.iid_field
    rb_user = np.array([dataset.token2id(uid, str(u)) for u in users], dtype=np.int64)
    rb_item = np.array([dataset.token2id(iid, str(i)) for i in range(n_items)], dtype=np.int64)
    k = int(job["k"])
    ids = np.full((users.size, k), -1, dtype=np.int64)
    model.eval()
    device = config["device"]
    n_rb_items = dataset.item_num
    with torch.no_grad():
        for start in range(0, users.size, 256):
            rows = slice(start, start + 256)
            u = torch.from_numpy(rb_user[rows]).to(device)
            inter = Interaction({uid: u})
            try:
                scores = model.full_sort_predict(inter).view(u.numel(), -1)
            except NotImplementedError:
                rep = u.repeat_interleave(n_rb_items)
                items = torch.arange(n_rb_items, device=device).repeat(u.numel())
                scores = model.predict(Interaction({uid: rep, iid: items})).view(u.numel(), -1)
            ours = scores.cpu().numpy()[:, rb_item].astype(np.float64)
            for r, user in enumerate(users[rows]):
                ours[r, seen_indices[seen_indptr[user]:seen_indptr[user + 1]]] = -np.inf
            top = np.argsort(-ours, axis=1, kind="stable")[:, :k]
            ids[rows] = top
    np.savez(job["out"], ids=ids)
    used = {key: config[key] for key in job["params"]}
    used.update({"epochs": epochs, "train_batch_size": config["train_batch_size"],
                 "learning_rate": config["learning_rate"], "weight_decay": config["weight_decay"]})
    print(json.dumps({"epoch_seconds": epoch_seconds, "fit_seconds": fit_seconds,
                      "version": recbole.__version__, "config": used}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
