"""The ``recforge`` command: help, exit codes, datasets list/download/info, split."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from recforge.cli import main as cli_main
from recforge.cli.main import main

RATINGS = "user,item,rating,timestamp\n" + "".join(
    f"{u},{i},{(u + i) % 5 + 1},{1000 + 10 * u + i}\n" for u in range(1, 11) for i in range(1, 8))


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    f = tmp_path / "ratings.csv"
    f.write_text(RATINGS)
    return f


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_and_usage_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "datasets" in out and "split" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("recforge ")
    assert run(capsys, "datasets", "info", "--help")[0] == 0
    assert run(capsys, "no-such-command")[0] == 2
    assert run(capsys, "datasets", "info")[0] == 2  # missing source
    assert run(capsys, "datasets")[0] == 2  # group without subcommand prints its help
    assert run(capsys)[0] == 2


def test_module_entry_point(ratings_csv):
    r = subprocess.run([sys.executable, "-m", "recforge.cli", "datasets", "info", str(ratings_csv),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["interactions"]["interactions"] == 70


def test_info_file(capsys, ratings_csv):
    code, out, err = run(capsys, "datasets", "info", str(ratings_csv))
    assert code == 0, err
    assert "interactions: 70  users: 10  items: 7" in out
    assert "rating scale: 1 .. 5" in out and "dropped / merged: nothing" in out
    code, out, _ = run(capsys, "datasets", "info", str(ratings_csv), "--json")
    s = json.loads(out)["interactions"]
    assert (s["interactions"], s["users"], s["items"]) == (70, 10, 7)
    assert s["rating_scale"] == [1.0, 5.0]


def test_info_column_mapping_and_scale(capsys, tmp_path):
    f = tmp_path / "stars.tsv"
    f.write_text("who\twhat\tstars\n1\ta\t10\n2\tb\t7\n2\ta\t3\n")
    code, out, err = run(capsys, "datasets", "info", str(f), "--user", "who", "--item", "what",
                         "--rating", "stars", "--rating-scale", "1", "10", "--json")
    assert code == 0, err
    s = json.loads(out)["interactions"]
    assert (s["interactions"], s["rating_scale"]) == (3, [1.0, 10.0])
    code, _, err = run(capsys, "datasets", "info", str(f), "--user", "who", "--item", "what",
                       "--rating", "stars", "--rating-scale", "1", "5")
    assert code == 1 and "line 2" in err and "field 'stars'" in err
    code, out, _ = run(capsys, "datasets", "info", str(f), "--user", "who", "--item", "what",
                       "--rating", "none", "--json")
    assert json.loads(out)["interactions"]["kind"] == "implicit"


def test_info_malformed_file_names_the_line(capsys, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("user,item,rating\n1,2,3\n1,3,4,9\n2,2,x\n")
    code, out, err = run(capsys, "datasets", "info", str(f))
    assert code == 1 and out == ""
    assert f"{f}, line 3: expected 3 fields, found 4" in err
    code, out, err = run(capsys, "datasets", "info", str(f), "--skip-bad-rows")
    assert code == 0, err
    assert "1 malformed lines (wrong number of fields) (e.g. lines 3)" in out
    assert "rows with non-numeric or NaN rating in 'rating' (e.g. lines 4)" in out
    code, _, err = run(capsys, "datasets", "info", str(tmp_path / "missing.csv"))
    assert code == 1 and "no such file" in err


def test_info_no_header_and_duplicates(capsys, tmp_path):
    f = tmp_path / "u.tsv"
    f.write_text("1\t1\t2\n1\t1\t4\n2\t1\t5\n")
    code, out, _ = run(capsys, "datasets", "info", str(f), "--no-header", "--duplicates", "mean",
                       "--json")
    s = json.loads(out)
    assert code == 0 and s["interactions"]["interactions"] == 2
    assert s["dropped"]["counts"] == {"duplicate (user, item) rows merged by 'mean'": 1}


def test_info_directory_and_known_name(capsys, tmp_path):
    d = tmp_path / "ml-100k"
    d.mkdir()
    (d / "u.data").write_text("1\t1\t4\t10\n2\t1\t5\t30\n")
    code, out, _ = run(capsys, "datasets", "info", str(d))
    assert code == 0 and "interactions: 2  users: 2  items: 1" in out
    code, out, _ = run(capsys, "datasets", "info", "ml-100k", "--data-dir", str(tmp_path))
    assert code == 0 and "name:     ml-100k" in out
    code, _, err = run(capsys, "datasets", "info", "ml-1m", "--cache-dir", str(tmp_path / "c"))
    assert code == 1 and "recforge datasets download ml-1m" in err
    # column flags make no sense for a MovieLens directory: usage error
    code, _, err = run(capsys, "datasets", "info", str(d), "--user", "x")
    assert code == 2 and "single CSV/TSV/Parquet" in err


def test_list_and_download(capsys, tmp_path):
    from tests.data.test_download import Server, make_zip

    server = Server()
    try:
        server.routes["/ml-100k.zip"] = make_zip({"u.data": "1\t1\t4\t10\n"})
        cache = str(tmp_path / "cache")
        code, out, _ = run(capsys, "datasets", "list", "--cache-dir", cache, "--json")
        rows = {r["name"]: r for r in json.loads(out)["datasets"]}
        assert code == 0 and rows["ml-100k"]["status"] == "downloadable"
        assert rows["yoochoose"]["status"] == "manual download"
        code, out, err = run(capsys, "datasets", "download", "ml-100k", "--cache-dir", cache,
                             "--url", server.url("/ml-100k.zip"))
        assert code == 0, err
        assert Path(out.strip()) == Path(cache) / "ml-100k"
        code, out, _ = run(capsys, "datasets", "list", "--cache-dir", cache)
        assert any(line.startswith("ml-100k") and "cached" in line for line in out.splitlines())
        code, out, _ = run(capsys, "datasets", "info", "ml-100k", "--cache-dir", cache, "--json")
        assert json.loads(out)["interactions"]["interactions"] == 1
        code, _, err = run(capsys, "datasets", "download", "ml-1m", "--cache-dir", cache,
                           "--url", server.url("/ml-100k.zip"), "--sha256", "ab" * 32)
        assert code == 1 and "checksum mismatch" in err
        code, _, err = run(capsys, "datasets", "download", "diginetica", "--cache-dir", cache)
        assert code == 1 and "cannot be downloaded automatically" in err
    finally:
        server.close()


def test_split_holdout_writes_parts_and_report(capsys, tmp_path, ratings_csv):
    pytest.importorskip("recforge.split")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "split", str(ratings_csv), "--method", "holdout",
                         "--test-ratio", "0.3", "--seed", "7", "--out", str(out_dir))
    assert code == 0, err
    train = pd.read_csv(out_dir / "train.csv")
    test = pd.read_csv(out_dir / "test.csv")
    assert len(train) + len(test) == 70 and len(test) == 21
    both = pd.concat([train, test])
    original = pd.read_csv(ratings_csv)
    key = ["user", "item", "rating", "timestamp"]
    assert both.sort_values(key).to_numpy().tolist() == original.sort_values(key).to_numpy().tolist()
    report = json.loads((out_dir / "split_report.json").read_text())
    assert report["splits"]["config"]["seed"] == 7
    assert report["splits"]["files"]["test"]["rows"] == 21
    # a written part reads back with `datasets info`
    code, out, _ = run(capsys, "datasets", "info", str(out_dir / "train.csv"), "--json")
    assert code == 0 and json.loads(out)["interactions"]["interactions"] == 49


def test_split_kfold_parquet_paths(capsys, tmp_path, ratings_csv):
    pytest.importorskip("recforge.split")
    code, _, err = run(capsys, "split", str(ratings_csv), "--method", "kfold", "--n-folds", "3",
                       "--train", str(tmp_path / "tr.parquet"), "--test", str(tmp_path / "te.parquet"))
    assert code == 0, err
    sizes = [len(pd.read_parquet(tmp_path / f"te-fold{k}.parquet")) for k in (1, 2, 3)]
    assert sum(sizes) == 70
    report = json.loads((tmp_path / "split_report.json").read_text())
    assert len(report["splits"]) == 3


def test_split_sessions_and_usage_errors(capsys, tmp_path, ratings_csv):
    pytest.importorskip("recforge.split")
    day = 86400.0
    rows = ["SessionId\tItemId\tTime"]
    for s in range(1, 21):
        for k in range(3):
            rows.append(f"{s}\t{(s + k) % 6}\t{s * day / 4 + k}")
    f = tmp_path / "clicks_train_full.txt"
    f.write_text("\n".join(rows) + "\n")
    code, out, err = run(capsys, "split", str(f), "--method", "session", "--out", str(tmp_path / "s"))
    assert code == 0, err
    test = pd.read_csv(tmp_path / "s" / "test.csv")
    assert list(test.columns) == ["session", "item", "timestamp"] and len(test) > 0
    code, _, err = run(capsys, "split", str(f), "--method", "session", "--test-days", "1",
                       "--validation-days", "1", "--out", str(tmp_path / "v"))
    assert code == 0, err
    parts = {p: len(pd.read_csv(tmp_path / "v" / f"{p}.csv"))
             for p in ("train", "train_tr", "validation", "test")}
    assert parts["train_tr"] + parts["validation"] <= parts["train"]
    assert run(capsys, "split", str(ratings_csv), "--method", "session",
               "--out", str(tmp_path / "x"))[0] == 2
    code, _, err = run(capsys, "split", str(ratings_csv), "--test-ratio", "1.5",
                       "--out", str(tmp_path / "y"))
    assert code == 2 and "test_ratio" in err
    assert run(capsys, "split", str(ratings_csv))[0] == 2  # no output given


def test_adding_a_subcommand_is_one_line(capsys, monkeypatch):
    mod = types.ModuleType("recforge_test_hello")

    def add_parser(sub):
        p = sub.add_parser("hello", help="say hello")
        p.set_defaults(func=lambda args: print("hello") or 0)

    mod.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "recforge_test_hello", mod)
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", [*cli_main.SUBCOMMANDS, "recforge_test_hello"])
    code, out, _ = run(capsys, "hello")
    assert code == 0 and out == "hello\n"


# ------------------------------------------------------------------ models
def test_models_lists_every_registered_model(capsys):
    from recforge.models._catalog import MODEL_MODULES
    code, out, err = run(capsys, "models")
    assert code == 0, err
    for name in MODEL_MODULES:
        assert any(line.startswith(f"{name}  [") for line in out.splitlines()), name
    assert "EASE  [fold_in, incremental, ranking]  EASE (Steck 2019)" in out
    assert "    l2=500.0, threshold=None, binarize=True, max_memory_gb=4.0" in out
    code, out, _ = run(capsys, "models", "--json")
    rows = {d["name"]: d for d in json.loads(out)["models"]}
    assert set(rows) == set(MODEL_MODULES)
    ease = rows["EASE"]
    assert ease["params"][0] == {"name": "l2", "required": False, "default": 500.0}
    assert ease["capabilities"] == ["fold_in", "incremental", "ranking"]
    assert ease["read"] == "import"
    assert rows["GRU4Rec"]["read"] == "source"
    assert rows["GRU4Rec"]["capabilities"] == ["fold_in", "session"]
    assert {"name": "layers", "required": False, "default": [100]} in rows["GRU4Rec"]["params"]
    assert rows["GlobalMean"]["params"] == []


def test_models_listing_does_not_import_torch():
    code = ("import sys, io, contextlib\n"
            "from recforge.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['models', '--json']) == 0\n"
            "    assert main(['models', 'EASE']) == 0\n"
            "print('torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_models_source_reading_matches_the_imported_class():
    pytest.importorskip("torch")
    from recforge.cli.models import describe_model
    for name in ("GRU4Rec", "SASRec"):
        static, imported = describe_model(name, import_family=False), describe_model(name)
        assert (static.pop("read"), imported.pop("read")) == ("source", "import")
        assert static == imported


def test_models_one_in_full(capsys):
    code, out, err = run(capsys, "models", "KNNBasic")
    assert code == 0, err
    assert out.startswith("KNNBasic  (recforge.models.neighborhood.knn)\n")
    assert "capabilities: fold_in, ranking, rating, similar_items" in out
    assert "Parameters\n----------\nk : int, default 40" in out
    code, out, _ = run(capsys, "models", "SlopeOne", "--json")
    d = json.loads(out)
    assert d["name"] == "SlopeOne" and d["params"] == [] and d["read"] == "import"
    code, _, err = run(capsys, "models", "NoSuchModel")
    assert code == 2 and "unknown model 'NoSuchModel'" in err


def test_list_honours_data_dir(capsys, tmp_path):
    data = tmp_path / "data"
    (data / "ml-100k").mkdir(parents=True)
    (data / "ml-100k" / "u.data").write_text("1\t1\t4\t10\n")
    cache = str(tmp_path / "cache")
    code, out, err = run(capsys, "datasets", "list", "--data-dir", str(data),
                         "--cache-dir", cache, "--json")
    assert code == 0, err
    listing = json.loads(out)
    rows = {r["name"]: r for r in listing["datasets"]}
    assert listing["data_dir"] == str(data)
    assert rows["ml-100k"]["status"] == "in data dir"
    assert rows["ml-100k"]["path"] == str(data / "ml-100k")
    assert rows["ml-1m"]["status"] == "downloadable" and rows["ml-1m"]["path"] is None
    code, out, _ = run(capsys, "datasets", "list", "--data-dir", str(data), "--cache-dir", cache)
    assert out.splitlines()[0] == f"data dir: {data}"
    assert any(line.startswith("ml-100k") and "in data dir" in line for line in out.splitlines())
    # info reads the same folder the listing points to
    code, out, _ = run(capsys, "datasets", "info", "ml-100k", "--data-dir", str(data),
                       "--cache-dir", cache, "--json")
    assert code == 0 and json.loads(out)["interactions"]["interactions"] == 1
    code, _, err = run(capsys, "datasets", "list", "--data-dir", str(tmp_path / "nope"))
    assert code == 1 and "directory not found" in err
