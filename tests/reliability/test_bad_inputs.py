"""Bad inputs and faults, as a new user meets them: each case asserts the exit code, that the
message names the file / line / field / key at fault, that no traceback is printed, and that
an earlier output folder is left byte-identical."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------------- readers (datasets info)
READER_CASES = [
    # id, file name, content, expected code, words the message must contain
    ("text-rating", "r.csv", "user,item,rating\n1,1,5\n2,2,five\n", 1, ["r.csv", "line 3", "rating"]),
    ("missing-column", "r.csv", "user,rating\n1,5\n", 1, ["r.csv", "item"]),
    ("empty-file", "r.csv", "", 1, ["r.csv"]),
    ("header-only", "r.csv", "user,item,rating\n", 1, ["r.csv"]),
    ("too-many-fields", "r.csv", "user,item,rating\n1,1,5\n2,2,3,9,9\n", 1, ["r.csv", "line 3"]),
    ("nan-rating", "r.csv", "user,item,rating\n1,1,5\n2,2,nan\n", 1, ["r.csv", "line 3", "rating"]),
    ("inf-rating", "r.csv", "user,item,rating\n1,1,5\n2,2,inf\n", 1, ["r.csv", "line 3", "rating"]),
    ("empty-user", "r.csv", "user,item,rating\n1,1,5\n,2,3\n", 1, ["r.csv", "line 3", "user"]),
    ("text-timestamp", "r.csv", "user,item,rating,timestamp\n1,1,5,100\n2,2,3,yesterday\n", 1,
     ["r.csv", "line 3", "timestamp"]),
    ("binary-garbage", "r.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff", 1, ["r.csv"]),
    ("not-utf8", "r.csv", b"user,item,rating\n1,caf\xe9,5\n", 1, ["r.csv"]),
    ("tsv-short-row", "r.tsv", "user\titem\trating\n1\t1\t5\n2\t2\n", 1, ["r.tsv", "line 3"]),
    ("recbole-bad-type", "d/d.inter", "user_id:token\titem_id:token\trating:float\n1\t1\tx\n", 1,
     ["d.inter", "line 2", "rating"]),
    ("recbole-no-header-types", "d/d.inter", "user_id\titem_id\n1\t1\n", 1, ["d.inter"]),
    ("duplicate-columns", "r.csv", "user,user,item\n1,1,1\n", 1, ["r.csv"]),
]


@pytest.mark.parametrize("name, content, code, words", [c[1:] for c in READER_CASES],
                         ids=[c[0] for c in READER_CASES])
def test_reader_errors(tmp_path, cli, earlier, name, content, code, words):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    target = path.parent if name.startswith("d/") else path
    got, _, err = cli("datasets", "info", target)
    assert got == code, err
    for w in words:
        assert w in err, (w, err)
    assert earlier.intact()


def test_missing_input_file(tmp_path, cli):
    code, _, err = cli("datasets", "info", tmp_path / "nope.csv")
    assert code == 1 and "nope.csv" in err


def test_folder_without_data(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    code, _, err = cli("datasets", "info", tmp_path / "empty")
    assert code == 1 and "empty" in err


def test_huge_and_float_ids_stay_distinct(tmp_path, cli):
    f = tmp_path / "ids.csv"
    f.write_text("user,item,rating\n1e30,1,5\n2e30,1,4\n99999999999999999999,2,3\n")
    code, out, err = cli("datasets", "info", f)
    assert code == 0, err
    assert "users: 3" in out


# ---------------------------------------------------------------------- experiment files
BASE = '[dataset]\nname = "synthetic"\noptions = { n_users = 40, n_items = 30, n_ratings = 600 }\n'
TOML_CASES = [
    ("unknown-section", "[datset]\nname = 'x'\n", 2, ["exp.toml", "line 1", "unknown section [datset]",
                                                      "did you mean [dataset]"]),
    ("unknown-key", "[dataset]\nnme = 'x'\n", 2, ["exp.toml", "line 2", "[dataset] nme",
                                                  "did you mean 'name'"]),
    ("run-typo", BASE + "[run]\nsed = 1\n", 2, ["line 5", "[run] sed", "did you mean 'seed'"]),
    ("seed-wrong-type", BASE + "[run]\nseed = 'one'\n", 2, ["line 5", "[run] seed", "integer"]),
    ("confidence-range", BASE + "[run]\nconfidence = 1.5\n", 2, ["line 5", "[run] confidence",
                                                                  "less than 1", "1.5"]),
    ("resamples-zero", BASE + "[run]\nn_resamples = 0\n", 2, ["[run] n_resamples", "greater than"]),
    ("progress-not-bool", BASE + "[run]\nprogress = 'yes'\n", 2, ["[run] progress", "boolean"]),
    ("bad-format", BASE + "[output]\nformats = ['pdf']\n", 2, ["[output] formats", "pdf"]),
    ("models-not-array", BASE + "[models]\nname = 'SVD'\n", 2, ["line 4", "[[models]]"]),
    ("model-without-name", BASE + "[[models]]\nlabel = 'x'\n", 2, ["line 4", "[[models]] #1 name",
                                                                   "missing"]),
    ("model-unknown-key", BASE + "[[models]]\nname = 'SVD'\nparms = {}\n", 2,
     ["line 6", "[[models]] #1 parms", "did you mean 'params'"]),
    ("unknown-model", BASE + "[[models]]\nname = 'SDV'\n", 2, ["unknown model 'SDV'"]),
    ("hyperparameter-type", BASE + "[[models]]\nname = 'SVD'\nparams = { n_factors = 'fifty' }\n", 2,
     ["exp.toml", "line 6", "n_factors", "'fifty'"]),
    ("hyperparameter-range", BASE + "[[models]]\nname = 'KNNBasic'\nparams = { k = -5 }\n", 2,
     ["line 6", "'k'", "> 0", "-5"]),
    ("unknown-hyperparameter", BASE + "[[models]]\nname = 'SVD'\nparams = { factors = 5 }\n", 2,
     ["SVD", "factors"]),
    ("unknown-protocol", BASE + "[[protocols]]\ntype = 'loocv'\n", 2, ["unknown protocol 'loocv'"]),
    ("protocol-param", BASE + "[[protocols]]\ntype = 'loo'\nmode = 'oldest'\n", 2, ["mode", "latest"]),
    ("protocol-without-type", BASE + "[[protocols]]\nk = 5\n", 2, ["[[protocols]] #1 type", "missing"]),
    ("invalid-toml", "[dataset\nname = 1\n", 2, ["exp.toml", "invalid TOML", "line 1"]),
    ("not-utf8", b"[dataset]\nname = '\xff'\n", 2, ["exp.toml", "cannot read"]),
    ("dataset-path-missing", "[dataset]\npath = 'nothing-here.csv'\n", 1, ["nothing-here.csv"]),
    ("dataset-options-wrong", "[dataset]\nname = 'synthetic'\noptions = { n_userz = 3 }\n", 2,
     ["synthetic", "n_userz"]),
    ("label-twice", BASE + "[[models]]\nname = 'SVD'\n[[models]]\nname = 'SVD'\n", 2,
     ["SVD", "twice"]),
]


@pytest.mark.parametrize("text, code, words", [c[1:] for c in TOML_CASES],
                         ids=[c[0] for c in TOML_CASES])
def test_experiment_file_errors(tmp_path, cli, earlier, text, code, words):
    cfg = tmp_path / "exp.toml"
    (cfg.write_bytes if isinstance(text, bytes) else cfg.write_text)(text)
    got, _, err = cli("bakeoff", cfg, "--out", earlier.folder, "-q")
    assert got == code, err
    for w in words:
        assert w in err, (w, err)
    assert earlier.intact()


def test_missing_experiment_file(tmp_path, cli, earlier):
    code, _, err = cli("bakeoff", tmp_path / "none.toml", "--out", earlier.folder)
    assert code == 2 and "none.toml" in err and earlier.intact()


# ---------------------------------------------------------------------- flags
FLAG_CASES = [
    ("threads-zero", ["--threads", "0", "datasets", "list"], 2, ["--threads", "0"]),
    ("threads-text", ["datasets", "list", "--threads", "x"], 2, ["--threads", "'x'"]),
    ("unknown-command", ["bakeof"], 2, ["bakeof"]),
    ("bad-mode", ["bakeoff", "--mode", "oldest"], 2, ["--mode", "oldest"]),
    ("bad-folds", ["bakeoff", "--protocol", "cv", "--folds", "1", "-q"], 2, ["n_folds"]),
    ("bad-k", ["bakeoff", "--protocol", "loo", "--k", "0", "-q"], 2, ["k"]),
    ("param-syntax", ["bakeoff", "--param", "SVD", "-q"], 2, ["--param", "MODEL.KEY=VALUE"]),
    ("param-unknown-model", ["bakeoff", "--param", "Nope.k=1", "-q"], 2, ["no model 'Nope'"]),
    ("param-bad-value", ["bakeoff", "--models", "KNNBasic", "--param", "KNNBasic.k=-5", "-q"], 2,
     ["KNNBasic", "'k'", "-5"]),
    ("unknown-model-flag", ["bakeoff", "--models", "Nope", "-q"], 2, ["unknown model 'Nope'"]),
    ("bad-split", ["bakeoff", "--split", "weekly", "-q"], 2, ["unknown split 'weekly'"]),
    ("bad-format-flag", ["bakeoff", "--formats", "pdf"], 2, ["pdf"]),
    ("unknown-sample-user", ["bakeoff", "--sample-user", "nobody", "-q"], 2, ["sample user", "nobody"]),
    ("session-model-on-ratings", ["bakeoff", "--dataset", "synthetic", "--models", "GRU4Rec", "-q"], 2,
     ["GRU4Rec", "session", "none of the protocols"]),
    ("rating-cv-on-implicit", ["bakeoff", "--dataset", "synthetic-implicit", "--protocol", "cv", "-q"],
     2, ["rating"]),
    ("too-many-negatives", ["bakeoff", "--protocol", "sampled", "--negatives", "5000", "-q"], 2,
     ["5000", "n_negatives", "--negatives"]),
    ("negative-test-ratio", ["bakeoff", "--protocol", "holdout", "--test-ratio", "-0.5", "-q"], 2,
     ["test_ratio"]),
]


@pytest.mark.parametrize("argv, code, words", [c[1:] for c in FLAG_CASES], ids=[c[0] for c in FLAG_CASES])
def test_flag_errors(cli, earlier, argv, code, words):
    if argv[0] == "bakeoff":
        argv = [*argv, "--out", str(earlier.folder)]
    got, _, err = cli(*argv)
    assert got == code, err
    for w in words:
        assert w in err, (w, err)
    assert earlier.intact()


def test_no_timestamps_advice_names_the_flag(tmp_path, cli, earlier):
    f = tmp_path / "r.csv"
    f.write_text("user,item,rating\n" + "".join(f"{u},{i},{(u + i) % 5 + 1}\n"
                                                for u in range(1, 9) for i in range(1, 6)))
    code, _, err = cli("bakeoff", "--dataset", f, "--protocol", "loo", "--out", earlier.folder, "-q")
    assert code == 2 and "timestamps" in err and "--mode random" in err
    code, out, err = cli("bakeoff", "--dataset", f, "--protocol", "loo", "--mode", "random",
                         "--models", "MostPopular", "--out", earlier.folder / "new", "-q")
    assert code == 0, err
    assert earlier.intact() or (earlier.folder / "new" / "results.json").is_file()


@pytest.mark.parametrize("where", ["out", "file"])
def test_unwritable_output_fails_before_any_work(tmp_path, cli, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = blocker / "results" if where == "out" else blocker
    code, _, err = cli("bakeoff", "--models", "MostPopular", "--out", out, "-q")
    assert code == 2 and str(out) in err
    assert blocker.read_text() == "a file, not a folder"


def test_global_options_anywhere(cli, tmp_path):
    code, out, _ = cli("datasets", "list", "-v", "--data-dir", tmp_path)
    assert code == 0
    code, out, _ = cli("--data-dir", tmp_path, "datasets", "list")
    assert code == 0 and str(tmp_path) in out


def test_debug_shows_the_traceback(tmp_path, capsys):
    from recforge.cli.main import main

    assert main(["datasets", "info", str(tmp_path / "nope.csv"), "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_numbers_print_plainly(cli, earlier):
    code, _, err = cli("bakeoff", "--protocol", "holdout", "--test-ratio", "1.5", "--out",
                       earlier.folder, "-q")
    assert code == 2 and "np.float64" not in err and "1.5" in err
