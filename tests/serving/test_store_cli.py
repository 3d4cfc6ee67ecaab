"""The SQLite store on its own, and the train / serve subcommands."""

import threading

import pandas as pd
import pytest

from recforge.cli.main import main
from recforge.serving import Event, SQLiteStore, load_bundle


def test_store_is_durable_and_shared_by_threads(tmp_path):
    path = tmp_path / "events.sqlite"
    store = SQLiteStore(path)
    assert store.add_events([Event("10", user="u", value=2.0, timestamp=1.0),
                             Event("20", session="s", timestamp=2.0)]) == 2

    def write(n):
        SQLiteStore(path).add_events([Event(str(n), user="t", timestamp=float(n))])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    again = SQLiteStore(path)
    assert again.user_events("u") == [Event("10", user="u", value=2.0, timestamp=1.0)]
    assert [e.item for e in again.session_events("s")] == ["20"]
    assert sorted(int(e.item) for e in again.user_events("t")) == list(range(8))
    assert [e.item for e in again.user_events("t", limit=2)] == [e.item for e in again.user_events("t")][-2:]
    assert again.count_events() == 10
    assert again._conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_train_writes_a_bundle(tmp_path):
    data = tmp_path / "ratings.csv"
    pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [10, 20, 10, 30, 20],
                  "rating": [5, 4, 3, 5, 4]}).to_csv(data, index=False)
    out = tmp_path / "models" / "knn"
    assert main(["train", str(data), "--model", "ItemKNNTopN", "--param", "k=3",
                 "--out", str(out)]) == 0
    bundle = load_bundle(out)
    assert bundle.model.name == "ItemKNNTopN" and bundle.model.k == 3
    items, values, _ = bundle.history.rows("2")
    assert items.tolist() == [10, 30] and values.tolist() == [3.0, 5.0]
    conf = tmp_path / "train.toml"
    conf.write_text(f'source = "{data.name}"\nmodel = "MostPopular"\nout = "models/pop"\n')
    assert main(["train", str(conf)]) == 0
    assert load_bundle(tmp_path / "models" / "pop").model.name == "MostPopular"
    assert main(["train", str(data), "--model", "NoSuchModel", "--out", str(out)]) == 2
    assert main(["train", str(data), "--model", "MostPopular", "--param", "bogus=1",
                 "--out", str(out)]) == 2


def test_serve_refuses_a_bad_model_dir(tmp_path, capsys):
    pytest.importorskip("uvicorn")
    bad = tmp_path / "models" / "nothing"
    bad.mkdir(parents=True)
    assert main(["serve", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "nothing/config.json" in err and "missing" in err


def test_serve_refuses_a_bad_config(tmp_path, capsys):
    pytest.importorskip("uvicorn")
    conf = tmp_path / "serve.toml"
    conf.write_text("[limits]\nmax_k = -1\n")
    assert main(["serve", str(tmp_path), "--config", str(conf)]) == 2
    assert "max_k must be a positive integer" in capsys.readouterr().err
