"""SIGINT / SIGTERM stop ``recforge bakeoff`` within seconds, also inside a compiled k-NN kernel
and inside torch training, and never touch the previous results (real subprocesses)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recforge.cli.main import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def previous(tmp_path, capsys, ratings_csv) -> tuple[Path, dict]:
    """An earlier, complete bake-off in ``out/`` (and its files' digests)."""
    out = tmp_path / "out"
    assert main(["bakeoff", "--dataset", str(ratings_csv), "--protocol", "loo", "--models",
                 "MostPopular", "--out", str(out), "-q", "--formats", "json", "csv"]) == 0
    capsys.readouterr()
    return out, _digest(out)


def _run_and_signal(argv, marker: str, delay: float, sig=signal.SIGINT, timeout=240):
    """Start ``recforge argv``; ``delay`` s after ``marker`` appears on stderr send ``sig``;
    returns (exit code, seconds from the signal to the exit, stderr)."""
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NUMBA_NUM_THREADS="2", OMP_NUM_THREADS="2")
    proc = subprocess.Popen([sys.executable, "-m", "recforge.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read():
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), "".join(lines)[-3000:]
        time.sleep(delay)
        assert proc.poll() is None, "finished before the signal: " + "".join(lines)[-2000:]
        sent = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    return code, took, "".join(lines)


KNN_TOML = """
[dataset]
name = "synthetic"
options = { n_users = 2500, n_items = 1500, n_ratings = 250000, seed = 1 }
[[protocols]]
type = "loo"
[[models]]
name = "MostPopular"
[[models]]
name = "KNNBaseline"
params = { k = 40 }
"""


@pytest.mark.parametrize("sig, expected", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_inside_the_compiled_knn_kernel(tmp_path, previous, sig, expected):
    out, before = previous
    cfg = tmp_path / "knn.toml"
    cfg.write_text(KNN_TOML)
    # the similarity is logged after it is computed: scoring (the k-NN kernel) runs next
    code, took, err = _run_and_signal(["bakeoff", str(cfg), "--out", str(out), "-v"],
                                      "KNNBaseline: user msd similarity", 0.8, sig)
    assert code == expected, err[-3000:]
    assert took < 5.0
    assert "Traceback" not in err and "SystemError" not in err
    assert _digest(out) == before  # the previous results, byte for byte
    partial = out.with_name("out.partial")  # MostPopular finished: kept, clearly named
    assert (partial / "results.json").is_file()
    assert "interrupted" in err and str(partial) in err


def test_sigint_while_a_torch_model_trains(tmp_path, previous):
    out, before = previous
    code, took, err = _run_and_signal(
        ["bakeoff", "--dataset", "synthetic-sessions", "--models", "GRU4Rec",
         "--param", "GRU4Rec.layers=[8]", "--param", "GRU4Rec.n_sample=0",
         "--param", "GRU4Rec.n_epochs=50", "--out", str(out), "-v"],
        "session next-item", 2.0)
    assert code == 130, err[-3000:]
    assert took < 5.0
    assert "Traceback" not in err
    assert _digest(out) == before
