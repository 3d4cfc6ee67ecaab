"""timeSVD++ and SVD++ on a global temporal split of ml-latest-small (last 20 % by time).

Emits ``{"algo": "timeSVDpp", "dataset": "ml-latest-small-temporal", "rmse": ...,
"svdpp_rmse": ..., "svdpp_from": ..., ...}``. ``rmse`` is timeSVD++ predicting each test rating
at its own timestamp (``predict_at``); ``rmse_latest_day`` is the same model through
``predict`` (every test rating placed on the user's latest training day). ``svdpp_rmse`` comes
from the registered ``SVDpp`` model when there is one (``svdpp_from: "SVDpp"``), else from
timeSVD++ with ``time_terms=False`` (``svdpp_from: "timeSVDpp(time_terms=False)"``). Test
ratings of users or items without a training rating cannot be personalised; they are counted
in ``cold_test``, and ``rmse_warm`` / ``svdpp_rmse_warm`` leave them out.
"""

from __future__ import annotations

import time

import numpy as np

from recforge.data import load
from recforge.models import get_model_class
from recforge.split import temporal_global


def _rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def run(args, emit) -> None:
    path = args.data_dir / "ml-latest-small"
    if not path.exists():
        emit({"algo": "timeSVDpp", "dataset": "ml-latest-small-temporal",
              "skipped": f"{path} not found"})
        return
    data = load(path).interactions
    split = temporal_global(data, test_ratio=0.2)
    train, test = split.train, split.test
    users = train.user_map.raw[test.users]
    items = train.item_map.raw[test.items]
    truth = test.values.astype(np.float64)
    warm = (train.user_counts[test.users] > 0) & (train.item_counts[test.items] > 0)

    t0 = time.perf_counter()
    model = get_model_class("timeSVDpp")(random_state=args.seed).fit(train)
    seconds = time.perf_counter() - t0
    at_time = model.predict_at(users, items, test.timestamps)
    latest = model.predict(users, items)

    try:
        svdpp = get_model_class("SVDpp")(random_state=args.seed)
        source = "SVDpp"
    except KeyError:
        svdpp = get_model_class("timeSVDpp")(time_terms=False, random_state=args.seed)
        source = "timeSVDpp(time_terms=False)"
    t0 = time.perf_counter()
    svdpp.fit(train)
    svdpp_seconds = time.perf_counter() - t0
    base = svdpp.predict(users, items)

    emit({"algo": "timeSVDpp", "dataset": "ml-latest-small-temporal",
          "rmse": round(_rmse(at_time, truth), 4), "svdpp_rmse": round(_rmse(base, truth), 4),
          "svdpp_from": source, "rmse_latest_day": round(_rmse(latest, truth), 4),
          "rmse_warm": round(_rmse(at_time[warm], truth[warm]), 4),
          "svdpp_rmse_warm": round(_rmse(base[warm], truth[warm]), 4),
          "test_ratings": int(truth.size), "cold_test": int((~warm).sum()),
          "cutoff_time": split.report["cutoff_time"], "seconds": round(seconds, 2),
          "svdpp_seconds": round(svdpp_seconds, 2)})
