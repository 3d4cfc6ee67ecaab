"""Minimum quality on MovieLens 100K (skipped without ../shared/data), agreement with
Surprise on one fold, and the HTML report rendered by headless Chromium (skipped without it)."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from recforge.evaluation import Evaluator, RatingCV, TopNLeaveOneOut
from recforge.models import get_model_class

from .conftest import Constant, Oracle, loo_targets, make_interactions

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def ml100k():
    if not (SHARED / "ml-100k").is_dir():
        pytest.skip("ml-100k not in the shared data folder")
    from recforge.data.readers import load

    return load("ml-100k", data_dir=SHARED)


@pytest.mark.realdata
def test_ml100k_baselines_minimum_quality(ml100k):
    ev = Evaluator(ml100k, [RatingCV(5), TopNLeaveOneOut(10)], progress=False, memory=False,
                   n_resamples=200)
    for name in ("Random", "BaselineOnly", "MostPopular"):
        ev.add(get_model_class(name)(), name)
    res = ev.run()
    # Surprise's documented 5-fold results on ML-100K: BaselineOnly 0.944, NormalPredictor 1.514
    assert res.value("BaselineOnly", "rmse") == pytest.approx(0.944, abs=0.005)
    assert res.value("Random", "rmse") == pytest.approx(1.514, abs=0.02)
    assert res.value("MostPopular", "hr@10") > 3 * res.value("Random", "hr@10")
    sig = res.significance(metric="rmse")
    assert (sig.pvalue_holm < 1e-10).all()


@pytest.mark.realdata
@pytest.mark.reference
def test_same_fold_as_surprise(ml100k):
    surprise = pytest.importorskip("surprise")
    proto = RatingCV(5)
    ev = Evaluator(ml100k, proto, progress=False, memory=False)
    fold = ev.folds(proto)[0]
    ours = ev.evaluate_model(proto, get_model_class("BaselineOnly")(), "b")
    train = fold.train.to_dataframe()[["user", "item", "rating"]]
    test = fold.test.to_dataframe()
    algo = surprise.BaselineOnly(verbose=False)
    algo.fit(surprise.Dataset.load_from_df(train, surprise.Reader(rating_scale=(1, 5))).build_full_trainset())
    preds = algo.test(list(zip(test.user, test.item, test.rating.astype(float), strict=True)))
    ref = np.sqrt(np.mean([(p.r_ui - p.est) ** 2 for p in preds]))
    assert ours.fold_metrics["rmse"][0] == pytest.approx(ref, abs=1e-4)


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium not installed")
    toy = make_interactions()
    ev = Evaluator(toy, [RatingCV(2), TopNLeaveOneOut(5)], progress=False, n_resamples=100)
    ev.add(Constant(3.0), "c3").add(Oracle(loo_targets(toy)), "oracle")
    report = ev.run().save(tmp_path, formats=("html",))["html"]
    shot = tmp_path / "shot.png"
    proc = subprocess.run([str(REPO / "scripts" / "screenshot_report.sh"), str(report), str(shot), "1200x1600"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] == 1600 and img.shape[1] == 1200
    rgb = img[..., :3].reshape(-1, 3)
    # plots drawn: many distinct colours (bars, lines, anti-aliased text), not a blank page
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 200
    # the default matplotlib colours are on the page (tab:blue #1f77b4; points with intervals)
    blue = np.all(np.abs(rgb - np.array([0x1F, 0x77, 0xB4]) / 255) < 0.02, axis=1)
    assert blue.sum() > 150
