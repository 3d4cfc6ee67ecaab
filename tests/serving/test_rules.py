"""Business rules: popularity filter and outliers, cold start, onboarding, new items,
exploration with logged propensities, and the export of the log."""

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from recforge.cli.main import main
from recforge.data import Interactions
from recforge.models.baseline import MostPopular
from recforge.serving import save_bundle
from recforge.serving.config import ConfigError, Exploration, read_config, read_sections
from recforge.serving.rules import Explorer, popularity_filter

from .conftest import AUTH, TITLES, Rules


def items(resp):
    assert resp.status_code == 200, resp.text
    return [e["item"] for e in resp.json()["items"]]


@pytest.fixture(scope="module")
def ts_bundle(models_root):
    """MostPopular on timestamped data: item 10 popular long ago (4 users at t=0), item 40
    recently (2 users at t=1000); items 60 and 70 are in the catalogue without interactions,
    with feature vectors (60 close to 40)."""
    train = Interactions.from_arrays([1, 2, 3, 4, 5, 6, 7], [10, 10, 10, 10, 40, 40, 30],
                                     timestamps=[0, 0, 0, 0, 1000, 1000, 500])
    features = {"10": [1, 0, 0], "30": [0, 1, 0], "40": [0, 0, 1], "60": [0.1, 0, 1],
                "70": [0, 1, 0.2]}
    titles = {"10": "Ten", "30": "Thirty", "40": "Forty", "60": "Sixty (new)",
              "70": "Seventy Adult (new)"}
    save_bundle(MostPopular().fit(train), models_root / "pop-ts", titles=titles,
                item_features=features)
    return "pop-ts"


def test_popularity_filter_and_outliers(make_client):
    counts = np.array([3, 4, 3, 2, 1], dtype=float)  # items 10 20 30 40 50 of ratings()
    assert popularity_filter(counts, 2, 0).tolist() == [4]
    assert popularity_filter(counts, 0, 20).tolist() == [1]
    assert popularity_filter(counts, 0, 40).tolist() == [0, 1, 2]  # ties at the cut go too
    client = make_client("knn", rules=Rules(min_interactions=2, max_popularity_percent=20))
    body = client.get("/users/nobody/recommendations?k=5").json()
    assert [e["item"] for e in body["items"]] == [10, 30, 40]  # 20 (most popular), 50 (1)
    assert items(client.get("/items/10/similar?k=5")) == [30, 40]
    assert 20 not in items(client.post("/recommendations", json={"history": [10], "k": 5}))


def test_rules_config_is_checked(tmp_path):
    conf = tmp_path / "serve.toml"
    conf.write_text('[rules]\nmin_interactions = 5\nmax_popularity_percent = 1.5\n'
                    'cold_start = "recent"\ncold_start_half_life = 86400\n'
                    '[exploration]\nepsilon = 0.1\nmethod = "thompson"\n'
                    '[updates]\ninterval_s = 30\nmin_events = 10\n')
    _, rules = read_config(conf)
    assert (rules.min_interactions, rules.max_popularity_percent, rules.cold_start) == \
        (5, 1.5, "recent")
    exploration, updates = read_sections(conf)
    assert exploration.epsilon == 0.1 and exploration.method == "thompson" and exploration.logging
    assert (updates.interval_s, updates.min_events) == (30, 10)
    conf.write_text('[exploration]\nepsilon = 1.5\n')
    with pytest.raises(ConfigError, match=r"\[exploration\] epsilon must be a number in \[0, 1\]"):
        read_sections(conf)
    conf.write_text('[rules]\ncold_start = "newest"\n')
    with pytest.raises(ConfigError, match="cold_start must be"):
        read_config(conf)


def test_cold_start_recent_popularity(make_client, ts_bundle):
    plain = make_client(ts_bundle)
    body = plain.get("/users/nobody/recommendations?k=3").json()
    assert [e["item"] for e in body["items"]] == [10, 40, 30]
    recent = make_client(ts_bundle, rules=Rules(cold_start="recent", cold_start_half_life=100))
    body = recent.get("/users/nobody/recommendations?k=3").json()
    # 40: 2 x 1; 30: 2^-5; 10: 4 x 2^-10
    assert [e["item"] for e in body["items"]] == [40, 30, 10]
    assert body["fallback"] == "unknown user, no history: recent popularity"
    assert [e["score"] for e in body["items"]] == pytest.approx([2, 2 ** -5, 4 * 2 ** -10])
    assert items(recent.get("/users/nobody/recommendations?k=3&exclude=40")) == [30, 10]
    assert items(recent.get("/users/5/recommendations?k=3")) == [10, 30]  # known: the model
    assert items(recent.get("/onboarding?n=2")) == [40, 30]


def test_onboarding(client):
    assert items(client.get("/onboarding?n=3")) == [20, 10, 30]
    anonymous = client.post("/onboarding", json={"items": [30, 40], "k": 5}, headers=AUTH)
    assert items(anonymous) == [10, 20, 50]
    assert client.post("/onboarding", json={"items": [30]}).status_code == 401
    picked = client.post("/onboarding", json={"user": "newbie", "items": [30, 40], "k": 5},
                         headers=AUTH)
    assert items(picked) == [10, 20, 50] and picked.json()["fallback"] is None
    assert [e["item"] for e in client.get("/users/newbie/history").json()["events"]] == \
        ["30", "40"]
    assert items(client.get("/users/newbie/recommendations?k=5")) == [10, 20, 50]
    bad = client.post("/onboarding", json={"items": []}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "body.items"


def test_new_item_gets_content_similar_items(make_client, ts_bundle):
    client = make_client(ts_bundle, rules=Rules(stoplist_keywords=["adult"]))
    body = client.get("/items/60/similar?k=3").json()
    assert body["fallback"] == "new item (no interactions): content similarity"
    assert [e["item"] for e in body["items"]] == [40, 10]  # 70 is stoplisted, 30 orthogonal
    assert body["items"][0]["score"] == pytest.approx(1 / np.sqrt(1.01))
    assert body["items"][0]["title"] == "Forty"
    # a known item on a model without similarities: content similarity too (new items too)
    known = client.get("/items/40/similar?k=3").json()
    assert known["fallback"] == "MostPopular has no item similarities: content similarity"
    assert [e["item"] for e in known["items"]] == ["60"]  # 70 stoplisted, 10 and 30 at 0
    assert known["items"][0]["title"] == "Sixty (new)"
    assert items(client.get("/items/30/similar?k=3")) == []  # only 70 is close, stoplisted
    assert client.get("/items/999/similar").status_code == 404


def test_explorer_propensities_match_frequencies():
    explorer = Explorer(Exploration(epsilon=0.5, seed=7))
    firsts, logged = Counter(), {}
    for _ in range(4000):
        got, explored, props = explorer.arrange(["a", "b", "c"], ["x", "a", "y"], 3)
        assert len(got) == 3 and len(set(got)) == 3
        firsts[got[0]] += 1
        logged[got[0]] = props[0]
        for item, expl, p in zip(got, explored, props, strict=True):
            assert 0 < p <= 1 and (not expl or item in ("x", "a", "y"))
    # slot 0: a is greedy (0.5) or drawn (0.5 / 3); x and y only drawn
    assert logged == pytest.approx({"a": 0.5 + 0.5 / 3, "x": 0.5 / 3, "y": 0.5 / 3})
    for item, p in logged.items():
        assert firsts[item] / 4000 == pytest.approx(p, abs=0.03)
    greedy_only = Explorer(Exploration(epsilon=0.0))
    assert greedy_only.arrange(["a", "b"], ["x"], 3) == (["a", "b"], [False, False], [1.0, 1.0])


def test_thompson_prefers_clicked_items():
    explorer = Explorer(Exploration(epsilon=1.0, method="thompson", seed=3, thompson_draws=400))
    stats = {"x": (50, 45), "y": (50, 0)}
    got, explored, props = explorer.arrange(["a"], ["y", "x"], 1, stats)
    assert got == ["x"] and explored == [True] and props[0] > 0.95


def test_exploration_is_logged_and_exported(make_client, ts_bundle, tmp_path):
    store = tmp_path / "explore.sqlite"
    client = make_client(ts_bundle, store=store, rules=Rules(stoplist_keywords=["adult"]),
                         exploration=Exploration(epsilon=0.5, seed=1, min_impressions=1000))
    shown = Counter()
    for n in range(30):
        body = client.get(f"/users/{n % 7 + 1}/recommendations?k=2").json()
        assert body["list_id"] and len(body["items"]) == 2
        for e in body["items"]:
            shown[(e["item"], e.get("exploratory", False))] += 1
            assert e["item"] != 70  # stoplisted, never explored
    assert shown[("60", True)] > 0  # the new item gets exploratory slots
    assert ("60", False) not in shown  # and only those: the model cannot score it
    resp = client.get("/impressions?limit=1000", headers=AUTH)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith(
        "application/x-ndjson")
    rows = [json.loads(line) for line in resp.text.splitlines()]
    assert len(rows) == 60 and {r["position"] for r in rows} == {0, 1}
    assert {r["policy"] for r in rows} == {"epsilon-greedy(epsilon=0.5, uniform)"}
    assert all(0 < r["propensity"] <= 1 for r in rows)
    assert sum(r["exploratory"] for r in rows) == sum(n for (_, e), n in shown.items() if e)
    assert client.get("/impressions").status_code == 401
    out = tmp_path / "log.parquet"
    assert main(["export-log", str(store), "--out", str(out)]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 60 and df["exploratory"].sum() == sum(r["exploratory"] for r in rows)
    assert main(["export-log", str(store), "--out", str(tmp_path / "log.jsonl")]) == 0
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 60
    assert main(["export-log", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 2


def test_greedy_lists_are_logged_with_propensity_one(make_client):
    client = make_client("knn", exploration=Exploration(log=True))
    body = client.get("/users/4/recommendations?k=5").json()
    assert [e["item"] for e in body["items"]] == [10, 20, 50] and body["list_id"]
    rows = [json.loads(x) for x in client.get("/impressions", headers=AUTH).text.splitlines()]
    assert [(r["item"], r["position"], r["propensity"], r["exploratory"]) for r in rows] == \
        [("10", 0, 1.0, False), ("20", 1, 1.0, False), ("50", 2, 1.0, False)]
    assert rows[0]["user"] == "4" and rows[0]["policy"] == "greedy"
    assert items(client.get("/onboarding?n=2")) == [20, 10]
    rows = [json.loads(x) for x in client.get("/impressions?after=3", headers=AUTH).text.splitlines()]
    assert [(r["endpoint"], r["item"], r["user"]) for r in rows] == \
        [("/onboarding", "20", None), ("/onboarding", "10", None)]


__all__ = ["TITLES"]


def test_a_list_is_served_when_it_cannot_be_logged(make_client, monkeypatch):
    from recforge.serving.store import SQLiteStore, StoreError

    client = make_client("knn", exploration=Exploration(log=True))

    def refuse(self, shown):
        raise StoreError("the store x cannot be written: attempt to write a readonly database")

    monkeypatch.setattr(SQLiteStore, "log_list", refuse)
    body = client.get("/users/4/recommendations?k=5").json()
    assert [e["item"] for e in body["items"]] == [10, 20, 50] and "list_id" not in body
    assert "recforge_list_log_failures_total 1.0" in client.get("/metrics").text


def test_exploration_never_shows_a_user_what_they_did(make_client, ts_bundle):
    client = make_client(ts_bundle, rules=Rules(stoplist_keywords=["adult"]),
                         exploration=Exploration(epsilon=1.0, seed=5, min_impressions=10 ** 6))
    client.post("/events", json={"events": [{"user": 200, "item": 60}]}, headers=AUTH)
    mine = {e["item"] for _ in range(10)
            for e in client.get("/users/200/recommendations?k=3").json()["items"]}
    other = {e["item"] for _ in range(10)
             for e in client.get("/users/201/recommendations?k=3").json()["items"]}
    assert "60" not in mine and mine <= {10, 30, 40}
    assert "60" in other and 70 not in other | mine


def test_thompson_exploration_through_the_service(make_client, ts_bundle):
    client = make_client(ts_bundle, rules=Rules(stoplist_keywords=["adult"]),
                         exploration=Exploration(epsilon=0.5, method="thompson", seed=2,
                                                 min_impressions=10 ** 6, thompson_draws=50))
    for n in range(6):
        assert len(client.get(f"/users/{n + 1}/recommendations?k=2").json()["items"]) == 2
    rows = [json.loads(x) for x in client.get("/impressions", headers=AUTH).text.splitlines()]
    assert len(rows) == 12
    assert {r["policy"] for r in rows} == {"epsilon-greedy(epsilon=0.5, thompson)"}
    assert all(0 < r["propensity"] <= 1 for r in rows) and any(r["exploratory"] for r in rows)
    assert all(r["item"] != "70" for r in rows)


def test_least_shown_items_first_ties_at_random():
    explorer = Explorer(Exploration(epsilon=0.1, seed=0))
    stats = {"a": (5, 0), "b": (0, 0), "d": (1, 0)}  # c never shown, not even counted
    orders = {tuple(explorer.least_shown(["a", "b", "c", "d"], stats, 3)) for _ in range(20)}
    assert orders == {("b", "c", "d"), ("c", "b", "d")}
