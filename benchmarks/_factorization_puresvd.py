"""PureSVD on ML-100K, leave-one-out (latest), full ranking, beside MostPopular and item-kNN.

Emits ``{"algo": "PureSVD", "dataset": "ml-100k-loo", "hr@10": ..., "mostpopular_hr@10": ...,
"itemknn_hr@10": ..., "n_factors": ..., "tried": {n_factors: hr@10, ...}, ...}``. The rank is chosen
on the leave-one-out fold itself (a small grid, reported in ``tried``); the headline figure is
the default ``n_factors=50`` unless stated otherwise in ``n_factors``.
"""

from __future__ import annotations

import time

from recforge.data import load
from recforge.evaluation import Evaluator, make_protocol
from recforge.models import get_model_class

GRID = (10, 20, 50, 100, 200)


def run(args, emit) -> None:
    path = args.data_dir / "ml-100k"
    if not path.exists():
        emit({"algo": "PureSVD", "dataset": "ml-100k-loo", "skipped": f"{path} not found"})
        return
    data = load(path)
    protocol = make_protocol("loo_topn", k=10, mode="latest", metrics=["hr"], seed=args.seed)
    ev = Evaluator(data, protocol, memory=False, progress=False)
    pure = get_model_class("PureSVD")
    for n in GRID:
        ev.add(pure(n_factors=n, random_state=args.seed), name=f"PureSVD-{n}")
    ev.add(get_model_class("MostPopular")(), name="MostPopular")
    knn = get_model_class("ItemKNNTopN")
    # item-kNN with Jaccard similarities over the 50 best-rated items; the default co-rated
    # cosine (min_support=1) rates items with one shared rater as perfectly similar and so
    # ranks obscure items first (reported beside it as itemknn_cosine_hr@10)
    ev.add(knn(k=50, sim="jaccard"), name="ItemKNNTopN")
    ev.add(knn(), name="ItemKNNTopN-cosine")
    t0 = time.perf_counter()
    res = ev.run()
    seconds = time.perf_counter() - t0
    tried = {n: round(res.value(f"PureSVD-{n}", "hr@10"), 4) for n in GRID}
    emit({"algo": "PureSVD", "dataset": "ml-100k-loo", "hr@10": tried[50],
          "mostpopular_hr@10": round(res.value("MostPopular", "hr@10"), 4),
          "itemknn_hr@10": round(res.value("ItemKNNTopN", "hr@10"), 4),
          "itemknn": "ItemKNNTopN(k=50, sim='jaccard')",
          "itemknn_cosine_hr@10": round(res.value("ItemKNNTopN-cosine", "hr@10"), 4),
          "n_factors": 50, "tried": tried, "best_n_factors": max(tried, key=tried.get),
          "seconds_all_models": round(seconds, 2)})
