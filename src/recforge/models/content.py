r"""Content-based filtering: item similarity from item features, and a k-NN rating predictor.

Item-item similarity is built from the features of :class:`~recforge.data.ItemFeatures`, one
component per feature, each compared in its own way:

* ``"cosine"`` (categorical multi-hot, e.g. genres): :math:`\frac{g_i \cdot g_j}{\|g_i\|\|g_j\|}`;
* ``"tfidf"`` (categorical such as tags, or free text): cosine of TF-IDF vectors,
  :math:`w_{it} = \mathrm{tf}_{it} \log\frac{1 + n}{1 + \mathrm{df}_t} + 1`;
* ``"year"`` (1-d numeric): :math:`\exp(-|y_i - y_j| / \tau)` with :math:`\tau = 10` years;
* ``"standardized_cosine"`` (numeric vectors such as the mise-en-scène features of Deldjoo et
  al. 2016 — average shot length, colour variance, motion, lighting, number of shots): every
  column is standardised to zero mean and unit variance over the items that have it, then
  compared by cosine.

An item lacking a feature has similarity 0 through that component. Components combine by a
weighted product :math:`\prod_c s_c^{w_c}` (``combine="product"``; a non-positive factor gives
0) or a weighted mean :math:`\sum_c w_c s_c / \sum_c w_c` (``combine="sum"``).

:class:`ContentKNN` predicts :math:`\hat r_{ui}` as the similarity-weighted mean of the user's
ratings of the ``k`` items most similar to :math:`i` among those the user rated (positive
similarities only), the item-based k-NN of Sarwar et al. (2001) with content similarity. When no
such neighbour exists the baseline :math:`\mu + b_u + b_i` (or the global mean) is returned and
counted in the call's fallback log. Scoring every item this way gives content-based top-N lists.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.features import ItemFeatures
from ..data.interactions import Interactions
from ..interrupt import compiled
from .base import FOLD_IN, ITEM_FEATURES, RANKING, RATING, SIMILAR_ITEMS, Recommender, register
from .neighborhood._kernels import (
    CONTENT_DENSE,
    CONTENT_PRODUCT,
    CONTENT_SPARSE,
    CONTENT_SUM,
    CONTENT_YEAR,
    content_knn_pairs,
)
from .neighborhood.knn import als_baselines
from .query import FallbackLog, History

logger = logging.getLogger(__name__)

KINDS = ("cosine", "tfidf", "year", "standardized_cosine")

# ranking scores of items that cannot be predicted from content are pushed this far below the
# rating scale, keeping their fallback order among themselves
NO_NEIGHBOUR_PENALTY = 1000.0
# categorical features with at most this many values are kept as dense item vectors
DENSE_VOCABULARY = 256


def _l2_normalise(m):
    """Rows scaled to unit length (zero rows stay zero); dense or CSR."""
    if sp.issparse(m):
        m = sp.csr_matrix(m, dtype=np.float64)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inv) @ m)
    m = np.asarray(m, dtype=np.float64)
    norms = np.linalg.norm(m, axis=1)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return m * inv[:, None]


def tfidf_matrix(counts: sp.spmatrix) -> sp.csr_matrix:
    """Smoothed TF-IDF (rows = documents) of a term-count matrix, rows L2-normalised."""
    c = sp.csr_matrix(counts, dtype=np.float64)
    n = c.shape[0]
    df = np.bincount(c.indices, minlength=c.shape[1])
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    return _l2_normalise(c @ sp.diags(idf))


def text_counts(texts) -> sp.csr_matrix:
    """Bag of lower-cased word tokens (runs of letters/digits) per text, as a count matrix."""
    from sklearn.feature_extraction.text import CountVectorizer

    texts = np.asarray(texts, dtype=str)
    if not any(texts):
        return sp.csr_matrix((texts.size, 0))
    return sp.csr_matrix(CountVectorizer(lowercase=True).fit_transform(texts), dtype=np.float64)


def standardise(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Columns to zero mean, unit variance over the rows in ``present``; other rows to 0."""
    x = np.asarray(values, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    out = np.zeros_like(x)
    if present.any():
        sub = x[present]
        mean = sub.mean(axis=0)
        std = sub.std(axis=0)
        out[present] = (sub - mean) / np.where(std > 0, std, 1.0)
    return out


class ContentSimilarity:
    """Item-item similarity from item features, computed block by block on demand.

    Parameters
    ----------
    features : ItemFeatures
    components : dict[str, float]
        Feature name -> weight, e.g. ``{"genres": 1.0, "year": 1.0}``.
    kinds : dict[str, str], optional
        How each feature is compared (see :data:`KINDS`); defaults: categorical -> ``cosine``,
        text -> ``tfidf``, 1-d numeric -> ``year``, numeric vectors -> ``standardized_cosine``.
    combine : {"product", "sum"}
    year_scale : float, default 10
        :math:`\\tau` of the ``year`` kind.

    Only per-item representations are stored (O(n_items x d)); :meth:`block` computes any
    rows x columns block of the similarity, so the n_items^2 matrix is never materialised.

    Examples
    --------
    >>> import pandas as pd
    >>> from recforge.data import IdMap, ItemFeatures
    >>> df = pd.DataFrame({"item": [1, 2, 3], "genres": ["A|B", "A", "C"], "year": [1990, 2000, 1990]})
    >>> f = ItemFeatures.from_dataframe(df, IdMap([1, 2, 3]), categorical={"genres": "|"},
    ...                                 numeric=["year"])
    >>> s = ContentSimilarity.from_features(f, {"genres": 1.0, "year": 1.0})
    >>> s.block([0], [1, 2]).round(4)  # cos(A|B, A) * exp(-1), 0 * 1
    array([[0.2601, 0.    ]])
    """

    def __init__(self, dense: dict, sparse: dict, years: dict, weights: dict, combine: str,
                 year_scale: float):
        self.dense = dense
        self.sparse = sparse
        self.years = years
        self.weights = weights
        self.combine = combine
        self.year_scale = float(year_scale)

    @classmethod
    def from_features(cls, features: ItemFeatures, components: dict, kinds: dict | None = None,
                      combine: str = "product", year_scale: float = 10.0) -> ContentSimilarity:
        if combine not in ("product", "sum"):
            raise ValueError("combine must be 'product' or 'sum'")
        if not components:
            raise ValueError("components must name at least one feature")
        kinds = dict(kinds or {})
        dense, sparse, years, weights = {}, {}, {}, {}
        for name, weight in components.items():
            present = features.present.get(name)
            if present is None:
                raise ValueError(f"item features have no {name!r}; available: {features.names()}")
            kind = kinds.get(name) or cls._default_kind(features, name)
            if kind not in KINDS:
                raise ValueError(f"feature {name!r}: unknown kind {kind!r}; known: {KINDS}")
            weights[name] = float(weight)
            if kind == "year":
                v = np.asarray(features.numeric[name], dtype=np.float64)
                if v.ndim != 1:
                    raise ValueError(f"feature {name!r}: the 'year' kind needs a 1-d numeric feature")
                years[name] = v
            elif kind == "standardized_cosine":
                if name not in features.numeric:
                    raise ValueError(f"feature {name!r}: standardized_cosine needs a numeric feature")
                dense[name] = _l2_normalise(standardise(features.numeric[name], present))
            elif kind == "cosine":
                if name in features.categorical:
                    onehot = features.categorical[name][0]
                    # a short vocabulary (genres) multiplies faster as a dense array
                    dense_ok = onehot.shape[1] <= DENSE_VOCABULARY
                    (dense if dense_ok else sparse)[name] = _l2_normalise(
                        onehot.toarray() if dense_ok else onehot)
                elif name in features.numeric:
                    v = np.nan_to_num(np.asarray(features.numeric[name], np.float64))
                    dense[name] = _l2_normalise(v[:, None] if v.ndim == 1 else v)
                else:
                    sparse[name] = tfidf_matrix(text_counts(features.text[name]).astype(bool))
            else:  # tfidf
                if name in features.categorical:
                    sparse[name] = tfidf_matrix(features.categorical[name][0])
                elif name in features.text:
                    sparse[name] = tfidf_matrix(text_counts(features.text[name]))
                else:
                    raise ValueError(f"feature {name!r}: tfidf needs a categorical or text feature")
            logger.info("content similarity: %s as %s (weight %g), %d items have it", name, kind,
                        weight, int(present.sum()))
        return cls(dense, sparse, years, weights, combine, year_scale)

    @staticmethod
    def _default_kind(features: ItemFeatures, name: str) -> str:
        if name in features.categorical:
            return "cosine"
        if name in features.text:
            return "tfidf"
        v = np.asarray(features.numeric[name])
        return "year" if v.ndim == 1 else "standardized_cosine"

    def components(self) -> list[str]:
        return list(self.weights)

    def block(self, rows, cols) -> np.ndarray:
        """Combined similarity of items ``rows`` (inner) with items ``cols``: (len(rows), len(cols))."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        parts = []
        for name, w in self.weights.items():
            if name in self.years:
                y = self.years[name]
                with np.errstate(invalid="ignore"):
                    s = np.exp(-np.abs(y[rows][:, None] - y[cols][None, :]) / self.year_scale)
                s = np.nan_to_num(s, nan=0.0)
            elif name in self.dense:
                e = self.dense[name]
                s = e[rows] @ e[cols].T
            else:
                e = self.sparse[name]
                s = (e[rows] @ e[cols].T).toarray()
            parts.append((w, s))
        if self.combine == "sum":
            total = sum(w for w, _ in parts)
            return sum(w * s for w, s in parts) / (total if total else 1.0)
        out = None
        for w, s in parts:
            factor = np.maximum(s, 0.0)
            if w != 1.0:
                np.power(factor, w, out=factor, where=factor > 0)
            out = factor if out is None else out * factor
        return out

    def kernel_arrays(self) -> tuple:
        """The per-item arrays the compiled content k-NN kernels compute similarities from
        (see ``neighborhood/_kernels.py``): one tuple, O(n_items x d), built once per model.

        Dense components sit side by side in one array and are accumulated with fused
        multiply-adds in column order, sparse ones in one CSR with separate products, as the
        matrix products of :meth:`block` do. A year component whose known values are whole
        numbers gets a table of :math:`\\exp(-d / \\tau)` for every distance, computed like
        :meth:`block` does.
        """
        names = list(self.weights)
        n_items = self._n_items()
        kind = np.empty(len(names), np.int64)
        slot = np.empty(len(names), np.int64)
        year_rows, tables, dense_parts, sparse_parts = [], [], [], []
        for c, name in enumerate(names):
            if name in self.years:
                kind[c], slot[c] = CONTENT_YEAR, len(year_rows)
                y = np.asarray(self.years[name], dtype=np.float64)
                year_rows.append(y)
                known = y[np.isfinite(y)]
                span = float(known.max() - known.min()) if known.size else 0.0
                if known.size and np.all(known == np.round(known)) and span < 1e6:
                    tables.append(np.exp(-np.arange(int(span) + 1, dtype=np.float64) / self.year_scale))
                else:
                    tables.append(np.empty(0))
            elif name in self.dense:
                kind[c], slot[c] = CONTENT_DENSE, len(dense_parts)
                dense_parts.append(np.asarray(self.dense[name], dtype=np.float64).reshape(n_items, -1))
            else:
                kind[c], slot[c] = CONTENT_SPARSE, len(sparse_parts)
                sparse_parts.append(sp.csr_matrix(self.sparse[name], dtype=np.float64))
        width = max([t.size for t in tables] + [1])
        year_table = np.zeros((len(tables), width))
        for r, t in enumerate(tables):
            year_table[r, :t.size] = t
        dense = np.ascontiguousarray(np.hstack(dense_parts)) if dense_parts else np.zeros((n_items, 0))
        dense_off = np.concatenate(([0], np.cumsum([d.shape[1] for d in dense_parts], dtype=np.int64)))
        if sparse_parts:
            vec = sp.csr_matrix(sp.hstack(sparse_parts, format="csr"), dtype=np.float64)
            vec.eliminate_zeros()
            vec.sort_indices()
            sp_comp = np.repeat(np.arange(len(sparse_parts)), [b.shape[1] for b in sparse_parts])
        else:
            vec = sp.csr_matrix((n_items, 0))
            sp_comp = np.empty(0, np.int64)
        total = sum(self.weights.values())
        return (kind, slot, np.array([self.weights[n] for n in names], np.float64),
                CONTENT_SUM if self.combine == "sum" else CONTENT_PRODUCT,
                float(total) if total else 1.0,
                np.array(year_rows, np.float64).reshape(len(year_rows), n_items),
                year_table, np.array([t.size for t in tables], np.int64), self.year_scale,
                dense, dense_off.astype(np.int64),
                vec.indptr.astype(np.int64), vec.indices.astype(np.int64), vec.data.astype(np.float64),
                sp_comp.astype(np.int64), len(sparse_parts))

    def feature_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Items grouped by identical representations in every component: (class of each
        item, first item of each class). Items of one class have the same similarity to every
        item, so a row's k-NN estimate is computed once per class (genres alone: 901 classes
        for the 9,066 movies of ml-latest-small; release years: 104)."""
        n_items = self._n_items()
        parts = []
        for name in self.weights:
            if name in self.years:
                y = np.asarray(self.years[name], dtype=np.float64)
                parts.append(np.isnan(y).astype(np.float64)[:, None])
                parts.append(np.nan_to_num(y, nan=0.0)[:, None])
        flat = np.ascontiguousarray(np.hstack(parts)) if parts else np.zeros((n_items, 0))
        vectors = [sp.csr_matrix(self.dense[n] if n in self.dense else self.sparse[n], dtype=np.float64)
                   for n in self.weights if n not in self.years]
        vec = sp.csr_matrix(sp.hstack(vectors, format="csr")) if vectors else sp.csr_matrix((n_items, 0))
        vec.eliminate_zeros()
        vec.sort_indices()
        classes: dict[bytes, int] = {}
        item_class = np.empty(n_items, np.int64)
        first = []
        for i in range(n_items):
            s, e = vec.indptr[i], vec.indptr[i + 1]
            key = flat[i].tobytes() + b"|" + vec.indices[s:e].tobytes() + b"|" + vec.data[s:e].tobytes()
            c = classes.setdefault(key, len(first))
            if c == len(first):
                first.append(i)
            item_class[i] = c
        return item_class, np.array(first, np.int64)

    def live_items(self) -> np.ndarray:
        """Items that can have a positive similarity to some item: those with every component
        (weighted product; a missing one gives 0) or with any component (weighted mean). A
        rated item outside this set is never a neighbour, a candidate outside it never has one."""
        present = []
        for name in self.weights:
            if name in self.years:
                present.append(~np.isnan(np.asarray(self.years[name], dtype=np.float64)))
            elif name in self.dense:
                present.append(np.any(np.asarray(self.dense[name]) != 0, axis=1))
            else:
                m = sp.csr_matrix(self.sparse[name])
                present.append(np.diff(m.indptr) > 0)
        stacked = np.vstack(present)
        return stacked.all(axis=0) if self.combine == "product" else stacked.any(axis=0)

    def _n_items(self) -> int:
        for group in (self.years, self.dense, self.sparse):
            for arr in group.values():
                return arr.shape[0]
        raise ValueError("no components")

    # state for save/load (arrays only)
    def to_state(self) -> tuple[dict, dict]:
        arrays, spec = {}, {"combine": self.combine, "year_scale": self.year_scale, "parts": []}
        for name, w in self.weights.items():
            if name in self.years:
                arrays[name] = self.years[name]
                kind = "year"
            elif name in self.dense:
                arrays[name] = self.dense[name]
                kind = "dense"
            else:
                arrays[name] = self.sparse[name]
                kind = "sparse"
            spec["parts"].append([name, kind, w])
        return arrays, spec


@register("ContentKNN")
class ContentKNN(Recommender):
    """Item k-NN over content similarity: rating prediction and content-based top-N.

    Parameters
    ----------
    k : int, default 40
        Largest number of rated items aggregated.
    components : dict[str, float], optional
        Feature name -> weight (default ``{"genres": 1.0, "year": 1.0}``, the course's choice).
    kinds : dict[str, str], optional
        How each feature is compared (see :class:`ContentSimilarity`).
    combine : {"product", "sum"}, default "product"
    year_scale : float, default 10
    fallback : {"baseline", "global_mean"}, default "baseline"
        Estimate used when no rated item has positive similarity (counted in the call's
        fallback log).
    ranking_shrinkage : float, default 0
        Support damping of the ranking score only (predictions unchanged): an item's estimate
        is shrunk toward the global mean by its number of training ratings :math:`n_i`,
        :math:`\\mu + (\\hat r_{ui} - \\mu)\\, n_i / (n_i + \\lambda)`, as the k-NN models'
        ``ranking_shrinkage`` (figures in docs/hardening.md).

    Examples
    --------
    >>> model = ContentKNN(components={"genres": 1.0})  # doctest: +SKIP
    >>> model.fit(train, item_features=features).predict(["85"], [1])  # doctest: +SKIP
    """

    capabilities: ClassVar[frozenset[str]] = frozenset({RATING, RANKING, SIMILAR_ITEMS, ITEM_FEATURES,
                                                       FOLD_IN})
    state = ("content_spec_", "user_bias_", "item_bias_", "train_ratings_")
    scores_from_history = True

    def __init__(self, k: int = 40, components: dict | None = None, kinds: dict | None = None,
                 combine: str = "product", year_scale: float = 10.0, fallback: str = "baseline",
                 ranking_shrinkage: float = 0.0):
        self.k = k
        self.ranking_shrinkage = ranking_shrinkage
        self.components = components
        self.kinds = kinds
        self.combine = combine
        self.year_scale = year_scale
        self.fallback = fallback

    def _fit(self, train: Interactions, *, item_features=None, validation=None) -> None:
        if not isinstance(item_features, ItemFeatures):
            raise TypeError("ContentKNN needs item_features as an ItemFeatures object")
        if item_features.item_map != train.item_map:
            raise ValueError("item_features must be aligned to the training item map")
        if self.fallback not in ("baseline", "global_mean"):
            raise ValueError("fallback must be 'baseline' or 'global_mean'")
        if int(self.k) < 1:
            raise ValueError("k must be >= 1")
        # the data's mean in double precision (Interactions.global_mean sums in float32)
        self.global_mean_ = float(np.mean(train.values, dtype=np.float64)) if train.nnz else 0.0
        sim = ContentSimilarity.from_features(item_features, self.components or {"genres": 1.0, "year": 1.0},
                                              self.kinds, self.combine, self.year_scale)
        arrays, spec = sim.to_state()
        self.content_spec_ = spec
        for name, arr in arrays.items():
            setattr(self, f"content_{name}_", arr)
        self.user_bias_, self.item_bias_ = als_baselines(train)
        self._set_similarity(sim)
        self.train_ratings_ = sp.csr_matrix(train.csr, dtype=np.float64)
        self.train_ratings_.sort_indices()

    def _state_names(self) -> tuple[str, ...]:
        return self.persisted_state() + tuple(f"content_{name}_" for name, _, _ in
                                              self.content_spec_["parts"])

    def _load_extra(self, directory, config: dict) -> None:
        """Rebuild the similarity (and its kernel arrays) from the loaded component arrays."""
        dense, sparse, years, weights = {}, {}, {}, {}
        for name, kind, w in self.content_spec_["parts"]:
            arr = getattr(self, f"content_{name}_")
            {"year": years, "dense": dense, "sparse": sparse}[kind][name] = arr
            weights[name] = float(w)
        self._set_similarity(ContentSimilarity(dense, sparse, years, weights,
                                               self.content_spec_["combine"],
                                               self.content_spec_["year_scale"]))

    def _set_similarity(self, sim: ContentSimilarity) -> None:
        self._similarity = sim
        self._kernel_arrays = sim.kernel_arrays()
        self._item_class, self._class_items = sim.feature_classes()
        self._live = sim.live_items()

    def _live_part(self, m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR arrays (int64 indptr and indices, float64 data) of ``m`` without the items that
        are never a neighbour: they have no positive similarity, so no estimate changes."""
        keep = self._live[m.indices]
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        counts = np.bincount(rows[keep], minlength=m.shape[0])
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return indptr, m.indices[keep].astype(np.int64), m.data[keep].astype(np.float64)

    def _fallback_values(self, user_bias: np.ndarray, i: np.ndarray) -> np.ndarray:
        if self.fallback == "global_mean":
            return np.full(i.shape, self.global_mean_)
        return self.global_mean_ + user_bias + self.item_bias_[i]

    def _fold_in_bias(self, h: sp.csr_matrix) -> np.ndarray:
        """User biases of history rows: the closed-form ALS user step (reg 15, as fitted)."""
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        resid = h.data - self.global_mean_ - self.item_bias_[h.indices]
        return np.bincount(rows, weights=resid, minlength=h.shape[0]) / (15.0 + np.diff(h.indptr))

    def _estimate(self, ratings: sp.csr_matrix, u: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Neighbourhood estimates for pairs (row ``u`` of ``ratings``, item ``i``) and the mask of
        pairs that have no neighbour (estimate 0); compiled, in parallel over pairs."""
        indptr, indices, data = self._live_part(ratings)
        with compiled():  # a Ctrl-C is raised after the kernel, not inside its result boxing
            est, ok = content_knn_pairs(np.asarray(u, np.int64), np.asarray(i, np.int64), indptr,
                                        indices, data, int(self.k), self._kernel_arrays)
        return est, ~ok

    def _predict(self, u: np.ndarray, i: np.ndarray, fallbacks: FallbackLog) -> np.ndarray:
        u = np.asarray(u, np.int64)
        i = np.asarray(i, np.int64)
        out, no_neighbour = self._estimate(self.train_ratings_, u, i)
        if no_neighbour.any():
            out[no_neighbour] = self._fallback_values(self.user_bias_[u[no_neighbour]], i[no_neighbour])
            fallbacks.count(f"no similar rated item: {self.fallback.replace('_', ' ')}",
                            int(no_neighbour.sum()))
        return out

    def _score(self, users: np.ndarray, history: History, fallbacks: FallbackLog) -> np.ndarray:
        """Predicted ratings of every item from the row's history; items with no similar rated
        item rank after all the items that have one (their fallback minus
        :data:`NO_NEIGHBOUR_PENALTY`), so that a user who rates low does not get a list of
        unpredictable items. A known user keeps its fitted bias, a new one folds it in.

        The estimates are computed by one compiled kernel from the feature arrays, once per row
        and class of items with identical features, in parallel over blocks of (row, class)
        pairs: memory is a few (rows x items) arrays of the batch."""
        users = np.asarray(users, np.int64)
        h = sp.csr_matrix(history.matrix, dtype=np.float64)
        h.sort_indices()
        bias = np.where(users >= 0, self.user_bias_[np.maximum(users, 0)], 0.0)
        if (users < 0).any():
            bias[users < 0] = self._fold_in_bias(h[np.flatnonzero(users < 0)])
        # one estimate per class of items with identical features, then spread to the items
        # classes whose items have no feature never have a neighbour
        classes = self._class_items
        live = self._live[classes]
        est_c = np.zeros((users.size, classes.size))
        ok_c = np.zeros((users.size, classes.size), bool)
        cand = classes[live]
        rows = np.repeat(np.arange(users.size, dtype=np.int64), cand.size)
        indptr, indices, data = self._live_part(h)
        with compiled():
            est_live, ok_live = content_knn_pairs(rows, np.tile(cand, users.size), indptr, indices,
                                                  data, int(self.k), self._kernel_arrays)
        est_c[:, live] = est_live.reshape(users.size, cand.size)
        ok_c[:, live] = ok_live.reshape(users.size, cand.size)
        est, ok = est_c[:, self._item_class], ok_c[:, self._item_class]
        lam = float(self.ranking_shrinkage)
        if lam > 0:  # support damping toward the global mean (see ranking_shrinkage)
            n_i = self.item_popularity_.astype(np.float64)
            est = self.global_mean_ + (est - self.global_mean_) * (n_i / (n_i + lam))[None, :]
        rows, items = np.nonzero(~ok)
        if rows.size:
            est[rows, items] = self._fallback_values(bias[rows], items) - NO_NEIGHBOUR_PENALTY
            fallbacks.count("ranking: no similar rated item, ranked last", int(rows.size))
        return est.astype(np.float32)

    def _similar(self, items: np.ndarray) -> np.ndarray:
        return self._similarity.block(items, np.arange(self.n_items_))

