"""The service's durable storage: events, session events and model-version records.

One small interface (:class:`Store`), its SQLite implementation (:class:`SQLiteStore`) and
:func:`open_store`, which opens a SQLite file or, for a ``postgresql://`` URL, the same schema
on PostgreSQL (:class:`~recforge.serving.postgres.PostgresStore`). Besides events and model
versions the store keeps every shown list slot by slot (:class:`ShownList`: position, item,
whether the slot was exploratory, its propensity) for offline evaluation.
Every write is committed before the call returns, so a request is acknowledged only once its
events are on disk: the database runs in WAL mode with ``synchronous=FULL`` (a commit is
fsynced), and each thread gets its own connection, so one file can be shared by several
worker threads and processes (SQLite serialises writers; ``busy_timeout`` makes a writer wait
for another instead of failing).

A store that cannot be written (a read-only file or directory, a full disk, a lock held past
the timeout) raises :class:`StoreError`, which the service answers with 503: reads go on, and
a write is either committed or refused, never half done.

Ids are stored as text: raw ids arrive as strings in URLs and as strings or numbers in JSON
bodies, and the service maps them onto each model's id type when it builds a query.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: Test hook (fault-injection tests only): when set to ``1``, every connection opens the file
#: read-only (SQLite's ``mode=ro``), as if the file could not be written; it stands in for
#: ``chmod a-w`` where that has no effect (the superuser writes read-only files anyway).
READ_ONLY_ENV = "RECFORGE_TEST_STORE_READ_ONLY"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    "user" TEXT, session TEXT, item TEXT NOT NULL,
    value REAL NOT NULL, "timestamp" REAL NOT NULL, received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events ("user", id) WHERE "user" IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_session ON events (session, id) WHERE session IS NOT NULL;
CREATE TABLE IF NOT EXISTS model_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL, model TEXT, digest TEXT,
    status TEXT NOT NULL, message TEXT, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS version_indexes (
    version INTEGER PRIMARY KEY, info TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, version INTEGER NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS impressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    list_id TEXT NOT NULL, at REAL NOT NULL, endpoint TEXT NOT NULL,
    "user" TEXT, session TEXT, model_version INTEGER, policy TEXT NOT NULL,
    position INTEGER NOT NULL, item TEXT NOT NULL, score REAL,
    exploratory INTEGER NOT NULL, propensity REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS impressions_item ON impressions (item);
"""


class StoreError(Exception):
    """The store cannot do what was asked (not writable, disk full, locked, unreadable); the
    message names the store file and SQLite's reason."""


@dataclass(frozen=True)
class Event:
    """One interaction as stored: a user's and/or a session's item, with value and time."""

    item: str
    user: str | None = None
    session: str | None = None
    value: float = 1.0
    timestamp: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


#: The columns of a logged slot, in order (see :meth:`Store.log_list`).
IMPRESSION_COLUMNS = ("id", "list_id", "at", "endpoint", "user", "session", "model_version",
                      "policy", "position", "item", "score", "exploratory", "propensity")
#: The same in SQL (``user`` is a reserved word in PostgreSQL, so it is always quoted).
_IMPRESSION_SQL = ", ".join(f'"{c}"' if c == "user" else c for c in IMPRESSION_COLUMNS)


@dataclass
class ShownList:
    """A list as it was shown: the items by position, which slots were exploratory and the
    propensity of each slot (the probability that the policy put that item in that slot, given
    the slots before it), so the list can be evaluated offline (inverse propensity scoring)."""

    list_id: str
    endpoint: str
    items: list[str]
    scores: list[float | None]
    exploratory: list[bool]
    propensities: list[float]
    policy: str
    user: str | None = None
    session: str | None = None
    model_version: int | None = None
    at: float = 0.0

    def rows(self) -> list[tuple]:
        """One row per slot (the columns of :data:`IMPRESSION_COLUMNS` after ``id``)."""
        at = self.at or time.time()
        return [(self.list_id, at, self.endpoint, self.user, self.session, self.model_version,
                 self.policy, pos, str(item), score, int(bool(expl)), float(p))
                for pos, (item, score, expl, p) in enumerate(zip(
                    self.items, self.scores, self.exploratory, self.propensities, strict=True))]


@dataclass(frozen=True)
class VersionRecord:
    """A model version known to the service: where it is, what it is and whether it passed."""

    version: int
    path: str
    model: str | None
    digest: str | None
    status: str  # "ready" (passed the checks) or "rejected" (never served)
    message: str | None
    created: float


class Store:
    """What the service needs from storage. Every write is durable when the call returns."""

    def add_events(self, events: Iterable[Event]) -> int:
        """Store ``events`` in one transaction; return how many were stored."""
        raise NotImplementedError

    def user_events(self, user: str, limit: int | None = None) -> list[Event]:
        """The user's events in arrival order (the latest ``limit`` when given)."""
        raise NotImplementedError

    def session_events(self, session: str, limit: int | None = None) -> list[Event]:
        """The session's events in arrival order (the latest ``limit`` when given)."""
        raise NotImplementedError

    def count_events(self) -> int:
        raise NotImplementedError

    def events_after(self, after_id: int, limit: int = 10000,
                     received_after: float | None = None) -> list[tuple[int, Event]]:
        """``(id, event)`` of the events stored after event ``after_id`` (and, when given,
        received after that unix time), oldest first, at most ``limit``."""
        raise NotImplementedError

    def log_list(self, shown: ShownList) -> None:
        """Record a shown list, one row per slot (durable when the call returns)."""
        raise NotImplementedError

    def impressions(self, after_id: int = 0, limit: int | None = None) -> list[dict]:
        """Logged slots after row ``after_id``, oldest first, as dicts of
        :data:`IMPRESSION_COLUMNS` (``exploratory`` a bool)."""
        raise NotImplementedError

    def exposure(self) -> dict[str, tuple[int, int]]:
        """Per item (text id): (times shown, events stored) — impressions and clicks."""
        raise NotImplementedError

    def add_version(self, path: str, model: str | None, digest: str | None, status: str,
                    message: str | None = None) -> VersionRecord:
        raise NotImplementedError

    def versions(self) -> list[VersionRecord]:
        raise NotImplementedError

    def version(self, version: int) -> VersionRecord | None:
        raise NotImplementedError

    def record_index(self, version: int, info: dict) -> None:
        """Record what retrieval index a version was built with (kind, recall, build time)."""
        raise NotImplementedError

    def index_info(self, version: int) -> dict | None:
        """The latest :meth:`record_index` of ``version``, or None."""
        raise NotImplementedError

    def promote(self, version: int) -> None:
        """Record ``version`` as the live one (the newest promotion is live)."""
        raise NotImplementedError

    def live_version(self) -> int | None:
        raise NotImplementedError

    def promotion_history(self) -> list[int]:
        """Promoted versions, oldest first."""
        raise NotImplementedError

    def ping(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _impression(row) -> dict:
    out = dict(zip(IMPRESSION_COLUMNS, row, strict=True))
    out["exploratory"] = bool(out["exploratory"])
    out["id"] = int(out["id"])
    return out


def open_store(spec: str, **kw) -> Store:
    """The store named by ``spec``: a ``postgresql://`` (or ``postgres://``) URL opens a
    :class:`~recforge.serving.postgres.PostgresStore`, anything else is a SQLite file path."""
    text = str(spec)
    if text.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(text, **kw)
    return SQLiteStore(text, **kw)


class SQLiteStore(Store):
    """:class:`Store` on one SQLite file in WAL mode, one connection per thread."""

    def __init__(self, path, timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = float(timeout)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            conn = self._conn()
            try:
                with conn:
                    conn.executescript(_SCHEMA)
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION),))
            except sqlite3.OperationalError as exc:
                # a store that cannot be written still serves reads, if it was set up before
                logger.warning("%s: store opened without write access (%s)", self.path, exc)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: store schema version {row and row[0]}, this recforge "
                             f"reads {SCHEMA_VERSION}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            target, uri = self.path, False
            if os.environ.get(READ_ONLY_ENV) == "1":
                target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
            conn = sqlite3.connect(target, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False, uri=uri)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _write(self, sql: str, rows) -> sqlite3.Cursor:
        """One statement (or one per row of a list) in its own transaction, committed (and,
        with ``synchronous=FULL``, on disk) before returning; :class:`StoreError` otherwise."""
        try:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = (conn.executemany(sql, rows) if isinstance(rows, list)
                       else conn.execute(sql, rows))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"the store {self.path} cannot be written: {exc}") from None
        return cur

    def _read(self, sql: str, args=()) -> list[tuple]:
        try:
            return self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"the store {self.path} cannot be read: {exc}") from None

    # ------------------------------------------------------------------ events
    def add_events(self, events: Iterable[Event]) -> int:
        now = time.time()
        rows = [(e.user, e.session, e.item, float(e.value), float(e.timestamp), now)
                for e in events]
        if rows:
            self._write('INSERT INTO events ("user", session, item, value, "timestamp", received) '
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def _events(self, column: str, key: str, limit: int | None) -> list[Event]:
        sql = (f'SELECT item, "user", session, value, "timestamp" FROM events WHERE "{column}" = ? '
               "ORDER BY id DESC")
        args: tuple = (key,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (key, int(limit))
        rows = self._read(sql, args)
        return [Event(*row) for row in reversed(rows)]

    def user_events(self, user: str, limit: int | None = None) -> list[Event]:
        return self._events("user", user, limit)

    def session_events(self, session: str, limit: int | None = None) -> list[Event]:
        return self._events("session", session, limit)

    def count_events(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM events")[0][0])

    def events_after(self, after_id: int, limit: int = 10000,
                     received_after: float | None = None) -> list[tuple[int, Event]]:
        rows = self._read('SELECT id, item, "user", session, value, "timestamp" FROM events '
                          "WHERE id > ? AND received > ? ORDER BY id LIMIT ?",
                          (int(after_id), float(received_after or 0.0), int(limit)))
        return [(int(r[0]), Event(*r[1:])) for r in rows]

    def log_list(self, shown: ShownList) -> None:
        rows = shown.rows()
        if rows:
            self._write(f"INSERT INTO impressions ({_IMPRESSION_SQL.split(', ', 1)[1]}) "
                        f"VALUES ({', '.join('?' * (len(IMPRESSION_COLUMNS) - 1))})", rows)

    def impressions(self, after_id: int = 0, limit: int | None = None) -> list[dict]:
        sql = f"SELECT {_IMPRESSION_SQL} FROM impressions WHERE id > ? ORDER BY id"
        args: tuple = (int(after_id),)
        if limit is not None:
            sql += " LIMIT ?"
            args += (int(limit),)
        return [_impression(r) for r in self._read(sql, args)]

    def exposure(self) -> dict[str, tuple[int, int]]:
        shown = dict(self._read("SELECT item, COUNT(*) FROM impressions GROUP BY item"))
        clicks = dict(self._read("SELECT item, COUNT(*) FROM events GROUP BY item"))
        return {item: (int(shown.get(item, 0)), int(clicks.get(item, 0)))
                for item in set(shown) | set(clicks)}

    # ------------------------------------------------------------------ model versions
    def add_version(self, path: str, model: str | None, digest: str | None, status: str,
                    message: str | None = None) -> VersionRecord:
        cur = self._write("INSERT INTO model_versions (path, model, digest, status, message, "
                          "created) VALUES (?, ?, ?, ?, ?, ?)",
                          (path, model, digest, status, message, time.time()))
        return self.version(int(cur.lastrowid))  # type: ignore[return-value]

    def versions(self) -> list[VersionRecord]:
        rows = self._read("SELECT * FROM model_versions ORDER BY version")
        return [VersionRecord(*row) for row in rows]

    def version(self, version: int) -> VersionRecord | None:
        rows = self._read("SELECT * FROM model_versions WHERE version = ?", (int(version),))
        return VersionRecord(*rows[0]) if rows else None

    def record_index(self, version: int, info: dict) -> None:
        self._write("INSERT OR REPLACE INTO version_indexes (version, info, at) VALUES (?, ?, ?)",
                    (int(version), json.dumps(info), time.time()))

    def index_info(self, version: int) -> dict | None:
        rows = self._read("SELECT info FROM version_indexes WHERE version = ?", (int(version),))
        return json.loads(rows[0][0]) if rows else None

    def promote(self, version: int) -> None:
        self._write("INSERT INTO promotions (version, at) VALUES (?, ?)", (int(version), time.time()))

    def live_version(self) -> int | None:
        rows = self._read("SELECT version FROM promotions ORDER BY id DESC LIMIT 1")
        return int(rows[0][0]) if rows else None

    def promotion_history(self) -> list[int]:
        return [int(r[0]) for r in self._read("SELECT version FROM promotions ORDER BY id")]

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def export_impressions(store: Store, path, after_id: int = 0, batch: int = 10000) -> int:
    """Write the log of shown lists (one row per slot, :data:`IMPRESSION_COLUMNS`) to ``path``:
    JSON lines for ``.jsonl``, Parquet for ``.parquet``; returns the number of rows."""
    path = Path(path)
    if path.suffix not in (".jsonl", ".parquet"):
        raise ValueError(f"{path}: export as .jsonl or .parquet")
    rows: list[dict] = []
    while True:
        page = store.impressions(after_id=after_id, limit=batch)
        rows.extend(page)
        if len(page) < batch:
            break
        after_id = page[-1]["id"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")
    else:
        import pandas as pd

        pd.DataFrame(rows, columns=list(IMPRESSION_COLUMNS)).to_parquet(path, index=False)
    return len(rows)
