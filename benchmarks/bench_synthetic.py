"""Speed of the synthetic generator and of the splits, printed as JSON lines.

Targets: 1M synthetic ratings in under 10 s. The splits are timed side by side with a
straightforward pandas implementation of the same rule (the way the official GRU4Rec
preprocessing is written), and the ratio reported.

    python benchmarks/bench_synthetic.py [--ratings 1000000] [--sessions 200000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from recforge.data.synthetic import generate_ratings, generate_sessions
from recforge.split import holdout, leave_one_out, session_split, temporal_per_user


def timed(fn, repeat: int = 1):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def emit(**record) -> None:
    print(json.dumps(record), flush=True)


def pandas_leave_one_out(df: pd.DataFrame) -> pd.DataFrame:
    last = df.sort_values(["user", "timestamp"]).groupby("user").tail(1)
    return last


def pandas_session_split(df: pd.DataFrame, days: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    lengths = df.groupby("session").size()
    df = df[np.isin(df.session, lengths[lengths > 1].index)]
    t_max = df.timestamp.max()
    end = df.groupby("session").timestamp.max()
    train = df[np.isin(df.session, end[end < t_max - days * 86400].index)]
    test = df[np.isin(df.session, end[end >= t_max - days * 86400].index)]
    test = test[np.isin(test.item, train.item)]
    tl = test.groupby("session").size()
    return train, test[np.isin(test.session, tl[tl >= 2].index)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=200_000)
    args = parser.parse_args()

    n_users, n_items = 6040, 3706  # MovieLens-1M sized
    sec, data = timed(lambda: generate_ratings(n_users=n_users, n_items=n_items,
                                               n_ratings=args.ratings, seed=0))
    emit(bench="generate_ratings", n_ratings=args.ratings, n_users=n_users, n_items=n_items,
         seconds=round(sec, 3), target_seconds=10.0, ratio_to_target=round(sec / 10.0, 3))
    x = data.interactions
    df = x.to_dataframe(raw_ids=False)

    sec, _ = timed(lambda: holdout(x, 0.2, seed=0), repeat=3)
    emit(bench="holdout", n=x.nnz, seconds=round(sec, 3))
    sec, _ = timed(lambda: temporal_per_user(x, 0.2), repeat=3)
    emit(bench="temporal_per_user", n=x.nnz, seconds=round(sec, 3))
    ours, res = timed(lambda: leave_one_out(x, mode="latest"), repeat=3)
    ref, ref_res = timed(lambda: pandas_leave_one_out(df), repeat=3)
    emit(bench="leave_one_out_latest", n=x.nnz, seconds=round(ours, 3), reference="pandas sort+groupby.tail",
         reference_seconds=round(ref, 3), speedup=round(ref / ours, 2),
         same_test_size=bool(res.test.nnz == len(ref_res)))

    sec, clicks = timed(lambda: generate_sessions(n_sessions=args.sessions, n_items=10_000, seed=0))
    se = clicks.sessions
    emit(bench="generate_sessions", n_sessions=args.sessions, events=se.n_events, seconds=round(sec, 3))
    sdf = se.to_dataframe()
    ours, res = timed(lambda: session_split(se, test_days=1), repeat=3)
    ref, (ref_train, ref_test) = timed(lambda: pandas_session_split(sdf), repeat=3)
    emit(bench="session_split", events=se.n_events, seconds=round(ours, 3),
         reference="pandas transcription of the official GRU4Rec rule", reference_seconds=round(ref, 3),
         speedup=round(ref / ours, 2),
         same_parts=bool(res.train.n_events == len(ref_train) and res.test.n_events == len(ref_test)))


if __name__ == "__main__":
    main()
