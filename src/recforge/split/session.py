"""The session split of the GRU4Rec papers (Hidasi et al., ICLR 2016; CIKM 2018).

The rule follows the official GRU4Rec preprocessing of RSC15 (``examples/rsc15/preprocess.py``
in the GRU4Rec repository):

1. sessions with fewer than ``min_length`` events are removed;
2. ``t_max`` is the latest event time; a session whose **last** event is at or after
   ``t_max - days * 86400`` is a test session, every other session is a training session
   (papers describe this as "sessions of the last day"; the code tests each session's maximum
   time, which is what is done here);
3. test events on items that never occur in the training part are removed;
4. test sessions left with fewer than ``min_length`` events are removed.

With ``validation_days`` the same four steps are applied once more to the training part, giving
``train_tr`` (to fit while tuning) and ``validation`` (to tune on). Unlike the official script
(which filters items with fewer than 5 events before splitting), no item-support filter is
applied here: that is a property of a dataset's preparation, not of the split.
"""

from __future__ import annotations

import numpy as np

from ..data.errors import DropReport
from ..data.idmap import IdMap
from ..data.sessions import SessionEvents
from ._result import SplitResult, describe
from .registry import splitter

SECONDS_PER_DAY = 86400.0


@splitter("sessions")
def session_split(sessions: SessionEvents, test_days: float = 1.0, min_length: int = 2,
                  validation_days: float | None = None) -> SplitResult:
    """Split session logs by time as the GRU4Rec papers do (see the module docstring).

    Parameters
    ----------
    sessions : SessionEvents
        All sessions (timestamps in seconds).
    test_days : float
        Sessions ending within the last ``test_days`` days of the log are test sessions.
    min_length : int
        Shortest session kept (applied before splitting and again to the test part after
        unseen items are removed).
    validation_days : float, optional
        If given, the training part is split again the same way into ``train_tr`` and
        ``validation``.

    Returns
    -------
    SplitResult
        ``train`` (the full training part, ``train_full`` in GRU4Rec's files) uses an item index
        over the items occurring in it; ``test`` is re-mapped onto that index, so a model fitted
        on ``train`` scores test items with the same inner indices. With ``validation_days``,
        ``parts["train_tr"]`` is the reduced training part and ``validation`` uses its item
        index. ``report`` counts sessions / events / items per part and everything dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> from recforge.data import SessionEvents
    >>> df = pd.DataFrame({"session": [1, 1, 2, 2, 3, 3], "item": [10, 11, 10, 11, 11, 12],
    ...                    "timestamp": [0, 60, 100, 160, 86400 * 3, 86400 * 3 + 60]})
    >>> parts = session_split(SessionEvents.from_dataframe(df), test_days=1)
    >>> parts.test.n_sessions, parts.test.n_events  # item 12 is unseen in train
    (0, 0)
    """
    if not isinstance(sessions, SessionEvents):
        raise TypeError(f"session_split splits SessionEvents, got {type(sessions).__name__}")
    test_days = float(test_days)
    if not test_days > 0:
        raise ValueError(f"test_days must be positive, got {test_days}")
    if validation_days is not None and not float(validation_days) > 0:
        raise ValueError(f"validation_days must be positive, got {validation_days}")
    min_length = int(min_length)
    if min_length < 1:
        raise ValueError("min_length must be at least 1")
    dropped = DropReport()
    short = sessions.lengths < min_length
    dropped.add("sessions shorter than min_length (before splitting)", int(short.sum()))
    dropped.add("events of sessions shorter than min_length (before splitting)",
                int(sessions.lengths[short].sum()))
    data = sessions.select(np.flatnonzero(~short)) if short.any() else sessions

    train, test, cutoff = _split_once(data, test_days, min_length, dropped, "test")
    report = {"train": describe(train), "test": describe(test), "test_cutoff_time": cutoff}
    parts = {}
    validation = None
    if validation_days is not None:
        train_tr, validation, vcut = _split_once(train, float(validation_days), min_length, dropped,
                                                 "validation")
        parts["train_tr"] = train_tr
        report["train_tr"] = describe(train_tr)
        report["validation"] = describe(validation)
        report["validation_cutoff_time"] = vcut
    report["dropped"] = dict(dropped.counts)
    config = {"split": "session", "test_days": test_days, "min_length": min_length,
              "validation_days": None if validation_days is None else float(validation_days),
              "seed": None}
    return SplitResult(train=train, test=test, validation=validation, report=report, config=config,
                       parts=parts)


def _split_once(data: SessionEvents, days: float, min_length: int, dropped: DropReport,
                side: str) -> tuple[SessionEvents, SessionEvents, float]:
    """Steps 2-4 of the module docstring: (train, held-out part, cutoff time)."""
    lengths = data.lengths
    nonempty = lengths > 0
    end_times = np.full(data.n_sessions, -np.inf)
    # events are time-ordered within a session, so the last event is the session's maximum
    end_times[nonempty] = data.timestamps[data.offsets[1:][nonempty] - 1]
    t_max = float(data.timestamps.max()) if data.n_events else 0.0
    cutoff = t_max - days * SECONDS_PER_DAY
    held = nonempty & (end_times >= cutoff)
    train = _restrict(data, ~held & nonempty, None)
    held_out = _restrict(data, held, train.item_map)
    n_unseen = int(held_out.drops.counts.get("unseen", 0))
    dropped.add(f"{side} events on items not in the training part", n_unseen)
    keep = held_out.lengths >= min_length
    dropped.add(f"{side} sessions shorter than min_length after removing unseen items",
                int((~keep).sum()))
    dropped.add(f"{side} events of sessions shorter than min_length after removing unseen items",
                int(held_out.lengths[~keep].sum()))
    held_out = held_out.select(np.flatnonzero(keep))
    held_out.drops = DropReport()
    held_out.drops.add(f"{side} events on items not in the training part", n_unseen)
    return train, held_out, cutoff


def _restrict(data: SessionEvents, session_mask: np.ndarray, item_map: IdMap | None) -> SessionEvents:
    """The sessions in ``session_mask``, with items re-indexed.

    ``item_map=None`` builds a new item index over the items occurring in the selected sessions
    (keeping their relative order in ``data.item_map``); otherwise events on items not in
    ``item_map`` are removed (their number is left in ``drops.counts["unseen"]``) and the rest
    re-mapped onto it. Sessions left empty are kept here (their removal is counted by the caller).
    """
    part = data.select(np.flatnonzero(session_mask))
    if item_map is None:
        # bincount, not np.unique: linear time and already sorted
        used = np.flatnonzero(np.bincount(part.items, minlength=data.n_items))
        new_map = IdMap(data.item_map.raw[used])
        lookup = np.full(data.n_items, -1, dtype=np.int64)
        lookup[used] = np.arange(used.size)
        return SessionEvents(lookup[part.items], part.timestamps, part.offsets,
                             session_map=part.session_map, item_map=new_map, users=part.users,
                             name=data.name)
    codes = item_map.to_inner(data.item_map.raw, missing="mask")[part.items]
    keep = codes >= 0
    sess = part.session_of_event
    new_lengths = np.bincount(sess[keep], minlength=part.n_sessions)
    offsets = np.zeros(part.n_sessions + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=offsets[1:])
    out = SessionEvents(codes[keep], part.timestamps[keep], offsets, session_map=part.session_map,
                        item_map=item_map, users=part.users, name=data.name)
    out.drops.add("unseen", int((~keep).sum()))
    return out
