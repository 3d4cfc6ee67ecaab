"""The Store interface, the same tests on SQLite and on PostgreSQL (a throwaway cluster; those
skip when PostgreSQL cannot run here)."""

import threading

import pytest

from recforge.serving.store import Event, ShownList, StoreError, open_store


def test_events_in_order_and_shared_by_threads(store_spec):
    store = open_store(store_spec)
    assert store.add_events([Event("10", user="u", value=2.0, timestamp=1.0),
                             Event("20", session="s", timestamp=2.0)]) == 2

    def write(n):
        s = open_store(store_spec)
        s.add_events([Event(str(n), user="t", timestamp=float(n))])
        s.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    again = open_store(store_spec)
    assert again.user_events("u") == [Event("10", user="u", value=2.0, timestamp=1.0)]
    assert again.session_events("s") == [Event("20", session="s", timestamp=2.0)]
    assert sorted(int(e.item) for e in again.user_events("t")) == list(range(6))
    assert [e.item for e in again.user_events("t", limit=2)] == \
        [e.item for e in again.user_events("t")][-2:]
    assert again.user_events("nobody") == [] and again.count_events() == 8
    after = again.events_after(0, limit=3)
    assert [i for i, _ in after] == sorted(i for i, _ in after) and len(after) == 3
    assert after[0][1] == Event("10", user="u", value=2.0, timestamp=1.0)
    rest = again.events_after(after[-1][0])
    assert len(rest) == 5 and rest[0][0] > after[-1][0]
    assert again.events_after(0, received_after=2e9) == []


def test_versions_promotions_and_indexes(store_spec):
    store = open_store(store_spec)
    a = store.add_version("knn", "ItemKNNTopN", "abc", "ready")
    b = store.add_version("bad", None, None, "rejected", "bad/arrays.npz: corrupt")
    assert (a.version, b.version) == (1, 2)
    assert [v.status for v in store.versions()] == ["ready", "rejected"]
    assert store.version(2).message == "bad/arrays.npz: corrupt" and store.version(9) is None
    assert store.live_version() is None
    store.promote(1)
    store.promote(1)
    assert store.live_version() == 1 and store.promotion_history() == [1, 1]
    store.record_index(1, {"kind": "exact"})
    store.record_index(1, {"kind": "hnsw", "recall@10": 0.97})
    assert store.index_info(1) == {"kind": "hnsw", "recall@10": 0.97}
    assert store.index_info(2) is None and store.ping()


def test_shown_lists_and_exposure(store_spec):
    store = open_store(store_spec)
    store.log_list(ShownList("L1", "/users/{user}/recommendations", ["10", "20", "30"],
                             [0.9, 0.5, None], [False, False, True], [0.8, 0.8, 0.1],
                             "epsilon-greedy(0.2)", user="u", model_version=1, at=5.0))
    store.log_list(ShownList("L2", "/recommendations", ["30"], [1.0], [False], [1.0],
                             "greedy", at=6.0))
    store.add_events([Event("30", user="u"), Event("30", user="v"), Event("40", user="u")])
    rows = store.impressions()
    assert [(r["list_id"], r["position"], r["item"], r["exploratory"], r["propensity"])
            for r in rows] == [("L1", 0, "10", False, 0.8), ("L1", 1, "20", False, 0.8),
                               ("L1", 2, "30", True, 0.1), ("L2", 0, "30", False, 1.0)]
    assert rows[0]["user"] == "u" and rows[0]["model_version"] == 1 and rows[2]["score"] is None
    assert rows[3]["user"] is None and rows[3]["at"] == 6.0
    assert [r["list_id"] for r in store.impressions(after_id=rows[1]["id"], limit=1)] == ["L1"]
    assert store.exposure() == {"10": (1, 0), "20": (1, 0), "30": (2, 2), "40": (0, 1)}


def test_unreachable_postgres_is_a_store_error():
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match=r"postgresql://u:\*\*\*@127.0.0.1:1/x: cannot open"):
        open_store("postgresql://u:secret@127.0.0.1:1/x", timeout=1)


def test_the_service_runs_on_either_store(make_client, store_spec):
    from .conftest import AUTH

    client = make_client("knn", store=store_spec)
    assert client.get("/ready").json()["model_version"] == 1
    assert client.post("/events", json={"events": [{"user": 4, "item": 10}]},
                       headers=AUTH).json() == {"stored": 1}
    assert [e["item"] for e in client.get("/users/4/recommendations?k=5").json()["items"]] \
        == [20, 50]
    assert client.get("/models").json()["live"] == 1
