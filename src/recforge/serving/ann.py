"""Approximate nearest-neighbour retrieval for models whose scores are dot products.

A model with the ``EMBEDDINGS`` capability scores item ``i`` for a query row as
``query_vectors(row) . item_vectors()[i]`` (factor models: :math:`[p_u, 1, \\mu + b_u] \\cdot
[q_i, b_i, 1]`), so its top-k is a maximum-inner-product search over the item vectors. For a
large catalogue a faiss index answers that search without scoring every item:

* ``exact`` — every item scored by one float32 matrix-vector product (BLAS) and cut by the
  one-pass top-k of :func:`~recforge.topk.topk_rows`; the exact top-k, no faiss needed (faiss's
  ``IndexFlatIP`` computes the same products but took 4.3 ms per query at 100k items against
  2 ms here, its per-query result heap and ``IDSelector`` dominating);
* ``hnsw`` — ``IndexHNSWFlat`` on inner product, a navigable small-world graph (Malkov and
  Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
  Navigable Small World graphs", TPAMI 2018);
* ``ivf`` — ``IndexIVFFlat`` on inner product: items bucketed by k-means centroid, a query
  scans the ``nprobe`` buckets whose centroids score highest (Jégou et al., "Product
  quantization for nearest neighbor search", TPAMI 2011, section on the inverted file).

The search knob that trades speed for recall (HNSW ``efSearch``, IVF ``nprobe``) is sized by
measurement when the index is built: doubled from a small value until recall@10 against exact
search reaches ``target_recall`` on a sample of known users' query vectors; the recall then
recorded is measured on a second, disjoint sample. ``auto`` uses the model's own scoring (exact)
below ``threshold`` items and HNSW above it.

:class:`Retriever` answers a query row as :meth:`Recommender.recommend` does — the row's seen
items, the exclude list, the stoplist and the candidates respected — the excluded items left out
inside the index by a faiss ``IDSelector`` (fetching more only when the index returns too few;
``exact`` sets their scores to ``-inf``);
candidate lists are scored exactly (their vectors against the query). Rows the model cannot
score (an unknown user without history) take the model's own popularity fallback. So the lists equal the exact ones up
to the index's misses.

faiss (``faiss-cpu``, in the ``serve`` extra) is imported only here and only when an index is
built; without it ``hnsw``/``ivf`` raise :class:`AnnUnavailable` and ``auto`` serves with the
model's own (exact) scoring.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..models.base import EMBEDDINGS, Recommendations, Recommender
from ..topk import topk_rows

logger = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "exact", "hnsw", "ivf")


class AnnUnavailable(ValueError):
    """An index that cannot be built here (faiss missing, or a model without vectors)."""


def import_faiss():
    """The faiss module, or :class:`AnnUnavailable` saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise AnnUnavailable("approximate nearest-neighbour indexes need faiss: pip install "
                             "'recforge[serve]' (or faiss-cpu); without it only exact search "
                             "serves (index = \"auto\" or the model's own scoring)") from None
    return faiss


@dataclass
class AnnSettings:
    """How a model version's index is chosen and sized (``[ann]`` in the service config)."""

    index: str = "auto"           # auto | exact | hnsw | ivf
    threshold: int = 50_000       # auto: the model's own scoring below this many items, HNSW above
    target_recall: float = 0.95   # recall@10 the search knob is sized for
    hnsw_m: int = 32              # graph degree
    hnsw_ef_construction: int = 100
    hnsw_ef_search: int = 0       # 0: sized by measured recall
    ivf_nlist: int = 0            # 0: about 4 sqrt(n_items) buckets
    ivf_nprobe: int = 0           # 0: sized by measured recall
    recall_queries: int = 500     # known users per sample (one sample sizes, another measures)
    seed: int = 0

    def check(self, where: str = "ann") -> AnnSettings:
        if self.index not in INDEX_KINDS:
            raise ValueError(f"{where}: index must be one of {', '.join(INDEX_KINDS)}, "
                             f"got {self.index!r}")
        if not 0.0 < float(self.target_recall) <= 1.0:
            raise ValueError(f"{where}: target_recall must be in (0, 1], got {self.target_recall!r}")
        for name in ("threshold", "hnsw_m", "hnsw_ef_construction", "recall_queries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{where}: {name} must be a positive integer, got {v!r}")
        for name in ("hnsw_ef_search", "ivf_nlist", "ivf_nprobe", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{where}: {name} must be an integer >= 0, got {v!r}")
        return self


@dataclass
class IndexInfo:
    """What was built for a version: recorded in the store and shown by ``GET /models``."""

    requested: str
    kind: str                      # exact | hnsw | ivf | model (the model's own scoring)
    n_items: int = 0
    params: dict = field(default_factory=dict)
    recall_at_10: float | None = None
    build_s: float | None = None
    note: str | None = None

    def to_dict(self) -> dict:
        return {"requested": self.requested, "kind": self.kind, "n_items": self.n_items,
                "params": dict(self.params), "recall@10": self.recall_at_10,
                "build_s": self.build_s, "note": self.note}


# ---------------------------------------------------------------------- indexes and recall
def exact_topk(queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` item indices per query by inner product (numpy, in blocks)."""
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for s in range(0, queries.shape[0], 64):
        scores = queries[s:s + 64] @ vectors.T
        idx, _ = topk_rows(np.ascontiguousarray(scores, dtype=np.float32), k)
        out[s:s + 64] = idx
    return out


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of ``truth`` present in the same row of ``found``."""
    hits = [len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits) / truth.shape[1]) if len(hits) else 1.0


def build_index(kind: str, vectors: np.ndarray, settings: AnnSettings):
    """A faiss inner-product index of ``kind`` over ``vectors`` (float32, C order), with its
    construction parameters; the search knob is set by :func:`size_search`."""
    faiss = import_faiss()
    n, d = vectors.shape
    if kind == "exact":
        index = faiss.IndexFlatIP(d)
        index.add(vectors)
        return index, {}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(settings.hnsw_m), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(settings.hnsw_ef_construction)
        index.add(vectors)
        return index, {"M": int(settings.hnsw_m), "efConstruction": int(settings.hnsw_ef_construction)}
    if kind == "ivf":
        nlist = int(settings.ivf_nlist) or max(1, int(round(4 * np.sqrt(n))))
        nlist = min(nlist, n)
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(settings.seed)
        train = vectors if n <= 64 * nlist else vectors[rng.choice(n, 64 * nlist, replace=False)]
        index.cp.min_points_per_centroid = 1  # small catalogues: no warning, it still trains
        index.train(train)
        index.add(vectors)
        return index, {"nlist": nlist}
    raise ValueError(f"unknown index kind {kind!r} (known: exact, hnsw, ivf)")


def _set_knob(index, kind: str, value: int) -> dict:
    if kind == "hnsw":
        index.hnsw.efSearch = int(value)
        return {"efSearch": int(value)}
    if kind == "ivf":
        index.nprobe = int(value)
        return {"nprobe": int(value)}
    return {}


def size_search(index, kind: str, queries: np.ndarray, truth: np.ndarray,
                settings: AnnSettings, n_items: int) -> dict:
    """Set the search knob: the configured value, else the smallest power of two (from 16 for
    HNSW, 1 for IVF) reaching ``target_recall`` on ``queries`` (capped at the catalogue)."""
    if kind == "exact":
        return {}
    fixed = settings.hnsw_ef_search if kind == "hnsw" else settings.ivf_nprobe
    if fixed:
        return _set_knob(index, kind, fixed)
    value = 16 if kind == "hnsw" else 1
    limit = n_items if kind == "hnsw" else index.nlist
    while True:
        params = _set_knob(index, kind, min(value, limit))
        _, found = index.search(queries, truth.shape[1])
        if recall_at(found, truth) >= settings.target_recall or value >= limit:
            return params
        value *= 2


def query_samples(model: Recommender, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Query vectors of two disjoint random samples of up to ``size`` known users each (items'
    own vectors when the model has no users): one sizes the search knob, one measures."""
    rng = np.random.default_rng(seed)
    n_users = int(getattr(model, "n_users_", 0) or 0)
    pool = n_users if n_users else int(model.n_items_)
    picked = rng.permutation(pool)[:2 * size]
    half = (picked.size + 1) // 2
    out = []
    for part in (picked[:half], picked[half:] if picked.size > 1 else picked[:half]):
        part = np.sort(part)
        vec = model.query_vectors(part.astype(np.int32), None) if n_users \
            else model.item_vectors()[part]
        out.append(np.ascontiguousarray(vec, dtype=np.float32))
    return out[0], out[1]


def measure_index(index, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """recall@k of ``index`` against exact inner-product search on ``queries``."""
    k = min(k, vectors.shape[0])
    truth = exact_topk(queries, vectors, k)
    _, found = index.search(queries, k)
    return recall_at(found, truth)


# ---------------------------------------------------------------------- retrieval
class Retriever:
    """Top-k lists of an ``EMBEDDINGS`` model through a faiss index (module docstring)."""

    def __init__(self, model: Recommender, index, kind: str, vectors: np.ndarray):
        self.model = model
        self.index = index
        self.kind = kind
        self.vectors = vectors
        self._faiss = None if kind == "exact" else import_faiss()

    def search(self, query: np.ndarray, n: int, banned: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items of one query, leaving out ``banned`` inside the index (a faiss
        ``IDSelector``), so a user's seen items cost no over-fetch."""
        if self.kind == "exact":
            scores = self.vectors @ query[0]
            if banned is not None and banned.size:
                scores[banned] = -np.inf
            ids, vals = topk_rows(scores[None, :], int(n))
            return vals[0], ids[0]
        # the OpenMP thread count is per calling thread: set it in the request's thread
        faiss = self._faiss
        faiss.omp_set_num_threads(1)
        if banned is None or banned.size == 0:
            scores, ids = self.index.search(query, int(n))
            return scores[0], ids[0]
        batch = faiss.IDSelectorBatch(np.ascontiguousarray(banned, dtype=np.int64))
        selector = faiss.IDSelectorNot(batch)
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector,
                                                efSearch=max(int(self.index.hnsw.efSearch), int(n)))
        elif self.kind == "ivf":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=int(self.index.nprobe))
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self.index.search(query, int(n), params=params)
        return scores[0], ids[0]

    def recommend(self, users=None, k: int = 10, *, history=None, exclude=None, candidates=None,
                  exclude_seen: bool = True) -> Recommendations:
        """One query row, as :meth:`Recommender.recommend` answers it (raw ids in and out)."""
        model = self.model
        u, hist, ex, cand, log = model.make_query(users, history, exclude, candidates)
        if u.size != 1 or not model._scorable(u, hist)[0]:
            rec = model.recommend_inner(u, k, history=hist, exclude=ex, candidates=cand,
                                        exclude_seen=exclude_seen, fallbacks=log)
            return model._with_raw_ids(rec)
        n_items = model.n_items_
        k_eff = int(min(k, n_items))
        query = np.ascontiguousarray(model.query_vectors(u, hist), dtype=np.float32)
        banned = np.empty(0, dtype=np.int64)
        if exclude_seen:
            banned = hist.matrix.indices.astype(np.int64)
        if ex is not None:
            banned = np.union1d(banned, ex.indices)
        if cand is not None:
            cols = np.setdiff1d(cand.indices, banned)
            scores = self.vectors[cols] @ query[0] if cols.size else np.empty(0, np.float32)
            top = np.argsort(-scores, kind="stable")[:k_eff]
            idx, vals = cols[top], scores[top].astype(np.float32)
        else:
            fetch = int(min(n_items, k_eff))
            while True:
                vals, idx = self.search(query, fetch, banned)
                ok = idx >= 0  # banned items are never returned (selector / -inf)
                if ok.sum() >= k_eff or fetch >= n_items:
                    break
                fetch = int(min(n_items, 2 * fetch))
            idx, vals = idx[ok][:k_eff], vals[ok][:k_eff]
        out_idx = np.full((1, k_eff), -1, dtype=np.int32)
        out_val = np.full((1, k_eff), -np.inf, dtype=np.float32)
        out_idx[0, :idx.size] = idx
        out_val[0, :idx.size] = vals
        return model._with_raw_ids(Recommendations(None, out_val, out_idx, log.row, log.as_dict()))


def build_retriever(model: Recommender, requested: str, settings: AnnSettings
                    ) -> tuple[Retriever | None, IndexInfo]:
    """The index ``requested`` for ``model`` (``auto`` resolved by catalogue size), built,
    its search knob sized and its recall@10 measured; ``(None, info)`` when the model's own
    scoring serves. Raises :class:`AnnUnavailable` for an explicit index that cannot be built."""
    n = int(model.n_items_)
    if requested not in INDEX_KINDS:
        raise ValueError(f"index must be one of {', '.join(INDEX_KINDS)}, got {requested!r}")
    has_vectors = EMBEDDINGS in model.capabilities
    kind = requested
    if requested == "auto":
        if not has_vectors:
            return None, IndexInfo(requested, "model", n, note="no item vectors (EMBEDDINGS)")
        if n < settings.threshold:
            return None, IndexInfo(requested, "model", n,
                                   note=f"{n} items < threshold {settings.threshold}")
        try:
            import_faiss()
        except AnnUnavailable:
            logger.warning("index auto: faiss is not installed; exact search serves %d items", n)
            return None, IndexInfo(requested, "model", n, note="faiss not installed")
        kind = "hnsw"
    elif not has_vectors:
        raise AnnUnavailable(f"index {requested!r} needs a model with item vectors (EMBEDDINGS); "
                             f"{model.name} has none: use index \"auto\"")
    start = time.perf_counter()
    vectors = np.ascontiguousarray(model.item_vectors(), dtype=np.float32)
    if kind == "exact":
        info = IndexInfo(requested, kind, n, {}, 1.0, round(time.perf_counter() - start, 3))
        return Retriever(model, None, kind, vectors), info
    faiss = import_faiss()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building: every core
    try:
        index, params = build_index(kind, vectors, settings)
        tune, check = query_samples(model, settings.recall_queries, settings.seed)
        kk = min(10, n)
        params.update(size_search(index, kind, tune, exact_topk(tune, vectors, kk), settings, n))
        build_s = time.perf_counter() - start
        recall = measure_index(index, vectors, check, kk)
    finally:
        # serving: one query per request, requests in parallel threads; OpenMP threads per
        # query only contend with them (a flat search over 100k items took 19 ms with 2 OpenMP
        # threads on a busy 2-core machine, 4 ms with 1)
        faiss.omp_set_num_threads(1)
    info = IndexInfo(requested, kind, n, params, round(recall, 4), round(build_s, 3))
    logger.info("index %s over %d items: recall@10 %.3f, built in %.1f s (%s)", kind, n, recall,
                build_s, params)
    return Retriever(model, index, kind, vectors), info
