"""ItemFeatures: alignment to an item index, multi-hot categories, explicit missingness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recforge.data import IdMap, ItemFeatures


def _table():
    # item 4 is not in the map (counted); item 2 is missing from the table; item 3 has no genres
    return pd.DataFrame({
        "item": [1, 3, 4, 5],
        "title": ["Heat (1995)", "Fargo (1996)", "Unknown", None],
        "genres": ["Action|Crime|Thriller", "", "Drama", "Comedy|Drama"],
        "year": [1995, 1996, 2000, "n/a"],
        "f1": [0.1, 0.2, 0.3, 0.4],
        "f2": [1.0, np.nan, 3.0, 4.0],
        "plot": ["A heist.", "Snow.", "x", ""],
    })


@pytest.fixture
def features():
    return ItemFeatures.from_dataframe(_table(), IdMap([1, 2, 3, 5]), title="title",
                                       categorical={"genres": "|"}, numeric={"year": ["year"], "visual": ["f1", "f2"]},
                                       text=["plot"])


def test_rows_follow_the_item_map(features):
    assert features.n_items == 4 and features.unmatched == 1
    assert features.titles.tolist() == ["Heat (1995)", "", "Fargo (1996)", ""]
    assert features.has("title").tolist() == [True, False, True, False]
    assert features.title([2, 0]).tolist() == ["Fargo (1996)", "Heat (1995)"]


def test_multi_hot_genres(features):
    matrix, vocab = features.categorical["genres"]
    assert vocab == ["Action", "Comedy", "Crime", "Drama", "Thriller"]  # "Drama" of item 4 is
    # in the vocabulary only because item 5 has it too
    assert matrix.dtype == np.float32 and matrix.shape == (4, 5)
    assert matrix.toarray().tolist() == [
        [1, 0, 1, 0, 1],  # item 1
        [0, 0, 0, 0, 0],  # item 2: not in the table
        [0, 0, 0, 0, 0],  # item 3: empty cell
        [0, 1, 0, 1, 0],  # item 5
    ]
    assert features.has("genres").tolist() == [True, False, False, True]


def test_numeric_features_nan_where_unknown(features):
    year = features.numeric["year"]
    assert year[0] == 1995 and year[2] == 1996 and np.isnan(year[1]) and np.isnan(year[3])
    assert features.has("year").tolist() == [True, False, True, False]
    visual = features.numeric["visual"]
    assert visual.shape == (4, 2)
    assert features.has("visual").tolist() == [True, False, False, True]  # item 3 has f2 = NaN
    assert features.names() == ["genres", "year", "visual", "plot"]


def test_text(features):
    assert features.text["plot"].tolist() == ["A heist.", "", "Snow.", ""]
    assert features.has("plot").tolist() == [True, False, True, False]


def test_summary_counts_present_items(features):
    s = features.summary()
    assert s == {"title": 2, "genres": 2, "year": 2, "visual": 2, "plot": 2, "items": 4,
                 "unmatched_rows": 1, "duplicate_rows": 0}


def test_add_numeric_checks_length_and_title_fallback():
    f = ItemFeatures(IdMap(["a", "b"]))
    with pytest.raises(ValueError, match="one row per item"):
        f.add_numeric("x", np.ones(3))
    f.add_numeric("x", [1.0, np.inf])
    assert f.has("x").tolist() == [True, False]
    assert f.title([1]).tolist() == ["b"]  # no titles: raw ids


def test_add_categorical_without_separator_and_repeated_values():
    f = ItemFeatures(IdMap([1, 2, 3]))
    f.add_categorical("tag", np.array([0, 2, 2]), ["x", "y", "y"], None)
    m, vocab = f.categorical["tag"]
    assert vocab == ["x", "y"] and m.toarray().tolist() == [[1, 0], [0, 0], [0, 1]]


def test_repeated_rows_for_one_item_keep_the_first_and_are_counted(caplog):
    df = pd.DataFrame({"item": [1, 2, 1], "title": ["First", "Two", "Second"], "genres": ["a", "b", "c"]})
    with caplog.at_level("WARNING"):
        f = ItemFeatures.from_dataframe(df, IdMap([1, 2]), title="title", categorical={"genres": "|"})
    assert f.duplicate_rows == 1 and "1 repeated rows" in caplog.text
    assert f.titles.tolist() == ["First", "Two"]
    matrix, vocab = f.categorical["genres"]
    assert vocab == ["a", "b"] and matrix.toarray().tolist() == [[1, 0], [0, 1]]
