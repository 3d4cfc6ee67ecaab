"""``recforge spark recommend`` and ``recforge spark train-als`` on local[2]."""

import json

import numpy as np
import pandas as pd

from recforge.cli.main import main
from recforge.data.synthetic import generate_ratings
from recforge.models import load_model
from recforge.scale.spark import save_parquet


def test_train_als_then_recommend(spark, tmp_path, capsys):
    data = generate_ratings(n_users=80, n_items=60, n_ratings=1500, seed=4).interactions
    events = save_parquet(data, tmp_path / "events")
    code = main(["spark", "train-als", "--interactions", str(events), "--out",
                 str(tmp_path / "als"), "--master", "local[2]", "--factors", "4",
                 "--iterations", "2", "--blocks", "2", "--bundle-history"])
    assert code == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["model"] == "ALS" and info["users"] == 80
    assert (tmp_path / "als" / "history.parquet").exists()
    model = load_model(tmp_path / "als")

    code = main(["spark", "recommend", str(tmp_path / "als"), "--interactions", str(events),
                 "--out", str(tmp_path / "recs"), "--master", "local[2]", "--partitions", "2",
                 "--k", "5"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["users"] == 80
    got = pd.read_parquet(tmp_path / "recs").sort_values(["user", "rank"])
    ref = model.recommend(users=data.user_map.raw, k=5, history=data)
    lists = np.stack([g["item"].to_numpy() for _, g in got.groupby("user")])
    np.testing.assert_array_equal(lists, ref.items.astype(np.int64))


def test_usage_errors(tmp_path, capsys):
    assert main(["spark", "recommend", str(tmp_path), "--interactions",
                 str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["spark"]) == 2
