"""Background updates: an ``INCREMENTAL`` live model absorbs the stored events.

Every ``[updates] interval_s`` seconds a thread reads the events stored since the last update
(the first time: those received after the version was registered, the ones its bundle cannot
hold) and, when there are at least ``min_events``, calls ``partial_fit`` on a *copy* of the
live model — never on the one serving. The copy is checked with the same warm-up query as a
new version, and, when the live version is still the one it was copied from, swapped in at once
as a new in-memory revision of that version (``GET /models`` shows it under ``updates``,
``/metrics`` as ``recforge_model_revision``). A failure (in ``partial_fit``, the check, the
store) is logged and counted (``recforge_model_updates_total{outcome="failed"}``); the live
model goes on serving and the same events are tried again next time.

Revisions live in the process: a restarted service (or another worker) starts from the bundle
and absorbs the stored events again, so every process converges on the same model.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
import time

import numpy as np

from ..data.interactions import Interactions
from ..models.base import INCREMENTAL
from .versions import LiveVersion, ModelVersions, stoplist_for, warm_up

logger = logging.getLogger(__name__)


class Updater:
    """Absorbs stored events into the live INCREMENTAL model (see the module docstring)."""

    def __init__(self, versions: ModelVersions, store, settings, rules, metrics=None,
                 ann=None):
        self.versions = versions
        self.store = store
        self.settings = settings
        self.rules = rules
        self.metrics = metrics
        self.ann = ann
        self.failures = 0
        self.applied = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the thread
    def start(self) -> None:
        if self.settings.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="recforge-updates", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.interval_s):
            self.run_once()

    # ------------------------------------------------------------------ one update
    def status(self) -> dict:
        return {"interval_s": self.settings.interval_s, "min_events": self.settings.min_events,
                "applied": self.applied, "failures": self.failures,
                "last_error": self.last_error}

    def run_once(self) -> str:
        """One update; returns what happened: ``not incremental``, ``no live version``,
        ``too few events``, ``applied``, ``discarded`` or ``failed``."""
        with self._lock:
            try:
                outcome = self._update()
            except Exception as exc:  # never let the thread die; the live model keeps serving
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.exception("background model update failed")
                outcome = "failed"
            if self.metrics is not None and outcome in ("applied", "failed", "discarded"):
                self.metrics.updates.labels(outcome=outcome).inc()
            return outcome

    def _update(self) -> str:
        lv = self.versions.live()
        if lv is None:
            return "no live version"
        if INCREMENTAL not in lv.model.capabilities:
            return "not incremental"
        # where this loaded revision stands: a version loaded afresh (a rollback and back, a
        # restart) starts again from its registration and absorbs every event since
        after = lv._cache.get("cursor", lv.updated.get("last_event_id", 0))
        received_after = None
        if after == 0:
            rec = self.store.version(lv.version)
            received_after = rec.created if rec is not None else None
        rows = self.store.events_after(after, limit=self.settings.max_events,
                                       received_after=received_after)
        if len(rows) < self.settings.min_events:
            return "too few events"
        model = lv.model
        user_map = getattr(model, "user_map_", None)
        users, items, events = [], [], []
        for _, e in rows:  # ids that cannot be of the model's id type are skipped
            item = _as_type(e.item, model.item_map_.raw.dtype)
            user = e.user if e.user is not None else f"session:{e.session}"
            user = _as_type(user, user_map.raw.dtype) if user_map is not None else user
            if item is not None and user is not None:
                users.append(user)
                items.append(item)
                events.append(e)
        if not events:
            lv._cache["cursor"] = rows[-1][0]
            return "too few events"
        new = Interactions.from_arrays(users, items, values=[e.value for e in events],
                                       timestamps=[e.timestamp for e in events])
        started = time.perf_counter()
        fresh = copy.deepcopy(model)
        fresh.partial_fit(new)
        bundle = dataclasses.replace(lv.bundle, model=fresh)
        warm_up(bundle)
        counts = _grown_counts(lv, fresh, new)
        candidate = LiveVersion(lv.version, bundle, stoplist_for(bundle, self.rules, counts),
                                revision=lv.revision + 1)
        candidate._cache["counts"] = counts
        if lv.retriever is not None:
            from .ann import build_retriever

            candidate.retriever, candidate.index = build_retriever(
                fresh, lv.index.requested if lv.index else "auto", self.ann)
        else:
            candidate.index = lv.index
        candidate.updated = {"events": len(events), "skipped": len(rows) - len(events),
                             "total_events":
                             lv.updated.get("total_events", 0) + len(events),
                             "last_event_id": rows[-1][0], "at": time.time(),
                             "seconds": round(time.perf_counter() - started, 4)}
        if not self.versions.swap_revision(lv, candidate):
            return "discarded"
        self.applied += 1
        self.last_error = None
        if self.metrics is not None:
            self.metrics.revision.set(candidate.revision)
        logger.info("model version %d: revision %d absorbed %d events", lv.version,
                    candidate.revision, len(events))
        return "applied"


def _as_type(value, dtype):
    """A stored id (text) as the model's id type: int for int64 id maps (None when it cannot
    be one), text otherwise."""
    if dtype.kind not in "iu":
        return str(value)
    from .ids import _as_int

    return _as_int(value)


def _grown_counts(lv: LiveVersion, fresh, new: Interactions) -> np.ndarray:
    """Training interactions per inner item of the updated model: the previous counts (the
    bundle's, or the last revision's) plus the absorbed events."""
    from .rules import training_counts

    before = lv._cache.get("counts")
    if before is None:
        before = training_counts(lv.bundle)
    counts = np.zeros(fresh.n_items_)
    counts[:before.size] = before
    inner = fresh.item_map_.to_inner(new.item_map.raw[new.items])
    np.add.at(counts, inner, 1)
    return counts
