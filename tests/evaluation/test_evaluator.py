"""The evaluator: shared splits, failures recorded, timings, results files with the full
configuration, HTML report with embedded plots, sample top-N with titles."""

import json

import numpy as np
import pandas as pd
import pytest

from recforge.data import Dataset, ItemFeatures
from recforge.evaluation import Evaluator, RatingCV, SampledNegatives, TopNLeaveOneOut

from .conftest import Broken, Constant, Flat, Oracle, loo_targets, make_interactions


@pytest.fixture(scope="module")
def bakeoff():
    toy = make_interactions()
    titles = pd.DataFrame({"item": toy.item_map.raw, "title": [f"Movie {i}" for i in toy.item_map.raw]})
    ds = Dataset(name="toy", interactions=toy,
                 item_features=ItemFeatures.from_dataframe(titles, toy.item_map, title="title"))
    ev = Evaluator(ds, [RatingCV(2), TopNLeaveOneOut(k=5), SampledNegatives(n_negatives=8, k=3)],
                   progress=False, n_resamples=200, memory=True)
    ev.add(Constant(3.0), "c3").add(Constant(4.0), "c4").add(Oracle(loo_targets(toy)), "oracle")
    ev.add(Broken(), "broken")
    return ev, ev.run(sample_user=toy.user_map.raw[0], sample_k=4)


def test_same_folds_for_every_model(bakeoff):
    ev, res = bakeoff
    folds = ev.folds(ev.protocols[0])
    assert ev.folds(ev.protocols[0]) is folds  # made once
    # paired units: every model's per-user vector covers the same users
    a = res.get("c3", "rating_cv").unit_den["rmse"]
    b = res.get("c4", "rating_cv").unit_den["rmse"]
    np.testing.assert_array_equal(a, b)


def test_failure_is_recorded_and_others_go_on(bakeoff):
    _, res = bakeoff
    broken = res.get("broken", "rating_cv")
    assert "broken on purpose" in broken.error
    assert res.get("c3", "rating_cv").error is None
    assert "FAILED" in res.table()


def test_timings_and_memory(bakeoff):
    _, res = bakeoff
    e = res.get("c3", "rating_cv")
    assert len(e.fit_seconds) == 2 and len(e.eval_seconds) == 2
    assert all(t >= 0 for t in e.fit_seconds + e.eval_seconds)
    assert e.peak_memory_bytes is not None and e.peak_memory_bytes > 0


def test_known_values(bakeoff):
    _, res = bakeoff
    assert res.value("oracle", "hr@5") == 1.0
    assert res.best("hr@5") == "oracle"
    # the toy ratings are uniform on 1..5: a constant 3 beats a constant 4 in RMSE
    assert res.value("c3", "rmse") < res.value("c4", "rmse")
    assert res.best("rmse") == "c3"
    sig = res.significance(metric="hr@5", protocol="loo_topn")
    assert set(sig.method) == {"t", "wilcoxon"}
    row = sig[(sig.model_a == "c3") & (sig.model_b == "oracle") & (sig.method == "wilcoxon")].iloc[0]
    assert row.pvalue < 0.05 and row.mean_diff < 0


def test_json_and_csv_carry_the_config(bakeoff, tmp_path):
    _, res = bakeoff
    paths = res.save(tmp_path, formats=("json", "csv"))
    doc = json.loads(paths["json"].read_text())
    cfg = doc["config"]
    assert cfg["dataset"]["name"] == "toy"
    assert cfg["protocols"]["rating_cv"]["n_folds"] == 2
    assert cfg["protocols"]["rating_cv"]["seed"] == 0
    assert cfg["models"]["c4"]["params"] == {"value": 4.0}
    assert {"numpy", "scipy", "recforge", "python"} <= set(cfg["versions"])
    assert "git_commit" in cfg and "memory_method" in cfg
    assert doc["protocols"]["sampled_loo"]["sampled"] is True
    assert doc["protocols"]["rating_cv"]["folds"][0]["config"]["split"] == "kfold"
    c3 = next(r for r in doc["results"] if r["model"] == "c3" and r["protocol"] == "rating_cv")
    assert len(c3["folds"]["rmse"]) == 2 and c3["ci"]["rmse"][0] < c3["metrics"]["rmse"] < c3["ci"]["rmse"][1]
    assert doc["significance"] and doc["samples"]
    csv = pd.read_csv(paths["csv"])
    assert {"dataset", "protocol_label", "protocol_config", "hyperparameters", "versions",
            "rmse", "rmse_ci_low", "fit_seconds", "sampled"} <= set(csv.columns)
    assert json.loads(csv.loc[csv.model == "c4", "hyperparameters"].iloc[0]) == {"value": 4.0}
    assert csv.loc[csv.protocol == "sampled_loo", "sampled"].all()
    assert (tmp_path / "folds.csv").exists() and (tmp_path / "significance.csv").exists()


def test_html_report_is_self_contained(bakeoff, tmp_path):
    _, res = bakeoff
    html = res.save(tmp_path, formats=("html",))["html"].read_text()
    assert html.count("data:image/png;base64,") >= 5  # bars x3, scatter, curves, times
    assert "SAMPLED" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "Movie" in html  # sample top-N with titles


def test_sample_top_n_has_titles(bakeoff, toy):
    _, res = bakeoff
    rows = res.samples["c3"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert all(r["title"].startswith("Movie ") for r in rows)
    assert "broken" not in res.samples


def test_errors_on_bad_setup(toy):
    with pytest.raises(TypeError):
        Evaluator([1, 2], RatingCV())
    with pytest.raises(ValueError, match="once"):
        Evaluator(toy, [RatingCV(), RatingCV(3)])
    ev = Evaluator(toy, RatingCV(), progress=False)
    with pytest.raises(ValueError, match="no models"):
        ev.run()
    ev.add(Flat(), "x")
    with pytest.raises(ValueError, match="already"):
        ev.add(Flat(), "x")
