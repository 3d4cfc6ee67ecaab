"""Faults against a real ``recforge serve`` process (uvicorn on 127.0.0.1, a free port):
SIGKILL after acknowledged events, SIGKILL in the middle of a promotion, a corrupted model
upload, a store that cannot be written (read-only, full), several workers writing at once."""

import os
import shutil
import sqlite3
import threading
import time

import pytest

from recforge.serving import Event, SQLiteStore
from recforge.serving.store import READ_ONLY_ENV
from recforge.serving.versions import PAUSE_ENV, ModelVersions

from .conftest import AUTH, TOKEN
from .server import ServeProcess

pytest.importorskip("uvicorn")


@pytest.fixture
def serve(models_root, tmp_path):
    """``serve(model="knn", *flags, env=...)``: a started, ready server over ``tmp_path``'s
    store, killed at the end of the test."""
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    started = []

    def start(model="knn", *flags, env=None, store=None):
        srv = ServeProcess(models_root / model, "--store", str(store or tmp_path / "store.sqlite"),
                           "--token-file", str(tokens), *flags, env=env,
                           log=tmp_path / f"serve-{len(started)}.log")
        started.append(srv)
        srv.wait_ready()
        return srv

    yield start
    for srv in started:
        srv.kill()


def test_acknowledged_events_survive_sigkill(serve, tmp_path):
    srv = serve()
    sent = []
    for batch in range(15):
        events = [{"user": "k", "item": str(10 * (1 + (batch + j) % 5)), "value": batch + j / 10,
                   "timestamp": 1000.0 + batch * 10 + j} for j in range(4)]
        resp = srv.client.post("/events", json={"events": events}, headers=AUTH)
        assert resp.status_code == 200 and resp.json() == {"stored": 4}
        sent += events
    resp = srv.client.post("/sessions/s1/events", json={"item": 10}, headers=AUTH)
    assert resp.status_code == 200
    srv.kill()  # SIGKILL right after the last acknowledgement: no shutdown, no checkpoint

    again = serve()
    history = again.client.get("/users/k/history", params={"limit": 1000}).json()["events"]
    assert [(e["item"], e["value"], e["timestamp"]) for e in history] == \
        [(e["item"], e["value"], e["timestamp"]) for e in sent]
    again.kill()
    store = SQLiteStore(tmp_path / "store.sqlite")
    assert store.count_events() == len(sent) + 1
    assert [e.item for e in store.session_events("s1")] == ["10"]


@pytest.mark.parametrize("step,expect", [("loaded", 1), ("recorded", 2)])
def test_sigkill_in_the_middle_of_a_promotion(serve, tmp_path, step, expect):
    """The worker promoting version 2 is killed at ``step``; the supervisor restarts it, and
    every worker then serves one complete version: the old one if the promotion was not yet
    recorded, the new one if it was."""
    pause = tmp_path / "paused-pid"
    srv = serve("knn", "--workers", "2", env={PAUSE_ENV: f"{step}:2:{pause}"})
    reg = srv.client.post("/models", json={"path": "pop"}, headers=AUTH)
    assert reg.status_code == 201 and reg.json()["version"] == 2

    def promote():
        try:
            srv.client.post("/models/2/promote", headers=AUTH, timeout=60)
        except Exception:  # the worker dies under the request
            pass

    thread = threading.Thread(target=promote, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not pause.exists():
        assert time.monotonic() < deadline, srv.log()
        time.sleep(0.05)
    pid = int(pause.read_text())
    os.kill(pid, 9)
    thread.join(30)

    models = srv.client.get("/models").json()
    assert models["live"] == expect
    # workers re-read the live version from the store at most every second and load a newly
    # promoted one in the background, serving the old one meanwhile: until every worker has
    # switched, an answer may come from the complete old version, never from anything else
    model = {1: "ItemKNNTopN", 2: "MostPopular"}[expect]
    allowed = {(1, "ItemKNNTopN"), (expect, model)}
    deadline = time.monotonic() + 60
    streak = 0
    while streak < 30:  # 30 answers in a row from the expected version
        assert time.monotonic() < deadline, srv.log()
        try:
            resp = srv.client.get("/users/4/recommendations", params={"k": 3})
        except Exception:  # the killed worker's socket, until the supervisor replaced it
            time.sleep(0.1)
            continue
        assert resp.status_code == 200, resp.text
        answer = (resp.json()["model_version"], resp.json()["model"])
        assert answer in allowed and len(resp.json()["items"]) == 3
        streak = streak + 1 if answer == (expect, model) else 0


def test_corrupted_upload_is_rejected_by_the_real_server(serve, models_root):
    srv = serve()
    bad = models_root / "bad-upload"
    shutil.copytree(models_root / "pop", bad)
    try:
        with open(bad / "arrays.npz", "r+b") as f:
            f.seek(20)
            f.write(b"\x00broken\x00")
        resp = srv.client.post("/models", json={"path": "bad-upload", "promote": True},
                               headers=AUTH)
        assert resp.status_code == 422
        assert "bad-upload/arrays.npz" in resp.json()["detail"]
        assert srv.client.get("/ready").json()["model_version"] == 1
        rec = srv.client.get("/users/4/recommendations").json()
        assert rec["model_version"] == 1 and rec["model"] == "ItemKNNTopN" and rec["items"]
        versions = srv.client.get("/models").json()
        assert versions["live"] == 1
        assert [v["status"] for v in versions["versions"]] == ["ready", "rejected"]
    finally:
        shutil.rmtree(bad)


def _prepared_store(path, models_root):
    """A store with knn registered and live and two events of user ``ro``, closed again."""
    store = SQLiteStore(path)
    versions = ModelVersions(models_root, store)
    versions.promote(versions.register("knn").version)
    store.add_events([Event("10", user="ro", timestamp=1.0), Event("40", user="ro", timestamp=2.0)])
    store.close()


def test_read_only_store_refuses_writes_with_503_and_serves_reads(serve, models_root, tmp_path):
    path = tmp_path / "ro.sqlite"
    _prepared_store(path, models_root)
    env = None
    if os.geteuid() == 0:  # the superuser writes read-only files: open the file read-only
        env = {READ_ONLY_ENV: "1"}
    else:
        path.chmod(0o444)
    try:
        srv = serve("knn", store=path, env=env)
        history = srv.client.get("/users/ro/history").json()["events"]
        assert [e["item"] for e in history] == ["10", "40"]
        rec = srv.client.get("/users/ro/recommendations", params={"k": 2})
        assert rec.status_code == 200 and rec.json()["items"]
        assert {"10", "40"}.isdisjoint(str(e["item"]) for e in rec.json()["items"])
        for url, body in [("/events", {"events": [{"user": "ro", "item": 20}]}),
                          ("/sessions/s/events", {"item": 20}),
                          ("/models", {"path": "pop"})]:
            resp = srv.client.post(url, json=body, headers=AUTH)
            assert resp.status_code == 503, (url, resp.text)
            err = resp.json()
            assert "ro.sqlite" in err["detail"] and "cannot be written" in err["detail"]
            assert "readonly" in err["detail"] and err["field"] is None
        assert srv.client.get("/ready").status_code == 200
        assert srv.client.get("/metrics").status_code == 200
    finally:
        path.chmod(0o644)
    assert SQLiteStore(path).count_events() == 2


def test_full_store_is_503_and_reads_go_on(make_client, tmp_path, monkeypatch):
    """A full disk (SQLite's max_page_count reached: 'database or disk is full')."""
    client = make_client("knn", store=tmp_path / "full.sqlite")
    assert client.post("/events", json={"events": [{"user": "f", "item": 10}]},
                       headers=AUTH).status_code == 200
    connect = SQLiteStore._conn

    def capped(self):
        conn = connect(self)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        return conn

    monkeypatch.setattr(SQLiteStore, "_conn", capped)
    client.app.state.store.close()  # new connections, capped
    big = [{"user": "f", "item": "x" * 200 + str(i)} for i in range(500)]
    resp = client.post("/events", json={"events": big}, headers=AUTH)
    assert resp.status_code == 503
    assert "full" in resp.json()["detail"] and "full.sqlite" in resp.json()["detail"]
    assert [e["item"] for e in client.get("/users/f/history").json()["events"]] == ["10"]
    assert client.get("/users/f/recommendations").status_code == 200


def test_two_workers_write_concurrently(serve, tmp_path):
    srv = serve("knn", "--workers", "2")
    errors = []

    def writer(t):
        import httpx

        with httpx.Client(base_url=srv.url, timeout=30) as client:
            for n in range(12):
                events = [{"user": f"w{t}", "item": 10, "value": n * 10 + j,
                           "timestamp": float(n * 10 + j)} for j in range(5)]
                resp = client.post("/events", json={"events": events}, headers=AUTH)
                if resp.status_code != 200:
                    errors.append(resp.text)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for t in range(6):
        events = srv.client.get(f"/users/w{t}/history", params={"limit": 1000}).json()["events"]
        assert [e["value"] for e in events] == [float(v) for v in range(120) if v % 10 < 5]
    srv.kill()
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 6 * 12 * 5
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_postgresql_store_with_two_workers_and_background_updates(serve, tmp_path, pg_cluster):
    """`recforge serve --store postgresql://...` with two workers and [updates]: acknowledged
    events survive a SIGKILL of the whole service, and each worker's MostPopular absorbs them."""
    url = pg_cluster.new_database("faults")
    conf = tmp_path / "serve.toml"
    conf.write_text("[updates]\ninterval_s = 0.2\nmin_events = 1\n")
    srv = serve("pop", "--workers", "2", "--config", str(conf), store=url)
    for n in range(8):
        resp = srv.client.post("/events", json={"events": [{"user": 100 + n, "item": 50}]},
                               headers=AUTH)
        assert resp.status_code == 200 and resp.json() == {"stored": 1}
    srv.kill()
    again = serve("pop", "--config", str(conf), store=url)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        top = again.client.get("/users/nobody/recommendations", params={"k": 1}).json()
        if top["items"][0]["item"] == 50:  # 1 + 8 events: the most popular now
            break
        time.sleep(0.2)
    assert top["items"][0]["item"] == 50
    live = next(v for v in again.client.get("/models").json()["versions"] if v["live"])
    assert live["revision"] >= 1 and live["updates"]["latest"]["total_events"] == 8
    assert len(again.client.get("/users/100/history").json()["events"]) == 1
