"""Model versions: register a saved directory, check it, promote it, roll back.

A version is registered from a directory inside the models root (a path that resolves outside
it — ``..``, an absolute path elsewhere, a symlink out — is refused). Registering loads the
bundle (every checksum verified by :func:`~recforge.serving.bundle.load_bundle`) and runs a
warm-up query; a directory that fails either is recorded as ``rejected`` with the reason and
never serves. Promoting swaps the live reference under a lock once the new version is loaded,
so a request sees either the old model or the new one, never a half-loaded one. The store holds
the promotion history, which makes rollback (the version live before the current one) and
sharing one live version between worker processes possible: each worker checks the store at
most every ``refresh_seconds`` and swaps when another worker promoted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..models.base import SESSION, SIMILAR_ITEMS, ModelFileError
from .ann import AnnSettings, AnnUnavailable, IndexInfo, Retriever, build_retriever, import_faiss
from .bundle import Bundle, load_bundle
from .config import Rules
from .store import Store, StoreError, VersionRecord

logger = logging.getLogger(__name__)


#: Test hook (fault-injection tests only): ``STEP:VERSION:FILE`` makes
#: :meth:`ModelVersions.promote` of VERSION write this process's id to FILE and sleep at STEP
#: (``loaded``: the version is loaded and checked, its promotion not yet recorded;
#: ``recorded``: recorded in the store, this process not yet switched to it), so that a test
#: can kill the process at exactly that point.
PAUSE_ENV = "RECFORGE_TEST_PAUSE_PROMOTION"

#: Seconds before a process tries again to load a live version that failed to load.
RETRY_FAILED_SECONDS = 30.0


def _test_pause(step: str, version: int) -> None:
    hook = os.environ.get(PAUSE_ENV)
    if not hook:
        return
    at, wanted, path = hook.split(":", 2)
    if at != step or int(wanted) != version:
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(f"{os.getpid()}\n")
    os.replace(partial, target)
    logger.warning("test hook %s: promotion paused at %r in process %d", PAUSE_ENV, step,
                   os.getpid())
    time.sleep(120)


class VersionError(Exception):
    """A version request that cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


@dataclass
class LiveVersion:
    """A loaded, checked version, ready to serve."""

    version: int
    bundle: Bundle
    stoplist: list = field(default_factory=list)  # raw item ids (model type) never recommended
    retriever: Retriever | None = None  # the ANN index, when one serves this version
    index: IndexInfo | None = None
    revision: int = 0  # in-memory revisions made by background partial_fit updates
    updated: dict = field(default_factory=dict)  # what the latest update absorbed
    _cache: dict = field(default_factory=dict, repr=False)

    def recent_popularity(self, half_life: float):
        """Recency-weighted training popularity (cached per half-life), or None."""
        from .rules import recent_popularity

        key = ("recent", float(half_life))
        if key not in self._cache:
            self._cache[key] = recent_popularity(self.bundle, half_life)
        return self._cache[key]

    def new_items(self) -> list[str]:
        """Catalogue items (titles, item features) the model does not know: text ids."""
        if "new" not in self._cache:
            from .ids import to_model_ids

            catalogue = sorted(set(self.bundle.titles or ()) |
                               set(self.bundle.features.ids if self.bundle.features else ()))
            _, known = to_model_ids(catalogue, self.model.item_map_)
            self._cache["new"] = [c for c, k in zip(catalogue, known.tolist(), strict=True)
                                  if not k]
        return self._cache["new"]

    @property
    def model(self):
        return self.bundle.model

    def recommend(self, users=None, k: int = 10, **query):
        """One query row's top-k: through the version's index when it has one, else the
        model's own :meth:`~recforge.models.base.Recommender.recommend`."""
        if self.retriever is not None:
            return self.retriever.recommend(users, k, **query)
        return self.bundle.model.recommend(users, k, **query)

    def title(self, item) -> str | None:
        titles = self.bundle.titles
        return None if titles is None else titles.get(str(item))


def stoplist_for(bundle: Bundle, rules: Rules, counts: np.ndarray | None = None) -> list:
    """The model's raw item ids banned by ``rules``: listed ids, title keywords, and the
    popularity rules (``min_interactions``, ``max_popularity_percent``) over ``counts``
    (training interactions per inner item; default: counted in the bundle)."""
    from .ids import known_ids
    from .rules import popularity_filter, training_counts

    model = bundle.model
    banned, _ = known_ids(rules.stoplist_items, model.item_map_)
    if rules.min_interactions > 0 or rules.max_popularity_percent > 0:
        counts = training_counts(bundle) if counts is None else counts
        cut = popularity_filter(counts, rules.min_interactions, rules.max_popularity_percent)
        if cut.size:
            banned = sorted(set(banned) | set(model.item_map_.to_raw(cut).tolist()), key=str)
    words = [w.lower() for w in rules.stoplist_keywords if w.strip()]
    if words and bundle.titles:
        by_title = [item for item, title in bundle.titles.items()
                    if any(w in title.lower() for w in words)]
        more, _ = known_ids(by_title, model.item_map_)
        banned = sorted(set(banned) | set(more), key=str)
    return banned


def warm_up(bundle: Bundle) -> None:
    """One query of each kind the model answers; raises if any fails or returns nonsense."""
    model = bundle.model
    if model.n_items_ < 1:
        raise ValueError("the model knows no items")
    first = model.item_map_.raw[:1].tolist()
    if SESSION in model.capabilities:
        rec = model.recommend(history=[first], k=1, exclude_seen=False)
        state = model.init_state(1)
        scores = model.advance(state, np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool))
        if np.asarray(scores).shape != (1, model.n_items_):
            raise ValueError(f"advance() returned scores of shape {np.asarray(scores).shape}")
    elif getattr(model, "user_map_", None) is not None and len(model.user_map_):
        hist = None
        if bundle.history is not None:
            items, values, _ = bundle.history.rows(str(model.user_map_.raw[0]))
            hist = [dict(zip(items.tolist(), values.tolist(), strict=True))]
        rec = model.recommend(model.user_map_.raw[:1], k=1, history=hist)
    else:
        rec = model.recommend(history=[first], k=1)
    if rec.inner.shape[0] != 1:
        raise ValueError("the warm-up query returned no row")
    if SIMILAR_ITEMS in model.capabilities:
        model.similar_items(first, k=1)


class ModelVersions:
    """The service's model versions (see the module docstring)."""

    def __init__(self, root, store: Store, rules: Rules | None = None,
                 refresh_seconds: float = 1.0, keep_loaded: int = 3,
                 ann: AnnSettings | None = None):
        self.root = Path(root).resolve()
        self.ann = (ann or AnnSettings()).check()
        self.store = store
        self.rules = rules or Rules()
        self.refresh_seconds = float(refresh_seconds)
        self.keep_loaded = int(keep_loaded)
        self._lock = threading.Lock()
        self._loaded: dict[int, LiveVersion] = {}
        self._live: LiveVersion | None = None
        self._checked_at = 0.0
        self._switching = threading.Lock()  # held while a version promoted elsewhere loads
        self._failed: dict[int, float] = {}  # version -> when its load may be tried again

    # ------------------------------------------------------------------ paths
    def resolve(self, path) -> Path:
        """``path`` (relative to the root, or absolute) as a directory inside the root."""
        p = Path(path)
        full = (p if p.is_absolute() else self.root / p).resolve()
        if full == self.root or not full.is_relative_to(self.root):
            raise VersionError(f"path {str(path)!r} is outside the models root", status=422)
        return full

    # ------------------------------------------------------------------ loading
    def _check_index(self, index: str | None) -> str:
        """The index kind asked for (the configured default when None); an ANN kind (hnsw,
        ivf) without faiss installed is refused here, before anything loads."""
        index = self.ann.index if index is None else index
        try:
            AnnSettings(**{**self.ann.__dict__, "index": index}).check("index")
            if index in ("hnsw", "ivf"):
                import_faiss()
        except ValueError as exc:
            raise VersionError(str(exc), status=422) from None
        return index

    def _load(self, version: int, path: Path, index: str) -> LiveVersion:
        bundle = load_bundle(path)
        try:
            warm_up(bundle)
        except Exception as exc:
            raise ModelFileError(f"{path}: warm-up query failed ({type(exc).__name__}: {exc})") from None
        lv = LiveVersion(version, bundle, stoplist_for(bundle, self.rules))
        try:  # the index is built and its recall measured before the version can serve
            lv.retriever, lv.index = build_retriever(bundle.model, index, self.ann)
        except AnnUnavailable as exc:
            raise VersionError(f"{path}: {exc}", status=422) from None
        return lv

    def _remember(self, lv: LiveVersion) -> None:
        with self._lock:
            self._loaded[lv.version] = lv
            keep = {lv.version} | ({self._live.version} if self._live else set())
            for v in sorted(self._loaded):
                if len(self._loaded) <= self.keep_loaded:
                    break
                if v not in keep:
                    del self._loaded[v]

    def register(self, path, index: str | None = None) -> VersionRecord:
        """Load and check the directory, build its retrieval ``index`` (``auto``, ``exact``,
        ``hnsw``, ``ivf``; default: the configured one); record it as ``ready`` with the
        index's kind, recall and build time (or ``rejected`` and raise)."""
        full = self.resolve(path)
        rel = str(full.relative_to(self.root))
        index = self._check_index(index)
        try:
            lv = self._load(0, full, index)
        except ModelFileError as exc:
            self.store.add_version(rel, None, None, "rejected", str(exc))
            raise VersionError(str(exc)) from None
        bundle = lv.bundle
        for rec in self.store.versions():
            if rec.status == "ready" and rec.path == rel and rec.digest == bundle.digest:
                lv.version = rec.version
                self._record_index(lv)
                self._remember(lv)
                return rec
        rec = self.store.add_version(rel, bundle.model.name, bundle.digest, "ready")
        lv.version = rec.version
        self._record_index(lv)
        self._remember(lv)
        return rec

    def _record_index(self, lv: LiveVersion) -> None:
        """Record the index measured for an already registered version; a store that cannot be
        written (read-only, full) keeps the previous record, and the version still serves."""
        try:
            self.store.record_index(lv.version, lv.index.to_dict())
        except StoreError as exc:
            logger.warning("version %s: index not recorded (%s)", lv.version, exc)

    def _get(self, version: int) -> LiveVersion:
        lv = self._loaded.get(version)
        if lv is not None:
            return lv
        rec = self.store.version(version)
        if rec is None:
            raise VersionError(f"no model version {version}", status=404)
        if rec.status != "ready":
            raise VersionError(f"model version {version} was rejected: {rec.message}", status=409)
        recorded = self.store.index_info(version) or {}
        index = self._check_index(recorded.get("requested"))
        try:
            lv = self._load(version, self.resolve(rec.path), index)
        except ModelFileError as exc:
            raise VersionError(f"model version {version} no longer loads: {exc}", status=409) from None
        if lv.bundle.digest != rec.digest:
            raise VersionError(f"model version {version}: {rec.path} changed since it was "
                               "registered (digest differs); register it again", status=409)
        self._remember(lv)
        return lv

    def promote(self, version: int) -> LiveVersion:
        """Make ``version`` live: load and check it first, record the promotion in the store
        (the one step that decides what every worker, and a restarted service, serves), then
        swap this process's reference. Promoting the live version again records nothing."""
        lv = self._get(int(version))
        _test_pause("loaded", lv.version)
        with self._lock:
            if self.store.live_version() != lv.version:
                self.store.promote(lv.version)
                _test_pause("recorded", lv.version)
            self._live = lv
            self._checked_at = time.monotonic()
        logger.info("model version %d (%s) is live", lv.version, lv.bundle.path)
        return lv

    def rollback(self) -> LiveVersion:
        """Promote the version that was live before the current one."""
        history = self.store.promotion_history()
        current = history[-1] if history else None
        for v in reversed(history[:-1]):
            if v != current:
                return self.promote(v)
        raise VersionError("no earlier version to roll back to", status=409)

    def swap_revision(self, old: LiveVersion, new: LiveVersion) -> bool:
        """Replace the live ``old`` by ``new`` (a revision of the same version, already
        checked) in one step; False, and nothing changed, when ``old`` is no longer live."""
        with self._lock:
            if self._live is not old:
                return False
            self._live = new
            self._loaded[new.version] = new
        return True

    # ------------------------------------------------------------------ the live version
    def live(self) -> LiveVersion | None:
        """The live version; follows promotions made by other processes sharing the store.

        Never blocks a request on a load once something is live: a version promoted elsewhere
        is loaded (index built, warm-up run) by one background thread while the current one
        keeps serving, then swapped in. Only a process with nothing live yet (a worker starting)
        loads in the calling thread, and then one caller at a time: the others get ``None``
        (``/ready`` answers 503) instead of queueing behind the same load.
        """
        now = time.monotonic()
        if now - self._checked_at >= self.refresh_seconds:
            self._checked_at = now
            try:
                wanted = self.store.live_version()
            except Exception:  # the store is unavailable: keep serving what we have
                logger.exception("cannot read the live version from the store")
                wanted = None
            if wanted is not None and (self._live is None or wanted != self._live.version) \
                    and not self._switching.locked() \
                    and now >= self._failed.get(wanted, float("-inf")):
                if self._live is None:
                    self._switch(wanted)
                else:
                    threading.Thread(target=self._switch, args=(wanted,), daemon=True,
                                     name=f"load-version-{wanted}").start()
        return self._live

    def _switch(self, wanted: int) -> None:
        """Load ``wanted`` and make it this process's live version (one load at a time); a
        version that fails is retried after ``RETRY_FAILED_SECONDS``."""
        if not self._switching.acquire(blocking=False):
            return
        try:
            lv = self._get(wanted)
            self._failed.pop(wanted, None)
            with self._lock:  # a promotion made here meanwhile wins over this older wish
                if self._live is not None and self.store.live_version() != wanted:
                    return
                self._live = lv
            logger.info("model version %d (promoted elsewhere) is live here", wanted)
        except VersionError as exc:
            self._failed[wanted] = time.monotonic() + RETRY_FAILED_SECONDS
            logger.error("cannot switch to live version %s: %s", wanted, exc)
        except StoreError as exc:  # tried again at the next refresh
            logger.error("cannot switch to live version %s: %s", wanted, exc)
        finally:
            self._switching.release()
