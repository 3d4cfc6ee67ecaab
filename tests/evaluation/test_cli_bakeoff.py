"""``recforge bakeoff`` from a tiny TOML experiment and from flags."""

import json

import pandas as pd
import pytest

from recforge.cli.main import main

TOML = """
[dataset]
name = "synthetic"
options = { n_users = 60, n_items = 80, n_ratings = 1500, seed = 3 }

[[protocols]]
type = "rating_cv"
n_folds = 2

[[protocols]]
type = "loo"
k = 5

[[models]]
name = "Random"
params = { random_state = 0 }

[[models]]
name = "BaselineOnly"
label = "Baseline"
params = { reg_u = 5.0 }

[[models]]
name = "MostPopular"

[output]
dir = "out"
formats = ["json", "csv"]

[run]
seed = 1
progress = false
"""


def test_bakeoff_from_toml(tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(TOML)
    assert main(["bakeoff", str(cfg), "--param", "Baseline.reg_i=2"]) == 0
    out = capsys.readouterr().out
    assert "2-fold CV" in out and "leave-one-out" in out and "Baseline" in out
    doc = json.loads((tmp_path / "out" / "results.json").read_text())  # relative to the TOML
    cfg_doc = doc["config"]
    assert cfg_doc["experiment_file"] == str(cfg)
    assert cfg_doc["models"]["Baseline"]["params"]["reg_u"] == 5.0
    assert cfg_doc["models"]["Baseline"]["params"]["reg_i"] == 2
    assert cfg_doc["protocols"]["loo_topn"]["k"] == 5
    assert cfg_doc["seed"] == 1
    models = {(r["protocol"], r["model"]) for r in doc["results"]}
    assert ("rating_cv", "Baseline") in models and ("loo_topn", "MostPopular") in models
    assert ("rating_cv", "MostPopular") not in models  # ranking-only model: not a rating protocol
    csv = pd.read_csv(tmp_path / "out" / "results.csv")
    rmse = csv.set_index(["protocol", "model"])["rmse"]
    assert rmse[("rating_cv", "Baseline")] < rmse[("rating_cv", "Random")]
    assert not (tmp_path / "out" / "report.html").exists()


def test_bakeoff_from_flags(tmp_path, capsys):
    rc = main(["bakeoff", "--dataset", "synthetic", "--protocol", "sampled", "--negatives", "20",
               "--k", "5", "--models", "MostPopular", "RandomRanker", "--out", str(tmp_path / "o"),
               "--formats", "json", "--no-progress", "--no-memory"])
    assert rc == 0
    assert "SAMPLED" in capsys.readouterr().out
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["protocols"]["sampled_loo"]["config"]["n_negatives"] == 20
    assert all(r["sampled"] for r in doc["results"])


@pytest.mark.parametrize("text, message", [
    ("[datset]\nname='x'\n", "unknown section [datset]"),
    ("[dataset]\nnmae='x'\n", "unknown key 'nmae'"),
    ("[[models]]\nname='NoSuchModel'\n[output]\ndir='o'\n", "unknown model 'NoSuchModel'"),
    ("[[protocols]]\ntype='nope'\n", "unknown protocol 'nope'"),
    ("[[models]]\nname='Random'\nparams={bogus=1}\n", "bogus"),
    ("[dataset\n", "invalid TOML"),
])
def test_bad_experiment_files(tmp_path, capsys, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text + "\n[run]\nprogress=false\n" if not text.startswith("[dataset\n") else text)
    assert main(["bakeoff", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err


def test_bad_param_flag(capsys):
    assert main(["bakeoff", "--param", "Nope.x=1", "--no-progress"]) == 2
    assert "no model 'Nope'" in capsys.readouterr().err


def test_unknown_sample_user_is_a_usage_error(capsys):
    assert main(["bakeoff", "--sample-user", "no-such-user", "--no-progress", "--formats", "json"]) == 2
    assert "sample user" in capsys.readouterr().err


def test_bakeoff_with_a_temporal_split_flag(tmp_path, capsys):
    rc = main(["bakeoff", "--dataset", "synthetic", "--protocol", "holdout", "--k", "5",
               "--split", "temporal_per_user", "test_ratio=0.25", "--models", "MostPopular",
               "--out", str(tmp_path / "o"), "--formats", "json", "--no-progress", "--no-memory"])
    assert rc == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    conf = doc["protocols"]["topn_temporal_per_user"]["config"]
    assert conf["split"] == {"name": "temporal_per_user", "test_ratio": 0.25, "seed": 0}
    assert {r["protocol"] for r in doc["results"]} == {"topn_temporal_per_user"}


def test_bakeoff_split_table_in_toml(tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text('[dataset]\nname = "synthetic"\n'
                   '[[protocols]]\ntype = "rating_cv"\n'
                   'split = { name = "temporal_global", test_ratio = 0.2 }\n'
                   '[[models]]\nname = "BaselineOnly"\n[run]\nprogress = false\nmemory = false\n')
    assert main(["bakeoff", str(cfg), "--out", str(tmp_path / "o"), "--formats", "json"]) == 0
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["protocols"]["rating_temporal_global"]["n_folds"] == 1
    assert doc["protocols"]["rating_temporal_global"]["config"]["split"]["name"] == "temporal_global"


@pytest.mark.parametrize("argv, message", [
    (["--split", "weekly"], "unknown split 'weekly'"),
    (["--split", "temporal_per_user", "n_folds=2"], "unknown: n_folds"),
    (["--split", "session_split"], "no protocol of this bake-off evaluates sessions"),
])
def test_bad_split_flags(argv, message, capsys):
    assert main(["bakeoff", "--no-progress", "--formats", "json", *argv]) == 2
    assert message in capsys.readouterr().err
