"""bench_deep section ``ncf``: GMF, MLP and NeuMF (He et al. 2017) against a tuned dot product.

Two protocols, each printing JSON lines:

* **ml-100k-ncf** — NCF's own protocol (He et al. 2017, section 4.1): ML-100K as implicit
  feedback, each user's latest interaction held out (:func:`recforge.split.leave_one_out`),
  the held-out item ranked among 99 items the user never interacted with (**sampled**, seed 0)
  and among every item the user has not seen in training (**full**); HR@10 and NDCG@10::

      {"algo": "NeuMF", "dataset": "ml-100k-ncf", "protocol": "sampled-99"|"full",
       "hr@10": ..., "ndcg@10": ..., "params": {...}}

  Models: GMF, MLP and NeuMF pre-trained from them (the paper's sizes: 8 factors, tower
  64-32-16-8, 4 negatives), and the dot-product model ALS (Hu et al. 2008), tuned, as Rendle,
  Krichene, Zhang & Anderson ("Neural Collaborative Filtering vs. Matrix Factorization
  Revisited", RecSys 2020) ask of a baseline. Epochs (NCF) and ALS's hyperparameters are chosen
  on a validation split carved from the training part (each user's latest training
  interaction, full-ranking NDCG@10 / HR@10), then every model is refitted on the whole
  training part. A final line says whether the dot product matches or beats NeuMF::

      {"summary": "ml-100k-ncf", "protocol": ..., "dot_product": "ALS", ...,
       "dot_product_matches_or_beats_neumf": true|false}

* **ml-100k-msr75** — the Microsoft Recommenders table's protocol (``_deep_common``): GMF, MLP
  and NeuMF rows per seed and their mean, hyperparameters and epochs chosen on a validation
  split carved from the first seed's training part; the table's NCF row is the target.

Runnable on its own: ``python benchmarks/_deep_ncf.py [--quick] [--protocols ncf msr75]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _deep_common import (  # noqa: E402
    MSR_TABLE,
    evaluate_recforge,
    load_ml100k,
    mean_row,
    msr_row,
    msr_split,
    note,
    r4,
    seconds_per_epoch,
    seeds_of,
    validation_split,
)

NCF_DATASET = "ml-100k-ncf"
#: the paper's sizes (section 4.1: 8 predictive factors, a 3-layer tower halving each time,
#: 4 negatives per positive); batch 1024 with a doubled learning rate instead of 256 keeps an
#: epoch short on a shared CPU
NCF_PARAMS = {"num_ng": 4, "batch_size": 1024, "learning_rate": 0.002}
GMF_PARAMS = {"factors": 8}
MLP_PARAMS = {"layers": [64, 32, 16, 8]}
NEUMF_PARAMS = {"factors": 8, "layers": [64, 32, 16, 8], "pretrain": True, "alpha": 0.5,
                "optimizer": "sgd", "learning_rate": 0.01}
MAX_EPOCHS = 30
PATIENCE = 3
#: NCF's own protocol validates on one held-out item per user: a noisy signal, given more
#: patience
LOO_PATIENCE = 5
#: ALS search space (the dot-product baseline), searched whole on the validation split
ALS_GRID = {"factors": [32, 64, 128], "regularization": [1.0, 10.0, 30.0, 100.0],
            "alpha": [1.0, 3.0, 10.0]}
K = 10


def _ncf_models():
    from recforge.models.neural_cf.ncf import GMF, MLP, NeuMF

    return GMF, MLP, NeuMF


def _common(args, seed: int) -> dict:
    return {**NCF_PARAMS, "random_state": seed, "device": getattr(args, "device", "cpu"),
            "n_threads": getattr(args, "threads", 1)}


# ---------------------------------------------------------------------- NCF protocol metrics
def loo_full(model, users: np.ndarray, seen: sp.csr_matrix, target: np.ndarray) -> tuple[float, float]:
    """HR@10 and NDCG@10 of the held-out item ``target[j]`` in each user's full top-10 (the
    user's training items excluded)."""
    from recforge.models.query import History

    rec = np.asarray(model.recommend_inner(users, K, history=History.from_csr(seen[users]),
                                           exclude_seen=True).inner)
    pos = np.argmax(rec == target[:, None], axis=1)
    hit = (rec == target[:, None]).any(axis=1)
    ndcg = np.where(hit, 1.0 / np.log2(pos + 2.0), 0.0)
    return float(hit.mean()), float(ndcg.mean())


def loo_sampled(model, users: np.ndarray, seen: sp.csr_matrix, candidates: np.ndarray) -> tuple[float, float]:
    """HR@10 and NDCG@10 of the held-out item (column 0 of ``candidates``) ranked among the
    sampled negatives (other columns); ties count against it (pessimistic)."""
    from recforge.models.query import History

    s = model.score_inner(users, candidates, history=History.from_csr(seen[users]))
    rank = 1 + (s[:, 1:] >= s[:, :1]).sum(axis=1)
    hit = rank <= K
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(rank + 1.0), 0.0).mean())


def _loo_parts(data, seed: int = 0):
    """(train, users, held-out items, sampled candidates): leave-one-out (latest), 99
    negatives per user drawn among the items the user never interacted with."""
    from recforge.evaluation.tasks import sample_negatives
    from recforge.split import leave_one_out

    parts = leave_one_out(data, mode="latest", seed=seed)
    test = sp.csr_matrix(parts.test.csr)
    users = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int32)
    target = test.indices[test.indptr[users]].astype(np.int64)
    seen_all = (sp.csr_matrix(parts.train.csr) + test).tocsr()
    neg = sample_negatives(seen_all, users, 99, np.random.default_rng(seed))
    return parts.train, users, target, np.column_stack([target, neg])


def _fit_with_epochs(cls, params: dict, fit_part, val_part, full_train, *, quick: bool):
    """Early-stop ``cls`` on (fit_part, val_part) to choose the epochs, then refit on
    ``full_train`` for that many epochs -> (validation model, final model, epochs)."""
    epochs = 2 if quick else MAX_EPOCHS
    probe = cls(**params, epochs=epochs, patience=LOO_PATIENCE).fit(fit_part, validation=val_part)
    best = int(probe.best_epoch_ or epochs)
    final = cls(**params, epochs=best).fit(full_train)
    return probe, final, best


def _als_tuned(fit_part, val_users, val_seen, val_target, full_train, quick: bool):
    import itertools

    from recforge.models import get_model_class

    als = get_model_class("ALS")
    grid = [dict(zip(ALS_GRID, values, strict=True)) for values in itertools.product(*ALS_GRID.values())]
    if quick:
        grid = grid[:2]
    best, best_value = None, -1.0
    for params in grid:
        model = als(**params, iterations=15, random_state=0, num_threads=1).fit(fit_part)
        hr, ndcg = loo_full(model, val_users, val_seen, val_target)
        if ndcg > best_value:
            best, best_value = params, ndcg
    final = als(**best, iterations=15, random_state=0, num_threads=1).fit(full_train)
    return final, {**best, "iterations": 15, "val_ndcg@10": r4(best_value)}


def ncf_protocol_rows(args):
    data = load_ml100k(args.data_dir, implicit=True)
    if data is None:
        return
    quick = bool(getattr(args, "quick", False))
    GMF, MLP, NeuMF = _ncf_models()
    train, users, target, candidates = _loo_parts(data)
    seen = sp.csr_matrix(train.csr)
    # the validation split: each user's latest training interaction
    from recforge.split import leave_one_out

    vparts = leave_one_out(train, mode="latest", seed=1)
    fit_part, val_part = vparts.train, vparts.test
    vtest = sp.csr_matrix(val_part.csr)
    v_users = np.flatnonzero(np.diff(vtest.indptr) > 0).astype(np.int32)
    v_target = vtest.indices[vtest.indptr[v_users]].astype(np.int64)
    v_seen = sp.csr_matrix(fit_part.csr)

    common = _common(args, 0)
    models: dict[str, tuple] = {}
    t0 = time.perf_counter()
    gmf_probe, gmf, gmf_epochs = _fit_with_epochs(GMF, {**common, **GMF_PARAMS}, fit_part, val_part, train,
                                                  quick=quick)
    models["GMF"] = (gmf, {**GMF_PARAMS, **NCF_PARAMS, "epochs": gmf_epochs})
    mlp_probe, mlp, mlp_epochs = _fit_with_epochs(MLP, {**common, **MLP_PARAMS}, fit_part, val_part, train,
                                                  quick=quick)
    models["MLP"] = (mlp, {**MLP_PARAMS, **NCF_PARAMS, "epochs": mlp_epochs})
    # NeuMF: fine-tuning epochs chosen from the validation models, then from the final ones
    neumf_params = {**common, **NEUMF_PARAMS}
    probe = NeuMF(**neumf_params, epochs=2 if quick else 10, patience=LOO_PATIENCE)
    probe.fit_pretrained(fit_part, gmf_probe, mlp_probe, validation=val_part)
    n_epochs = int(probe.best_epoch_ or 1)
    neumf = NeuMF(**neumf_params, epochs=n_epochs).fit_pretrained(train, gmf, mlp)
    models["NeuMF"] = (neumf, {**NEUMF_PARAMS, "num_ng": 4, "batch_size": NCF_PARAMS["batch_size"],
                               "epochs": n_epochs, "pretrain_epochs": [gmf_epochs, mlp_epochs]})
    note(f"ncf: NCF models fitted in {time.perf_counter() - t0:.0f}s")
    als, als_params = _als_tuned(fit_part, v_users, v_seen, v_target, train, quick)
    models["ALS"] = (als, als_params)

    results: dict[str, dict[str, tuple[float, float]]] = {}
    for algo, (model, params) in models.items():
        results[algo] = {"sampled-99": loo_sampled(model, users, seen, candidates),
                         "full": loo_full(model, users, seen, target)}
        for protocol, (hr, ndcg) in results[algo].items():
            row = {"algo": algo, "dataset": NCF_DATASET, "protocol": protocol,
                   "hr@10": r4(hr), "ndcg@10": r4(ndcg), "params": params}
            if protocol == "sampled-99":
                row["sampled"] = True
            yield row
    for protocol in ("sampled-99", "full"):
        dot, neu = results["ALS"][protocol], results["NeuMF"][protocol]
        yield {"summary": NCF_DATASET, "protocol": protocol, "dot_product": "ALS",
               "dot_hr@10": r4(dot[0]), "dot_ndcg@10": r4(dot[1]),
               "neumf_hr@10": r4(neu[0]), "neumf_ndcg@10": r4(neu[1]),
               "dot_product_matches_or_beats_neumf": bool(round(dot[1], 4) >= round(neu[1], 4)
                                                          and round(dot[0], 4) >= round(neu[0], 4))}


# ---------------------------------------------------------------------- msr75
#: GMF embedding sizes searched on the validation split (GMF is the cheap part); the tower
#: is the paper's 64-32-16-8
MSR_FACTORS = [8, 16]
MSR_MAX_EPOCHS = 20
#: msr75 runs three seeds of three models: larger batches (and step) keep it within a shared
#: machine's budget
MSR_NCF_PARAMS = {"num_ng": 4, "batch_size": 4096, "learning_rate": 0.005}


def msr75_rows(args):
    data = load_ml100k(args.data_dir, implicit=True)
    if data is None:
        return
    quick = bool(getattr(args, "quick", False))
    GMF, MLP, NeuMF = _ncf_models()
    seeds = seeds_of(args)
    algos = set(getattr(args, "algos", None) or ("GMF", "MLP", "NeuMF"))
    # choose on the first seed's validation split
    train0, _ = msr_split(data, seeds[0])
    fit_part, val_part = validation_split(train0, seeds[0])
    common = {**_common(args, seeds[0]), **MSR_NCF_PARAMS}
    epochs = 2 if quick else MSR_MAX_EPOCHS
    factors = MSR_FACTORS[:1] if quick or getattr(args, "no_tune", False) else MSR_FACTORS
    tried = []
    best_f, best_val, gmf_epochs, gmf_probe = None, -1.0, None, None
    for f in factors:
        m = GMF(**common, factors=f, epochs=epochs, patience=PATIENCE).fit(fit_part, validation=val_part)
        val = max(v for v in m.history_["val_ndcg@10"] if v is not None)
        tried.append({"algo": "GMF", "factors": f, "epochs": m.best_epoch_, "val_ndcg@10": r4(val)})
        if val > best_val:
            best_f, best_val, gmf_epochs, gmf_probe = f, val, int(m.best_epoch_), m
    mlp_probe = MLP(**common, **MLP_PARAMS, epochs=epochs, patience=PATIENCE).fit(fit_part, validation=val_part)
    mlp_epochs = int(mlp_probe.best_epoch_)
    tried.append({"algo": "MLP", **MLP_PARAMS, "epochs": mlp_epochs,
                  "val_ndcg@10": r4(max(v for v in mlp_probe.history_["val_ndcg@10"] if v is not None))})
    neumf_params = {**NEUMF_PARAMS, "factors": best_f}
    probe = NeuMF(**{**common, **neumf_params}, epochs=2 if quick else 10, patience=PATIENCE)
    probe.fit_pretrained(fit_part, gmf_probe, mlp_probe, validation=val_part)
    neumf_epochs = int(probe.best_epoch_ or 1)
    tried.append({"algo": "NeuMF", "epochs": neumf_epochs,
                  "val_ndcg@10": r4(max(v for v in probe.history_["val_ndcg@10"] if v is not None))})
    note(f"ncf msr75: validation {tried}")

    runner = None
    if getattr(args, "reference", "none") not in (None, "none"):
        from _deep_common import ReferenceRunner, find_reference_python

        ref = find_reference_python(args)
        runner = ReferenceRunner(*ref) if ref is not None else None
    per_algo: dict[str, list[dict]] = {a: [] for a in ("GMF", "MLP", "NeuMF")}
    theirs: list[dict] = []
    for seed in seeds:
        train, test = msr_split(data, seed)
        common = {**_common(args, seed), **MSR_NCF_PARAMS}
        gmf = GMF(**common, factors=best_f, epochs=gmf_epochs).fit(train)
        mlp = MLP(**common, **MLP_PARAMS, epochs=mlp_epochs).fit(train)
        neumf = NeuMF(**{**common, **neumf_params}, epochs=neumf_epochs).fit_pretrained(train, gmf, mlp)
        fitted = {
            "GMF": (gmf, {"factors": best_f, **MSR_NCF_PARAMS, "epochs": gmf_epochs}),
            "MLP": (mlp, {**MLP_PARAMS, **MSR_NCF_PARAMS, "epochs": mlp_epochs}),
            "NeuMF": (neumf, {**neumf_params, "num_ng": 4, "batch_size": MSR_NCF_PARAMS["batch_size"],
                              "epochs": neumf_epochs, "pretrain_epochs": [gmf_epochs, mlp_epochs]}),
        }
        for algo, (model, params) in fitted.items():
            if algo not in algos:
                continue
            row = msr_row(algo, "recforge", seed, evaluate_recforge(model, train, test),
                          seconds_per_epoch(model), params)
            row["validation"] = tried
            per_algo[algo].append(row)
            yield row
        if runner is not None and "NeuMF" in algos:
            row = _reference_neumf(runner, args, train, test, seed, best_f)
            theirs.append(row)
            yield row
    if theirs:
        yield mean_row(theirs)
    for algo, rows in per_algo.items():
        mean = mean_row(rows)
        if mean is None:
            continue
        if algo == "NeuMF":
            target = MSR_TABLE["NCF"]
            mean["target"] = {"table_row": "NCF", "ndcg@10": target["ndcg@10"], "p@10": target["p@10"]}
            mean["reaches_target"] = bool(mean["ndcg@10"] >= round(target["ndcg@10"], 4)
                                          and mean["p@10"] >= round(target["p@10"], 4))
        yield mean


#: RecBole's NeuMF, matched where the two implementations share a meaning: the same sizes,
#: negatives, batch and learning rate (Adam); trained from scratch (RecBole pre-trains only
#: from saved files) for MSR_MAX_EPOCHS epochs, dropout 0
def _reference_neumf(runner, args, train, test, seed: int, factors: int) -> dict:
    from _deep_common import eval_rows, msr_metrics

    params = {"mf_embedding_size": factors, "mlp_embedding_size": MLP_PARAMS["layers"][0] // 2,
              "mlp_hidden_size": MLP_PARAMS["layers"][1:], "dropout_prob": 0.0, "use_pretrain": False,
              "learning_rate": MSR_NCF_PARAMS["learning_rate"],
              "train_batch_size": MSR_NCF_PARAMS["batch_size"],
              "train_neg_sample_args": {"distribution": "uniform", "sample_num": MSR_NCF_PARAMS["num_ng"],
                                        "alpha": 1.0, "dynamic": False, "candidate_num": 0}}
    _, ids, timing = runner.run("NeuMF", params, train, test, seed=seed, threads=getattr(args, "threads", 1),
                                epochs=MSR_MAX_EPOCHS)
    _, relevant, _ = eval_rows(train, test)
    secs = timing.get("epoch_seconds") or []
    return msr_row("NeuMF", runner.library, seed, msr_metrics(ids, relevant),
                   float(np.mean(secs)) if secs else None,
                   {**params, "epochs": MSR_MAX_EPOCHS, "version": timing.get("version")})


def rows(args):
    """The section's rows (``bench_deep.py --sections ncf``): NCF's own protocol, then msr75."""
    protocols = getattr(args, "ncf_protocols", None) or ("ncf", "msr75")
    if "ncf" in protocols:
        yield from ncf_protocol_rows(args)
    if "msr75" in protocols:
        yield from msr75_rows(args)


if __name__ == "__main__":
    import argparse
    import os

    from _deep_common import emit

    ap = argparse.ArgumentParser(description="NCF benchmark section (also run by bench_deep.py)")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--algos", nargs="*")
    ap.add_argument("--no-tune", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--protocols", dest="ncf_protocols", nargs="*", choices=("ncf", "msr75"))
    ap.add_argument("--reference", default="none", choices=("recbole", "none"),
                    help="also run RecBole's NeuMF on the msr75 splits (its own environment)")
    ap.add_argument("--reference-python")
    a = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, str(a.threads))
    for r in rows(a):
        emit(r)
