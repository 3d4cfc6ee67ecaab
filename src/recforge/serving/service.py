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

import math
import threading
import time
from collections import OrderedDict

import numpy as np

from ..models.base import SESSION, SIMILAR_ITEMS, Recommendations, Recommender
from ..topk import topk_rows
from .config import Settings
from .ids import known_ids, to_json_id, to_model_ids
from .store import Event, Store
from .versions import LiveVersion, ModelVersions


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

    def _exclude(self, lv: LiveVersion, exclude) -> list:
        ids, _ = known_ids(exclude or [], lv.model.item_map_)
        return ids + list(lv.stoplist)

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
        """The user's training rows then stored events: (item ids, values) in model ids."""
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
        return items, values, int((~known).sum())

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
        items, values, unknown = self._user_history(lv, user)
        users = None
        user_map = getattr(model, "user_map_", None)
        if user_map is not None:
            ids, known = to_model_ids([user], user_map)
            if known[0]:
                users = ids[:1].tolist()
        rec = lv.recommend(users, k, history=self._history_row(model, items, values),
                           exclude=self._exclude(lv, exclude),
                           candidates=self._candidates(lv, candidates))
        out = self._answer(lv, rec, user=user)
        if unknown:
            out["notes"]["stored event with an item the model does not know: skipped"] = unknown
        return out

    def recommend_history(self, history, k: int, exclude=None, candidates=None,
                          exclude_seen: bool = True) -> dict:
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
        return out

    def similar(self, item: str, k: int) -> dict:
        k = self._check_k(k)
        lv = self.live()
        model = lv.model
        if SIMILAR_ITEMS not in model.capabilities:
            raise ServiceError(f"the live model ({model.name}) has no item similarities",
                               status=409)
        ids, known = to_model_ids([item], model.item_map_)
        if not known[0]:
            raise ServiceError(f"item {item!r} is unknown to the live model", status=404,
                               field="item")
        banned = set(lv.stoplist)
        rec = model.similar_items(ids[:1].tolist(), k=k + len(banned))
        rec.fallback = np.full(1, None, dtype=object)
        out = self._answer(lv, rec, item=to_json_id(ids[0]))
        out["items"] = [e for e in out["items"] if e["item"] not in banned][:k]
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
            return self._answer(lv, rec, session=session, events=len(events))
        inner = model.item_map_.to_inner(ids[known].tolist(), missing="mask") if known.any() \
            else np.empty(0, np.int64)
        scores = self._advance(lv, session, len(events), known, inner)
        rec = self._rank(lv, scores, k, exclude, candidates,
                         seen=inner if exclude_seen else None)
        return self._answer(lv, rec, session=session, events=len(events))

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
              seen=None) -> Recommendations:
        model = lv.model
        fallback = None
        if scores is None:
            scores = np.asarray(model.item_popularity_, dtype=np.float32)
            fallback = "empty session (no known item): popularity"
        scores = np.array(scores, dtype=np.float32, copy=True)[None, :]
        banned, _ = known_ids(self._exclude(lv, exclude), model.item_map_)
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
