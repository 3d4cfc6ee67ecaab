"""The same ``recforge bakeoff`` command twice writes identical metric values (fixed default
seeds everywhere: models, splits, sampled negatives, bootstrap)."""

from __future__ import annotations

import json

import pandas as pd

from recforge.cli.main import main

TOML = """
[dataset]
name = "synthetic"
options = { n_users = 80, n_items = 100, n_ratings = 2000, seed = 5 }
[[protocols]]
type = "rating_cv"
n_folds = 2
[[protocols]]
type = "loo"
[run]
n_resamples = 200
[[models]]
name = "Random"
[[models]]
name = "SVD"
params = { n_epochs = 3 }
[[models]]
name = "BPR"
params = { iterations = 3, num_threads = 1 }   # Hogwild with more threads races by design
[[models]]
name = "ALS"
params = { iterations = 2 }
"""


def _metrics(folder):
    doc = json.loads((folder / "results.json").read_text())
    return {(r["protocol"], r["model"]): (r["metrics"], r["ci"], r["error"]) for r in doc["results"]}


def test_bakeoff_twice_gives_identical_metrics(tmp_path, capsys):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(TOML)
    for out in ("a", "b"):
        assert main(["bakeoff", str(cfg), "--out", str(tmp_path / out), "-q",
                     "--formats", "json", "csv"]) == 0, capsys.readouterr().err
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert a == b and len(a) >= 6
    assert all(err is None for _, _, err in a.values())
    fa = pd.read_csv(tmp_path / "a" / "folds.csv")
    fb = pd.read_csv(tmp_path / "b" / "folds.csv")
    pd.testing.assert_frame_equal(fa, fb)


def test_models_seeded_by_default():
    from recforge.models import available_models
    from recforge.models._catalog import MODEL_MODULES

    # the library's models (tests register throwaway models of their own)
    unseeded = [name for name, cls in available_models().items() if name in MODEL_MODULES
                and "random_state" in cls._param_names() and cls().random_state is None]
    assert unseeded == []
