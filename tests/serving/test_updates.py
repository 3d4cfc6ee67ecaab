"""Background partial_fit updates of INCREMENTAL live models."""

import time

import pytest

from recforge.models.baseline import MostPopular
from recforge.models.linear.ease import EASE
from recforge.serving import save_bundle
from recforge.serving.config import Updates

from .conftest import AUTH, ratings


def items(resp):
    assert resp.status_code == 200, resp.text
    return [e["item"] for e in resp.json()["items"]]


def post(client, events):
    resp = client.post("/events", json={"events": events}, headers=AUTH)
    assert resp.status_code == 200, resp.text


def live_record(client):
    return next(v for v in client.get("/models").json()["versions"] if v["live"])


def test_most_popular_absorbs_events(make_client):
    client = make_client("pop", updates=Updates(min_events=3))
    updater = client.app.state.updater
    assert items(client.get("/users/nobody/recommendations?k=2")) == [20, 10]
    assert updater.run_once() == "too few events"
    post(client, [{"user": u, "item": 50} for u in (101, 102)])
    assert updater.run_once() == "too few events"  # 2 < min_events
    before = client.app.state.versions.live()
    post(client, [{"user": u, "item": 50} for u in (103, 104)] + [{"user": 105, "item": 60},
                                                                 {"user": "text", "item": 60}])
    assert updater.run_once() == "applied"
    # 50: 1 + 4 = 5 beats 20 (4); 60 is a new item, absorbed with one interaction
    assert items(client.get("/users/nobody/recommendations?k=3")) == [50, 20, 10]
    assert before.model.item_popularity_.tolist() == [3, 4, 3, 2, 1]  # the copy changed
    record = live_record(client)
    assert record["revision"] == 1 and record["version"] == 1
    assert record["updates"]["applied"] == 1 and record["updates"]["latest"]["events"] == 5
    assert record["updates"]["latest"]["skipped"] == 1  # a text user id for int64 user ids
    assert updater.run_once() == "too few events"  # nothing new since
    post(client, [{"user": u, "item": 60} for u in (106, 107, 108)])
    assert updater.run_once() == "applied"
    assert client.app.state.versions.live().model.item_popularity_.tolist()[-1] == 4
    assert live_record(client)["revision"] == 2
    assert "recforge_model_revision 2.0" in client.get("/metrics").text


def test_a_failed_update_keeps_the_live_model(make_client, monkeypatch):
    client = make_client("pop", updates=Updates(min_events=1))
    updater = client.app.state.updater
    post(client, [{"user": u, "item": 50} for u in range(101, 106)])

    def broken(self, interactions):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(MostPopular, "partial_fit", broken)
    live = client.app.state.versions.live()
    assert updater.run_once() == "failed"
    assert client.app.state.versions.live() is live and live.revision == 0
    assert items(client.get("/users/nobody/recommendations?k=2")) == [20, 10]
    status = live_record(client)["updates"]
    assert status["failures"] == 1 and status["last_error"] == "RuntimeError: disk on fire"
    assert 'recforge_model_updates_total{outcome="failed"} 1.0' in client.get("/metrics").text
    monkeypatch.undo()
    assert updater.run_once() == "applied"  # the same events, absorbed on the next try
    assert items(client.get("/users/nobody/recommendations?k=1")) == [50]


def test_non_incremental_models_are_left_alone(client):
    post(client, [{"user": "a", "item": 50}])
    assert client.app.state.updater.run_once() == "not incremental"


def test_background_thread_updates_ease(models_root, make_client):
    save_bundle(EASE(l2=1.0).fit(ratings()), models_root / "ease")
    client = make_client("ease", updates=Updates(interval_s=0.05, min_events=1))
    assert 60 not in items(client.get("/users/4/recommendations?k=5"))
    # users who share 30/40 with user 4 take up a new item 60
    post(client, [{"user": u, "item": 60} for u in (1, 2, 3, 4, 5)] +
         [{"user": 7, "item": i} for i in (30, 40, 60)])
    deadline = time.monotonic() + 10
    while client.app.state.versions.live().revision < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    lv = client.app.state.versions.live()
    assert lv.revision == 1 and lv.model.n_items_ == 6
    assert 60 in lv.model.item_map_.raw.tolist()
    assert items(client.post("/recommendations", json={"history": [30, 40], "k": 6}))[0] == 60
    client.app.state.updater.stop()
    assert client.app.state.updater._thread is None


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_updates_read_events_from_either_store(kind, make_client, request, tmp_path):
    if kind == "sqlite":
        spec = str(tmp_path / "s.sqlite")
    else:
        import uuid

        spec = request.getfixturevalue("pg_cluster").new_database(f"u{uuid.uuid4().hex[:10]}")
    client = make_client("pop", store=spec, updates=Updates(min_events=1))
    post(client, [{"user": u, "item": 50} for u in range(101, 105)])
    assert client.app.state.updater.run_once() == "applied"
    assert items(client.get("/users/nobody/recommendations?k=1")) == [50]


def test_a_version_loaded_again_absorbs_every_event_again(make_client):
    client = make_client("pop", updates=Updates(min_events=1))
    versions, updater = client.app.state.versions, client.app.state.updater
    post(client, [{"user": u, "item": 50} for u in range(101, 104)])
    assert updater.run_once() == "applied"
    post(client, [{"user": 104, "item": 50}])
    assert updater.run_once() == "applied"
    assert versions.live().revision == 2
    versions._loaded.clear()  # as when a rollback evicted it: the next promotion reloads it
    reloaded = versions.promote(1)
    assert reloaded.revision == 0 and reloaded.model.item_popularity_.tolist()[-1] == 1
    assert updater.run_once() == "applied"
    live = versions.live()
    assert live.revision == 1 and live.updated["events"] == 4
    assert live.model.item_popularity_.tolist()[-1] == 5
