"""``recforge train --nproc N``: data-parallel training from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recforge.cli.main import main
from recforge.models.base import Recommender


@pytest.fixture
def clicks_csv(tmp_path: Path) -> Path:
    """120 sessions walking i -> i+1 (mod 12)."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(120):
        start = int(rng.integers(12))
        rows += [(s, (start + t) % 12, 100 * s + t) for t in range(5)]
    f = tmp_path / "clicks.csv"
    pd.DataFrame(rows, columns=["session", "item", "timestamp"]).to_csv(f, index=False)
    return f


def _train(capsys, clicks_csv, out, *extra):
    code = main(["train", str(clicks_csv), "--session", "session", "--out", str(out), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_nproc_refuses_a_model_without_data_parallel_training(capsys, clicks_csv, tmp_path):
    code, out, err = _train(capsys, clicks_csv, tmp_path / "m", "--model", "GRU4Rec", "--nproc", "2")
    assert code == 2 and not out
    assert "GRU4Rec does not support distributed data-parallel training" in err
    assert not (tmp_path / "m").exists()
    code, _, err = _train(capsys, clicks_csv, tmp_path / "m", "--model", "SASRec", "--nproc", "0")
    assert code == 2 and "--nproc must be >= 1" in err


@pytest.mark.slow
def test_nproc_two_trains_and_rank_zero_saves_a_servable_bundle(capsys, clicks_csv, tmp_path):
    params = ["--param", "epochs=2", "--param", "hidden=8", "--param", "max_len=6",
              "--param", "dropout=0.0", "--param", "random_state=0", "--param", "n_threads=1"]
    code, out, err = _train(capsys, clicks_csv, tmp_path / "ddp", "--model", "SASRec", "--nproc", "2",
                            *params)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["nproc"] == 2 and summary["model"] == "SASRec"
    code, _, err = _train(capsys, clicks_csv, tmp_path / "one", "--model", "SASRec", *params)
    assert code == 0, err
    ddp, one = Recommender.load(tmp_path / "ddp"), Recommender.load(tmp_path / "one")
    np.testing.assert_allclose(ddp.history_["train_loss"], one.history_["train_loss"], rtol=1e-5)
    sessions = [np.array([1, 2]), np.array([5])]
    np.testing.assert_allclose(ddp._score_next(sessions), one._score_next(sessions), atol=1e-4)
    assert (tmp_path / "ddp" / "serving.json").exists()
