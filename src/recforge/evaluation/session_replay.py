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

This module drives the model through its streaming interface (``init_state`` once, then
:func:`advance_slots` per step), so a change in how session models are called is made here.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..data.sessions import SessionEvents
from ..metrics.session import _check_k, mrr_at_k, rank_of_target, recall_at_k, tie_rule
from ..topk import topk_rows

logger = logging.getLogger(__name__)


def advance_slots(model, state, items: np.ndarray, reset: np.ndarray) -> np.ndarray:
    """The replay's one model call: feed one event per slot, get every item's score per slot."""
    return np.asarray(model.advance(state, items, reset))


def evaluate_next_item(model, test_sessions: SessionEvents, ks=(1, 5, 10, 20),
                       ties: str = "pessimistic", batch_size: int = 512) -> dict:
    """Next-click evaluation of a fitted session model on ``test_sessions``.

    Session-parallel: ``batch_size`` slots each walk through one test session at a time through
    the model's streaming interface (``model.init_state(n_slots)`` once, then
    ``model.advance(state, items, reset)`` once per step, ``reset`` marking a slot that starts a
    new session); a freed slot takes the next session. Slots have independent state, so the
    order in which sessions are assigned does not change any result; sessions are taken
    longest first so the last steps are not spent on a few stragglers. Sessions with fewer than
    two events have nothing to predict and are counted in ``"sessions_skipped"``.

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
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    model._check_fitted()
    n_items = int(model.n_items_)
    if test_sessions.n_items != n_items or (test_sessions.item_map is not model.item_map_
                                            and test_sessions.item_map != model.item_map_):
        raise ValueError("test sessions use a different item index than the model was trained on; "
                         "build them with item_map=<training part>.item_map")
    started = time.perf_counter()
    lengths = test_sessions.lengths
    offsets = test_sessions.offsets
    items = test_sessions.items
    eligible = np.flatnonzero(lengths >= 2)
    n_skipped = int(test_sessions.n_sessions - eligible.size)
    if not eligible.size:
        raise ValueError("no test session has two or more events: nothing to evaluate")
    queue = eligible[np.argsort(-lengths[eligible], kind="stable")]

    k_top = min(ks[-1], n_items)
    popularity = np.asarray(model.item_popularity_, dtype=np.float64)
    popularity = popularity / popularity.max() if popularity.max() > 0 else popularity
    recommended = {k: np.zeros(n_items, dtype=bool) for k in ks}
    popularity_sum = dict.fromkeys(ks, 0.0)
    rank_by_event = np.full(items.size, np.nan)

    n_slots = int(min(batch_size, queue.size))
    state = model.init_state(n_slots)
    slot_session = queue[:n_slots].astype(np.int64)
    next_in_queue = n_slots
    slot_pos = np.zeros(n_slots, dtype=np.int64)
    reset = np.ones(n_slots, dtype=bool)
    feed = np.zeros(n_slots, dtype=np.int32)
    n_steps = 0
    while True:
        active = slot_session >= 0
        if not active.any():
            break
        act = np.flatnonzero(active)
        event = offsets[slot_session[act]] + slot_pos[act]
        feed[:] = 0
        feed[act] = items[event]
        # idle slots (queue exhausted) are fed item 0 as a fresh one-event session; ignored
        scores = advance_slots(model, state, feed, reset | ~active)[act]
        if np.isnan(scores).any():
            raise ValueError(f"{type(model).__name__} returned NaN scores")
        targets = items[event + 1]
        rank_by_event[event + 1] = rank_of_target(scores, targets, ties=ties)
        top, top_scores = topk_rows(scores, k_top)
        for k in ks:
            cols = top[:, :k]
            valid = cols >= 0
            recommended[k][cols[valid]] = True
            n_valid = valid.sum(axis=1)
            pop = np.where(valid, popularity[np.where(valid, cols, 0)], 0.0).sum(axis=1)
            popularity_sum[k] += float(np.sum(pop / np.maximum(n_valid, 1)))
        n_steps += 1
        # move on; a slot whose next event is its session's last is done (the last has no target)
        slot_pos[act] += 1
        reset[:] = False
        done = act[slot_pos[act] >= lengths[slot_session[act]] - 1]
        n_new = int(min(done.size, queue.size - next_in_queue))
        refill, retire = done[:n_new], done[n_new:]
        slot_session[refill] = queue[next_in_queue:next_in_queue + n_new]
        slot_pos[refill] = 0
        reset[refill] = True
        next_in_queue += n_new
        slot_session[retire] = -1

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
        "n_sessions": int(eligible.size),
        "sessions_skipped": n_skipped,
        "ties": ties,
        "seconds": time.perf_counter() - started,
        "ranks": ranks,
        "session_index": test_sessions.session_of_event[ranked],
        "position": position[ranked],
    })
    logger.info("%s: next-click evaluation on %d events of %d sessions in %d steps (%.1fs)",
                type(model).__name__, ranks.size, eligible.size, n_steps, out["seconds"])
    return out
