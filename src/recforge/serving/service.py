"""What the endpoints do, apart from HTTP: queries built from raw ids, the store and the live
model version.

Every list goes through the model's own :meth:`~recforge.models.base.Recommender.recommend`
(which masks the row's history, the stoplist and non-candidates, and names each row's
fallback), except the next items of a session on a session model, which come from the model's
streaming interface (``init_state`` / ``advance``) with the session's state cached in-process
and rebuilt from the stored session events whenever the cache does not hold it or another
process has added to the session since.

A user's history is the training history of the live version's bundle (the interactions the
model was fitted on) followed by the user's stored events, so an event is reflected in that
user's next list at once: its item is excluded as seen, and models that score from histories
score it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict

import numpy as np

from ..models.base import SESSION, SIMILAR_ITEMS, Recommendations, Recommender
from ..topk import topk_rows
from .config import Settings
from .ids import known_ids, to_json_id, to_model_ids
from .rules import Explorer
from .store import Event, ShownList, Store, StoreError
from .versions import LiveVersion, ModelVersions, stoplist_for

logger = logging.getLogger(__name__)

#: How long the per-item exposure counts (impressions, clicks) read from the store are reused.
EXPOSURE_TTL_S = 5.0


class ServiceError(Exception):
    """A request the service cannot answer; ``status`` is the HTTP status, ``field`` the input
    at fault (when one is)."""

    def __init__(self, message: str, status: int = 422, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


class SessionCache:
    """Per-session streaming state of the live session model, least recently used dropped."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._states: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        entry = self._states.get(key)
        if entry is not None:
            self._states.move_to_end(key)
        return entry

    def put(self, key, entry) -> None:
        self._states[key] = entry
        self._states.move_to_end(key)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)


class Service:
    """The service's operations (see the module docstring)."""

    def __init__(self, settings: Settings, store: Store, versions: ModelVersions, metrics=None):
        self.settings = settings
        self.limits = settings.limits
        self.store = store
        self.versions = versions
        self.metrics = metrics
        self.sessions = SessionCache(settings.session_cache)
        self.rules = settings.rules
        self.exploration = settings.exploration
        self.explorer = Explorer(settings.exploration)
        self._exposure: tuple[float, dict] = (-1e18, {})
        self._exposure_lock = threading.Lock()
        self.log_failures = 0

    # ------------------------------------------------------------------ helpers
    def live(self) -> LiveVersion:
        lv = self.versions.live()
        if lv is None:
            raise ServiceError("no model version is live", status=503)
        return lv

    def _check_k(self, k: int) -> int:
        if not 1 <= k <= self.limits.max_k:
            raise ServiceError(f"k must be between 1 and {self.limits.max_k}, got {k}", field="k")
        return k

    def _check_list(self, name: str, values) -> list | None:
        if values is None:
            return None
        if len(values) > self.limits.max_history:
            raise ServiceError(f"{name} has {len(values)} entries; at most "
                               f"{self.limits.max_history} are accepted", field=name)
        return list(values)

    def _exclude(self, lv: LiveVersion, exclude) -> list | None:
        """The request's known excluded items plus the stoplist; ``None`` when there are none
        (the query then builds no stoplist rows)."""
        ids, _ = known_ids(exclude or [], lv.model.item_map_)
        out = ids + list(lv.stoplist)
        return out or None

    def _candidates(self, lv: LiveVersion, candidates):
        if candidates is None:
            return None
        ids, _ = known_ids(candidates, lv.model.item_map_)
        return ids

    def _items_out(self, lv: LiveVersion, rec: Recommendations, row: int = 0) -> list[dict]:
        out = []
        for item, score in zip(rec.items[row].tolist(), rec.scores[row].tolist(), strict=True):
            if item is None or not math.isfinite(score):
                continue
            entry = {"item": to_json_id(item), "score": float(score)}
            title = lv.title(item)
            if title is not None:
                entry["title"] = title
            out.append(entry)
        return out

    def _answer(self, lv: LiveVersion, rec: Recommendations, **head) -> dict:
        fallback = rec.fallback[0] if len(rec.fallback) else None
        if self.metrics is not None:
            for reason, n in rec.fallbacks.items():
                self.metrics.fallbacks.labels(kind=reason).inc(n)
        return {**head, "model_version": lv.version, "model": lv.model.name,
                "fallback": fallback, "notes": dict(rec.fallbacks),
                "items": self._items_out(lv, rec)}

    def _user_history(self, lv: LiveVersion, user: str):
        """The user's training rows then stored events: (item ids, values) in model ids, and
        the stored events' items that the model does not know (new items), as text."""
        model = lv.model
        items: list = []
        values: list = []
        if lv.bundle.history is not None:
            ti, tv, _ = lv.bundle.history.rows(user)
            items, values = ti.tolist(), tv.tolist()
        events = self.store.user_events(user, limit=self.limits.max_user_events)
        ids, known = to_model_ids([e.item for e in events], model.item_map_)
        items += ids[known].tolist()
        values += [e.value for e, k in zip(events, known, strict=True) if k]
        return items, values, [e.item for e, k in zip(events, known, strict=True) if not k]

    @staticmethod
    def _history_row(model: Recommender, items: list, values: list):
        """One query row's history in the form the model reads best: the ordered sequence for
        session models, ``{item: value}`` (later values win) for the others."""
        if SESSION in model.capabilities:
            return [list(items)]
        return [dict(zip(items, values, strict=True))]

    # ------------------------------------------------------------------ recommendations
    def recommend_user(self, user: str, k: int, exclude=None, candidates=None) -> dict:
        k = self._check_k(k)
        exclude = self._check_list("exclude", exclude)
        candidates = self._check_list("candidates", candidates)
        lv = self.live()
        model = lv.model
        items, values, unknown_items = self._user_history(lv, user)
        unknown = len(unknown_items)
        users = None
        user_map = getattr(model, "user_map_", None)
        if user_map is not None:
            ids, known = to_model_ids([user], user_map)
            if known[0]:
                users = ids[:1].tolist()
        recent = None
        if users is None and not items and self.rules.cold_start == "recent":
            recent = lv.recent_popularity(self.rules.cold_start_half_life)
        if recent is not None:
            rec = self._rank(lv, recent, k, exclude, candidates,
                             fallback="unknown user, no history: recent popularity")
        else:
            rec = lv.recommend(users, k, history=self._history_row(model, items, values),
                               exclude=self._exclude(lv, exclude),
                               candidates=self._candidates(lv, candidates))
        out = self._answer(lv, rec, user=user)
        if unknown:
            out["notes"]["stored event with an item the model does not know: skipped"] = unknown
        return self._present(lv, out, "/users/{user}/recommendations", k,
                             seen=items + unknown_items,
                             exclude=exclude, candidates=candidates, user=user)

    def recommend_history(self, history, k: int, exclude=None, candidates=None,
                          exclude_seen: bool = True, endpoint: str = "/recommendations") -> dict:
        """An anonymous row: ``history`` is a list of item ids or an ``{item: value}`` map."""
        k = self._check_k(k)
        history = self._check_list("history", history)
        exclude = self._check_list("exclude", exclude)
        candidates = self._check_list("candidates", candidates)
        lv = self.live()
        model = lv.model
        if history and isinstance(history[0], tuple):  # (item, value) pairs
            ids, known = to_model_ids([h[0] for h in history], model.item_map_)
            vals = [h[1] for h, ok in zip(history, known, strict=True) if ok]
        else:
            ids, known = to_model_ids(history, model.item_map_)
            vals = [1.0] * int(known.sum())
        rec = lv.recommend(None, k, history=self._history_row(model, ids[known].tolist(), vals),
                           exclude=self._exclude(lv, exclude),
                           candidates=self._candidates(lv, candidates),
                           exclude_seen=exclude_seen)
        out = self._answer(lv, rec)
        if (~known).any():
            out["notes"]["unknown item in history: dropped"] = int((~known).sum())
        return self._present(lv, out, endpoint, k, seen=[h[0] if isinstance(h, tuple) else h
                                                         for h in history],
                             exclude=exclude, candidates=candidates)

    def similar(self, item: str, k: int) -> dict:
        """Similar items: the model's item similarities; for an item the model does not know
        (a new item of the catalogue), or a model without similarities, the cosine of the
        bundle's item feature vectors when it has them."""
        k = self._check_k(k)
        lv = self.live()
        model = lv.model
        ids, known = to_model_ids([item], model.item_map_)
        features = lv.bundle.features
        if known[0] and SIMILAR_ITEMS in model.capabilities:
            banned = set(lv.stoplist)
            rec = model.similar_items(ids[:1].tolist(), k=k + len(banned))
            rec.fallback = np.full(1, None, dtype=object)
            out = self._answer(lv, rec, item=to_json_id(ids[0]))
            out["items"] = [e for e in out["items"] if e["item"] not in banned][:k]
            return self._present(lv, out, "/items/{item}/similar", k, explore=False)
        if features is not None and str(item) in features:
            reason = ("new item (no interactions): content similarity" if not known[0] else
                      f"{model.name} has no item similarities: content similarity")
            return self._content_similar(lv, str(item), k, reason)
        if SIMILAR_ITEMS not in model.capabilities and known[0]:
            raise ServiceError(f"the live model ({model.name}) has no item similarities",
                               status=409)
        if SIMILAR_ITEMS not in model.capabilities and features is None:
            raise ServiceError(f"the live model ({model.name}) has no item similarities",
                               status=409)
        raise ServiceError(f"item {item!r} is unknown to the live model"
                           + (" and has no item features" if features is not None else ""),
                           status=404, field="item")

    def _content_similar(self, lv: LiveVersion, item: str, k: int, reason: str) -> dict:
        features = lv.bundle.features
        banned = self._banned_text(lv, with_min_interactions=True)
        allowed = np.array([i not in banned for i in features.ids], dtype=bool)
        model = lv.model
        out_items = []
        for other, score in features.similar(item, k, allowed):
            ids, known = to_model_ids([other], model.item_map_)
            entry = {"item": to_json_id(ids[0]) if known[0] else other, "score": score}
            title = lv.title(other)
            if title is not None:
                entry["title"] = title
            out_items.append(entry)
        if self.metrics is not None:
            self.metrics.fallbacks.labels(kind=reason).inc()
        out = {"item": item, "model_version": lv.version, "model": model.name,
               "fallback": reason, "notes": {reason: 1}, "items": out_items}
        return self._present(lv, out, "/items/{item}/similar", k, explore=False)

    # ------------------------------------------------------------------ onboarding
    def onboarding_items(self, n: int) -> dict:
        """Items to offer someone without history: the cold-start list (recent popularity
        with ``cold_start = "recent"``, else the model's popularity), after the rules."""
        n = self._check_k(n)
        lv = self.live()
        scores = None
        if self.rules.cold_start == "recent":
            scores = lv.recent_popularity(self.rules.cold_start_half_life)
        rec = self._rank(lv, scores, n, None, None, fallback="onboarding: popularity")
        rec.fallback = np.full(1, None, dtype=object)
        rec.fallbacks = {}
        return self._present(lv, self._answer(lv, rec), "/onboarding", n, explore=False)

    def onboard(self, items: list, k: int, user: str | None = None) -> dict:
        """A list from a few picked items: with a ``user`` the picks are stored as that
        user's events first (their history from now on); otherwise an anonymous history."""
        self._check_k(k)
        items = self._check_list("items", items)
        if user is None:
            return self.recommend_history(items, k, endpoint="/onboarding")
        now = time.time()
        self.add_events([Event(item=str(i), user=str(user), value=1.0, timestamp=now)
                         for i in items])
        return self.recommend_user(str(user), k)

    # ------------------------------------------------------------------ exploration and log
    def _banned_text(self, lv: LiveVersion, with_min_interactions: bool = False) -> set:
        """Text ids never shown: the stoplist (with ``min_interactions`` when asked; without,
        as for exploration, which is there to show items with little evidence), and new items
        listed in, or with a title matching, the stoplist."""
        key = ("banned", with_min_interactions)
        cached = lv._cache.get(key)
        if cached is None:
            if with_min_interactions:
                base = lv.stoplist
            else:
                base = stoplist_for(lv.bundle, dataclasses.replace(self.rules, min_interactions=0),
                                    counts=lv._cache.get("counts"))
            cached = {str(x) for x in base} | {str(x) for x in self.rules.stoplist_items}
            words = [w.lower() for w in self.rules.stoplist_keywords if w.strip()]
            for new in lv.new_items():
                title = (lv.title(new) or "").lower()
                if any(w in title for w in words):
                    cached.add(new)
            if with_min_interactions and self.rules.min_interactions > 0:
                cached |= set(lv.new_items())
            lv._cache[key] = cached
        return cached

    def exposure(self) -> dict:
        """Per text item id: (impressions, clicks) from the store, reused for a few seconds."""
        with self._exposure_lock:
            at, stats = self._exposure
            if time.monotonic() - at > EXPOSURE_TTL_S:
                try:
                    stats = self.store.exposure()
                except StoreError as exc:
                    logger.warning("exposure counts unavailable: %s", exc)
                self._exposure = (time.monotonic(), stats)
            return stats

    def _pool(self, lv: LiveVersion, stats: dict) -> list[str]:
        """New and under-exposed items (text ids), the least shown first, at most
        ``max_pool``; the stoplist never. Rebuilt when the exposure counts are re-read."""
        cached = lv._cache.get("pool")
        if cached is not None and cached[0] is stats:
            return cached[1]
        banned = self._banned_text(lv)
        limit = self.exploration.min_impressions
        known = [str(x) for x in lv.model.item_map_.raw.tolist()]
        pool = [i for i in lv.new_items() + known
                if i not in banned and stats.get(i, (0, 0))[0] < limit]
        pool = self.explorer.least_shown(pool, stats, self.exploration.max_pool)
        lv._cache["pool"] = (stats, pool)
        return pool

    def _present(self, lv: LiveVersion, out: dict, endpoint: str, k: int, *, seen=(),
                 exclude=None, candidates=None, user=None, session=None,
                 explore: bool = True) -> dict:
        """Give the exploratory share of the slots to new or under-exposed items, then log the
        list as shown (when logging is on); marks exploratory entries and adds ``list_id``."""
        if not self.exploration.logging:
            return out
        greedy = {str(e["item"]): e for e in out["items"]}
        if explore and self.explorer.epsilon > 0:
            stats = self.exposure()
            skip = {str(x) for x in (seen or ())} | {str(x) for x in (exclude or ())}
            pool = [i for i in self._pool(lv, stats) if i not in skip]
            if candidates is not None:
                wanted = {str(c) for c in candidates}
                pool = [i for i in pool if i in wanted]
            items, explored, props = self.explorer.arrange(list(greedy), pool, k, stats)
        else:
            items = list(greedy)
            explored, props = [False] * len(items), [1.0] * len(items)
        entries = []
        for item, expl in zip(items, explored, strict=True):
            entry = greedy.get(item)
            if entry is None or expl:
                ids, known = to_model_ids([item], lv.model.item_map_)
                entry = {"item": to_json_id(ids[0]) if known[0] else item, "score": None}
                title = lv.title(item)
                if title is not None:
                    entry["title"] = title
            if expl:
                entry = {**entry, "exploratory": True}
            entries.append(entry)
        out["items"] = entries
        if self.metrics is not None and any(explored):
            self.metrics.exploratory.inc(sum(explored))
        shown = ShownList(uuid.uuid4().hex, endpoint, items,
                          [e["score"] for e in entries], explored, props,
                          self.explorer.policy if explore else "greedy",
                          user=None if user is None else str(user),
                          session=None if session is None else str(session),
                          model_version=lv.version)
        try:
            self.store.log_list(shown)
            out["list_id"] = shown.list_id
        except StoreError as exc:  # the list is still served; the log misses it
            self.log_failures += 1
            if self.metrics is not None:
                self.metrics.log_failures.inc()
            logger.warning("shown list not logged: %s", exc)
        return out

    # ------------------------------------------------------------------ sessions
    def session_click(self, session: str, item: str, k: int, *, value: float = 1.0,
                      timestamp: float | None = None, user: str | None = None, exclude=None,
                      candidates=None, exclude_seen: bool = False) -> dict:
        """Store the click, then return the session's next items."""
        k = self._check_k(k)
        exclude = self._check_list("exclude", exclude)
        candidates = self._check_list("candidates", candidates)
        lv = self.live()
        self.add_events([Event(item=str(item), user=user, session=session, value=float(value),
                               timestamp=time.time() if timestamp is None else float(timestamp))])
        events = self.store.session_events(session, limit=self.limits.max_user_events)
        model = lv.model
        ids, known = to_model_ids([e.item for e in events], model.item_map_)
        if SESSION not in model.capabilities:
            vals = [e.value for e, ok in zip(events, known, strict=True) if ok]
            rec = lv.recommend(None, k, history=self._history_row(model, ids[known].tolist(), vals),
                               exclude=self._exclude(lv, exclude),
                               candidates=self._candidates(lv, candidates),
                               exclude_seen=exclude_seen)
            return self._present(lv, self._answer(lv, rec, session=session, events=len(events)),
                                 "/sessions/{session_id}/events", k,
                                 seen=[e.item for e in events] if exclude_seen else (),
                                 exclude=exclude, candidates=candidates, user=user,
                                 session=session)
        inner = model.item_map_.to_inner(ids[known].tolist(), missing="mask") if known.any() \
            else np.empty(0, np.int64)
        scores = self._advance(lv, session, len(events), known, inner)
        rec = self._rank(lv, scores, k, exclude, candidates,
                         seen=inner if exclude_seen else None)
        return self._present(lv, self._answer(lv, rec, session=session, events=len(events)),
                             "/sessions/{session_id}/events", k,
                             seen=[e.item for e in events] if exclude_seen else (),
                             exclude=exclude, candidates=candidates, user=user, session=session)

    def _advance(self, lv: LiveVersion, session: str, n_events: int, known: np.ndarray,
                 inner: np.ndarray) -> np.ndarray | None:
        """Next-item scores (n_items,) after the session's events; None when it has no known
        item. Only the newest event is fed when the cached state has seen all the others."""
        model = lv.model
        key = (lv.version, session)
        with self.sessions.lock:
            entry = self.sessions.get(key)
            if entry is not None and entry["n"] == n_events - 1:
                state, scores, started = entry["state"], entry["scores"], entry["started"]
                feed = inner[-1:] if known[-1] else inner[:0]
            else:  # not cached here, or another process added events: rebuild from the store
                state, scores, started = model.init_state(1), None, False
                feed = inner
            for it in feed:
                scores = np.array(model.advance(state, np.array([it], dtype=np.int64),
                                                np.array([not started])), dtype=np.float32,
                                  copy=True)[0]
                started = True
            self.sessions.put(key, {"n": n_events, "state": state, "scores": scores,
                                    "started": started})
        return scores

    def _rank(self, lv: LiveVersion, scores: np.ndarray | None, k: int, exclude, candidates,
              seen=None, fallback: str | None = None) -> Recommendations:
        model = lv.model
        if scores is None:
            scores = np.asarray(model.item_popularity_, dtype=np.float32)
            fallback = fallback or "empty session (no known item): popularity"
        scores = np.array(scores, dtype=np.float32, copy=True)[None, :]
        banned, _ = known_ids(self._exclude(lv, exclude) or [], model.item_map_)
        if banned:
            scores[0, model.item_map_.to_inner(banned)] = -np.inf
        if seen is not None and len(seen):
            scores[0, np.asarray(seen, dtype=np.int64)] = -np.inf
        cand_ids = self._candidates(lv, candidates)
        if cand_ids is not None:
            keep = np.full(scores.shape, -np.inf, dtype=np.float32)
            cols = model.item_map_.to_inner(cand_ids) if cand_ids else np.empty(0, np.int64)
            keep[0, cols] = scores[0, cols]
            scores = keep
        idx, vals = topk_rows(scores, int(min(k, model.n_items_)))
        raw = model.item_map_.to_raw(np.where(idx >= 0, idx, 0)).astype(object)
        raw[idx < 0] = None
        return Recommendations(raw, vals, idx, np.array([fallback], dtype=object),
                               {fallback: 1} if fallback else {})

    # ------------------------------------------------------------------ events
    def add_events(self, events: list[Event]) -> dict:
        if len(events) > self.limits.max_batch:
            raise ServiceError(f"{len(events)} events in one batch; at most "
                               f"{self.limits.max_batch} are accepted", field="events")
        n = self.store.add_events(events)
        if self.metrics is not None:
            self.metrics.events.inc(n)
        return {"stored": n}

    def user_history(self, user: str, limit: int) -> dict:
        lv = self.versions.live()
        training = []
        if lv is not None and lv.bundle.history is not None:
            items, values, times = lv.bundle.history.rows(user)
            training = [{"item": to_json_id(i), "value": float(v)}
                        for i, v in zip(items.tolist(), values.tolist(), strict=True)]
            if times is not None:
                for entry, t in zip(training, times.tolist(), strict=True):
                    entry["timestamp"] = float(t)
        events = [{"item": e.item, "value": e.value, "timestamp": e.timestamp,
                   "session": e.session} for e in self.store.user_events(user, limit=limit)]
        if lv is not None and lv.bundle.titles:
            for entry in training + events:
                title = lv.title(entry["item"])
                if title is not None:
                    entry["title"] = title
        return {"user": user, "training": training, "events": events}
