"""Next-click metrics of session-based recommenders: target ranks, Recall@k and MRR@k.

The protocol of Hidasi et al. (2016), "Session-based recommendations with recurrent neural
networks" (ICLR), section 4, also used by Ludewig & Jannach (2018), "Evaluation of session-based
recommendation algorithms" (UMUAI): for every event of every test session after the first, the
model has seen the session's events so far and ranks the true next item against **all** items
it knows. From the rank of the target one gets

.. math::

    \\mathrm{Recall@}k = \\frac{1}{|E|}\\sum_{e \\in E} [r_e \\le k], \\qquad
    \\mathrm{MRR@}k = \\frac{1}{|E|}\\sum_{e \\in E} \\frac{[r_e \\le k]}{r_e}

over the set :math:`E` of evaluated events (Hidasi et al. 2016, section 4.1; with one relevant
item per event Recall@k equals HitRate@k).

Tie handling
------------
``rank = 1 + #{items scoring strictly above the target}`` plus, for the items (other than the
target) whose score equals the target's:

* ``"pessimistic"`` (default): all of them count against the target (``+ n_tied``). A model
  that gives every item the same score then ranks the target last, so constant or coarse
  scores are never rewarded by luck of tie-breaking;
* ``"optimistic"``: none of them do (``+ 0``);
* ``"average"``: half of them do (``+ n_tied / 2``), the expected rank under a random order.

The names of the official GRU4Rec evaluation code are accepted too: ``"conservative"`` is
``"pessimistic"``, ``"standard"`` is ``"optimistic"`` and ``"median"`` is ``"average"``.

These are pure functions of scores and ranks. The driver that walks a fitted model through the
test sessions is :func:`recforge.evaluation.session_replay.evaluate_next_item`.
"""

from __future__ import annotations

import numpy as np

#: Tie rules (ours).
TIES = ("pessimistic", "optimistic", "average")
#: The official GRU4Rec code's names for the same rules.
TIE_ALIASES = {"conservative": "pessimistic", "standard": "optimistic", "median": "average"}


def tie_rule(ties: str) -> str:
    """Our name of a tie rule given ours or GRU4Rec's (``'conservative'`` -> ``'pessimistic'``)."""
    rule = TIE_ALIASES.get(ties, ties)
    if rule not in TIES:
        raise ValueError(f"ties must be one of {TIES + tuple(TIE_ALIASES)}, got {ties!r}")
    return rule


def rank_of_target(scores: np.ndarray, targets: np.ndarray, ties: str = "pessimistic") -> np.ndarray:
    """Rank (1 = best) of each row's target item among all columns.

    Parameters
    ----------
    scores : ndarray, shape (n, n_items)
        Scores of every item for each event; higher is better. ``-inf`` is allowed, NaN is not.
    targets : ndarray of int, shape (n,)
        Column of the true next item in each row.
    ties : {"pessimistic", "optimistic", "average", "conservative", "standard", "median"}
        How items scored exactly like the target count (see the module docstring; the last
        three are GRU4Rec's names of the first three).

    Returns
    -------
    ndarray of float64, shape (n,)
        ``1 + #greater`` (+ ``#tied`` pessimistic, + ``#tied / 2`` average).

    Examples
    --------
    >>> rank_of_target(np.array([[0.5, 0.9, 0.5, 0.1]]), np.array([0]))
    array([3.])
    >>> rank_of_target(np.array([[0.5, 0.9, 0.5, 0.1]]), np.array([0]), ties="optimistic")
    array([2.])
    """
    ties = tie_rule(ties)
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"scores must be (n, n_items) and targets (n,); got {scores.shape} and {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= scores.shape[1]):
        raise ValueError(f"targets must be item indices in [0, {scores.shape[1]})")
    target_scores = scores[np.arange(targets.size), targets]
    if np.isnan(target_scores).any():
        raise ValueError(f"NaN score for the target in row {int(np.flatnonzero(np.isnan(target_scores))[0])}")
    greater = (scores > target_scores[:, None]).sum(axis=1)
    rank = 1.0 + greater.astype(np.float64)
    if ties != "optimistic":
        tied = (scores == target_scores[:, None]).sum(axis=1) - 1  # the target itself is not a tie
        rank += tied if ties == "pessimistic" else 0.5 * tied
    return rank


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of events whose target is ranked within the top ``k`` (NaN for no events)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    _check_k(k)
    return float(np.mean(ranks <= k)) if ranks.size else float("nan")


def mrr_at_k(ranks: np.ndarray, k: int) -> float:
    """Mean reciprocal rank with ranks beyond ``k`` counted as 0 (NaN for no events)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    _check_k(k)
    if not ranks.size:
        return float("nan")
    return float(np.mean(np.where(ranks <= k, 1.0 / ranks, 0.0)))


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
