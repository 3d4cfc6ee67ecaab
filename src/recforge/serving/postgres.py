"""The :class:`~recforge.serving.store.Store` interface over PostgreSQL (psycopg 3).

``recforge serve --store postgresql://user@host/db`` selects it. The schema is the SQLite
store's (same tables and columns; ``BIGSERIAL`` ids, ``DOUBLE PRECISION`` reals), created at
first connection under an advisory lock so that several worker processes starting together do
not race. Every write runs in its own transaction and is committed before the call returns
(PostgreSQL's default ``synchronous_commit=on`` flushes the commit to the WAL), so an
acknowledged event is durable exactly as with SQLite. Each thread gets its own connection.

A server that cannot be reached or written raises :class:`~recforge.serving.store.StoreError`
(503 from the service), with the server's reason and the URL without its password. Needs the
``postgres`` extra (``pip install "psycopg[binary]"``).
"""

from __future__ import annotations

import json
import re
import threading
import time

from .store import SCHEMA_VERSION, SQLiteStore, StoreError, VersionRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id BIGSERIAL PRIMARY KEY,
    "user" TEXT, session TEXT, item TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL, "timestamp" DOUBLE PRECISION NOT NULL,
    received DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events ("user", id) WHERE "user" IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_session ON events (session, id) WHERE session IS NOT NULL;
CREATE TABLE IF NOT EXISTS model_versions (
    version BIGSERIAL PRIMARY KEY,
    path TEXT NOT NULL, model TEXT, digest TEXT,
    status TEXT NOT NULL, message TEXT, created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS version_indexes (
    version BIGINT PRIMARY KEY, info TEXT NOT NULL, at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS promotions (
    id BIGSERIAL PRIMARY KEY, version BIGINT NOT NULL, at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS impressions (
    id BIGSERIAL PRIMARY KEY,
    list_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, endpoint TEXT NOT NULL,
    "user" TEXT, session TEXT, model_version BIGINT, policy TEXT NOT NULL,
    position INTEGER NOT NULL, item TEXT NOT NULL, score DOUBLE PRECISION,
    exploratory INTEGER NOT NULL, propensity DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS impressions_item ON impressions (item);
"""

#: Key of the advisory lock held while the schema is created.
_SCHEMA_LOCK = 0x7265636667


def _safe_url(url: str) -> str:
    """The URL without its password (never in a message or a log)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _import_psycopg():
    try:
        import psycopg
    except ImportError:
        raise StoreError('a postgresql:// store needs psycopg: pip install "psycopg[binary]" '
                         "(the 'postgres' extra)") from None
    return psycopg


class PostgresStore(SQLiteStore):
    """:class:`~recforge.serving.store.Store` on a PostgreSQL database, one connection per
    thread. Shares the SQL of :class:`SQLiteStore` (written with ``?`` placeholders, turned
    into psycopg's ``%s`` here) except where the dialects differ."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.psycopg = _import_psycopg()
        self.url = str(url)
        self.path = _safe_url(self.url)  # what messages name
        self.timeout = float(timeout)
        self._local = threading.local()
        self._connections: list = []
        self._lock = threading.Lock()
        try:
            conn = self._conn()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                conn.execute(_SCHEMA)
                conn.execute("INSERT INTO meta VALUES ('schema_version', %s) "
                             "ON CONFLICT (key) DO NOTHING", (str(SCHEMA_VERSION),))
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except self.psycopg.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: store schema version {row and row[0]}, this recforge "
                             f"reads {SCHEMA_VERSION}")

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.psycopg.connect(self.url, autocommit=True,
                                        connect_timeout=max(1, int(self.timeout)))
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def _write(self, sql: str, rows):
        try:
            conn = self._conn()
            with conn.transaction():
                cur = conn.cursor()
                if isinstance(rows, list):
                    cur.executemany(self._sql(sql), rows)
                else:
                    cur.execute(self._sql(sql), rows)
        except self.psycopg.Error as exc:
            self._drop_broken()
            raise StoreError(f"the store {self.path} cannot be written: {exc}") from None
        return cur

    def _read(self, sql: str, args=()) -> list[tuple]:
        try:
            return self._conn().execute(self._sql(sql), args).fetchall()
        except self.psycopg.Error as exc:
            self._drop_broken()
            raise StoreError(f"the store {self.path} cannot be read: {exc}") from None

    def _drop_broken(self) -> None:
        """Forget this thread's connection when the server dropped it (the next call
        reconnects)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and (conn.closed or conn.broken):
            self._local.conn = None

    def add_version(self, path: str, model: str | None, digest: str | None, status: str,
                    message: str | None = None) -> VersionRecord:
        cur = self._write("INSERT INTO model_versions (path, model, digest, status, message, "
                          "created) VALUES (?, ?, ?, ?, ?, ?) RETURNING version",
                          (path, model, digest, status, message, time.time()))
        return self.version(int(cur.fetchone()[0]))  # type: ignore[return-value]

    def record_index(self, version: int, info: dict) -> None:
        self._write("INSERT INTO version_indexes (version, info, at) VALUES (?, ?, ?) "
                    "ON CONFLICT (version) DO UPDATE SET info = EXCLUDED.info, at = EXCLUDED.at",
                    (int(version), json.dumps(info), time.time()))

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1").fetchone()
            return True
        except self.psycopg.Error:
            self._drop_broken()
            return False

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except self.psycopg.Error:
                    pass
            self._connections.clear()
        self._local = threading.local()
