"""The service's durable storage: events, session events and model-version records.

One small interface (:class:`Store`) and its SQLite implementation (:class:`SQLiteStore`).
Every write is committed before the call returns, so a request is acknowledged only once its
events are on disk: the database runs in WAL mode with ``synchronous=FULL`` (a commit is
fsynced), and each thread gets its own connection, so one file can be shared by several
worker threads and processes (SQLite serialises writers; ``busy_timeout`` makes a writer wait
for another instead of failing).

Ids are stored as text: raw ids arrive as strings in URLs and as strings or numbers in JSON
bodies, and the service maps them onto each model's id type when it builds a query.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT, session TEXT, item TEXT NOT NULL,
    value REAL NOT NULL, timestamp REAL NOT NULL, received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events (user, id) WHERE user IS NOT NULL;
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
"""


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


class SQLiteStore(Store):
    """:class:`Store` on one SQLite file in WAL mode, one connection per thread."""

    def __init__(self, path, timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = float(timeout)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self._conn()
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))
        found = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        if int(found) != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: store schema version {found}, this recforge reads "
                             f"{SCHEMA_VERSION}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _write(self, sql: str, rows) -> sqlite3.Cursor:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.executemany(sql, rows) if isinstance(rows, list) else conn.execute(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return cur

    # ------------------------------------------------------------------ events
    def add_events(self, events: Iterable[Event]) -> int:
        now = time.time()
        rows = [(e.user, e.session, e.item, float(e.value), float(e.timestamp), now)
                for e in events]
        if rows:
            self._write("INSERT INTO events (user, session, item, value, timestamp, received) "
                        "VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def _events(self, column: str, key: str, limit: int | None) -> list[Event]:
        sql = (f"SELECT item, user, session, value, timestamp FROM events WHERE {column} = ? "
               "ORDER BY id DESC")
        args: tuple = (key,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (key, int(limit))
        rows = self._conn().execute(sql, args).fetchall()
        return [Event(*row) for row in reversed(rows)]

    def user_events(self, user: str, limit: int | None = None) -> list[Event]:
        return self._events("user", user, limit)

    def session_events(self, session: str, limit: int | None = None) -> list[Event]:
        return self._events("session", session, limit)

    def count_events(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    # ------------------------------------------------------------------ model versions
    def add_version(self, path: str, model: str | None, digest: str | None, status: str,
                    message: str | None = None) -> VersionRecord:
        cur = self._write("INSERT INTO model_versions (path, model, digest, status, message, "
                          "created) VALUES (?, ?, ?, ?, ?, ?)",
                          (path, model, digest, status, message, time.time()))
        return self.version(int(cur.lastrowid))  # type: ignore[return-value]

    def versions(self) -> list[VersionRecord]:
        rows = self._conn().execute("SELECT * FROM model_versions ORDER BY version").fetchall()
        return [VersionRecord(*row) for row in rows]

    def version(self, version: int) -> VersionRecord | None:
        row = self._conn().execute("SELECT * FROM model_versions WHERE version = ?",
                                   (int(version),)).fetchone()
        return VersionRecord(*row) if row else None

    def record_index(self, version: int, info: dict) -> None:
        self._write("INSERT OR REPLACE INTO version_indexes (version, info, at) VALUES (?, ?, ?)",
                    (int(version), json.dumps(info), time.time()))

    def index_info(self, version: int) -> dict | None:
        row = self._conn().execute("SELECT info FROM version_indexes WHERE version = ?",
                                   (int(version),)).fetchone()
        return json.loads(row[0]) if row else None

    def promote(self, version: int) -> None:
        self._write("INSERT INTO promotions (version, at) VALUES (?, ?)", (int(version), time.time()))

    def live_version(self) -> int | None:
        row = self._conn().execute("SELECT version FROM promotions ORDER BY id DESC LIMIT 1").fetchone()
        return int(row[0]) if row else None

    def promotion_history(self) -> list[int]:
        return [int(r[0]) for r in self._conn().execute("SELECT version FROM promotions ORDER BY id")]

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
