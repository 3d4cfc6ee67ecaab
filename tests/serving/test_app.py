"""The HTTP endpoints on tiny models trained in the tests (see conftest.py)."""

import math
import shutil
import time

import pytest

from recforge.serving.config import Limits, Rules

from .conftest import AUTH


def items(resp):
    assert resp.status_code == 200, resp.text
    return [e["item"] for e in resp.json()["items"]]


def test_probes_and_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == 1
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/users/{user}/recommendations", "/recommendations", "/items/{item}/similar",
            "/sessions/{session_id}/events", "/events", "/models"} <= set(paths)


def test_user_recommendations_with_titles(client):
    resp = client.get("/users/4/recommendations", params={"k": 5})
    body = resp.json()
    assert items(resp) == [10, 20, 50]  # 30 and 40 are user 4's own items
    assert body["fallback"] is None and body["model"] == "ItemKNNTopN"
    assert [e["title"] for e in body["items"]] == ["Ten", "Twenty", "Fifty"]
    assert items(client.get("/users/4/recommendations?k=5&exclude=20,50")) == [10]
    assert items(client.get("/users/4/recommendations?k=5&candidates=50&candidates=40")) == [50]


def test_unknown_user_gets_named_fallback(client):
    body = client.get("/users/nobody/recommendations", params={"k": 2}).json()
    assert body["fallback"] == "unknown user, no history: popularity"
    assert [e["item"] for e in body["items"]] == [20, 10]  # popularity 4 and 3


def test_anonymous_history(client):
    assert items(client.post("/recommendations", json={"history": [30, 40], "k": 5})) == [10, 20, 50]
    assert items(client.post("/recommendations", json={"history": {"30": 1, "40": 1}, "k": 5})) \
        == [10, 20, 50]
    resp = client.post("/recommendations", json={"history": ["30", "nope"], "k": 5,
                                                  "exclude": [20]})
    assert 20 not in items(resp) and 30 not in items(resp)
    assert resp.json()["notes"]["unknown item in history: dropped"] == 1


def test_similar_items(client, make_client):
    assert items(client.get("/items/10/similar", params={"k": 3})) == [20, 30, 40]
    missing = client.get("/items/999/similar")
    assert missing.status_code == 404 and missing.json()["field"] == "item"
    markov = make_client("markov")
    assert markov.get("/items/10/similar").status_code == 409  # no item similarities


def test_event_changes_next_recommendation_knn(client):
    assert items(client.get("/users/4/recommendations?k=5"))[0] == 10
    resp = client.post("/events", json={"events": [{"user": 4, "item": 10, "value": 1}]},
                       headers=AUTH)
    assert resp.json() == {"stored": 1}
    after = items(client.get("/users/4/recommendations?k=5"))
    assert 10 not in after and after == [20, 50]
    hist = client.get("/users/4/history").json()
    assert [e["item"] for e in hist["training"]] == [30, 40]
    assert [e["item"] for e in hist["events"]] == ["10"]
    assert [e["title"] for e in hist["training"] + hist["events"]] == ["Thirty Adult", "Forty", "Ten"]


def test_event_changes_next_recommendation_session_model(make_client):
    client = make_client("markov")
    cold = client.get("/users/u9/recommendations?k=3").json()
    assert cold["fallback"] == "unknown user, no history: popularity"
    client.post("/events", json={"events": [{"user": "u9", "item": 10}]}, headers=AUTH)
    first = items(client.get("/users/u9/recommendations?k=3"))
    assert first[0] == 20 and 10 not in first  # after 10 comes 20
    client.post("/events", json={"events": [{"user": "u9", "item": 20}]}, headers=AUTH)
    second = items(client.get("/users/u9/recommendations?k=3"))
    assert 20 not in second and second[:2] == [30, 40]  # after 20: 30 (2/3), 40 (1/3)


def test_session_clicks_stream_and_rebuild(make_client, tmp_path):
    client = make_client("markov")
    first = client.post("/sessions/s1/events", json={"item": 10, "k": 2}, headers=AUTH).json()
    assert [e["item"] for e in first["items"]][0] == 20 and first["events"] == 1
    second = client.post("/sessions/s1/events", json={"item": 20, "k": 2}, headers=AUTH).json()
    assert [e["item"] for e in second["items"]] == [30, 40]
    assert second["items"][0]["score"] == pytest.approx(2 / 3)
    # another process (a new app on the same store) has no cached state: rebuilt from the store
    other = make_client("markov")
    third = other.post("/sessions/s1/events", json={"item": 40, "k": 1}, headers=AUTH).json()
    assert [e["item"] for e in third["items"]] == [50] and third["events"] == 3
    # and the first app notices the event it did not see
    fourth = client.post("/sessions/s1/events", json={"item": 10, "k": 1}, headers=AUTH).json()
    assert [e["item"] for e in fourth["items"]] == [20] and fourth["events"] == 4
    empty = client.post("/sessions/s2/events", json={"item": "unknown", "k": 1}, headers=AUTH)
    assert empty.json()["fallback"] == "empty session (no known item): popularity"


def test_session_clicks_on_a_non_session_model(client):
    body = client.post("/sessions/s1/events", json={"item": 30, "k": 5, "exclude_seen": True},
                       headers=AUTH).json()
    assert body["fallback"] is None and 30 not in [e["item"] for e in body["items"]]
    body = client.post("/sessions/s1/events", json={"item": 40, "k": 5, "exclude_seen": True},
                       headers=AUTH).json()
    assert [e["item"] for e in body["items"]] == [10, 20, 50]  # same as the history [30, 40]


@pytest.mark.parametrize("method,url,body", [
    ("post", "/events", {"events": [{"user": 1, "item": 10}]}),
    ("post", "/sessions/s/events", {"item": 10}),
    ("post", "/models", {"path": "pop"}),
    ("post", "/models/1/promote", None),
    ("post", "/models/rollback", None),
])
def test_writes_need_a_token(client, method, url, body):
    assert client.request(method, url, json=body).status_code == 401
    bad = {"Authorization": "Bearer wrong-token-0123456789"}
    resp = client.request(method, url, json=body, headers=bad)
    assert resp.status_code == 401 and "wrong-token" not in resp.text
    assert client.get("/users/1/history").json()["events"] == []


def test_writes_refused_without_token_file(models_root, tmp_path):
    from fastapi.testclient import TestClient

    from recforge.serving import Settings
    from recforge.serving.app import create_app

    app = create_app(Settings(models_root=str(models_root), store=str(tmp_path / "s.sqlite"),
                              model_dir="knn"))
    resp = TestClient(app).post("/events", json={"events": [{"user": 1, "item": 10}]},
                                headers=AUTH)
    assert resp.status_code == 401 and "without a token file" in resp.json()["detail"]


@pytest.mark.parametrize("method,url,body,field", [
    ("get", "/users/1/recommendations?k=0", None, "query.k"),
    ("get", "/users/1/recommendations?k=abc", None, "query.k"),
    ("get", "/users/1/recommendations?k=101", None, "k"),
    ("get", "/items/10/similar?k=-1", None, "query.k"),
    ("post", "/recommendations", {"history": [10], "k": 0}, "body.k"),
    ("post", "/recommendations", {"history": [10], "kk": 3}, "body.kk"),
    ("post", "/recommendations", {"history": list(range(1001))}, "history"),
    ("post", "/recommendations", {"history": {"10": "x"}}, "body.history"),
    ("post", "/recommendations", "not json", "body"),
    ("post", "/events", {"events": [{"user": 1}]}, "body.events.0.item"),
    ("post", "/events", {"events": [{"item": 10}]}, "body.events.0"),
    ("post", "/events", {"events": [{"user": 1, "item": 10, "value": "NaN"}]}, "body.events.0.value"),
    ("post", "/events", {"events": []}, "body.events"),
    ("post", "/events", {"events": [{"user": 1, "item": 10}] * 1001}, "events"),
    ("post", "/events", {"events": [{"user": "x" * 300, "item": 10}]}, "body.events.0.user"),
    ("post", "/sessions/s/events", {"item": 10, "k": 1000}, "k"),
    ("post", "/models", {}, "body.path"),
    ("post", "/models/abc/promote", None, "path.version"),
])
def test_bad_input_is_422_naming_the_field(client, method, url, body, field):
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    resp = client.request(method, url, headers={**AUTH, "content-type": "application/json"}, **kwargs)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"].startswith(field)
    assert field.split(".")[-1] in resp.json()["detail"] or field in resp.json()["detail"] \
        or resp.json()["field"] == field


def test_body_size_limit(make_client):
    client = make_client("knn", limits=Limits(max_body_bytes=200))
    resp = client.post("/recommendations", json={"history": list(range(100))})
    assert resp.status_code == 413 and resp.json()["field"] == "body"
    assert client.post("/recommendations", json={"history": [10]}).status_code == 200


def test_stoplist_applies_to_every_list(make_client):
    client = make_client("knn", rules=Rules(stoplist_items=["10"], stoplist_keywords=["adult"]))
    assert items(client.get("/users/4/recommendations?k=5")) == [20, 50]
    assert items(client.get("/users/nobody/recommendations?k=5")) == [20, 40, 50]
    assert items(client.post("/recommendations", json={"history": [40], "k": 5})) == [20, 50]
    assert items(client.get("/items/20/similar?k=5")) == [40, 50]
    session = client.post("/sessions/s/events", json={"item": 40, "k": 5}, headers=AUTH)
    assert not {10, 30} & set(items(session))
    markov = make_client("markov", rules=Rules(stoplist_items=["20"]))
    first = items(markov.post("/sessions/s/events", json={"item": 10, "k": 3}, headers=AUTH))
    assert 20 not in first


def test_metrics(client):
    client.get("/users/4/recommendations")
    client.get("/users/nobody/recommendations")
    client.post("/events", json={"events": [{"user": 4, "item": 10}, {"session": "s", "item": 20}]},
                headers=AUTH)
    text = client.get("/metrics").text
    assert 'recforge_request_seconds_count{endpoint="/users/{user}/recommendations",method="GET",status="200"} 2.0' in text
    assert 'recforge_fallbacks_total{kind="unknown user, no history: popularity"} 1.0' in text
    assert "recforge_model_version 1.0" in text
    assert "recforge_events_stored_total 2.0" in text
    assert "recforge_events_in_store 2.0" in text


def test_model_versions_register_promote_rollback(client):
    listed = client.get("/models").json()
    assert listed["live"] == 1 and listed["versions"][0]["path"] == "knn"
    reg = client.post("/models", json={"path": "pop"}, headers=AUTH)
    assert reg.status_code == 201 and reg.json()["version"] == 2 and not reg.json()["live"]
    assert client.get("/ready").json()["model_version"] == 1  # registered, not live
    assert client.post("/models/2/promote", headers=AUTH).json() == {"live": 2, "model": "MostPopular"}
    assert client.get("/users/4/recommendations").json()["model"] == "MostPopular"
    assert client.post("/models/rollback", headers=AUTH).json()["live"] == 1
    assert client.get("/users/4/recommendations").json()["model_version"] == 1
    assert client.post("/models/99/promote", headers=AUTH).status_code == 404
    # registering the same directory again gives the same version
    assert client.post("/models", json={"path": "pop"}, headers=AUTH).json()["version"] == 2


@pytest.mark.parametrize("path", ["..", "../elsewhere", "/etc", "knn/../.."])
def test_model_paths_cannot_escape_the_root(client, path):
    resp = client.post("/models", json={"path": path}, headers=AUTH)
    assert resp.status_code == 422 and "outside the models root" in resp.json()["detail"]


def test_symlink_out_of_the_root_is_refused(client, models_root, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(models_root / "pop", outside)
    link = models_root / "link-out"
    link.symlink_to(outside)
    try:
        resp = client.post("/models", json={"path": "link-out"}, headers=AUTH)
        assert resp.status_code == 422 and "outside the models root" in resp.json()["detail"]
    finally:
        link.unlink()


@pytest.mark.parametrize("victim,name", [("arrays.npz", "arrays.npz"),
                                         ("history.parquet", "history.parquet"),
                                         ("config.json", "config.json")])
def test_corrupted_model_is_rejected_and_live_untouched(client, models_root, victim, name):
    bad = models_root / f"bad-{victim}"
    shutil.copytree(models_root / "pop", bad)
    try:
        with open(bad / victim, "r+b") as f:
            f.seek(10)
            f.write(b"\x00garbage\x00")
        resp = client.post("/models", json={"path": bad.name, "promote": True}, headers=AUTH)
        assert resp.status_code == 422
        assert f"{bad.name}/{name}" in resp.json()["detail"]
        assert client.get("/ready").json()["model_version"] == 1
        assert client.get("/users/4/recommendations").json()["model"] == "ItemKNNTopN"
        rejected = [v for v in client.get("/models").json()["versions"] if v["status"] == "rejected"]
        assert len(rejected) == 1 and name in rejected[0]["message"]
        assert client.post(f"/models/{rejected[0]['version']}/promote", headers=AUTH).status_code == 409
    finally:
        shutil.rmtree(bad)


def test_events_survive_a_restart(make_client, tmp_path):
    store = tmp_path / "durable.sqlite"
    first = make_client("knn", store=store)
    first.post("/events", json={"events": [{"user": 4, "item": 10, "timestamp": 5.0},
                                           {"user": 4, "item": 20, "value": 2.5}]}, headers=AUTH)
    first.app.state.store.close()
    again = make_client("knn", store=store)
    events = again.get("/users/4/history").json()["events"]
    assert [(e["item"], e["value"]) for e in events] == [("10", 1.0), ("20", 2.5)]
    assert events[0]["timestamp"] == 5.0 and math.isfinite(events[1]["timestamp"])
    assert items(again.get("/users/4/recommendations?k=5")) == [50]
    assert again.get("/models").json()["live"] == 1  # the same version, not a new one


def test_a_promotion_reaches_another_process(make_client, tmp_path):
    a = make_client("knn", refresh_seconds=0.0)
    b = make_client(None, refresh_seconds=0.0)  # a worker: follows the store
    assert b.get("/ready").json()["model_version"] == 1
    a.post("/models", json={"path": "pop", "promote": True}, headers=AUTH)
    # b keeps answering with the old version while it loads the new one in the background
    models = [b.get("/users/4/recommendations").json()["model"]]
    deadline = time.monotonic() + 30
    while models[-1] != "MostPopular" and time.monotonic() < deadline:
        time.sleep(0.05)
        models.append(b.get("/users/4/recommendations").json()["model"])
    assert set(models) <= {"ItemKNNTopN", "MostPopular"} and models[-1] == "MostPopular"


def test_a_version_loading_in_the_background_does_not_hold_requests(make_client, monkeypatch):
    import threading

    a = make_client("knn", refresh_seconds=0.0)
    b = make_client(None, refresh_seconds=0.0)
    versions = b.app.state.versions
    release = threading.Event()
    real_get = versions._get

    def slow_get(version):
        release.wait(20)
        return real_get(version)

    monkeypatch.setattr(versions, "_get", slow_get)
    a.post("/models", json={"path": "pop", "promote": True}, headers=AUTH)
    for _ in range(3):  # while b loads version 2, it answers from version 1 at once
        assert b.get("/users/4/recommendations").json()["model"] == "ItemKNNTopN"
        assert b.get("/ready").json() == {"status": "ready", "model_version": 1,
                                          "model": "ItemKNNTopN"}
    assert not release.is_set()
    release.set()
    deadline = time.monotonic() + 30
    while b.get("/ready").json()["model_version"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert b.get("/users/4/recommendations").json()["model"] == "MostPopular"
