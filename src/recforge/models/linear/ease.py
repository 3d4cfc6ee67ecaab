r"""EASE: an item x item linear model with a closed form.

Steck (2019), "Embarrassingly shallow autoencoders for sparse data", WWW, section 3. With
:math:`X` the users x items implicit-feedback matrix, EASE learns the item x item weights

.. math:: \min_B \lVert X - X B \rVert_F^2 + \lambda \lVert B \rVert_F^2
          \quad \text{s.t.}\ \operatorname{diag}(B) = 0,

whose solution (eq. 8 of the paper) is

.. math:: G = X^\top X + \lambda I, \qquad P = G^{-1}, \qquad
          B_{ij} = -\frac{P_{ij}}{P_{jj}} \ (i \ne j), \qquad B_{jj} = 0,

and a row :math:`x_u` scores every item by :math:`x_u B`. The fit is one inversion of a dense
:math:`n \times n` matrix (:math:`O(n^3)` time, :math:`O(n^2)` memory, :math:`n` the number of
items), which is why EASE refuses catalogues whose dense matrices would not fit in
``max_memory_gb``: SLIM or ALS are the models for those.

Scoring needs no solve: any row with a history is scored from it, known user or not
(``FOLD_IN``), after the same threshold / binarization as the training data. ``partial_fit``
adds interactions (new users, new items, or more items for known users) to the stored feedback
matrix and recomputes :math:`B` from the grown Gram matrix — the closed form, so the result
equals a refit on all the data.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...data.interactions import Interactions
from ..base import FOLD_IN, INCREMENTAL, RANKING, Recommender, register
from ..feedback import check_feedback_params, implicit_feedback
from ..query import FallbackLog, History
from ._common import check_positive, grow_feedback, grow_maps, history_feedback

#: Bytes per squared item count the fit holds at its peak: the float64 Gram matrix, its float64
#: inverse (turned into B in place) and the float32 B kept for scoring.
_BYTES_PER_ITEM_PAIR = 8 + 8 + 4


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """:math:`B` from the Gram matrix :math:`X^\\top X` (Steck 2019, eq. 8), float64.

    ``gram`` is not modified."""
    g = np.array(gram, dtype=np.float64, copy=True)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    diag = np.diag(p).copy()
    p /= -diag[None, :]
    p[np.diag_indices_from(p)] = 0.0
    return p


@register("EASE")
class EASE(Recommender):
    """EASE (Steck 2019): scores :math:`x_u B` with the closed-form item weights :math:`B`.

    Parameters
    ----------
    l2 : float, default 500.0
        :math:`\\lambda`, the L2 penalty on :math:`B` (the paper tunes it on a grid; 500 is its
        order of magnitude for MovieLens-sized data). Must be positive.
    threshold : float, optional
        Keep only interactions with a value at least this (e.g. ratings >= 4), in training and
        in the histories that are scored.
    binarize : bool, default True
        Every kept interaction counts 1 (the paper's binary :math:`X`); else its value is used.
    max_memory_gb : float, default 4.0
        The fit holds about ``20 * n_items**2`` bytes (Gram matrix and its inverse in float64,
        :math:`B` in float32); a catalogue needing more raises ``ValueError``.

    Attributes
    ----------
    weights_ : ndarray (n_items, n_items), float32
        :math:`B` (zero diagonal).
    feedback_ : csr_matrix (n_users, n_items)
        The training feedback :math:`X`, kept so that ``partial_fit`` can grow it exactly.
    feedback_dropped_ : int
        Training interactions dropped by ``threshold`` (or with a non-positive value).
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RANKING, FOLD_IN, INCREMENTAL})
    state = ("weights_", "feedback_", "feedback_dropped_")
    scores_from_history = True

    def __init__(self, l2: float = 500.0, threshold: float | None = None, binarize: bool = True,
                 max_memory_gb: float = 4.0):
        self.l2 = l2
        self.threshold = threshold
        self.binarize = binarize
        self.max_memory_gb = max_memory_gb

    def _check_params(self) -> float:
        check_feedback_params(self.threshold, self.binarize, "EASE")
        check_positive("EASE", "max_memory_gb", self.max_memory_gb)
        return check_positive("EASE", "l2", self.l2)

    def _check_memory(self, n_items: int) -> None:
        need = _BYTES_PER_ITEM_PAIR * float(n_items) ** 2 / 1e9
        if need > float(self.max_memory_gb):
            raise ValueError(
                f"EASE: {n_items} items need about {need:.1f} GB for the dense item x item "
                f"matrices (more than max_memory_gb={self.max_memory_gb}); raise max_memory_gb "
                "if the memory is there, or use SLIM (sparse weights) or ALS (factors) for a "
                "catalogue this large")

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        l2 = self._check_params()
        self._check_memory(train.n_items)
        fb = implicit_feedback(train, self.threshold, bool(self.binarize))
        self.feedback_ = fb.matrix
        self.feedback_dropped_ = fb.dropped
        self._refit(l2)

    def _refit(self, l2: float) -> None:
        x = self.feedback_
        gram = (x.T @ x).toarray()
        self.weights_ = ease_weights(gram, l2).astype(np.float32)

    def partial_fit(self, interactions: Interactions) -> EASE:
        """Absorb new interactions: new users and items extend the id maps, the feedback matrix
        grows (a pair seen again adds its value; with ``binarize`` it stays 1) and :math:`B` is
        recomputed from the grown Gram matrix, so the result equals a refit on all the data."""
        self._check_fitted()
        if not isinstance(interactions, Interactions):
            raise TypeError(f"EASE.partial_fit expects Interactions, got {type(interactions).__name__}")
        l2 = self._check_params()
        fb = implicit_feedback(interactions, self.threshold, bool(self.binarize))
        self._check_memory(len(self.item_map_.grow(interactions.item_map.raw)[0]))
        new_users, new_items = grow_maps(self, interactions)
        self.feedback_ = grow_feedback(self.feedback_, fb.matrix, new_users, new_items,
                                       (self.n_users_, self.n_items_), bool(self.binarize))
        self.feedback_dropped_ = int(self.feedback_dropped_) + fb.dropped
        self._refit(l2)
        return self

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        h = history_feedback(history.matrix, self.threshold, bool(self.binarize))
        scores = np.asarray(h.astype(np.float32) @ self.weights_, dtype=np.float32)
        empty = np.diff(h.indptr) == 0
        if empty.any():  # every interaction of the row was below the threshold
            fallbacks.mark("no history above threshold: popularity", empty)
            scores[empty] = self.item_popularity_
        return scores
