"""IdMap: raw id <-> inner index, for integer and string ids."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recforge.data import IdMap
from recforge.data.idmap import normalize_raw_ids


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=30),
                 st.lists(st.text(min_size=1, max_size=5).filter(lambda t: not t.endswith("\x00")),
                          min_size=1, max_size=30)))
def test_from_values_round_trips(values):
    id_map, codes = IdMap.from_values(values)
    assert codes.dtype == np.int32
    assert len(id_map) == len(set(values))
    assert id_map.to_raw(codes).tolist() == list(values)
    assert np.array_equal(id_map.to_inner(values), codes)
    assert np.array_equal(id_map.to_inner(id_map.raw), np.arange(len(id_map)))
    # inner order is the sorted order of the raw ids
    assert id_map.raw.tolist() == sorted(set(values))


def test_explicit_order_is_kept():
    m = IdMap([30, 10, 20])
    assert m.to_inner([10, 20, 30]).tolist() == [1, 2, 0]
    assert m.to_raw([0, 2]).tolist() == [30, 20]


def test_unknown_ids_raise_or_mask():
    m = IdMap([1, 2, 3])
    with pytest.raises(KeyError, match="7"):
        m.to_inner([1, 7])
    assert m.to_inner([1, 7, 3], missing="mask").tolist() == [0, -1, 2]
    assert 2 in m and 7 not in m and "x" not in m
    with pytest.raises(ValueError, match="missing"):
        m.to_inner([1], missing="ignore")


def test_int_map_accepts_numeric_strings_and_integral_floats():
    m = IdMap([5, 10])
    assert m.to_inner(["10", "5"]).tolist() == [1, 0]
    assert m.to_inner(np.array([10.0, 5.0])).tolist() == [1, 0]
    assert m.to_inner(["abc", "10"], missing="mask").tolist() == [-1, 1]
    assert m.to_inner([5.5], missing="mask").tolist() == [-1]


def test_str_map_accepts_ints_as_strings():
    m = IdMap(["1", "2", "u3"])
    assert m.raw.dtype.kind == "U"
    assert m.to_inner([2, 1]).tolist() == [1, 0]
    assert m.to_inner(["u3"]).tolist() == [2]
    assert m.to_inner(np.array([2.0, 1.0])).tolist() == [1, 0]  # integral floats match "2", "1"


def test_normalization_of_raw_ids():
    assert normalize_raw_ids([1.0, 2.0]).dtype == np.int64
    assert normalize_raw_ids([1.5, 2.0]).dtype.kind == "U"
    assert normalize_raw_ids(np.array([1, 2], dtype=object)).dtype == np.int64
    assert normalize_raw_ids(np.array([1, "a"], dtype=object)).tolist() == ["1", "a"]
    assert normalize_raw_ids(np.array([True, False])).tolist() == [1, 0]
    assert normalize_raw_ids(np.array([], dtype=float)).dtype == np.int64
    assert normalize_raw_ids(np.array([b"x", b"y"])).dtype.kind == "U"


def test_duplicates_rejected_and_equality_by_content():
    with pytest.raises(ValueError, match="unique"):
        IdMap([1, 2, 1])
    a, b = IdMap([1, 2]), IdMap(np.array([1, 2], dtype=np.int32))
    assert a == b and a != IdMap(["1", "2"]) and a != IdMap([2, 1])
    assert len({a: 1, b: 2}) == 2  # usable as dict keys (identity hash)
    assert repr(a) == "IdMap(n=2, dtype=int64)"


def test_single_id_is_a_batch_of_one():
    m = IdMap(["a", "b"])
    assert m.to_inner("b").tolist() == [1]


def test_ids_ending_in_nul_are_refused_not_merged():
    with pytest.raises(ValueError, match="ends with a NUL character"):
        IdMap.from_values(["a", "a\x00"])


def test_grow_keeps_existing_indices_and_widens_string_ids():
    """New string ids longer than every existing one are stored whole (not cut to the old
    width), existing inner indices do not move, and integer maps stay integer."""
    m = IdMap(np.array(["u0", "u1", "u2"]))
    grown, idx = m.grow(["u1", "brand-new", "u1", "zz"])
    assert idx.tolist() == [1, 3, 1, 4]
    assert grown.raw.tolist() == ["u0", "u1", "u2", "brand-new", "zz"]
    assert grown.to_inner(np.array(["brand-new"])).tolist() == [3]
    same, idx = grown.grow(["u0"])
    assert same is grown and idx.tolist() == [0]
    ints, idx = IdMap(np.array([10, 20])).grow([30, 10])
    assert ints.raw.dtype.kind == "i" and ints.raw.tolist() == [10, 20, 30] and idx.tolist() == [2, 0]
    with pytest.raises(TypeError, match="grow"):
        ints.grow(["a"])


def test_normalize_raw_ids_never_wraps_beyond_int64():
    from recforge.data.idmap import raw_ids_as_text_reason
    assert normalize_raw_ids([1e30, 2e30]).tolist() == ["1e+30", "2e+30"]
    assert normalize_raw_ids([99999999999999999999, 1]).tolist() == ["99999999999999999999", "1"]
    big = np.array([2**63, 1], dtype=np.uint64)
    assert normalize_raw_ids(big).tolist() == ["9223372036854775808", "1"]
    assert normalize_raw_ids([2**63 - 1, -2**63]).dtype == np.int64
    assert raw_ids_as_text_reason([1e30]) == "floats beyond int64"
    assert raw_ids_as_text_reason([2**64]) == "integers beyond int64"
    assert raw_ids_as_text_reason(big) == "unsigned integers beyond int64"
    assert raw_ids_as_text_reason([1.5]) == "non-integer floats"
    assert raw_ids_as_text_reason([1, 2]) is None
    assert raw_ids_as_text_reason(["a"]) is None
    assert len(IdMap(normalize_raw_ids([1e30, 2e30, 1e20]))) == 3


def test_to_inner_text_ids_for_an_integer_map_are_exact():
    m = IdMap(np.array([-2**63, 1, 9007199254740993]))
    text = np.array(["99999999999999999999", "1", "x", "1.0", "9007199254740993", "1_0"])
    assert m.to_inner(text, missing="mask").tolist() == [-1, 1, -1, 1, 2, -1]
    mixed = np.array([1.5, 1, "1", 9007199254740993, None, 1e30], dtype=object)
    assert m.to_inner(mixed, missing="mask").tolist() == [-1, 1, 1, 2, -1, -1]
    with pytest.raises(KeyError, match="1.5"):
        m.to_inner(np.array([1.5, 1], dtype=object))
