"""Session-parallel replay of held-out sessions through a model's streaming interface.

The walk behind next-click evaluation (Hidasi et al., ICLR 2016, section 4): ``batch_size``
slots each walk through one session at a time (``model.init_state(n_slots)`` once, then
``model.advance(state, items, reset)`` once per step, ``reset`` marking a slot that starts a new
session); a freed slot takes the next session. Slots have independent state, so the assignment
order changes no result; sessions are taken longest first so the last steps are not spent on a
few stragglers. It lives beside the session models because their own training loop validates
with it (models never import the evaluation layer); :mod:`recforge.evaluation.session_replay`
builds the evaluation's metrics on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...data.sessions import SessionEvents


@dataclass
class Walk:
    """What a replay covered: ``eligible`` sessions (two or more events, in test order),
    ``n_skipped`` shorter ones, and the number of ``steps`` taken."""

    eligible: np.ndarray
    n_skipped: int
    steps: int


def check_same_items(model, sessions: SessionEvents) -> None:
    """Raise unless ``sessions`` use the item index the model was trained on."""
    model._check_fitted()
    if sessions.n_items != int(model.n_items_) or (sessions.item_map is not model.item_map_
                                                   and sessions.item_map != model.item_map_):
        raise ValueError("test sessions use a different item index than the model was trained on; "
                         "build them with item_map=<training part>.item_map")


def walk_sessions(model, sessions: SessionEvents, on_step: Callable[[np.ndarray, np.ndarray], None],
                  batch_size: int = 512) -> Walk:
    """Replay every session with two or more events; after each event call
    ``on_step(scores, target_events)``: the model's scores of every item for the active slots
    (rows) and the index in ``sessions`` of the event each row must predict (the next one)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    check_same_items(model, sessions)
    lengths = sessions.lengths
    offsets = sessions.offsets
    items = sessions.items
    eligible = np.flatnonzero(lengths >= 2)
    n_skipped = int(sessions.n_sessions - eligible.size)
    if not eligible.size:
        raise ValueError("no test session has two or more events: nothing to evaluate")
    queue = eligible[np.argsort(-lengths[eligible], kind="stable")]
    n_slots = int(min(batch_size, queue.size))
    state = model.init_state(n_slots)
    slot_session = queue[:n_slots].astype(np.int64)
    next_in_queue = n_slots
    slot_pos = np.zeros(n_slots, dtype=np.int64)
    reset = np.ones(n_slots, dtype=bool)
    feed = np.zeros(n_slots, dtype=np.int32)
    steps = 0
    while True:
        active = slot_session >= 0
        if not active.any():
            break
        act = np.flatnonzero(active)
        event = offsets[slot_session[act]] + slot_pos[act]
        feed[:] = 0
        feed[act] = items[event]
        # idle slots (queue exhausted) are fed item 0 as a fresh one-event session; ignored
        scores = np.asarray(model.advance(state, feed, reset | ~active))[act]
        if np.isnan(scores).any():
            raise ValueError(f"{type(model).__name__} returned NaN scores")
        on_step(scores, event + 1)
        steps += 1
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
    return Walk(eligible, n_skipped, steps)


def next_item_ranks(model, sessions: SessionEvents, ties: str = "pessimistic",
                    batch_size: int = 512) -> np.ndarray:
    """Rank of the true next item for every event after the first of each session (float64, in
    event order), ties by ``ties`` (:func:`recforge.metrics.session.rank_of_target`)."""
    from ...metrics.session import rank_of_target

    ranks = np.full(sessions.items.size, np.nan)

    def record(scores: np.ndarray, targets: np.ndarray) -> None:
        ranks[targets] = rank_of_target(scores, sessions.items[targets], ties=ties)

    walk_sessions(model, sessions, record, batch_size)
    position = np.arange(sessions.items.size) - np.repeat(sessions.offsets[:-1], sessions.lengths)
    return ranks[position >= 1]
