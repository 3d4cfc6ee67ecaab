"""The Python API, saved models, and resuming: bad calls fail early with a clear error naming
the parameter / file; a saved model's folder has the user's umask; a failed bake-off keeps the
earlier results and ``--resume`` reuses the finished folds."""

from __future__ import annotations

import json
import os
import signal
import stat

import numpy as np
import pytest

from recforge import interrupt
from recforge.data import DataError, Interactions, load
from recforge.evaluation import Evaluator, RatingCV, TopNLeaveOneOut
from recforge.evaluation.evaluator import DegenerateEvaluation
from recforge.models import ModelFileError, get_model_class, load_model


@pytest.fixture(scope="module")
def small():
    return load("synthetic", n_users=40, n_items=30, n_ratings=600, seed=2)


# ---------------------------------------------------------------------- API
@pytest.mark.parametrize("model, params, words", [
    ("KNNBaseline", {"k": -5}, ["KNNBaseline", "'k'", "-5"]),
    ("SVD", {"n_factors": "fifty"}, ["SVD", "'n_factors'", "'fifty'"]),
    ("SVD", {"lr_all": -0.1}, ["'lr_all'", ">= 0"]),
    ("KNNBasic", {"user_based": "yes"}, ["'user_based'", "bool"]),
    ("GRU4Rec", {"dropout_p_hidden": 1.5}, ["'dropout_p_hidden'", "between 0 and 1"]),
    ("ALS", {"factors": 0}, ["'factors'", "> 0"]),
])
def test_bad_hyperparameters_fail_when_the_model_is_added(small, model, params, words):
    ev = Evaluator(small, RatingCV(2), progress=False)
    with pytest.raises(ValueError) as info:
        ev.add(get_model_class(model)(**params))
    for w in words:
        assert w in str(info.value)
    assert not ev.models  # nothing half-added


@pytest.mark.parametrize("kwargs, word", [({"confidence": 1.5}, "confidence"),
                                           ({"n_resamples": 0}, "n_resamples"),
                                           ({"degenerate": "ignore"}, "degenerate")])
def test_bad_evaluator_settings(small, kwargs, word):
    with pytest.raises(ValueError, match=word):
        Evaluator(small, RatingCV(2), **kwargs)


def test_one_user_is_a_degenerate_evaluation():
    one = Interactions.from_arrays([1] * 6, list(range(6)), [5.0, 3, 4, 2, 1, 5], timestamps=list(range(6)))
    ev = Evaluator(one, TopNLeaveOneOut(k=3), progress=False)
    ev.add(get_model_class("MostPopular")())
    with pytest.raises(DegenerateEvaluation, match="only one user"):
        ev.run()
    ev = Evaluator(one, TopNLeaveOneOut(k=3), progress=False, degenerate="warn")
    ev.add(get_model_class("MostPopular")())
    with pytest.warns(UserWarning, match="only one user"):
        res = ev.run()
    assert res.warnings and "WARNING" in res.table()


def test_nothing_evaluated_is_a_degenerate_evaluation():
    each_once = Interactions.from_arrays(list(range(8)), list(range(8)), [4.0] * 8, timestamps=list(range(8)))
    ev = Evaluator(each_once, TopNLeaveOneOut(k=3), progress=False)
    ev.add(get_model_class("MostPopular")())
    with pytest.raises(DegenerateEvaluation, match="empty"):
        ev.run()


def test_unknown_dataset_name_is_a_data_error():
    with pytest.raises(DataError, match="no-such-set"):
        load("no-such-set")


def test_recommend_before_fit():
    with pytest.raises(RuntimeError, match="not fitted"):
        get_model_class("MostPopular")().recommend([1])


def test_fit_on_the_wrong_type():
    with pytest.raises(TypeError, match="Interactions"):
        get_model_class("MostPopular")().fit(np.zeros((3, 3)))


def test_compiled_calls_defer_a_signal_to_their_end():
    with pytest.raises(interrupt.Interrupted):
        with interrupt.compiled():
            signal.raise_signal(signal.SIGINT)
            done = True  # the signal is only recorded inside the compiled call
    assert done
    assert not interrupt.stop_requested()  # Python's own handler: the next call starts afresh


# ---------------------------------------------------------------------- saved models
@pytest.fixture
def saved(tmp_path, small):
    m = get_model_class("BaselineOnly")().fit(small.interactions)
    return m.save(tmp_path / "model")


def test_saved_model_folder_has_the_users_umask(saved):
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o777 & ~mask


def test_model_file_corrupt(saved):
    with open(saved / "arrays.npz", "r+b") as f:
        f.seek(40)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ModelFileError, match="arrays.npz.*sha256"):
        load_model(saved)


def test_model_config_not_json(saved):
    (saved / "config.json").write_text("{ not json")
    with pytest.raises(ModelFileError, match="config.json.*not valid JSON"):
        load_model(saved)


def test_model_config_unknown_class(saved):
    cfg = json.loads((saved / "config.json").read_text())
    cfg["model"] = "NoSuchModel"
    (saved / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="NoSuchModel"):
        load_model(saved)


def test_model_file_missing(saved):
    (saved / "arrays.npz").unlink()
    with pytest.raises(ModelFileError, match="arrays.npz.*missing"):
        load_model(saved)


def test_model_folder_missing(tmp_path):
    with pytest.raises(ModelFileError, match="no such model directory"):
        load_model(tmp_path / "nothing")


def test_saving_over_a_model_keeps_a_complete_one(saved, small):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    m = get_model_class("SVD")(n_epochs=1)
    m.fit(small.interactions)
    m.save(saved)
    assert load_model(saved).name == "SVD"
    assert {p.name for p in saved.iterdir()} >= {"config.json", "arrays.npz"}
    assert before  # the old one was replaced whole, never mixed


# ---------------------------------------------------------------------- failed runs and resume
RESUME = """
[dataset]
name = "synthetic"
options = { n_users = 40, n_items = 30, n_ratings = 600, seed = 2 }
[[protocols]]
type = "rating_cv"
n_folds = 2
[[models]]
name = "BaselineOnly"
[[models]]
name = "SVD"
params = { n_epochs = 2, lr_all = 1e9 }
"""


def test_failed_run_keeps_earlier_results_and_resume_reuses_finished_folds(tmp_path, cli, earlier):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(RESUME)
    code, _, err = cli("bakeoff", cfg, "--out", earlier.folder, "-q")
    assert code == 1  # SVD diverges
    assert earlier.intact()
    partial = earlier.folder.with_name("out.partial")
    doc = json.loads((partial / "results.json").read_text())
    assert {r["model"]: r["error"] is None for r in doc["results"]} == {"BaselineOnly": True, "SVD": False}
    cache = earlier.folder.with_name("out.cache")
    assert len(list(cache.glob("*.npz"))) == 2  # BaselineOnly's two folds
    cfg.write_text(RESUME.replace("lr_all = 1e9", "lr_all = 0.005"))
    code, _, err = cli("bakeoff", cfg, "--out", earlier.folder, "-q", "--resume")
    assert code == 0, err
    fresh = json.loads((earlier.folder / "results.json").read_text())
    assert {r["model"] for r in fresh["results"]} == {"BaselineOnly", "SVD"}
    assert not partial.exists() and not cache.exists()  # a complete run cleans up
    old = next(r for r in doc["results"] if r["model"] == "BaselineOnly")
    new = next(r for r in fresh["results"] if r["model"] == "BaselineOnly")
    # reused, not refitted: the very timings of the first run come back
    assert new["fit_seconds"] == old["fit_seconds"] and new["metrics"] == old["metrics"]
