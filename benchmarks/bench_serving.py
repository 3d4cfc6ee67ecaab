"""The HTTP service under load, nearest-neighbour recall, and a soak with durable events.

Prints one JSON object per line:

* ``{"name": "serve_top10", "model", "index", "clients", "p50_ms", "p99_ms", "rps", "errors"}``
  — ``GET /users/{user}/recommendations?k=10`` for random known users, from 1 sequential client
  and 4 and 16 concurrent ones (threads, each with its own keep-alive ``http.client``
  connection; latency measured per request by the client). Models:

  - ``factor-100k``: an :class:`~recforge.models.factorization.svd.SVD` (biased MF) with 64
    factors over a synthetic catalogue of 100,000 items and 20,000 users. It is fitted for one
    epoch on synthetic interactions (so every fitted attribute is real), then its factors are
    set from random vectors with a decaying spectrum (scale of factor j proportional to
    1/sqrt(j+1)) around 256 cluster centres, and saved as a bundle (``load_model`` reads it back);
    index ``exact`` is faiss ``IndexFlatIP``, ``hnsw`` / ``ivf`` are sized for recall@10 >= 0.95;
  - ``itemknn-mls``: :class:`~recforge.models.neighborhood.topn.ItemKNNTopN` (k=20) on
    ml-latest-small (skipped when the data are absent); index ``exact`` is the model's own
    scoring (it has no item vectors).

* ``{"name": "ann_recall", "items": 100000|1000000, "index", "recall@10", "build_s"}`` — the
  index alone (no service) over the same kind of vectors, recall against exact search on
  500 queries not used to size it;
* ``{"name": "soak", "seconds": 60, "requests", "errors", "events_acked", "events_stored"}`` —
  4 clients for 60 s, each request a read or (one in four) a ``POST /events`` with a token;
  afterwards every acknowledged event is looked up in the SQLite store.

A ``{"name": "machine", ...}`` line gives the CPU count and load average before and after.

The service runs as ``recforge serve`` (one uvicorn worker) in a subprocess on 127.0.0.1 and a
free port. ``--quick`` is a smoke run (small catalogue, short phases, no 1M index).

Usage::

    PYTHONPATH=src python benchmarks/bench_serving.py            # everything (about 15 min)
    PYTHONPATH=src python benchmarks/bench_serving.py --quick
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def shared_data() -> Path:
    return Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


# ---------------------------------------------------------------------- models
def spectrum_vectors(n: int, d: int, rng: np.random.Generator, n_clusters: int = 256) -> np.ndarray:
    """Random vectors around cluster centres, factor j scaled by 1/sqrt(j+1)."""
    centres = rng.normal(size=(n_clusters, d))
    x = centres[rng.integers(0, n_clusters, n)] + 0.7 * rng.normal(size=(n, d))
    return x * (0.3 / np.sqrt(np.arange(1, d + 1)))[None, :]


def factor_bundle(root: Path, n_items: int, n_users: int, n_factors: int = 64) -> Path:
    from recforge.data import Interactions
    from recforge.models.factorization.svd import SVD
    from recforge.serving import save_bundle

    rng = np.random.default_rng(0)
    per_user = 20
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, users.size)
    items[:n_items] = np.arange(n_items)  # every item appears
    users[:n_items] = rng.integers(0, n_users, n_items)
    ratings = rng.integers(1, 6, users.size).astype(float)
    train = Interactions.from_arrays(users, items, ratings)
    model = SVD(n_factors=n_factors, n_epochs=1, random_state=0).fit(train)
    model.item_factors_ = spectrum_vectors(model.n_items_, n_factors, rng)
    model.user_factors_ = spectrum_vectors(model.n_users_, n_factors, rng)
    model.item_bias_ = 0.3 * rng.normal(size=model.n_items_)
    model.user_bias_ = 0.3 * rng.normal(size=model.n_users_)
    return save_bundle(model, root / "factor", history=train)


def itemknn_bundle(root: Path) -> Path | None:
    from recforge.data import load
    from recforge.models.neighborhood.topn import ItemKNNTopN
    from recforge.serving import save_bundle
    from recforge.serving.bundle import titles_from_features

    path = shared_data() / "ml-latest-small"
    if not path.exists():
        return None
    ds = load(str(path))
    model = ItemKNNTopN(k=20).fit(ds.interactions)
    return save_bundle(model, root / "itemknn", titles=titles_from_features(ds.item_features))


# ---------------------------------------------------------------------- service
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``recforge serve`` in a subprocess, on 127.0.0.1 only."""

    def __init__(self, model_dir: Path, index: str, workdir: Path):
        self.port = free_port()
        token_file = workdir / "tokens.txt"
        token_file.write_text(TOKEN + "\n")
        self.store = workdir / f"store-{model_dir.name}-{index}.sqlite"
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        self.log = open(workdir / f"server-{model_dir.name}-{index}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "recforge.cli.main", "serve", str(model_dir), "--host",
             "127.0.0.1", "--port", str(self.port), "--index", index, "--store", str(self.store),
             "--token-file", str(token_file)], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 900
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                status, _ = request(http.client.HTTPConnection("127.0.0.1", self.port, timeout=5),
                                    "GET", "/ready")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the server did not become ready")

    def models(self) -> dict:
        return json.loads(request(http.client.HTTPConnection("127.0.0.1", self.port), "GET",
                                  "/models")[1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    return resp.status, resp.read()


def load_phase(port: int, clients: int, seconds: float, make_request, warmup: int = 20) -> dict:
    """``clients`` threads issuing ``make_request(rng)`` -> (method, path, body) for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    extra: list[list] = [[] for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def run(c: int) -> None:
        rng = np.random.default_rng(100 + c)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(warmup):
            method, path, body, _ = make_request(rng)
            request(conn, method, path, body, _headers(body))
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            method, path, body, note = make_request(rng)
            t = time.perf_counter()
            try:
                status, _ = request(conn, method, path, body, _headers(body))
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies[c].append(time.perf_counter() - t)
            if status != 200:
                errors[c] += 1
            elif note is not None:
                extra[c].append(note)
        conn.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 1e9
    start_gate.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.concatenate([np.asarray(x) for x in latencies]) * 1000
    return {"p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "rps": round(lat.size / wall, 1), "errors": int(sum(errors)), "requests": int(lat.size),
            "acked": [n for part in extra for n in part]}


def _headers(body):
    if body is None:
        return {}
    return {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}


def user_reads(users: np.ndarray):
    def make(rng):
        return "GET", f"/users/{users[rng.integers(users.size)]}/recommendations?k=10", None, None
    return make


def serve_phase(name: str, model_dir: Path, index: str, users: np.ndarray, workdir: Path,
                seconds: float, label: str | None = None) -> None:
    server = Server(model_dir, index, workdir)
    try:
        info = server.models()["versions"][0]["index"]
        print(f"# {name} index {index}: {json.dumps(info)}", file=sys.stderr, flush=True)
        for clients in (1, 4, 16):
            res = load_phase(server.port, clients, seconds, user_reads(users))
            emit({"name": "serve_top10", "model": name, "index": label or index, "clients": clients,
                  **{k: res[k] for k in ("p50_ms", "p99_ms", "rps", "errors")}})
    finally:
        server.stop()


def soak(model_dir: Path, users: np.ndarray, workdir: Path, seconds: float, index: str) -> None:
    server = Server(model_dir, index, workdir)
    counter = iter(range(10**9))
    lock = threading.Lock()
    items = list(range(1000))

    def make(rng):
        if rng.random() < 0.25:
            with lock:
                n = next(counter)
            user = f"soak-{n % 97}"
            body = json.dumps({"events": [{"user": user, "item": int(items[n % len(items)]),
                                           "value": 1, "timestamp": 1e9 + n}]}).encode()
            return "POST", "/events", body, n
        return "GET", f"/users/{users[rng.integers(users.size)]}/recommendations?k=10", None, None

    try:
        res = load_phase(server.port, 4, seconds, make, warmup=0)
    finally:
        server.stop()
    acked = set(res["acked"])
    conn = sqlite3.connect(server.store)
    stored = {int(round(t - 1e9)) for (t,) in conn.execute(
        "SELECT timestamp FROM events WHERE user LIKE 'soak-%'")}
    conn.close()
    emit({"name": "soak", "seconds": int(seconds), "requests": res["requests"],
          "errors": res["errors"], "events_acked": len(acked),
          "events_stored": len(acked & stored)})


# ---------------------------------------------------------------------- recall
def recall_phase(n_items: int, kinds, settings) -> None:
    from recforge.serving.ann import build_index, exact_topk, recall_at, size_search

    rng = np.random.default_rng(1)
    d = 64
    items = np.hstack([spectrum_vectors(n_items, d, rng), 0.3 * rng.normal(size=(n_items, 1)),
                       np.ones((n_items, 1))]).astype(np.float32)
    users = np.hstack([spectrum_vectors(1000, d, rng), np.ones((1000, 1)),
                       3.5 + 0.3 * rng.normal(size=(1000, 1))]).astype(np.float32)
    tune, check = users[:500], users[500:]
    truth_tune = exact_topk(tune, items, 10)
    truth_check = exact_topk(check, items, 10)
    for kind in kinds:
        t = time.perf_counter()
        index, params = build_index(kind, items, settings)
        params.update(size_search(index, kind, tune, truth_tune, settings, n_items))
        build_s = time.perf_counter() - t
        _, found = index.search(check, 10)
        emit({"name": "ann_recall", "items": n_items, "index": kind,
              "recall@10": round(recall_at(found, truth_check), 4), "build_s": round(build_s, 2)})
        print(f"# ann_recall {n_items} {kind}: {params}", file=sys.stderr, flush=True)
        del index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--seconds", type=float, help="seconds per load phase (default 10; quick 2)")
    ap.add_argument("--soak-seconds", type=float, help="soak length (default 60; quick 5)")
    ap.add_argument("--skip", nargs="*", default=[], choices=("serve", "recall", "soak", "1m"),
                    help="phases to leave out")
    ap.add_argument("--indexes", nargs="*", default=["exact", "hnsw", "ivf"],
                    choices=("exact", "hnsw", "ivf"), help="indexes of the factor-100k phases")
    ap.add_argument("--no-itemknn", action="store_true", help="leave out the item-kNN phases")
    args = ap.parse_args(argv)
    from recforge.serving.ann import AnnSettings

    seconds = args.seconds or (2.0 if args.quick else 10.0)
    soak_s = args.soak_seconds or (5.0 if args.quick else 60.0)
    n_items, n_users = (5_000, 2_000) if args.quick else (100_000, 20_000)
    emit({"name": "machine", "cpus": os.cpu_count(), "loadavg": list(os.getloadavg())})
    with tempfile.TemporaryDirectory(prefix="recforge-bench-") as tmp:
        work = Path(tmp)
        root = work / "models"
        root.mkdir()
        t = time.perf_counter()
        factor = factor_bundle(root, n_items, n_users)
        print(f"# factor bundle ({n_items} items) built in {time.perf_counter() - t:.1f} s",
              file=sys.stderr, flush=True)
        users = np.arange(n_users)
        if "serve" not in args.skip:
            for index in args.indexes:
                serve_phase("factor-100k", factor, index, users, work, seconds)
            knn = None if args.no_itemknn else itemknn_bundle(root)
            if knn is not None:
                from recforge.serving.bundle import load_bundle

                knn_users = load_bundle(knn).model.user_map_.raw
                serve_phase("itemknn-mls", knn, "auto", knn_users, work, seconds, label="exact")
        if "soak" not in args.skip:
            soak(factor, users, work, soak_s, "hnsw")
        if "recall" not in args.skip:
            recall_phase(n_items, ("hnsw", "ivf"), AnnSettings())
            if not args.quick and "1m" not in args.skip:
                recall_phase(1_000_000, ("hnsw", "ivf"), AnnSettings())
    emit({"name": "machine", "cpus": os.cpu_count(), "loadavg": list(os.getloadavg())})
    return 0


if __name__ == "__main__":
    sys.exit(main())
