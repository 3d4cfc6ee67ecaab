"""A throwaway Spark standalone cluster on 127.0.0.1: one master and N workers started from
pyspark's own launch script (``bin/spark-class``), torn down by process id.

Every daemon gets ``SPARK_LOCAL_IP=127.0.0.1`` and ``--host 127.0.0.1`` (its RPC port and web
UI bind there) and free ports picked on 127.0.0.1; logs and work directories live under one
temporary directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class StandaloneCluster:
    """``with StandaloneCluster(workers=2) as url: ...`` (``url``: ``spark://127.0.0.1:PORT``)."""

    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "1g",
                 timeout: float = 180.0):
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.timeout = timeout
        self.procs: list[subprocess.Popen] = []
        self.dir = Path(tempfile.mkdtemp(prefix="recforge-spark-cluster-"))
        self.url = ""

    def _env(self) -> dict:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2] / "src")
        env.update({"SPARK_LOCAL_IP": HOST, "SPARK_HOME": str(spark_home()),
                    "PYSPARK_PYTHON": sys.executable,
                    "PYTHONPATH": os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p),
                    "SPARK_LOG_DIR": str(self.dir / "logs"), "SPARK_NO_DAEMONIZE": "1",
                    "SPARK_DAEMON_MEMORY": "256m"})
        return env

    def _launch(self, name: str, args: list[str]) -> Path:
        log = self.dir / f"{name}.log"
        cmd = [str(spark_home() / "bin" / "spark-class"), *args]
        with open(log, "wb") as out:
            self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                               env=self._env(), cwd=self.dir))
        return log

    def _wait(self, log: Path, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if log.exists() and log.read_text(errors="replace").count(text) >= count:
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a Spark daemon exited early; see {self.dir}")
            time.sleep(0.5)
        raise TimeoutError(f"no {text!r} in {log} after {self.timeout:.0f} s")

    def start(self) -> str:
        port = free_port()
        master_log = self._launch("master", [
            "org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(port),
            "--webui-port", str(free_port())])
        self._wait(master_log, "I have been elected leader")
        self.url = f"spark://{HOST}:{port}"
        for w in range(self.workers):
            work = self.dir / f"work-{w}"
            work.mkdir()
            self._launch(f"worker-{w}", [
                "org.apache.spark.deploy.worker.Worker", "--host", HOST,
                "--port", str(free_port()), "--webui-port", str(free_port()),
                "--cores", str(self.cores), "--memory", self.memory,
                "--work-dir", str(work), self.url])
        self._wait(master_log, "Registering worker", self.workers)
        return self.url

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs.clear()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
