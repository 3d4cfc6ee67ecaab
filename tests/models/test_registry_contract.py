"""Every registered model runs the shared contract (a model missing here fails the suite),
and the registry imports only the family it needs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recforge.data import ItemFeatures
from recforge.models import ModelFileError, available_models, load_model
from recforge.models._catalog import MODEL_MODULES
from recforge.models.base import SESSION

from .contract import (
    check_fold_in_exact,
    check_model_contract,
    check_session_contract,
    contract_data,
)


def _contract_features(data) -> ItemFeatures:
    raw = data.item_map.raw
    genres = ["A|B", "A", "B", "C", "A|C", "B|C", "C", "A", "B", "A|B|C", "", "C", "A", "B"]
    df = pd.DataFrame({"item": raw, "genres": genres[:len(raw)],
                       "year": 1980 + 3 * np.arange(len(raw)) % 17})
    return ItemFeatures.from_dataframe(df, data.item_map, categorical={"genres": "|"},
                                       numeric={"year": ["year"]})


def _factories():
    from recforge.models import get_model_class as g

    return {
        "Random": lambda: g("Random")(random_state=0),
        "GlobalMean": lambda: g("GlobalMean")(),
        "BaselineOnly": lambda: g("BaselineOnly")(),
        "MostPopular": lambda: g("MostPopular")(),
        "RandomRanker": lambda: g("RandomRanker")(random_state=0),
        "ContentKNN": lambda: g("ContentKNN")(k=5, components={"genres": 1.0, "year": 1.0}),
        "KNNBasic": lambda: g("KNNBasic")(k=3, sim="cosine", user_based=False),
        "KNNWithMeans": lambda: g("KNNWithMeans")(k=3, sim="pearson", user_based=True),
        "KNNWithZScore": lambda: g("KNNWithZScore")(k=3, sim="msd", user_based=False),
        "KNNBaseline": lambda: g("KNNBaseline")(k=3, sim="pearson_baseline", user_based=True),
        "SlopeOne": lambda: g("SlopeOne")(),
        "CoClustering": lambda: g("CoClustering")(n_cltr_u=2, n_cltr_i=2, random_state=4),
        "UserKNNTopN": lambda: g("UserKNNTopN")(k=3),
        "ItemKNNTopN": lambda: g("ItemKNNTopN")(k=4),
        "PureSVD": lambda: g("PureSVD")(n_factors=3, random_state=0),
        "timeSVDpp": lambda: g("timeSVDpp")(n_factors=3, n_epochs=3, n_bins=4, random_state=0),
        "SVDpp": lambda: g("SVDpp")(n_factors=3, n_epochs=3, random_state=0),
        "SVD": lambda: g("SVD")(n_factors=4, n_epochs=5, random_state=0),
        "PMF": lambda: g("PMF")(n_factors=4, n_epochs=5, random_state=0),
        "ALS": lambda: g("ALS")(factors=4, iterations=3, random_state=0),
        "SurpriseAlgorithm": lambda: g("SurpriseAlgorithm")("BaselineOnly"),
        "NMF": lambda: g("NMF")(n_factors=3, n_epochs=5, random_state=0),
        "NSVD1": lambda: g("NSVD1")(n_factors=4, n_epochs=5, random_state=0),
        "BPR": lambda: g("BPR")(factors=4, iterations=5, random_state=0, num_threads=1),
        "LMF": lambda: g("LMF")(factors=3, iterations=5, neg_prop=3, random_state=0),
        "SPop": lambda: g("SPop")(),
        "MarkovChain": lambda: g("MarkovChain")(),
        "ItemKNNSession": lambda: g("ItemKNNSession")(),
        "SKNN": lambda: g("SKNN")(k=3, sample_size=10),
        "VSKNN": lambda: g("VSKNN")(k=3, sample_size=10),
        "GRU4Rec": lambda: g("GRU4Rec")(layers=[8], batch_size=2, n_epochs=1, n_sample=0,
                                         random_state=0),
        "SASRec": lambda: g("SASRec")(hidden=8, num_blocks=1, num_heads=1, max_len=4, epochs=1,
                                       batch_size=4, random_state=0),
        "EASE": lambda: g("EASE")(l2=2.0),
        "SLIM": lambda: g("SLIM")(alpha=0.01, l1_ratio=0.2, num_threads=1),
        "item2vec": lambda: g("item2vec")(vector_size=8, epochs=3, negative=2, random_state=0),
        "MetaProd2Vec": lambda: g("MetaProd2Vec")(vector_size=8, epochs=3, negative=2, window=2,
                                                  random_state=0),
        "RBM": lambda: g("RBM")(n_hidden=6, epochs=3, batch_size=4, cd_k=1, cd_k_final=2,
                                random_state=0),
        "CFNADE": lambda: g("CFNADE")(n_hidden=6, epochs=3, batch_size=4, random_state=0),
        "MultDAE": lambda: g("MultDAE")(hidden_dims=[8, 4], epochs=2, batch_size=4, random_state=0),
        "MultVAE": lambda: g("MultVAE")(hidden_dims=[8, 4], epochs=2, batch_size=4,
                                         total_anneal_steps=4, random_state=0),
        "CDAE": lambda: g("CDAE")(hidden=6, epochs=2, batch_size=4, negatives=2, random_state=0),
        "FM": lambda: g("FM")(embedding_dim=4, n_epochs=2, batch_size=8, init_std=0.1, random_state=0),
        "DeepFM": lambda: g("DeepFM")(embedding_dim=4, hidden=[8], n_epochs=2, batch_size=8,
                                      random_state=0),
        "WideDeep": lambda: g("WideDeep")(embedding_dim=4, hidden=[8], n_epochs=2, batch_size=8,
                                          crosses=[["user_id", "item_id"]], cross_buckets=64,
                                          random_state=0),
        "TwoTower": lambda: g("TwoTower")(embedding_dim=4, out_dim=4, hidden=[6], n_epochs=2,
                                          batch_size=8, n_negatives=3, random_state=0),
        "TwoTowerRanking": lambda: g("TwoTowerRanking")(embedding_dim=4, out_dim=4, hidden=[6],
                                                        rating_hidden=[8, 4], n_epochs=2, batch_size=8,
                                                        random_state=0),
        "TwoTowerMultitask": lambda: g("TwoTowerMultitask")(embedding_dim=4, out_dim=4, rating_hidden=[8],
                                                            n_epochs=2, batch_size=8, n_negatives=3,
                                                            random_state=0),
        "YouTubeDNN": lambda: g("YouTubeDNN")(embedding_dim=4, hidden=[6], out_dim=4, max_history=5,
                                              n_negatives=4, n_epochs=2, batch_size=8, random_state=0),
        "DCNv2": lambda: g("DCNv2")(embedding_dim=4, hidden=[8], n_cross=2, rank=3, n_epochs=2,
                                    batch_size=8, random_state=0),
        "GMF": lambda: g("GMF")(factors=4, epochs=2, batch_size=8, random_state=0),
        "MLP": lambda: g("MLP")(layers=[8, 4], epochs=2, batch_size=8, random_state=0),
        "NeuMF": lambda: g("NeuMF")(factors=4, layers=[8, 4], pretrain=True, pretrain_epochs=1,
                                     epochs=1, batch_size=8, random_state=0),
        "IAutoRec": lambda: g("IAutoRec")(hidden=6, epochs=3, batch_size=4, random_state=0),
        "UAutoRec": lambda: g("UAutoRec")(hidden=6, epochs=3, batch_size=4, random_state=0),
    }


FACTORIES = _factories()


def test_every_registered_model_runs_the_contract():
    ours = {n for n, c in available_models().items() if c.__module__.startswith("recforge.")}
    assert ours == set(FACTORIES), \
        "each registered model needs a factory in FACTORIES (and so runs the contract)"


def test_catalog_names_each_model_s_own_module():
    for name, cls in available_models().items():
        if cls.__module__.startswith("recforge."):
            assert MODEL_MODULES.get(name) == cls.__module__, name


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_contract(name, tmp_path):
    factory = FACTORIES[name]
    if factory().has(SESSION):
        check_session_contract(factory, tmp_path=tmp_path)
        return
    data = contract_data()
    with_features = name in ("ContentKNN", "MetaProd2Vec", "FM", "DeepFM", "WideDeep", "DCNv2", "TwoTower",
                             "TwoTowerRanking", "TwoTowerMultitask")
    kwargs = {"item_features": _contract_features(data)} if with_features else {}
    # the torch models score many rows in one float32 pass, whose GEMM kernel (chosen by the
    # number of rows) can change the last bit of a score: batch and single scores agree to
    # float32 precision only (the lists themselves are compared exactly)
    loose = name in ("ContentKNN", "MultDAE", "MultVAE", "CDAE", "FM", "DeepFM", "WideDeep",
                     "DCNv2")
    check_model_contract(factory, data, tmp_path=tmp_path, fit_kwargs=kwargs, atol=1e-6 if loose else 0.0)


@pytest.mark.parametrize("name", ["KNNBasic", "KNNWithMeans", "KNNWithZScore", "ItemKNNTopN",
                                  "UserKNNTopN", "ContentKNN", "SlopeOne", "KNNBasic-user",
                                  "KNNWithMeans-user", "KNNWithZScore-user", "NSVD1", "UAutoRec"])
def test_anonymous_history_equals_query_by_id(name):
    """recommend(history=[{item: rating}]) == recommend([user]) for history-scored models."""
    from recforge.models import get_model_class

    data = contract_data()
    cls = get_model_class(name.split("-")[0])
    model = {"KNNBasic": lambda: cls(k=3, sim="cosine", user_based=False),
             "KNNWithMeans": lambda: cls(k=3, sim="pearson", user_based=False),
             "KNNWithZScore": lambda: cls(k=3, sim="msd", user_based=False),
             # user-based: the anonymous row's neighbours by the same similarity (cosine and
             # msd compare two rows only, so the fold-in reproduces the fitted ones)
             "KNNBasic-user": lambda: cls(k=3, sim="cosine", user_based=True),
             "KNNWithMeans-user": lambda: cls(k=3, sim="msd", user_based=True),
             "KNNWithZScore-user": lambda: cls(k=3, sim="cosine", user_based=True),
             }.get(name, FACTORIES.get(name))()
    kwargs = {"item_features": _contract_features(data)} if name == "ContentKNN" else {}
    model.fit(data, **kwargs)
    check_fold_in_exact(model, data, k=10)


def test_loading_a_knn_model_imports_no_torch(tmp_path):
    from recforge.models import get_model_class

    path = get_model_class("KNNBaseline")(k=3).fit(contract_data()).save(tmp_path / "knn")
    code = ("import sys; from recforge.models import load_model; "
            f"m = load_model({str(path)!r}); "
            "print(type(m).__name__, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["KNNBaseline", "False"]


def test_a_changed_byte_in_arrays_npz_names_the_file(tmp_path):
    from recforge.models import get_model_class

    path = get_model_class("BaselineOnly")().fit(contract_data()).save(tmp_path / "m")
    blob = bytearray((path / "arrays.npz").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (path / "arrays.npz").write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match=r"arrays\.npz: sha256 does not match"):
        load_model(path)


def test_bad_saved_models_get_clear_errors(tmp_path):
    from recforge.models import get_model_class

    path = get_model_class("MostPopular")().fit(contract_data()).save(tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    with pytest.raises(ModelFileError, match="no such model directory"):
        load_model(tmp_path / "nowhere")
    (path / "config.json").write_text(json.dumps(cfg | {"model": "NoSuchModel"}))
    with pytest.raises(ModelFileError, match="unknown model 'NoSuchModel'"):
        load_model(path)
    (path / "config.json").write_text(json.dumps(cfg | {"format_version": 1}))
    with pytest.raises(ModelFileError, match="format version 1"):
        load_model(path)
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "arrays.npz").unlink()
    with pytest.raises(ModelFileError, match=r"arrays\.npz: missing"):
        load_model(path)


def _ml100k():
    from pathlib import Path

    from recforge.data import load

    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ml-100k"
    if not folder.is_dir():
        pytest.skip("ML-100K not available in ../shared/data")
    return load(str(folder)).interactions


@pytest.mark.realdata
@pytest.mark.parametrize("name, params", [
    ("KNNBasic", {"k": 40, "sim": "cosine", "user_based": False}),
    ("KNNWithMeans", {"k": 40, "sim": "pearson", "user_based": False}),
    ("ItemKNNTopN", {"k": 10}),
    ("UserKNNTopN", {"k": 10}),
])
def test_anonymous_history_equals_query_by_id_on_ml100k(name, params):
    """The done-when case on real data: 40 users' own ratings, queried anonymously, give exactly
    the top-10 they get by id."""
    from recforge.models import get_model_class

    data = _ml100k()
    model = get_model_class(name)(**params).fit(data)
    users = np.random.default_rng(0).choice(data.n_users, 40, replace=False)
    csr = data.csr
    hist = [dict(zip(data.item_map.raw[csr.indices[csr.indptr[u]:csr.indptr[u + 1]]].tolist(),
                     csr.data[csr.indptr[u]:csr.indptr[u + 1]].tolist(), strict=True)) for u in users]
    anon = model.recommend(history=hist, k=10)
    by_id = model.recommend(data.user_map.raw[users], k=10)
    np.testing.assert_array_equal(anon.items, by_id.items)
    assert all(f is None for f in anon.fallback)


def test_a_loaded_history_model_asked_without_history_says_so(tmp_path, caplog):
    from recforge.models import get_model_class

    data = contract_data()
    path = get_model_class("ItemKNNTopN")(k=4).fit(data).save(tmp_path / "m")
    model = load_model(path)
    with caplog.at_level("WARNING"):
        rec = model.recommend(["u1"], k=3)
    assert "pass history=" in caplog.text
    assert rec.fallback[0] == "no history: popularity"
    assert model.recommend(["u1"], k=3, history=data).fallback[0] is None
