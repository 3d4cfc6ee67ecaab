"""Section ``msr75`` of ``bench_deep.py``: Mult-VAE, Mult-DAE and CDAE on the Microsoft
Recommenders ML-100K protocol (``_deep_common``), beside RecBole's implementations.

For each model:

1. **tuning** (seed 0's split): every candidate of ``GRIDS`` is fitted on the validation split
   carved from the training part, with early stopping on validation NDCG@10 (``patience``);
   the candidate with the best validation NDCG@10 wins, and its best epoch becomes ``epochs``;
2. **test** (seeds 0, 1, 2; the seed sets the split and the model): recforge is refitted on the
   whole training part for exactly ``epochs`` epochs (no validation) and scored; RecBole gets
   the same split, the same epochs and the matched hyperparameters (``recbole_params``) and is
   scored by the same functions on its top-10 lists;
3. a ``"seed": "mean"`` row per (algo, impl).

Both sides run ``--threads`` torch threads; seconds per epoch are training seconds only
(recforge: ``history_["seconds"]``; RecBole: its ``_train_epoch`` timed per call).
"""

from __future__ import annotations

import time

import _deep_common as C
import numpy as np

ALGOS = ("MultVAE", "MultDAE", "CDAE")
MAX_EPOCHS = 200
PATIENCE = 20

#: Validation candidates (recforge names). Mult-VAE's KL schedule is in updates: with 943
#: users, batch 500 takes 2 updates an epoch and batch 100 takes 10.
GRIDS: dict[str, list[dict]] = {
    "MultVAE": [
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 500, "learning_rate": 1e-3,
         "anneal_cap": 0.2, "total_anneal_steps": 100},
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 100, "learning_rate": 1e-3,
         "anneal_cap": 0.2, "total_anneal_steps": 2000},
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 500, "learning_rate": 1e-3,
         "anneal_cap": 0.5, "total_anneal_steps": 200},
        # RecBole's noise scale (its MultiVAE draws epsilon with standard deviation 0.01)
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 500, "learning_rate": 1e-3,
         "anneal_cap": 0.2, "total_anneal_steps": 100, "epsilon_std": 0.01},
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 500, "learning_rate": 1e-3,
         "anneal_cap": 0.5, "total_anneal_steps": 200, "epsilon_std": 0.01},
    ],
    "MultDAE": [
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 500, "learning_rate": 1e-3,
         "l2": 2e-5},
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 100, "learning_rate": 1e-3,
         "l2": 2e-5},
        {"hidden_dims": [600, 200], "dropout": 0.5, "batch_size": 500, "learning_rate": 1e-3,
         "l2": 0.0},
    ],
    "CDAE": [
        {"hidden": 200, "corruption": 0.5, "activation": "relu", "loss": "log", "negatives": None,
         "l2": 1e-4, "batch_size": 100, "learning_rate": 1e-3},
        {"hidden": 50, "corruption": 0.5, "activation": "relu", "loss": "log", "negatives": None,
         "l2": 1e-4, "batch_size": 100, "learning_rate": 1e-3},
        {"hidden": 200, "corruption": 0.5, "activation": "relu", "loss": "log", "negatives": 5,
         "l2": 1e-4, "batch_size": 100, "learning_rate": 1e-3},
    ],
}
#: What the validation search chose (bench run of 2026-12-02, seed 0's split), used by
#: ``--no-tune`` (and ``--quick``, with 3 epochs).
CHOSEN: dict[str, dict] = {
    "MultVAE": {**GRIDS["MultVAE"][3], "epochs": 57},
    "MultDAE": {**GRIDS["MultDAE"][0], "epochs": 55},
    "CDAE": {**GRIDS["CDAE"][0], "epochs": 45},
}


def recbole_params(algo: str, params: dict) -> dict:
    """RecBole's names for recforge's hyperparameters (``RecBole 1.2.1`` model configs).

    * Mult-VAE: ``mlp_hidden_size`` = the hidden layers before the latent one, and
      ``latent_dimension`` = **twice** the latent size (RecBole splits that layer's output into
      mean and log-variance); RecBole's epsilon has standard deviation 0.01 whatever
      recforge's ``epsilon_std`` (not a RecBole setting);
    * Mult-DAE: ``latent_dimension`` = the latent size; ``weight_decay`` = 2 ``l2`` (Adam's
      decay adds :math:`wd \\cdot w` to the gradient, the gradient of
      :math:`\\lambda \\lVert W \\rVert^2` is :math:`2 \\lambda W`);
    * CDAE: ``embedding_size`` = ``hidden``, ``corruption_ratio``, ``hid_activation``,
      ``loss_type`` BCE (sigmoid output); RecBole's own regulariser (``reg_weight_2`` = 0.01 on
      the norms of the user and encoder weights) stays, since its loss is a sum over the batch's
      entries where recforge's is a mean over users (no exact match of the two penalties);
      RecBole's CDAE has no negative sampling (its loss covers every item).
    """
    common = {"train_batch_size": int(params["batch_size"]), "learning_rate": float(params["learning_rate"])}
    if algo in ("MultVAE", "MultDAE"):
        dims = [int(d) for d in params["hidden_dims"]]
        out = {**common, "mlp_hidden_size": dims[:-1], "dropout_prob": float(params["dropout"])}
        if algo == "MultVAE":
            out.update(latent_dimension=2 * dims[-1], anneal_cap=float(params["anneal_cap"]),
                       total_anneal_steps=int(params["total_anneal_steps"]),
                       weight_decay=2.0 * float(params.get("l2", 0.0)))
        else:
            out.update(latent_dimension=dims[-1], weight_decay=2.0 * float(params.get("l2", 0.0)))
        return out
    if algo == "CDAE":
        return {**common, "embedding_size": int(params["hidden"]),
                "corruption_ratio": float(params["corruption"]),
                "hid_activation": params["activation"], "out_activation": "sigmoid",
                "loss_type": "BCE" if params["loss"] == "log" else "MSE"}
    raise KeyError(algo)


def _model(algo: str, params: dict, *, seed: int, args, epochs: int, patience: int | None = None):
    from recforge.models import get_model_class

    return get_model_class(algo)(**params, epochs=int(epochs), patience=patience, random_state=seed,
                                 device=args.device, n_threads=args.threads)


def tune(algo: str, data, args) -> tuple[dict, int, list]:
    """(chosen params, chosen epochs, every candidate's validation result) on seed 0's split."""
    grid = GRIDS[algo]
    if args.no_tune or args.quick:
        chosen = dict(CHOSEN[algo])
        epochs = chosen.pop("epochs")
        return chosen, (3 if args.quick else epochs), []
    train, _ = C.msr_split(data, seed=0)
    fit_part, val_part = C.validation_split(train, seed=0)

    def score(params: dict) -> tuple[float, dict]:
        model = _model(algo, params, seed=0, args=args, epochs=MAX_EPOCHS, patience=PATIENCE)
        model.fit(fit_part, validation=val_part)
        best = int(model.best_epoch_)
        C.note(f"{algo} {params}: validation ndcg@10 "
               f"{max(model.history_['val_ndcg@10']):.4f} at epoch {best}")
        return float(model.history_["val_ndcg@10"][best - 1]), {"epochs": best}

    chosen, tried = C.choose(grid, score)
    epochs = int(chosen.pop("epochs"))
    return chosen, epochs, tried


def rows(args):
    data = C.load_ml100k(args.data_dir)
    if data is None:
        return
    ref = C.find_reference_python(args)
    runner = C.ReferenceRunner(*ref) if ref is not None else None
    algos = [a for a in ALGOS if not args.algos or a in args.algos]
    for algo in algos:
        t0 = time.perf_counter()
        params, epochs, tried = tune(algo, data, args)
        C.note(f"{algo}: chose {params} with {epochs} epochs ({time.perf_counter() - t0:.0f}s of tuning)")
        if tried:
            yield {"algo": algo, "dataset": C.DATASET, "validation": "holdout_per_user of seed 0's train",
                   "chosen": {**params, "epochs": epochs}, "candidates": tried}
        ours, theirs = [], []
        for seed in C.seeds_of(args):
            train, test = C.msr_split(data, seed=seed)
            model = _model(algo, params, seed=seed, args=args, epochs=epochs).fit(train)
            metrics = C.evaluate_recforge(model, train, test)
            row = C.msr_row(algo, "recforge", seed, metrics, C.seconds_per_epoch(model),
                            {**params, "epochs": epochs, "threads": args.threads})
            ours.append(row)
            yield row
            if runner is None:
                continue
            rb = recbole_params(algo, params)
            users, ids, timing = runner.run(algo, rb, train, test, seed=seed, threads=args.threads,
                                            epochs=epochs)
            _, relevant, _ = C.eval_rows(train, test)
            secs = timing.get("epoch_seconds") or []
            row = C.msr_row(algo, runner.library, seed, C.msr_metrics(ids, relevant),
                            float(np.mean(secs)) if secs else None,
                            {**timing.get("config", rb), "threads": args.threads,
                             "version": timing.get("version")})
            theirs.append(row)
            yield row
        for group in (ours, theirs):
            mean = C.mean_row(group)
            if mean is not None:
                yield mean
        if ours and theirs:
            a, b = C.mean_row(ours), C.mean_row(theirs)
            yield {"algo": algo, "dataset": C.DATASET, "compare": f"recforge vs {runner.library}",
                   "ndcg@10": a["ndcg@10"], "reference_ndcg@10": b["ndcg@10"],
                   "ndcg_within_0.01": a["ndcg@10"] >= round(b["ndcg@10"] - 0.01, 4),
                   "seconds_per_epoch": a["seconds_per_epoch"],
                   "reference_seconds_per_epoch": b["seconds_per_epoch"],
                   "not_slower": a["seconds_per_epoch"] <= b["seconds_per_epoch"],
                   "threads": args.threads}
