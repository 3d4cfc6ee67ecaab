"""Readers: every format on tiny hand-written files, every bad-input case, real data counts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import DataError
from recforge.data.readers import (
    detect_format,
    load,
    read_diginetica,
    read_gru4rec_sessions,
    read_lastfm_hetrec,
    read_movielens,
    read_recbole,
    read_retailrocket,
    read_table,
    read_yoochoose_clicks,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("RECFORGE_SHARED_DATA", REPO.parent / "shared" / "data"))


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def raw_pairs(inter) -> dict:
    """{(raw user, raw item): value} of an Interactions object."""
    df = inter.to_dataframe()
    return {(u, i): float(v) for u, i, v in zip(df["user"], df["item"], df["rating"], strict=True)}


# ============================================================================ MovieLens
@pytest.fixture
def ml100k(tmp_path: Path) -> Path:
    d = tmp_path / "ml-100k"
    # user 2 rates item 1 twice: the later (t=30) rating 5 must win under 'last'
    write(d / "u.data", "1\t1\t4\t10\n1\t2\t3\t11\n2\t1\t2\t20\n2\t1\t5\t30\n3\t3\t1\t5\n")
    flags = ["0"] * 19
    g1 = flags.copy()
    g1[1] = g1[5] = "1"  # Action, Comedy
    g2 = flags.copy()
    g2[8] = "1"  # Drama
    write(d / "u.item",
          "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(g1) + "\n"
          "2|Amélie|01-Jan-2001||http://y|" + "|".join(g2) + "\n"
          "3|Nothing (1990)|01-Jan-1990||http://z|" + "|".join(flags) + "\n",
          encoding="latin-1")
    write(d / "u.user", "1|24|M|technician|85711\n2|53|F|other|01234\n3|23|M|writer|32067\n")
    return d


def test_movielens_100k(ml100k: Path):
    ds = read_movielens(ml100k)
    inter = ds.interactions
    assert (inter.nnz, inter.n_users, inter.n_items) == (4, 3, 3)
    assert inter.rating_scale == (1.0, 5.0)
    assert raw_pairs(inter) == {(1, 1): 4.0, (1, 2): 3.0, (2, 1): 5.0, (3, 3): 1.0}
    assert ds.drops.counts == {"duplicate (user, item) rows merged by 'last'": 1}
    f = ds.item_features
    assert list(f.titles) == ["Toy Story (1995)", "Amélie", "Nothing (1990)"]  # Latin-1 decoded
    m, vocab = f.categorical["genres"]
    assert [vocab[j] for j in m[0].indices] == ["Action", "Comedy"]
    assert [vocab[j] for j in m[1].indices] == ["Drama"]
    assert list(f.has("genres")) == [True, True, False]
    # year from the title, else from the release date
    np.testing.assert_array_equal(f.numeric["year"], [1995, 2001, 1990])
    assert ds.user_features.loc[2, "zip_code"] == "01234"  # zip codes stay text


def test_movielens_100k_duplicates_mean(ml100k: Path):
    ds = read_movielens(ml100k, duplicates="mean")
    assert raw_pairs(ds.interactions)[(2, 1)] == 3.5


@pytest.fixture
def ml1m(tmp_path: Path) -> Path:
    d = tmp_path / "ml-1m"
    write(d / "ratings.dat", "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n")
    write(d / "movies.dat", "10::Amélie (2001)::Comedy|Romance\n20::Star Wars: Episode IV (1977)::"
                            "Action|Sci-Fi\n30::Unrated (1999)::Drama\n", encoding="latin-1")
    write(d / "users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n")
    return d


def test_movielens_1m(ml1m: Path):
    ds = read_movielens(ml1m)
    inter = ds.interactions
    assert inter.rating_scale == (1.0, 5.0)
    assert raw_pairs(inter) == {(1, 10): 5.0, (1, 20): 3.0, (2, 10): 4.0}
    np.testing.assert_array_equal(np.sort(inter.timestamps), [978300760, 978301968, 978302109])
    f = ds.item_features
    # '::' separates fields; a single ':' inside a title stays
    assert list(f.titles) == ["Amélie (2001)", "Star Wars: Episode IV (1977)"]
    np.testing.assert_array_equal(f.numeric["year"], [2001, 1977])
    assert f.unmatched == 1  # movie 30 has no rating
    assert list(ds.user_features["gender"]) == ["F", "M"]


def test_movielens_1m_rating_outside_scale(ml1m: Path):
    write(ml1m / "ratings.dat", "1::10::5::978300760\n1::20::6::978302109\n")
    with pytest.raises(DataError) as e:
        read_movielens(ml1m)
    assert (e.value.line, e.value.field) == (2, "rating")
    assert "outside the scale [1, 5]" in str(e.value)


def test_movielens_10m_half_stars_and_tags(tmp_path: Path):
    d = tmp_path / "ml-10m"
    write(d / "ratings.dat", "1::10::4.5::1\n2::10::0.5::2\n")
    write(d / "movies.dat", "10::Heat (1995)::Action|Crime\n")
    write(d / "tags.dat", "1::10::Pacino::5\n2::10::pacino ::6\n2::99::orphan::7\n")
    ds = read_movielens(d)
    assert ds.interactions.rating_scale == (0.5, 5.0)
    m, vocab = ds.item_features.categorical["tags"]
    assert vocab == ["pacino"] and m.nnz == 1  # lower-cased, stripped, de-duplicated
    assert ds.item_features.unmatched == 1  # the tag on movie 99


@pytest.fixture
def ml_csv(tmp_path: Path) -> Path:
    d = tmp_path / "ml-latest-small"
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.5,100\n1,2,0.5,101\n"
                             "2,2,3.0,102\n2,3,5.0,103\n")
    write(d / "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
                            '2,"American President, The (1995)",Comedy|Drama|Romance\n'
                            '3,Cosmos,(no genres listed)\n4,Unrated (2000),Drama\n')
    write(d / "tags.csv", "userId,movieId,tag,timestamp\n1,1,Pixar,1\n2,1,pixar,2\n"
                          '2,2,"politics, US",3\n')
    write(d / "LLVisualFeatures13K_Log.csv", "ML_Id,f1,f2,f3,f4,f5,f6,f7\n"
                                             "2,0.1,0.2,0.3,0.4,0.5,0.6,0.7\n"
                                             "77,1,1,1,1,1,1,1\n")
    return d


def test_movielens_csv_edition(ml_csv: Path):
    ds = read_movielens(ml_csv)
    inter = ds.interactions
    assert inter.rating_scale == (0.5, 5.0)
    assert raw_pairs(inter) == {(1, 1): 4.5, (1, 2): 0.5, (2, 2): 3.0, (2, 3): 5.0}
    f = ds.item_features
    assert list(f.titles) == ["Toy Story (1995)", "American President, The (1995)", "Cosmos"]
    np.testing.assert_array_equal(f.numeric["year"], [1995, 1995, np.nan])
    assert list(f.has("year")) == [True, True, False]
    m, vocab = f.categorical["genres"]
    assert list(f.has("genres")) == [True, True, False]  # "(no genres listed)" is no genre
    assert "(no genres listed)" not in vocab
    tm, tvocab = f.categorical["tags"]
    assert tvocab == ["pixar", "politics, us"]
    assert tm.toarray().tolist() == [[1, 0], [0, 1], [0, 0]]
    vis = f.numeric["mise_en_scene"]
    assert vis.shape == (3, 7)
    np.testing.assert_allclose(vis[1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert list(f.has("mise_en_scene")) == [False, True, False]
    assert f.unmatched == 2  # movie 4 in movies.csv, movie 77 in the visual features


def test_movielens_bad_visual_feature(ml_csv: Path):
    write(ml_csv / "LLVisualFeatures13K_Log.csv", "ML_Id,f1,f2\n2,0.1,abc\n")
    with pytest.raises(DataError) as e:
        read_movielens(ml_csv)
    assert (e.value.line, e.value.field) == (2, "f2")


# ============================================================================ RecBole
def test_recbole(tmp_path: Path):
    d = tmp_path / "toy"
    write(d / "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                           "u1\ti1\t4\t1\nu1\ti2\t2\t2\nu2\ti1\t5\t3\n")
    write(d / "toy.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\t"
                          "class:token_seq\tscore:float\n"
                          "i1\tToy Story\t1995\tAnimation Comedy\t0.5\n"
                          "i2\tHeat\tunknown\tAction\t\n")
    write(d / "toy.user", "user_id:token\tage:float\tgender:token\nu1\t24\tM\nu2\t53\tF\n")
    ds = read_recbole(d)
    assert raw_pairs(ds.interactions) == {("u1", "i1"): 4.0, ("u1", "i2"): 2.0, ("u2", "i1"): 5.0}
    f = ds.item_features
    assert list(f.titles) == ["Toy Story", "Heat"]
    m, vocab = f.categorical["genres"]  # RecBole's 'class' is the genres
    assert vocab == ["Action", "Animation", "Comedy"]
    assert m.toarray().tolist() == [[0, 1, 1], [1, 0, 0]]
    np.testing.assert_array_equal(f.numeric["year"], [1995, np.nan])
    np.testing.assert_array_equal(f.numeric["score"], [0.5, np.nan])
    assert ds.drops.counts == {"non-numeric values in 'release_year' read as unknown": 1}
    assert ds.drops.examples["non-numeric values in 'release_year' read as unknown"] == [3]
    assert ds.user_features.loc["u2", "age"] == 53.0


def test_recbole_implicit_and_bad_header(tmp_path: Path):
    d = tmp_path / "imp"
    write(d / "imp.inter", "user_id:token\titem_id:token\n1\t2\n1\t3\n")
    ds = read_recbole(d / "imp.inter")
    assert ds.interactions.kind == "implicit" and ds.interactions.nnz == 2
    write(d / "imp.inter", "user_id\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match="not 'name:type'"):
        read_recbole(d)


# ============================================================================ sessions
@pytest.fixture
def gru4rec_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rsc"
    write(d / "x_train_full.txt", "SessionId\tItemId\tTime\n1\t100\t10.5\n1\t200\t11.0\n"
                                  "2\t200\t20.0\n2\t300\t19.0\n")
    # item 999 is unseen in train_full: dropped and counted
    write(d / "x_test.txt", "SessionId\tItemId\tTime\n3\t300\t30.0\n3\t999\t31.0\n3\t100\t32.0\n")
    return d


def test_gru4rec_parts_share_train_item_map(gru4rec_dir: Path):
    ds = read_gru4rec_sessions(gru4rec_dir)
    full, test = ds.parts["train_full"], ds.parts["test"]
    assert ds.sessions is full
    assert test.item_map is full.item_map
    assert list(full.item_map.raw) == [100, 200, 300]
    # session 2 is time-ordered on read: 300 (t=19) before 200 (t=20)
    assert list(full.item_map.to_raw(full.session(1))) == [300, 200]
    assert list(test.item_map.to_raw(test.session(0))) == [300, 100]
    assert ds.drops.counts == {"test: events on items unknown to the item map": 1}
    assert ds.drops.examples["test: events on items unknown to the item map"] == [3]
    with pytest.raises(DataError) as e:
        read_gru4rec_sessions(gru4rec_dir, unknown_items="raise")
    assert (e.value.line, e.value.field) == (3, "ItemId")


def test_gru4rec_bad_time(gru4rec_dir: Path):
    write(gru4rec_dir / "x_test.txt", "SessionId\tItemId\tTime\n3\t300\t30.0\n3\t100\tnoon\n")
    with pytest.raises(DataError) as e:
        read_gru4rec_sessions(gru4rec_dir)
    assert (e.value.line, e.value.field) == (3, "Time")
    ds = read_gru4rec_sessions(gru4rec_dir, on_error="skip")
    assert ds.parts["test"].n_events == 1
    assert ds.drops.examples["test: rows with non-numeric or missing value in 'Time'"] == [3]


def events_of(ev) -> tuple:
    """Everything a SessionEvents holds, with raw ids, for comparing two reads."""
    return (ev.name, list(ev.session_map.raw), list(ev.item_map.raw), ev.items.tolist(),
            ev.timestamps.tolist(), ev.offsets.tolist())


def test_load_train_and_test_files_by_any_name(gru4rec_dir: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    train = write(elsewhere / "clicks early.tsv", (gru4rec_dir / "x_train_full.txt").read_bytes())
    test = write(tmp_path / "later.dat", (gru4rec_dir / "x_test.txt").read_bytes())
    by_prefix = load(gru4rec_dir)
    ds = load(train=train, test=test)
    assert list(ds.parts) == ["train_full", "test"] == list(by_prefix.parts)
    for part in ds.parts:
        assert events_of(ds.parts[part]) == events_of(by_prefix.parts[part])
    assert ds.sessions is ds.parts["train_full"]
    assert ds.parts["test"].item_map is ds.parts["train_full"].item_map
    # the unseen test item 999 (line 3 of the test file) is dropped and counted as before
    assert ds.drops.to_dict() == by_prefix.drops.to_dict()
    assert ds.drops.counts == {"test: events on items unknown to the item map": 1}
    assert ds.parts["test"].n_events == 2
    assert ds.name == "clicks early"
    assert ds.source == f"train_full={train}, test={test}"
    # the package-level entry point takes the same arguments
    from recforge.data import load as data_load
    assert events_of(data_load(train=train, test=test).parts["test"]) == events_of(ds.parts["test"])


def test_load_train_and_test_pass_reader_options(gru4rec_dir: Path):
    train, test = gru4rec_dir / "x_train_full.txt", gru4rec_dir / "x_test.txt"
    with pytest.raises(DataError) as e:
        load(train=train, test=test, unknown_items="raise")
    assert (e.value.path, e.value.line, e.value.field) == (str(test), 3, "ItemId")
    assert load(train=train, test=test, name="rsc").name == "rsc"
    with pytest.raises(TypeError, match="does not take"):
        load(train=train, test=test, rating_scale=(1, 5))


def test_load_train_and_test_missing_file_is_named(gru4rec_dir: Path, tmp_path: Path):
    train, test = gru4rec_dir / "x_train_full.txt", gru4rec_dir / "x_test.txt"
    missing = tmp_path / "nowhere" / "test_clicks.txt"
    with pytest.raises(DataError, match="test file not found") as e:
        load(train=train, test=missing)
    assert e.value.path == str(missing) and str(missing) in str(e.value)
    with pytest.raises(DataError, match="training file not found") as e:
        load(train=missing, test=test)
    assert e.value.path == str(missing)
    with pytest.raises(DataError, match="expected a file, found a directory") as e:
        load(train=train, test=tmp_path)
    assert e.value.path == str(tmp_path)


def test_load_train_and_test_argument_errors(gru4rec_dir: Path):
    train, test = gru4rec_dir / "x_train_full.txt", gru4rec_dir / "x_test.txt"
    with pytest.raises(ValueError, match="test= is missing"):
        load(train=train)
    with pytest.raises(ValueError, match="train= is missing"):
        load(test=test)
    with pytest.raises(ValueError, match="do not go with them"):
        load(gru4rec_dir, train=train, test=test)
    with pytest.raises(ValueError, match="goes with a training file"):
        load(train=gru4rec_dir, test=test)
    with pytest.raises(TypeError, match="needs a catalog name"):
        load()


def test_yoochoose_clicks(tmp_path: Path):
    f = write(tmp_path / "yoochoose-clicks.dat",
              "1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.868Z,214536500,S\n"
              "2,2014-04-06T00:00:00.000Z,214536502,0\n")
    ds = read_yoochoose_clicks(tmp_path)
    ev = ds.sessions
    assert (ev.n_sessions, ev.n_events, ev.n_items) == (2, 3, 2)
    expected = pd.Timestamp("2014-04-07T10:51:09.277Z").timestamp()
    assert ev.timestamps[0] == pytest.approx(expected, abs=1e-6)
    write(f, "1,2014-04-07T10:51:09.277Z,214536502,0\n1,yesterday,214536500,S\n")
    with pytest.raises(DataError) as e:
        read_yoochoose_clicks(f)
    assert (e.value.line, e.value.field) == (2, "time")


def test_diginetica(tmp_path: Path):
    write(tmp_path / "train-item-views.csv",
          "sessionId;userId;itemId;timeframe;eventdate\n1;;81766;526309;2016-05-09\n"
          "1;;31331;1031018;2016-05-09\n2;7;32118;243569;2016-05-10\n")
    write(tmp_path / "product-categories.csv", "itemId;categoryId\n81766;1\n31331;1\n99;2\n")
    ds = read_diginetica(tmp_path)
    ev = ds.sessions
    base = pd.Timestamp("2016-05-09", tz="UTC").timestamp()
    np.testing.assert_allclose(ev.timestamps[:2], [base + 526.309, base + 1031.018])
    assert ev.users[1] == 7 and np.isnan(ev.users[0])
    m, vocab = ds.item_features.categorical["category"]
    assert vocab == ["1"] and ds.item_features.has("category").sum() == 2
    assert ds.item_features.unmatched == 1


def test_retailrocket(tmp_path: Path):
    write(tmp_path / "events.csv",
          "timestamp,visitorid,event,itemid,transactionid\n"
          "1000000,1,view,10,\n1060000,1,view,10,\n1120000,1,addtocart,11,\n"
          "9000000,1,transaction,11,5\n1000000,2,view,10,\n1000001,2,click,12,\n")
    ds = read_retailrocket(tmp_path, duplicates="count")
    assert raw_pairs(ds.interactions) == {(1, 10): 2.0, (1, 11): 2.0, (2, 10): 1.0}
    assert ds.drops.counts["events not in ['view', 'addtocart', 'transaction']"] == 1
    ev = ds.sessions
    # visitor 1: 1000..1120 s, then 9000 s (> 30 min later) -> two sessions; visitor 2: one
    assert list(ev.lengths) == [3, 1, 1]
    assert list(ev.users) == [1, 1, 2]


def test_lastfm(tmp_path: Path):
    write(tmp_path / "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n"
                                         "3\t51\t228\n")
    write(tmp_path / "artists.dat", "id\tname\turl\tpictureURL\n51\tDuran Duran\thttp://a\t\n"
                                    "52\tMorcheeba\thttp://b\t\n53\tUnheard\thttp://c\t\n")
    write(tmp_path / "tags.dat", "tagID\ttagValue\n1\tmetal\n2\ttrip-hop\n", encoding="latin-1")
    write(tmp_path / "user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear\n"
                                               "2\t52\t2\t1\t4\t2009\n3\t52\t2\t1\t4\t2009\n"
                                               "2\t60\t1\t1\t4\t2009\n2\t51\t7\t1\t4\t2009\n")
    ds = read_lastfm_hetrec(tmp_path)
    assert ds.interactions.kind == "implicit"
    assert raw_pairs(ds.interactions) == {(2, 51): 13883.0, (2, 52): 11690.0, (3, 51): 228.0}
    f = ds.item_features
    assert list(f.titles) == ["Duran Duran", "Morcheeba"]
    m, vocab = f.categorical["tags"]
    assert vocab == ["trip-hop"] and m.toarray().tolist() == [[0], [1]]
    assert f.unmatched == 2  # artist 53 (no plays) and the tag on artist 60
    assert ds.drops.counts == {"tag assignments with a tagID missing from tags.dat": 1}


# ============================================================================ generic tables
def test_read_table_mapping_and_formats(tmp_path: Path):
    df = pd.DataFrame({"uid": ["a", "a", "b"], "iid": [1, 2, 1], "stars": [1.0, 2.5, 5.0],
                       "when": ["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z",
                                "2020-01-01T12:00:00Z"]})
    expected = {("a", 1): 1.0, ("a", 2): 2.5, ("b", 1): 5.0}
    for name, writer in [("r.csv", lambda p: df.to_csv(p, index=False)),
                         ("r.tsv", lambda p: df.to_csv(p, index=False, sep="\t")),
                         ("r.parquet", lambda p: df.to_parquet(p, index=False))]:
        writer(tmp_path / name)
        ds = read_table(tmp_path / name, user="uid", item="iid", rating="stars",
                        timestamp="when", rating_scale=(0.5, 5))
        assert raw_pairs(ds.interactions) == expected, name
        t = ds.interactions.timestamps
        assert sorted(t) == [1577836800.0, 1577880000.0, 1577923200.0], name


def test_read_table_implicit_and_no_header(tmp_path: Path):
    f = write(tmp_path / "x.csv", "u,i\n1,5\n1,5\n2,6\n")
    ds = read_table(f, user="u", item="i", rating=None, duplicates="count")
    assert ds.interactions.kind == "implicit"
    assert raw_pairs(ds.interactions) == {(1, 5): 2.0, (2, 6): 1.0}
    g = write(tmp_path / "y.tsv", "1\t5\t3\n2\t6\t4\n")
    ds = read_table(g, header=False)
    assert raw_pairs(ds.interactions) == {(1, 5): 3.0, (2, 6): 4.0}


@pytest.mark.parametrize("policy, value", [("last", 2.0), ("first", 4.0), ("mean", 3.0),
                                           ("sum", 6.0), ("count", 2.0)])
def test_read_table_duplicate_policies(tmp_path: Path, policy: str, value: float):
    # pair (1, 5) rated 4 at t=1 and 2 at t=2: last=2, first=4, mean=3, sum=6, count=2
    f = write(tmp_path / "d.csv", "user,item,rating,timestamp\n1,5,2,2\n1,5,4,1\n2,5,1,1\n")
    ds = read_table(f, duplicates=policy)
    assert raw_pairs(ds.interactions)[(1, 5)] == value
    assert ds.drops.counts == {f"duplicate (user, item) rows merged by '{policy}'": 1}


def test_read_table_sessions(tmp_path: Path):
    f = write(tmp_path / "s.csv", "sid,item,timestamp\n1,a,3\n1,b,1\n2,a,2\n")
    ds = read_table(f, session="sid")
    assert ds.interactions is None and ds.sessions.n_sessions == 2
    assert list(ds.sessions.item_map.to_raw(ds.sessions.session(0))) == ["b", "a"]


# ============================================================================ bad input
GOOD = "user,item,rating,timestamp\n1,10,4,100\n"


def _err(tmp_path: Path, text, **kw) -> DataError:
    f = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as e:
        read_table(f, **kw)
    assert str(f) in str(e.value)
    return e.value


def test_bad_too_many_fields(tmp_path: Path):
    e = _err(tmp_path, GOOD + "2,20,3,101\n3,30,5,102,extra\n4,40,1,103\n")
    assert e.line == 4 and "expected 4 fields, found 5" in str(e)


def test_bad_too_few_fields(tmp_path: Path):
    e = _err(tmp_path, GOOD + "2,20,3\n")
    assert e.line == 3 and "expected 4 fields, found 3" in str(e)


def test_bad_fields_in_quoted_csv(tmp_path: Path):
    e = _err(tmp_path, 'user,item,rating\n1,"a, b",4\n2,"c",5,6\n')
    assert e.line == 3 and "found 4" in str(e)


def test_bad_non_numeric_rating(tmp_path: Path):
    e = _err(tmp_path, GOOD + "2,20,four,101\n")
    assert (e.line, e.field) == (3, "rating") and "'four'" in str(e)


@pytest.mark.parametrize("cell", ["", "NaN", "nan"])
def test_bad_nan_rating(tmp_path: Path, cell: str):
    e = _err(tmp_path, GOOD + f"2,20,{cell},101\n")
    assert (e.line, e.field) == (3, "rating")


def test_bad_rating_outside_scale(tmp_path: Path):
    e = _err(tmp_path, GOOD + "2,20,6,101\n", rating_scale=(1, 5))
    assert (e.line, e.field) == (3, "rating") and "outside the scale" in str(e)


def test_bad_missing_column(tmp_path: Path):
    e = _err(tmp_path, "user,item_id,rating\n1,2,3\n")
    assert e.field == "item" and "missing item column" in str(e)


def test_bad_missing_id(tmp_path: Path):
    e = _err(tmp_path, GOOD + ",20,3,101\n")
    assert (e.line, e.field) == (3, "user")


def test_bad_timestamp(tmp_path: Path):
    e = _err(tmp_path, GOOD + "2,20,3,tuesday\n")
    assert (e.line, e.field) == (3, "timestamp")


def test_bad_empty_file(tmp_path: Path):
    assert "empty file" in str(_err(tmp_path, ""))
    assert "empty file" in str(_err(tmp_path, "\n  \n"))


def test_bad_header_only(tmp_path: Path):
    assert "no data rows" in str(_err(tmp_path, "user,item,rating\n"))


def test_bad_encoding(tmp_path: Path):
    e = _err(tmp_path, (GOOD + "2,caf\xe9,3,101\n").encode("latin-1"))
    assert (e.line, e.field) == (3, "item") and "not valid utf-8" in str(e)
    # the caller can name the right encoding
    ds = read_table(tmp_path / "bad.csv", encoding="latin-1")
    assert "café" in set(ds.interactions.item_map.raw)
    f16 = write(tmp_path / "u16.csv", (GOOD + "2,café,3,101\n").encode("utf-16"))
    assert raw_pairs(read_table(f16, encoding="utf-16").interactions)[(2, "café")] == 3.0


def test_skip_counts_everything_with_line_numbers(tmp_path: Path):
    text = ("user,item,rating,timestamp\n1,10,4,100\n2,20,3\n\n3,30,x,102\n4,40,9,103\n"
            "5,50,2,104\n,60,2,105\n")
    f = write(tmp_path / "s.csv", text)
    ds = read_table(f, on_error="skip", rating_scale=(1, 5))
    assert raw_pairs(ds.interactions) == {(1, 10): 4.0, (5, 50): 2.0}
    d = ds.drops
    assert d.counts == {
        "blank lines": 1,
        "malformed lines (wrong number of fields)": 1,
        "rows with missing id in 'user'": 1,
        "rows with non-numeric or NaN rating in 'rating'": 1,
        "rows with rating outside the scale [1, 5] in 'rating'": 1,
    }
    assert d.examples["blank lines"] == [4]
    assert d.examples["malformed lines (wrong number of fields)"] == [3]
    assert d.examples["rows with non-numeric or NaN rating in 'rating'"] == [5]
    assert d.examples["rows with rating outside the scale [1, 5] in 'rating'"] == [6]
    assert d.examples["rows with missing id in 'user'"] == [8]
    assert ds.interactions.drops.counts == d.counts  # the interactions carry the same report


def test_blank_lines_are_counted_not_errors(tmp_path: Path):
    ds = read_table(write(tmp_path / "b.csv", GOOD + "\n2,20,3,101\n\n"))
    assert ds.interactions.nnz == 2 and ds.drops.counts == {"blank lines": 2}


def test_bad_line_after_skipped_rows_keeps_its_line_number(tmp_path: Path):
    f = write(tmp_path / "m.csv", GOOD + "2,20,3\n\n3,30,x,102\n")
    with pytest.raises(DataError) as e:
        read_table(f)
    assert e.value.line == 3  # the short row is the first problem
    ds_text = GOOD + "\n\n3,30,x,102\n"
    with pytest.raises(DataError) as e:
        read_table(write(tmp_path / "n.csv", ds_text))
    assert e.value.line == 5  # blank lines are skipped but still counted as lines


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 40), bad=st.integers(0, 39), data=st.data())
def test_error_line_is_the_corrupted_line(tmp_path_factory, n, bad, data):
    """Corrupting row ``bad`` of a random file makes the error name line ``bad + 2``."""
    bad = bad % n
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = [f"{rng.integers(0, 5)},{rng.integers(0, 5)},{rng.integers(1, 6)}" for _ in range(n)]
    kind = data.draw(st.sampled_from(["short", "long", "text", "scale"]))
    rows[bad] = {"short": "1,2", "long": "1,2,3,4", "text": "1,2,abc", "scale": "1,2,7"}[kind]
    f = tmp_path_factory.mktemp("h") / "r.csv"
    f.write_text("user,item,rating\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as e:
        read_table(f, rating_scale=(1, 5))
    assert e.value.line == bad + 2


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 50), st.text("abcxyz", min_size=1, max_size=3),
                          st.sampled_from([0.5, 1.0, 3.5, 5.0])), min_size=1, max_size=30))
def test_round_trip(tmp_path_factory, rows):
    """What is written is read back, duplicates resolved by the last row."""
    f = tmp_path_factory.mktemp("rt") / "r.csv"
    pd.DataFrame(rows, columns=["user", "item", "rating"]).to_csv(f, index=False)
    ds = read_table(f, rating_scale=(0.5, 5))
    expected = {}
    for u, i, r in rows:
        expected[(u, i)] = r
    assert raw_pairs(ds.interactions) == expected
    assert ds.drops.counts.get("duplicate (user, item) rows merged by 'last'", 0) == \
        len(rows) - len(expected)


# ============================================================================ dispatch
def test_detect_format_and_load_paths(ml100k: Path, ml_csv: Path, gru4rec_dir: Path, tmp_path):
    assert detect_format(ml100k) == "movielens"
    assert detect_format(ml_csv) == "movielens"
    assert detect_format(gru4rec_dir) == "gru4rec"
    assert detect_format(gru4rec_dir / "x_test.txt") == "gru4rec"
    # an extracted archive: one folder inside another
    outer = tmp_path / "outer"
    outer.mkdir()
    os.symlink(ml100k, outer / "ml-100k")
    assert load(outer).interactions.nnz == 4
    assert load(ml100k / "u.data").interactions.nnz == 4
    f = write(tmp_path / "plain.csv", GOOD)
    assert load(f).interactions.nnz == 1
    with pytest.raises(DataError, match="not a known data set"):
        load(tmp_path / "nope")
    with pytest.raises(DataError, match="cannot recognise"):
        load(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    d = tmp_path / "emptydir"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    return d


def test_load_known_name_from_data_dir_and_cache(ml100k: Path, tmp_path: Path):
    ds = load("ml-100k", data_dir=ml100k.parent)
    assert ds.name == "ml-100k" and ds.interactions.rating_scale == (1.0, 5.0)
    with pytest.raises(DataError, match="recforge datasets download ml-100k"):
        load("ml-100k", cache_dir=tmp_path / "emptycache")
    with pytest.raises(DataError, match="download it by hand"):
        load("yoochoose", cache_dir=tmp_path / "emptycache")


def test_load_synthetic():
    pytest.importorskip("recforge.data.synthetic")
    ds = load("synthetic", n_users=30, n_items=20, n_ratings=200, seed=1)
    assert ds.interactions.nnz == 200


# ============================================================================ real data
def _shared(name: str) -> Path:
    d = SHARED / name
    if not d.is_dir():
        pytest.skip(f"{d} not present")
    return d


@pytest.mark.realdata
def test_real_ml100k():
    ds = load("ml-100k", data_dir=_shared("ml-100k").parent)
    inter = ds.interactions
    assert (inter.nnz, inter.n_users, inter.n_items) == (100_000, 943, 1_682)
    _, counts = np.unique(inter.values, return_counts=True)
    assert counts.tolist() == [6_110, 11_370, 27_145, 34_174, 21_201]  # from the manifest
    assert inter.rating_scale == (1.0, 5.0) and inter.user_counts.min() >= 20
    f = ds.item_features
    assert f.titles[inter.item_map.to_inner([1])[0]] == "Toy Story"
    assert f.has("genres").all() and len(f.categorical["genres"][1]) == 19
    assert len(ds.user_features) == 943


@pytest.mark.realdata
def test_real_ml_latest_small():
    d = _shared("ml-latest-small")
    ds = load(d)
    inter = ds.interactions
    assert (inter.nnz, inter.n_users, inter.n_items) == (100_004, 671, 9_066)
    assert np.unique(inter.values).tolist() == [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5]
    f = ds.item_features
    i = inter.item_map.to_inner([1])[0]
    assert f.titles[i] == "Toy Story (1995)" and f.numeric["year"][i] == 1995
    vocab = f.categorical["genres"][1]
    assert {"Adventure", "Animation", "IMAX"} <= set(vocab) and len(vocab) == 19
    vis = f.numeric["mise_en_scene"]
    assert vis.shape == (9_066, 7) and f.has("mise_en_scene").sum() == 4_729  # manifest
    # tags: every tagged movie that has ratings, computed independently with pandas
    tags = pd.read_csv(d / "tags.csv")
    ratings = pd.read_csv(d / "ratings.csv")
    expected = len(set(tags.movieId) & set(ratings.movieId))
    assert f.has("tags").sum() == expected


@pytest.mark.realdata
def test_real_rsc15_100k():
    ds = load(_shared("rsc15-100k"))
    expect = {"train_full": (70_278, 17_794, 2_933), "test": (13_568, 3_416, 1_771),
              "train_tr": (53_254, 13_629, 2_873), "train_valid": (16_539, 4_084, 2_029)}
    for part, (events, sessions, items) in expect.items():
        ev = ds.parts[part]
        assert (ev.n_events, ev.n_sessions, np.unique(ev.items).size) == (events, sessions, items)
        assert ev.item_map is ds.parts["train_full"].item_map
    assert not ds.drops  # every test item occurs in train_full


@pytest.mark.realdata
def test_real_lastfm_2k():
    d = _shared("lastfm-2k")
    ds = load(d)
    inter = ds.interactions
    assert (inter.nnz, inter.n_users, inter.n_items) == (92_834, 1_892, 17_632)
    assert inter.kind == "implicit" and inter.values.max() == 352_698
    f = ds.item_features
    assert f.has("title").all()
    ua = pd.read_csv(d / "user_artists.dat", sep="\t")
    ut = pd.read_csv(d / "user_taggedartists.dat", sep="\t")
    assert f.has("tags").sum() == len(set(ut.artistID) & set(ua.artistID))


MALFORMED = {
    # reader, file name, content with a malformed line, its line number
    "ml-100k": (read_movielens, "u.data", "1\t1\t4\t10\n1\t2\t3\n", 2),
    "ml-1m": (read_movielens, "ratings.dat", "1::1::4::10\n1::2::3::11\n1::2:3::12\n", 3),
    "ml-csv": (read_movielens, "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,1,9\n", 2),
    "recbole": (read_recbole, "x.inter", "user_id:token\titem_id:token\n1\t2\n1\n", 3),
    "gru4rec": (read_gru4rec_sessions, "a_train_full.txt", "SessionId\tItemId\tTime\n1\t2\t3\n1\t2\n", 3),
    "yoochoose": (read_yoochoose_clicks, "yoochoose-clicks.dat", "1,2014-04-07T10:51:09Z,2\n", 1),
    "diginetica": (read_diginetica, "train-item-views.csv",
                   "sessionId;userId;itemId;timeframe;eventdate\n1;;2;3\n", 2),
    "retailrocket": (read_retailrocket, "events.csv",
                     "timestamp,visitorid,event,itemid,transactionid\n1,2,view,3,,\n", 2),
    "lastfm": (read_lastfm_hetrec, "user_artists.dat", "userID\tartistID\tweight\n1\t2\t3\t4\n", 2),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_reader_names_the_malformed_line(tmp_path: Path, case: str):
    reader, fname, text, line = MALFORMED[case]
    f = write(tmp_path / case / fname, text)
    with pytest.raises(DataError) as e:
        reader(tmp_path / case)
    assert e.value.path == str(f) and e.value.line == line and "fields" in str(e.value)


@pytest.mark.realdata
def test_real_ml_latest_small_matches_plain_pandas():
    """Every rating and timestamp equals an independent pandas parse of ratings.csv."""
    d = _shared("ml-latest-small")
    got = load(d).interactions.to_dataframe()
    ref = pd.read_csv(d / "ratings.csv").rename(
        columns={"userId": "user", "movieId": "item", "timestamp": "timestamp"})
    key = ["user", "item"]
    got = got.sort_values(key).reset_index(drop=True)
    ref = ref.sort_values(key).reset_index(drop=True)
    np.testing.assert_array_equal(got[key].to_numpy(), ref[key].to_numpy())
    np.testing.assert_array_equal(got["rating"].to_numpy(), ref["rating"].to_numpy(np.float32))
    np.testing.assert_array_equal(got["timestamp"].to_numpy(), ref["timestamp"].to_numpy(float))


@pytest.mark.realdata
def test_real_rsc15_sessions_match_plain_pandas():
    """Each test session's items, in time order, equal a pandas groupby of the file."""
    d = _shared("rsc15-100k")
    ev = load(d).parts["test"]
    ref = pd.read_csv(d / "yoochoose-clicks-100k_test.txt", sep="\t")
    ref = ref.sort_values(["SessionId", "Time"], kind="stable")
    expected = ref.groupby("SessionId")["ItemId"].apply(list)
    got = {int(ev.session_map.raw[s]): ev.item_map.to_raw(ev.session(s)).tolist()
           for s in range(ev.n_sessions)}
    assert got == expected.to_dict()


# ------------------------------------------------------------------ ids that are not int64
def test_ids_beyond_int64_load_as_distinct_text_ids(tmp_path):
    p = tmp_path / "big_ids.csv"
    p.write_text("user,item,rating\n1e30,1,5\n2e30,2,4\n99999999999999999999,3,3\n")
    ds = load(p)
    inter = ds.interactions
    assert inter.n_users == 3
    assert sorted(inter.user_map.raw.tolist()) == ["1e30", "2e30", "99999999999999999999"]
    # each user keeps its own row
    assert inter.user_map.to_raw(inter.users[inter.values == 3.0]).tolist() == \
        ["99999999999999999999"]
    assert inter.item_map.raw.dtype == np.int64  # the item ids are ordinary integers
    note = "rows with ids in 'user' kept as text (numbers that are not all int64 integers)"
    assert ds.drops.notes == {note: 3}
    assert ds.drops.total == 0  # nothing dropped, only reported
    assert note in str(ds.drops)


def test_integer_ids_stay_int64_and_leading_zeros_do_not_merge(tmp_path):
    p = tmp_path / "ints.csv"
    p.write_text("user,item,rating\n1,10,5\n-2,20,4\n9223372036854775807,30,3\n")
    inter = load(p).interactions
    assert inter.user_map.raw.dtype == np.int64
    assert inter.user_map.raw.tolist() == [-2, 1, 9223372036854775807]
    assert not inter.drops.notes
    q = tmp_path / "zeros.csv"
    q.write_text("user,item,rating\n1,10,5\n01,20,4\n")
    inter = load(q).interactions
    assert inter.n_users == 2
    assert sorted(inter.user_map.raw.tolist()) == ["01", "1"]


def test_text_ids_with_a_missing_value_keep_integer_ids(tmp_path):
    p = tmp_path / "missing.csv"
    p.write_text("user,item,rating\n1,10,5\n,20,4\n3,30,3\n")
    with pytest.raises(DataError, match="line 3"):
        load(p)
    inter = load(p, on_error="skip").interactions
    assert inter.user_map.raw.dtype == np.int64
    assert inter.user_map.raw.tolist() == [1, 3]
