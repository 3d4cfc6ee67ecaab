r"""Business rules on top of a model's lists: which items may be shown, what a newcomer gets,
what a new item is similar to, and which slots explore.

* **Minimum popularity and outliers** (``[rules] min_interactions``,
  ``max_popularity_percent``): items with fewer training interactions than the minimum are
  never recommended (too little evidence, often noise or spam), and the most popular X % can be
  removed too (items everybody already knows, or bot-inflated counts). Both join the stoplist,
  so they hold in every list.
* **Cold start** (``[rules] cold_start = "recent"``): a user with no history gets the training
  interactions weighted by recency, :math:`s_i = \sum_{(u,i,t)} 2^{-(t_{\max}-t)/h}` with
  half-life :math:`h` (the ``MostPopular(recency_half_life=h)`` score), instead of the model's
  all-time popularity; onboarding (a few picked items as a history) works with any model.
* **New items** (in the catalogue, no interactions): similar items by cosine over the item
  feature vectors a bundle carries (:class:`ItemVectors`).
* **Exploration** (:class:`Explorer`): an :math:`\varepsilon` share of the slots goes to new or
  under-exposed items, and each slot's propensity is recorded for off-policy evaluation.
"""

from __future__ import annotations

import threading

import numpy as np

from ..topk import topk_rows


def training_counts(bundle) -> np.ndarray:
    """Training interactions per inner item of the bundle's model: counted in the bundle's
    training history when it has one, else the model's ``item_popularity_``."""
    model = bundle.model
    if bundle.history is None:
        return np.asarray(model.item_popularity_, dtype=np.float64)
    inner = model.item_map_.to_inner(bundle.history.items, missing="mask")
    inner = inner[inner >= 0]
    return np.bincount(inner, minlength=model.n_items_).astype(np.float64)


def popularity_filter(counts: np.ndarray, min_interactions: int,
                      max_popularity_percent: float) -> np.ndarray:
    """Inner items the popularity rules ban: fewer than ``min_interactions`` interactions, or
    among the ``max_popularity_percent`` % most interacted with (ties at the cut all go)."""
    banned = counts < min_interactions
    if max_popularity_percent > 0 and counts.size:
        n_top = int(np.floor(counts.size * max_popularity_percent / 100.0))
        if n_top > 0:
            cut = np.sort(counts)[::-1][n_top - 1]
            banned |= counts >= cut
    return np.flatnonzero(banned)


def recent_popularity(bundle, half_life: float) -> np.ndarray | None:
    """Recency-weighted training popularity per inner item (see the module docstring), or None
    when the bundle has no training timestamps."""
    history = bundle.history
    if history is None or history.timestamps is None or history.n_rows == 0:
        return None
    model = bundle.model
    inner = model.item_map_.to_inner(history.items, missing="mask")
    keep = inner >= 0
    t = history.timestamps[keep]
    weights = np.exp2(-(t.max() - t) / float(half_life))
    return np.bincount(inner[keep], weights=weights, minlength=model.n_items_).astype(np.float32)


class ItemVectors:
    """Item feature vectors (rows L2-normalised) by text id; similar items by cosine."""

    def __init__(self, ids, matrix: np.ndarray):
        self.ids = [str(i) for i in ids]
        m = np.asarray(matrix, dtype=np.float32)
        if m.ndim != 2 or m.shape[0] != len(self.ids):
            raise ValueError(f"item features: {len(self.ids)} ids for a matrix of shape {m.shape}")
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        self.matrix = np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)
        self.index = {item: n for n, item in enumerate(self.ids)}

    def __contains__(self, item) -> bool:
        return str(item) in self.index

    def similar(self, item, k: int, allowed: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The ``k`` items most similar to ``item`` (itself excluded, and any row where
        ``allowed`` is False), with their cosine; items without a positive similarity are
        left out."""
        row = self.index[str(item)]
        sims = (self.matrix @ self.matrix[row])[None, :].copy()
        sims[0, row] = -np.inf
        if allowed is not None:
            sims[0, ~allowed] = -np.inf
        idx, vals = topk_rows(sims, int(min(k, len(self.ids))))
        return [(self.ids[i], float(v)) for i, v in zip(idx[0].tolist(), vals[0].tolist(),
                                                          strict=True) if i >= 0 and v > 0]


class Explorer:
    r"""ε-greedy slot exploration with per-slot propensities.

    For each slot in turn, with probability :math:`\varepsilon` the slot is exploratory and gets
    an item of the exploration pool (new and under-exposed items) not yet placed: uniformly at
    random (``uniform``), or the item with the largest draw from
    :math:`\mathrm{Beta}(1 + c_i, 1 + \max(n_i - c_i, 0))` over its stored clicks :math:`c_i` and
    impressions :math:`n_i` (``thompson``, Thompson sampling, Chapelle and Li 2011); otherwise
    it gets the model's next item not yet placed. The propensity of slot :math:`j` is the
    probability that the policy put the item shown there, given the slots before it:

    .. math:: p_j = (1-\varepsilon)\,[x_j = g_j] + \varepsilon\, q_j(x_j)

    with :math:`g_j` the next greedy item and :math:`q_j` the exploration draw's probability
    (:math:`1/|P_j|` uniform over the remaining pool :math:`P_j`; estimated from
    ``thompson_draws`` Monte Carlo draws for Thompson sampling). The product of a list's
    :math:`p_j` is the probability of the whole list, what inverse propensity scoring needs.
    """

    def __init__(self, settings):
        self.settings = settings
        self.epsilon = float(settings.epsilon)
        self._rng = np.random.default_rng(None if settings.seed < 0 else settings.seed)
        self._lock = threading.Lock()

    @property
    def policy(self) -> str:
        if self.epsilon <= 0:
            return "greedy"
        return f"epsilon-greedy(epsilon={self.epsilon:g}, {self.settings.method})"

    def least_shown(self, items: list[str], stats: dict, n: int) -> list[str]:
        """The ``n`` items shown least (impressions in ``stats``), ties in random order (so
        that a catalogue nobody has seen yet is not explored in id order)."""
        with self._lock:
            ties = self._rng.random(len(items))
        shown = np.array([stats.get(i, (0, 0))[0] for i in items], dtype=np.float64)
        order = np.lexsort((ties, shown))[:n]
        return [items[j] for j in order.tolist()]

    def arrange(self, greedy: list[str], pool: list[str], k: int,
                stats: dict | None = None) -> tuple[list[str], list[bool], list[float]]:
        """Fill ``k`` slots from the ``greedy`` list and the exploration ``pool`` (text ids);
        returns the items, which slots explored, and each slot's propensity."""
        stats = stats or {}
        placed: set[str] = set()
        items: list[str] = []
        explored: list[bool] = []
        props: list[float] = []
        gi = 0
        with self._lock:
            rng = self._rng
            while len(items) < k:
                while gi < len(greedy) and greedy[gi] in placed:
                    gi += 1
                g = greedy[gi] if gi < len(greedy) else None
                remaining = [p for p in pool if p not in placed] if self.epsilon > 0 else []
                if g is None and not remaining:
                    break
                explore = bool(remaining) and (g is None or rng.random() < self.epsilon)
                eps = self.epsilon if g is not None else 1.0
                if explore:
                    x, q = self._draw(remaining, stats, rng)
                else:
                    x, q = g, (self._q(remaining, g, stats, rng) if g in remaining else 0.0)
                p = (1 - eps) * (x == g) + eps * q if remaining else 1.0
                items.append(x)
                explored.append(explore)
                props.append(float(p))
                placed.add(x)
        return items, explored, props

    def _beta(self, items: list[str], stats: dict) -> tuple[np.ndarray, np.ndarray]:
        shown = np.array([stats.get(i, (0, 0))[0] for i in items], dtype=np.float64)
        clicks = np.array([stats.get(i, (0, 0))[1] for i in items], dtype=np.float64)
        return 1 + clicks, 1 + np.maximum(shown - clicks, 0)

    def _draw(self, remaining: list[str], stats: dict, rng) -> tuple[str, float]:
        if self.settings.method != "thompson":
            return remaining[int(rng.integers(len(remaining)))], 1.0 / len(remaining)
        a, b = self._beta(remaining, stats)
        x = remaining[int(np.argmax(rng.beta(a, b)))]
        return x, self._q(remaining, x, stats, rng)

    def _q(self, remaining: list[str], x: str, stats: dict, rng) -> float:
        """Probability that the exploration draw picks ``x`` among ``remaining``."""
        if self.settings.method != "thompson":
            return 1.0 / len(remaining)
        a, b = self._beta(remaining, stats)
        n = int(self.settings.thompson_draws)
        wins = np.argmax(rng.beta(a, b, size=(n, len(remaining))), axis=1)
        # the draw that chose x counts as one more (never a zero propensity for a shown item)
        return float((np.count_nonzero(wins == remaining.index(x)) + 1) / (n + 1))
