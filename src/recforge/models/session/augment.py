"""Sequence-prefix data augmentation for session models.

Tan, Xu & Liu (2016), "Improved recurrent neural networks for session-based recommendations"
(DLRS), section 3.1: every prefix of a training session is treated as a training sequence of its
own, so that a session :math:`[x_1, \\dots, x_n]` yields :math:`[x_1, x_2]`,
:math:`[x_1, x_2, x_3]`, ..., :math:`[x_1, \\dots, x_n]` (the input :math:`x_{1..t-1}` with the
label :math:`x_t`). Models that read a sequence left to right see the beginnings of sessions far
more often, which the paper found to help on short test sessions.
"""

from __future__ import annotations

import numpy as np

from ...data.idmap import IdMap
from ...data.sessions import SessionEvents


def prefix_index(offsets: np.ndarray, min_length: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event positions of every prefix of every session, as a flat index.

    Parameters
    ----------
    offsets : ndarray of int, shape (n_sessions + 1,)
        Session ``s`` is events ``offsets[s]:offsets[s+1]``.
    min_length : int, default 2
        Shortest prefix kept (2 = one input event and its label).

    Returns
    -------
    event_index : ndarray of int64
        Positions into the original event arrays, prefix after prefix.
    prefix_offsets : ndarray of int64, shape (n_prefixes + 1,)
    source_session : ndarray of int64, shape (n_prefixes,)
        The session each prefix was cut from; prefixes of a session are ordered by length.

    Examples
    --------
    >>> idx, off, src = prefix_index(np.array([0, 3, 4]))
    >>> idx.tolist(), off.tolist(), src.tolist()
    ([0, 1, 0, 1, 2], [0, 2, 5], [0, 0])
    """
    if min_length < 1:
        raise ValueError("min_length must be >= 1")
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    n_prefixes = np.maximum(lengths - min_length + 1, 0)
    source = np.repeat(np.arange(lengths.size, dtype=np.int64), n_prefixes)
    first_of_session = np.concatenate(([0], np.cumsum(n_prefixes)[:-1]))
    prefix_len = min_length + np.arange(source.size, dtype=np.int64) - np.repeat(first_of_session, n_prefixes)
    prefix_offsets = np.zeros(source.size + 1, dtype=np.int64)
    np.cumsum(prefix_len, out=prefix_offsets[1:])
    within = np.arange(prefix_offsets[-1], dtype=np.int64) - np.repeat(prefix_offsets[:-1], prefix_len)
    event_index = np.repeat(offsets[:-1][source], prefix_len) + within
    return event_index, prefix_offsets, source


def prefix_sequences(sessions, min_length: int = 2):
    """Every prefix (of at least ``min_length`` events) of every session (Tan et al. 2016).

    Parameters
    ----------
    sessions : SessionEvents or list of ndarray
    min_length : int, default 2

    Returns
    -------
    SessionEvents or list of ndarray
        Same kind as the input. For :class:`SessionEvents` the result shares the item map, the
        new session ids are ``0 .. n_prefixes-1`` (prefixes of one session are consecutive,
        shortest first) and each event keeps its timestamp, so :meth:`SessionEvents.order_by_start`
        still orders by the source session's start. ``len(result)`` is
        :math:`\\sum_s \\max(0, |s| - \\text{min\\_length} + 1)`.

    Examples
    --------
    >>> [p.tolist() for p in prefix_sequences([np.array([7, 8, 9])])]
    [[7, 8], [7, 8, 9]]
    """
    if isinstance(sessions, SessionEvents):
        idx, offsets, _ = prefix_index(sessions.offsets, min_length)
        return SessionEvents(sessions.items[idx], sessions.timestamps[idx], offsets,
                             session_map=IdMap(np.arange(offsets.size - 1, dtype=np.int64)),
                             item_map=sessions.item_map,
                             name=f"{sessions.name or 'sessions'}+prefixes")
    seqs = [np.asarray(s) for s in sessions]
    lengths = np.array([s.size for s in seqs], dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(seqs) if seqs else np.empty(0, dtype=np.int32)
    idx, p_off, _ = prefix_index(offsets, min_length)
    items = flat[idx]
    return [items[p_off[j]:p_off[j + 1]] for j in range(p_off.size - 1)]
