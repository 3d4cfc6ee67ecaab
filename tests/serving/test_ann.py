"""Nearest-neighbour retrieval (serving/ann.py) on a small factor model: the same lists as the
model's own scoring, filters respected, recall recorded, a clear error without faiss."""

import sys

import numpy as np
import pytest

pytest.importorskip("faiss")

from fastapi.testclient import TestClient  # noqa: E402

from recforge.data import Interactions  # noqa: E402
from recforge.models.factorization.puresvd import PureSVD  # noqa: E402
from recforge.serving import Settings, save_bundle  # noqa: E402
from recforge.serving.ann import AnnSettings, AnnUnavailable, build_retriever  # noqa: E402
from recforge.serving.app import create_app  # noqa: E402
from recforge.serving.config import Rules  # noqa: E402

from .conftest import AUTH, TOKEN  # noqa: E402


def low_rank_ratings(n_users=80, n_items=300, per_user=15, seed=0) -> Interactions:
    """Each user picks items by the dot product of random 4-d tastes (a low-rank catalogue)."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(n_users, 4)), rng.normal(size=(n_items, 4))
    users, items = [], []
    for r in range(n_users):
        p = np.exp(u[r] @ v.T)
        chosen = rng.choice(n_items, per_user, replace=False, p=p / p.sum())
        users += [r] * per_user
        items += (chosen + 1000).tolist()
    return Interactions.from_arrays(users, items)


@pytest.fixture(scope="module")
def svd_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ann-models")
    save_bundle(PureSVD(n_factors=8).fit(low_rank_ratings()), root / "svd")
    return root


@pytest.fixture(scope="module")
def svd_model(svd_root):
    from recforge.serving.bundle import load_bundle

    return load_bundle(svd_root / "svd")


def _lists(rec):
    return [[i for i in row if i is not None] for row in rec.items.tolist()]


@pytest.mark.parametrize("kind,settings", [
    ("exact", AnnSettings()),
    ("hnsw", AnnSettings(hnsw_ef_search=400)),
    ("ivf", AnnSettings(ivf_nlist=8, ivf_nprobe=8)),  # every bucket scanned: exact
])
def test_ann_lists_equal_exact_ones(svd_model, kind, settings):
    model, history = svd_model.model, svd_model.history
    retriever, info = build_retriever(model, kind, settings)
    assert info.kind == kind and info.recall_at_10 == 1.0 and info.build_s >= 0
    rng = np.random.default_rng(1)
    for user in range(0, 80, 7):
        items, values, _ = history.rows(str(user))
        hist = [dict(zip(items.tolist(), values.tolist(), strict=True))]
        exclude = rng.choice(model.item_map_.raw, 20, replace=False).tolist()
        for query in ({}, {"exclude": exclude},
                      {"candidates": model.item_map_.raw[:40].tolist(), "exclude": exclude[:5]}):
            want = model.recommend([user], 10, history=hist, **query)
            got = retriever.recommend([user], 10, history=hist, **query)
            assert _lists(got) == _lists(want), (user, query)
            np.testing.assert_allclose(got.scores, want.scores, rtol=1e-4, atol=1e-5)
            seen = set(items.tolist()) | set(query.get("exclude", []))
            assert not seen & set(_lists(got)[0])
            if "candidates" in query:
                assert set(_lists(got)[0]) <= set(query["candidates"])
    # an unknown user without history takes the model's popularity fallback, as exact does
    want = model.recommend(None, 5, history=[[]])
    got = retriever.recommend(None, 5, history=[[]])
    assert _lists(got) == _lists(want) and got.fallback.tolist() == want.fallback.tolist()


def test_overfetch_grows_past_a_long_exclusion(svd_model):
    model = svd_model.model
    retriever, _ = build_retriever(model, "hnsw", AnnSettings(hnsw_ef_search=400))
    ranked = _lists(model.recommend([0], 300, history=[[]], exclude_seen=False))[0]
    exclude = ranked[:250]  # the 250 best are banned: the list must come from the rest
    got = _lists(retriever.recommend([0], 10, history=[[]], exclude=exclude))[0]
    assert got == [i for i in ranked if i not in set(exclude)][:10]


def test_auto_uses_model_scoring_below_threshold(svd_model):
    retriever, info = build_retriever(svd_model.model, "auto", AnnSettings(threshold=1000))
    assert retriever is None and info.kind == "model" and "threshold" in info.note
    retriever, info = build_retriever(svd_model.model, "auto", AnnSettings(threshold=100))
    assert info.kind == "hnsw" and info.recall_at_10 >= 0.95
    assert info.params["efSearch"] >= 16 and info.params["M"] == 32


def _client(root, tmp_path, **kw):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    settings = Settings(models_root=str(root), store=str(tmp_path / "store.sqlite"),
                        token_file=str(tokens), **kw)
    return TestClient(create_app(settings))


def test_index_recorded_in_models_and_lists_served(svd_root, svd_model, tmp_path):
    banned = svd_model.model.item_map_.raw[:2].tolist()
    client = _client(svd_root, tmp_path, model_dir="svd",
                     rules=Rules(stoplist_items=[str(i) for i in banned]))
    exact = client.get("/users/3/recommendations", params={"k": 10, "exclude": "1005"}).json()
    resp = client.post("/models", json={"path": "svd", "promote": True, "index": "hnsw"},
                       headers=AUTH)
    assert resp.status_code == 201, resp.text
    index = resp.json()["index"]
    assert index["kind"] == "hnsw" and index["requested"] == "hnsw" and index["n_items"] == svd_model.model.n_items_
    assert index["recall@10"] >= 0.95 and index["build_s"] > 0
    listed = client.get("/models").json()["versions"]
    assert listed[0]["index"]["kind"] == "hnsw" and listed[0]["index"]["recall@10"] >= 0.95
    ann = client.get("/users/3/recommendations", params={"k": 10, "exclude": "1005"}).json()
    assert [e["item"] for e in ann["items"]] == [e["item"] for e in exact["items"]]
    assert not {*banned, 1005} & {e["item"] for e in ann["items"]}
    bad = client.post("/models", json={"path": "svd", "index": "annoy"}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "body.index"


def test_without_faiss_ann_is_refused_and_exact_serves(svd_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    with pytest.raises(AnnUnavailable, match="faiss"):
        from recforge.serving.ann import import_faiss
        import_faiss()
    client = _client(svd_root, tmp_path, model_dir="svd", ann=AnnSettings(threshold=10))
    first = client.get("/models").json()["versions"][0]["index"]
    assert first["kind"] == "model" and first["note"] == "faiss not installed"
    resp = client.post("/models", json={"path": "svd", "index": "hnsw"}, headers=AUTH)
    assert resp.status_code == 422 and "pip install 'recforge[serve]'" in resp.json()["detail"]
    assert client.get("/users/3/recommendations").status_code == 200
