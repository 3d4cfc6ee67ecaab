"""A throwaway PostgreSQL cluster for the store tests: initdb into a temporary folder, a server
on 127.0.0.1 and a free port, removed at the end. PostgreSQL refuses to run as root, so as
root the cluster belongs to ``nobody`` and its commands run through ``runuser``."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_DIRS = [os.environ.get("RECFORGE_PG_BIN", ""), "/usr/lib/postgresql/17/bin",
            "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/14/bin"]


def find_bin() -> Path | None:
    for d in BIN_DIRS:
        if d and (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``Cluster.start()`` -> a running server (``url``), or raises ``RuntimeError`` saying why
    it cannot run here; ``stop()`` removes it."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="recforge-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        self.user = pwd.getpwuid(os.getuid()).pw_name
        if os.getuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and runuser is missing: PostgreSQL "
                                   "refuses to run as root")
            self.user = "nobody"
            self.prefix = [runuser, "-u", "nobody", "--"]
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, "nobody")
        self.url = f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        proc = subprocess.run(self.prefix + list(args), capture_output=True, text=True,
                              timeout=120, cwd=self.dir)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {proc.stderr.strip()[-500:]}")

    def start(self) -> Cluster:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  self.user, "--no-sync", "-E", "UTF8")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.dir / "log"), "-w", "-t", "60", "-o",
                  f"-k {self.dir} -h 127.0.0.1 -p {self.port} -F", "start")
        return self

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def new_database(self, name: str) -> str:
        """A fresh database on the cluster; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"
