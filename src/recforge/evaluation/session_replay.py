"""Session replay: next-click evaluation of a fitted session model on held-out sessions.

The protocol of Hidasi et al. (2016), "Session-based recommendations with recurrent neural
networks" (ICLR), section 4, also used by Ludewig & Jannach (2018), "Evaluation of session-based
recommendation algorithms" (UMUAI): for every event of every test session after the first, the
model has seen the session's events so far and ranks the true next item against **all** items
it knows. Ranks, Recall@k and MRR@k come from :mod:`recforge.metrics.session` (tie rules
there).

Beyond accuracy, the replay reports item coverage@k (the share of the catalogue that appears in
at least one top-k list) and mean popularity@k of the recommended items, where an item's
popularity is its number of training events divided by that of the most popular training item
(so it lies in [0, 1]).

The model is driven through its streaming interface by
:func:`recforge.models.session.replay.walk_sessions` (the same walk the neural models validate
with during training); this module turns the walk into ranks and metrics.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..data.sessions import SessionEvents
from ..metrics.session import _check_k, mrr_at_k, rank_of_target, recall_at_k, tie_rule
from ..models.session.replay import check_same_items, walk_sessions
from ..topk import topk_rows

logger = logging.getLogger(__name__)


def evaluate_next_item(model, test_sessions: SessionEvents, ks=(1, 5, 10, 20),
                       ties: str = "pessimistic", batch_size: int = 512) -> dict:
    """Next-click evaluation of a fitted session model on ``test_sessions``.

    Session-parallel (:func:`recforge.models.session.replay.walk_sessions`): ``batch_size`` slots
    each walk through one test session at a time through the model's streaming interface.
    Sessions with fewer than two events have nothing to predict and are counted in
    ``"sessions_skipped"``.

    Parameters
    ----------
    model : SessionRecommender
        Fitted; its item index must be the one ``test_sessions`` uses (map the test part with
        the training part's ``item_map``).
    test_sessions : SessionEvents
    ks : sequence of int
        Cut-offs for Recall, MRR, coverage and popularity.
    ties : {"pessimistic", "optimistic", "average", "conservative", "standard", "median"}
        See :func:`recforge.metrics.session.rank_of_target` (the last three are GRU4Rec's names
        of the first three; the output records ours).
    batch_size : int
        Slots walked in parallel; memory is ``batch_size * n_items`` float32 scores.

    Returns
    -------
    dict
        ``"recall@k"``, ``"mrr@k"``, ``"coverage@k"``, ``"popularity@k"`` for each ``k``;
        ``"n_events"`` (events ranked), ``"n_sessions"`` (sessions with a ranked event),
        ``"sessions_skipped"``, ``"ties"``, ``"seconds"``; and for resampling:
        ``"ranks"`` (float64, one per ranked event, in the order of ``test_sessions``' events),
        ``"session_index"`` (the test session of each ranked event) and ``"position"`` (the
        target's 0-based position within its session, always >= 1).
    """
    ties = tie_rule(ties)
    ks = sorted({int(k) for k in ks})
    for k in ks:
        _check_k(k)
    check_same_items(model, test_sessions)
    started = time.perf_counter()
    n_items = int(model.n_items_)
    items = test_sessions.items
    k_top = min(ks[-1], n_items)
    popularity = np.asarray(model.item_popularity_, dtype=np.float64)
    popularity = popularity / popularity.max() if popularity.max() > 0 else popularity
    recommended = {k: np.zeros(n_items, dtype=bool) for k in ks}
    popularity_sum = dict.fromkeys(ks, 0.0)
    rank_by_event = np.full(items.size, np.nan)

    def record(scores: np.ndarray, targets: np.ndarray) -> None:
        rank_by_event[targets] = rank_of_target(scores, items[targets], ties=ties)
        top, _ = topk_rows(scores, k_top)
        for k in ks:
            cols = top[:, :k]
            valid = cols >= 0
            recommended[k][cols[valid]] = True
            n_valid = valid.sum(axis=1)
            pop = np.where(valid, popularity[np.where(valid, cols, 0)], 0.0).sum(axis=1)
            popularity_sum[k] += float(np.sum(pop / np.maximum(n_valid, 1)))

    walk = walk_sessions(model, test_sessions, record, batch_size)
    lengths, offsets = test_sessions.lengths, test_sessions.offsets
    position = np.arange(items.size) - np.repeat(offsets[:-1], lengths)
    ranked = position >= 1
    ranks = rank_by_event[ranked]
    if np.isnan(ranks).any():  # every event after the first is predicted exactly once
        raise RuntimeError("internal error: an event was not evaluated")
    out: dict = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranks, k)
        out[f"mrr@{k}"] = mrr_at_k(ranks, k)
    for k in ks:
        out[f"coverage@{k}"] = float(recommended[k].mean())
        out[f"popularity@{k}"] = popularity_sum[k] / ranks.size
    out.update({
        "n_events": int(ranks.size),
        "n_sessions": int(walk.eligible.size),
        "sessions_skipped": walk.n_skipped,
        "ties": ties,
        "seconds": time.perf_counter() - started,
        "ranks": ranks,
        "session_index": test_sessions.session_of_event[ranked],
        "position": position[ranked],
    })
    logger.info("%s: next-click evaluation on %d events of %d sessions in %d steps (%.1fs)",
                type(model).__name__, ranks.size, walk.eligible.size, walk.steps, out["seconds"])
    return out
