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

The steps themselves (:func:`~recforge.data.sessions.drop_short_sessions`,
:func:`~recforge.data.sessions.split_by_end_time`) live with :class:`SessionEvents` in the data
layer, so that a data source that ships this split (the synthetic session generator) makes it
without importing this package; this module is the splitter built on them.
"""

from __future__ import annotations

from ..data.errors import DropReport
from ..data.sessions import SessionEvents, drop_short_sessions, split_by_end_time
from ._result import SplitResult, describe
from .registry import splitter


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
    data = drop_short_sessions(sessions, min_length, dropped)
    train, test, cutoff = split_by_end_time(data, test_days, min_length, dropped, "test")
    report = {"train": describe(train), "test": describe(test), "test_cutoff_time": cutoff}
    parts = {}
    validation = None
    if validation_days is not None:
        train_tr, validation, vcut = split_by_end_time(train, float(validation_days), min_length,
                                                       dropped, "validation")
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
