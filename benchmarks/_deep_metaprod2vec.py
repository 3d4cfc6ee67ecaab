"""bench_deep section ``metaprod2vec``: meta-prod2vec (Vasile et al. 2016) against prod2vec on
ml-latest-small with its genres, on the similar items of rarely seen items.

Protocol (``rare_hr@10``), per seed:

* 20 % of the users are held out at random; both models train on the other users'
  time-ordered ratings (every rating an interaction), prod2vec as
  :class:`~recforge.models.item2vec.Item2Vec` with ``window=5``, meta-prod2vec as
  :class:`~recforge.models.meta_prod2vec.MetaProd2Vec` with the same hyperparameters plus the
  movies' genres;
* held-out co-occurrences: in each held-out user's time-ordered ratings, every pair of items at
  most 5 positions apart, both directions, deduplicated over users; the query item must be
  *rare* in training (seen 1 to 10 times), the other item seen at least once;
* ``rare_hr@10`` = the share of those pairs whose other item is among the query item's 10 most
  similar items (cosine of the item vectors, the item itself excluded). ``all_hr@10`` is the
  same over every query item seen in training, ``rare_pairs`` / ``rare_items`` the counts.

The metadata weight :math:`\\lambda` is chosen by ``rare_hr@10`` on a validation split of the
training users of seed 0 (20 % of them held out the same way); mean of 3 seeds.
Run alone: ``python benchmarks/_deep_metaprod2vec.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _deep_common import emit, note, r4, seeds_of  # noqa: E402

DATASET = "ml-latest-small"
WINDOW = 5
RARE_MAX = 10
K = 10


def load_data(data_dir: Path):
    from recforge.data import load

    path = Path(data_dir) / DATASET
    if not path.exists():
        note(f"no {DATASET} at {path}")
        return None
    return load(str(path))


def user_split(inter, seed: int, share: float = 0.2):
    """(train, held-out) Interactions: a random ``share`` of the users held out."""
    rng = np.random.default_rng(seed)
    held = rng.random(inter.n_users) < share
    mask = held[inter.users]
    return inter.subset(~mask), inter.subset(mask)


def heldout_pairs(held, train_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique (query, other) item pairs at most ``WINDOW`` apart in the held-out users'
    time-ordered sequences, both directions; the other item seen in training."""
    from recforge.models.item2vec import sequences_with_values

    items, offsets, _ = sequences_with_values(held)
    user = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    a_all, b_all = [], []
    for lag in range(1, WINDOW + 1):
        same = user[lag:] == user[:-lag]
        a, b = items[:-lag][same], items[lag:][same]
        a_all += [a, b]
        b_all += [b, a]
    a, b = np.concatenate(a_all), np.concatenate(b_all)
    keep = (a != b) & (train_counts[b] > 0) & (train_counts[a] > 0)
    pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def hit_rates(model, train, held) -> dict:
    counts = np.bincount(train.items, minlength=train.n_items)
    qa, qb = heldout_pairs(held, counts)
    queries = np.unique(qa)
    top = model.similar_items(train.item_map.to_raw(queries), k=K).inner
    pos = np.searchsorted(queries, qa)
    hit = (top[pos] == qb[:, None]).any(axis=1)
    rare = (counts[qa] >= 1) & (counts[qa] <= RARE_MAX)
    return {"rare_hr@10": float(hit[rare].mean()) if rare.any() else None,
            "all_hr@10": float(hit.mean()) if hit.size else None,
            "rare_pairs": int(rare.sum()), "rare_items": int(np.unique(qa[rare]).size)}


def _params(quick: bool) -> dict:
    return {"vector_size": 64, "window": WINDOW, "negative": 5, "epochs": 2 if quick else 10,
            "alpha": 0.025, "sample": 0.0}


def _fit(algo: str, params: dict, train, features, seed: int):
    from recforge.models.item2vec import Item2Vec
    from recforge.models.meta_prod2vec import MetaProd2Vec

    if algo == "Prod2Vec":
        return Item2Vec(**params, random_state=seed).fit(train)
    return MetaProd2Vec(**params, random_state=seed).fit(train, item_features=features)


def rows(args):
    ds = load_data(args.data_dir)
    if ds is None:
        return
    inter, features = ds.interactions, ds.item_features
    base = _params(getattr(args, "quick", False))
    # lambda on a validation split of seed 0's training users
    train0, _ = user_split(inter, 0)
    fit_part, val_part = user_split(train0, 10_000)
    tried = []
    grid = (1.0,) if getattr(args, "quick", False) else (0.25, 1.0)
    if getattr(args, "meta_weight", None) is not None:  # chosen before: skip the search
        grid = ()
        tried = [{"meta_weight": float(args.meta_weight), "val_rare_hr@10": None}]
    for lam in grid:
        model = _fit("MetaProd2Vec", {**base, "meta_weight": lam}, fit_part, features, 0)
        tried.append({"meta_weight": lam, "val_rare_hr@10": r4(hit_rates(model, fit_part, val_part)["rare_hr@10"])})
    best_lam = max(tried, key=lambda t: t["val_rare_hr@10"] or 0.0)["meta_weight"]
    note(f"MetaProd2Vec validation: {tried}")
    per_algo: dict[str, list[dict]] = {"Prod2Vec": [], "MetaProd2Vec": []}
    for seed in seeds_of(args):
        train, held = user_split(inter, seed)
        for algo in ("Prod2Vec", "MetaProd2Vec"):
            params = dict(base) if algo == "Prod2Vec" else {**base, "meta_weight": best_lam}
            t0 = time.perf_counter()
            model = _fit(algo, params, train, features, seed)
            secs = time.perf_counter() - t0
            res = hit_rates(model, train, held)
            row = {"algo": algo, "dataset": DATASET, "seed": seed,
                   "rare_hr@10": r4(res["rare_hr@10"]), "all_hr@10": r4(res["all_hr@10"]),
                   "rare_pairs": res["rare_pairs"], "rare_items": res["rare_items"],
                   "fit_seconds": round(secs, 1), "params": params}
            if algo == "MetaProd2Vec" and seed == seeds_of(args)[0]:
                row["validation"] = tried
            per_algo[algo].append(row)
            yield row
    for algo, rs in per_algo.items():
        yield {"algo": algo, "dataset": DATASET, "seed": "mean",
               "rare_hr@10": r4(np.mean([r["rare_hr@10"] for r in rs])),
               "all_hr@10": r4(np.mean([r["all_hr@10"] for r in rs])),
               "seeds": [r["seed"] for r in rs], "params": rs[0]["params"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="meta-prod2vec vs prod2vec (bench_deep section metaprod2vec)")
    ap.add_argument("--data-dir", type=Path,
                    default=Path(os.environ.get("RECFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data")))
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--meta-weight", type=float, help="skip the validation search, use this lambda")
    args = ap.parse_args(argv)
    for row in rows(args):
        emit(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
