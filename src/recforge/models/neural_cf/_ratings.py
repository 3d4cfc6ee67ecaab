r"""What the rating-distribution models (RBM, CF-NADE) share.

Both models turn a user's observed ratings into a hidden vector :math:`h` and give, for every
item :math:`i`, a distribution :math:`p(r_i = k \mid h)` over the :math:`K` rating levels seen
in training. A predicted rating is the expectation :math:`\hat r_i = \sum_k v_k\, p(r_i=k)`
(:math:`v_k` the value of level :math:`k`); a list ranks items by a score of that distribution
(``ranking_score``):

* ``"expected"``: the expected rating :math:`\hat r_i`;
* ``"mode"``: the most probable rating times its probability, :math:`v_{k^*} p(r_i = k^*)`,
  the deterministic form of the Microsoft Recommenders RBM's score (which multiplies a
  *sampled* rating by the largest probability).

A user is its ratings: rows are scored from their history (``FOLD_IN``), a known user queried
without history from its training ratings, which the model keeps (``rows_*_``) so that a
loaded model predicts as the fitted one did.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from ...data.interactions import Interactions
from ..base import FOLD_IN, RANKING, RATING, Recommender
from ..neural import NeuralModel, TrainingLoop
from ..query import FallbackLog, History

logger = logging.getLogger(__name__)

RANKING_SCORES = ("expected", "mode")
#: scores of models with an "unrated" state (the RBM with ``unrated="level"``)
PRESENCE_SCORES = ("rated", "joint")
MAX_LEVELS = 64


class RatingRows:
    """A batch of rating rows as flat tensors: entry ``e`` is row ``rows[e]``'s rating of item
    ``items[e]`` at level index ``levels[e]`` (0-based); ``n_rows`` rows in all."""

    def __init__(self, rows: torch.Tensor, items: torch.Tensor, levels: torch.Tensor, n_rows: int):
        self.rows, self.items, self.levels, self.n_rows = rows, items, levels, int(n_rows)

    @classmethod
    def from_csr(cls, indptr: np.ndarray, items: np.ndarray, levels: np.ndarray,
                 device: torch.device) -> RatingRows:
        n_rows = indptr.size - 1
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
        return cls(torch.from_numpy(rows).to(device),
                   torch.from_numpy(np.asarray(items, dtype=np.int64)).to(device),
                   torch.from_numpy(np.asarray(levels, dtype=np.int64)).to(device), n_rows)


def check_ranking_score(owner: str, value: str, presence: bool = False) -> None:
    allowed = RANKING_SCORES + (PRESENCE_SCORES if presence else ())
    if value not in allowed:
        raise ValueError(f"{owner}: ranking_score must be one of {allowed}, got {value!r}")


class RatingDistributionModel(NeuralModel, Recommender):
    """Base of models predicting a distribution over rating levels from a user's ratings.

    A subclass implements ``_fit_net(rows, validation_fn)`` (train on the stored training rows),
    ``_hidden(batch: RatingRows) -> (n_rows, H)`` and ``_logits(h) -> (n_rows, n_items, K)``
    (unnormalised log-probabilities of each level), plus ``_build_modules``.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, FOLD_IN})
    state = ("levels_", "rows_indptr_", "rows_items_", "rows_levels_", "train_seconds_")
    #: scoring batch (rows) — bounds the (rows x items x K) block held at once
    score_batch: ClassVar[int] = 256

    # ------------------------------------------------------------------ data
    def _level_index(self, values: np.ndarray) -> np.ndarray:
        """Level index of each value: the nearest training level (ties to the lower)."""
        levels = np.asarray(self.levels_, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        hi = np.clip(np.searchsorted(levels, v, side="left"), 0, levels.size - 1)
        lo = np.clip(hi - 1, 0, levels.size - 1)
        return np.where(np.abs(v - levels[lo]) <= np.abs(levels[hi] - v), lo, hi).astype(np.int64)

    def _store_rows(self, train: Interactions) -> None:
        levels = np.unique(np.asarray(train.values, dtype=np.float64))
        owner = type(self).__name__
        if levels.size < 2:
            raise ValueError(f"{owner}: the training values need at least two rating levels "
                             f"(got {levels.tolist()}); the model predicts a distribution over "
                             "rating levels")
        if levels.size > MAX_LEVELS:
            raise ValueError(f"{owner}: {levels.size} distinct training values; the model needs a "
                             f"discrete rating scale (at most {MAX_LEVELS} levels)")
        self.levels_ = levels.astype(np.float32)
        csr = sp.csr_matrix(train.csr)
        csr.sort_indices()
        self.rows_indptr_ = csr.indptr.astype(np.int64)
        self.rows_items_ = csr.indices.astype(np.int64)
        self.rows_levels_ = self._level_index(csr.data)

    def _rows_of(self, users: np.ndarray, history: History | None) -> tuple[np.ndarray, ...]:
        """CSR (indptr, items, level indices) of query rows: the row's history where it has
        one, else a known user's training ratings, else nothing."""
        users = np.asarray(users, dtype=np.int64)
        n = users.size
        hist_len = history.lengths() if history is not None else np.zeros(n, np.int64)
        use_hist = hist_len > 0
        stored_len = np.where(~use_hist & (users >= 0),
                              self.rows_indptr_[np.maximum(users, 0) + 1]
                              - self.rows_indptr_[np.maximum(users, 0)], 0)
        lengths = np.where(use_hist, hist_len, stored_len)
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        items = np.empty(indptr[-1], np.int64)
        levels = np.empty(indptr[-1], np.int64)
        for mask, src_indptr, src_items, src_levels in (
                (use_hist, None if history is None else history.matrix.indptr, None, None),
                (~use_hist & (stored_len > 0), self.rows_indptr_, self.rows_items_, self.rows_levels_)):
            if not mask.any():
                continue
            sel = np.flatnonzero(mask)
            dst = np.flatnonzero(np.repeat(mask, lengths))
            starts = src_indptr[sel] if src_items is None else src_indptr[users[sel]]
            src = dst + np.repeat(starts - indptr[sel], lengths[sel])
            if src_items is None:  # the row's own history
                items[dst] = history.matrix.indices[src]
                levels[dst] = self._level_index(history.matrix.data[src])
            else:
                items[dst] = src_items[src]
                levels[dst] = src_levels[src]
        return indptr, items, levels

    # ------------------------------------------------------------------ distributions
    def _hidden(self, batch: RatingRows) -> torch.Tensor:
        raise NotImplementedError

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _fit_net(self, train: Interactions, validate) -> None:
        raise NotImplementedError

    def rating_distribution(self, indptr: np.ndarray, items: np.ndarray,
                            levels: np.ndarray) -> torch.Tensor:
        """(n_rows, n_items, K) probabilities of each rating level for CSR rows of level
        indices (float64 on the model's device)."""
        batch = RatingRows.from_csr(indptr, items, levels, self._device())
        self._eval_mode()
        with torch.no_grad():
            logits = self._logits(self._hidden(batch)).double()
        return torch.softmax(logits, dim=-1)

    #: True when the distribution's first state is "unrated" (then ``_logits`` has K + 1 states)
    def _has_unrated_state(self) -> bool:
        return False

    def _scores_of(self, probs: torch.Tensor, how: str) -> torch.Tensor:
        """Per item: ``how`` of the distribution (see the module docstring); with an "unrated"
        state the levels' probabilities are conditioned on a rating first, and "rated" is the
        probability of a rating, "joint" the expected rating with "unrated" counted as 0."""
        values = torch.as_tensor(self.levels_, dtype=probs.dtype, device=probs.device)
        if self._has_unrated_state():
            rated = 1.0 - probs[..., 0]
            if how == "rated":
                return rated
            if how == "joint":
                return probs[..., 1:] @ values
            probs = probs[..., 1:] / rated.clamp_min(1e-300).unsqueeze(-1)
        if how == "expected":
            return probs @ values
        best, arg = probs.max(dim=-1)
        return values[arg] * best

    def _batched(self, users: np.ndarray, history: History | None, how: str,
                 items: np.ndarray | None = None) -> np.ndarray:
        out = []
        for start in range(0, max(users.size, 1), self.score_batch):
            sub = users[start:start + self.score_batch]
            if not sub.size:
                break
            hist = None if history is None else history.take(np.arange(start, start + sub.size))
            probs = self.rating_distribution(*self._rows_of(sub, hist))
            scores = self._scores_of(probs, how)
            out.append(scores.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_items_))

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        return self._batched(np.asarray(users, np.int64), history,
                             self.ranking_score).astype(np.float32)

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        uniq, inv = np.unique(u, return_inverse=True)
        out = np.empty(u.size, np.float64)
        for start in range(0, uniq.size, self.score_batch):
            sub = uniq[start:start + self.score_batch]
            probs = self.rating_distribution(*self._rows_of(sub, None))
            expected = self._scores_of(probs, "expected").cpu().numpy()
            sel = (inv >= start) & (inv < start + sub.size)
            out[sel] = expected[inv[sel] - start, i[sel]]
        return out

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        self._check_params()
        self._store_rows(train)
        validate = None
        if validation is not None:
            vu = train.user_map.to_inner(validation.user_map.raw[validation.users], missing="mask")
            vi = train.item_map.to_inner(validation.item_map.raw[validation.items], missing="mask")
            known = (vu >= 0) & (vi >= 0)
            vu, vi = vu[known], vi[known]
            truth = np.asarray(validation.values, np.float64)[known]

            def validate(epoch: int) -> dict:
                pred = self.predict_inner(vu, vi, clip=True)
                return {"rmse": float(np.sqrt(np.mean((pred - truth) ** 2))) if truth.size else 0.0}

        started = time.perf_counter()
        self._fit_net(train, validate)
        self.train_seconds_ = time.perf_counter() - started

    def _loop(self, validate) -> TrainingLoop:
        return TrainingLoop(int(self.epochs), name=type(self).__name__, validate=validate,
                            patience=self.patience, monitor="rmse", mode="min",
                            restore_best=True, verbose=bool(self.verbose))

    def _check_params(self) -> None:
        raise NotImplementedError
