"""A real ``recforge serve`` process for the fault tests: started on a free port of
127.0.0.1, waited for until ``/ready`` answers, and stopped or killed by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``recforge serve MODEL_DIR ARGS...`` as a subprocess (its output in ``log``)."""

    def __init__(self, model_dir, *args: str, env: dict | None = None, log=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log) if log else None
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(SRC)] + ([environ["PYTHONPATH"]] if environ.get("PYTHONPATH") else []))
        environ.update(env or {})
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recforge.cli", "serve", str(model_dir), "--port", str(self.port),
             *args], env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ready(self, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"recforge serve exited with {self.proc.returncode}: "
                                   f"{self.log()}")
            try:
                resp = self.client.get("/ready")
                if resp.status_code == 200:
                    return resp.json()
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"recforge serve not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL the whole process group (server and workers): no shutdown code runs."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.client.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
