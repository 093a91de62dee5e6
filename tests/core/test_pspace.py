"""Unit tests of the parameter space algebra in psyrun.pspace."""

from __future__ import annotations

import math
import pickle

import numpy as np
import psyrun
import pytest
from psyrun.exceptions import (
    AmbiguousOperationError,
    InvalidParameterValueError,
    ParameterLengthError,
    ParameterSpaceError,
    UnhashableValueError,
)
from psyrun.pspace import Param, ParameterSpace, dict_concat, missing


def nan_equal(a, b):
    """Equality of builds where nan equals nan."""
    if a.keys() != b.keys():
        return False
    for key in a:
        if len(a[key]) != len(b[key]):
            return False
        for x, y in zip(a[key], b[key]):
            both_nan = isinstance(x, float) and isinstance(y, float) and x != x and y != y
            if not both_nan and x != y:
                return False
    return True


# ------------------------------------------------------------------ Param
def test_scalars_are_replicated():
    assert Param(a=[1, 2, 3], b=[4, 5, 6], c=7).build() == {
        "a": [1, 2, 3],
        "b": [4, 5, 6],
        "c": [7, 7, 7],
    }


def test_only_scalars_give_one_row_and_no_params_none():
    assert Param(a=1, b="x").build() == {"a": [1], "b": ["x"]}
    assert len(Param()) == 0
    assert list(Param().iterate()) == []


def test_strings_are_scalars_and_tuples_ranges_are_sequences():
    p = Param(name="abc", t=(1, 2), r=range(2))
    assert p.build() == {"name": ["abc", "abc"], "t": [1, 2], "r": [0, 1]}


def test_param_from_dict():
    d = {"a": [1, 2], "b": [3, 4]}
    assert Param(**d).build() == d


def test_numpy_values_become_python_scalars_in_build():
    p = Param(a=np.arange(3), b=np.array([0.5, 1.5, 2.5], dtype=np.float32), c=np.int64(4))
    built = p.build()
    assert built == {"a": [0, 1, 2], "b": [0.5, 1.5, 2.5], "c": [4, 4, 4]}
    assert all(type(v) is int for v in built["a"] + built["c"])
    assert all(type(v) is float for v in built["b"])
    assert all(type(v["a"]) is int for v in p.iterate())


def test_numpy_scalars_inside_lists_are_converted():
    built = Param(a=[np.float64(1.5), 2]).build()
    assert [type(v) for v in built["a"]] == [float, int]


def test_nan_in_build_prints_as_plain_nan():
    assert repr((Param(a=[1]) + Param(b=[2])).build()) == "{'a': [1, nan], 'b': [nan, 2]}"


def test_multidimensional_arrays_index_rows_along_first_axis():
    values = np.arange(12, dtype=np.int16).reshape(3, 2, 2)
    p = Param(a=values, b=[1, 2, 3])
    assert len(p) == 3
    rows = list(p.iterate())
    assert [r["b"] for r in rows] == [1, 2, 3]
    for row, expected in zip(rows, values):
        assert isinstance(row["a"], np.ndarray)
        assert row["a"].dtype == np.int16
        np.testing.assert_array_equal(row["a"], expected)


def test_build_arrays_keeps_dtypes():
    p = Param(a=np.array([1, 2], dtype=np.int8)) * Param(b=np.array([0.5], dtype=np.float32))
    arrays = p.build_arrays()
    assert arrays["a"].dtype == np.int8
    assert arrays["b"].dtype == np.float32
    np.testing.assert_array_equal(arrays["a"], [1, 2])


def test_mismatched_lengths_name_keys_and_lengths():
    with pytest.raises(ParameterLengthError) as info:
        Param(a=[1, 2, 3], b=[1, 2])
    message = str(info.value)
    assert "a: 3" in message and "b: 2" in message
    assert isinstance(info.value, ParameterSpaceError)


@pytest.mark.parametrize(
    "value", [{1, 2}, {"x": 1}, (i for i in range(3)), iter([1, 2]), {}.keys()]
)
def test_values_without_row_order_are_refused(value):
    with pytest.raises(InvalidParameterValueError, match="`a`"):
        Param(a=value)


def test_repr_is_readable():
    p = (Param(a=[1, 2], b=3) * Param(c=np.zeros((4, 2)))) + Param(a=[5])
    text = repr(p)
    assert text == (
        "((Param(a=[1, 2], b=3) * Param(c=<array shape=(4, 2) dtype=float64>)) + Param(a=[5]))"
    )
    assert repr(missing(Param(a=[1]), Param(a=[2]))) == "missing(Param(a=[1]), Param(a=[2]))"
    assert repr(Param(a=[1]) - Param(a=[2])) == "(Param(a=[1]) - Param(a=[2]))"


# ------------------------------------------------------------------ product
def test_product_first_factor_varies_slowest():
    p = Param(a=[1, 2, 3], b=[4, 5, 6]) * Param(c=[7, 8])
    assert p.build() == {"a": [1, 1, 2, 2, 3, 3], "b": [4, 4, 5, 5, 6, 6], "c": [7, 8] * 3}
    assert len(p) == 6
    assert p.keys() == ["a", "b", "c"]


def test_product_of_three_iterates_like_build():
    p = Param(a=[1, 2]) * Param(b=["x", "y", "z"]) * Param(c=[0.5, 1.5], d=[0, 1])
    built = p.build()
    rows = list(p.iterate())
    assert len(rows) == len(p) == 12
    assert [r["a"] for r in rows] == built["a"] == [1] * 6 + [2] * 6
    assert [r["d"] for r in rows] == built["d"]
    assert rows[1] == {"a": 1, "b": "x", "c": 1.5, "d": 1}


def test_product_chunks_match_build():
    p = Param(a=range(7)) * Param(b=range(5)) * Param(c=range(3))
    chunks = list(p.chunks(10))
    assert all(len(c["a"]) <= 10 for c in chunks)
    joined = {k: [v for c in chunks for v in c[k]] for k in p.build()}
    assert joined == p.build()


def test_product_with_empty_factor_is_empty():
    p = Param(a=[1, 2]) * Param(b=[])
    assert len(p) == 0
    assert p.build() == {"a": [], "b": []}
    assert list(p.iterate()) == []


def test_product_with_shared_key_is_ambiguous():
    with pytest.raises(AmbiguousOperationError, match="`a`"):
        Param(a=[1]) * Param(a=[2])


def test_huge_product_iterates_without_materialising():
    p = Param(a=range(10_000)) * Param(b=range(10_000)) * Param(c=range(10_000))
    assert len(p) == 10**12
    rows = p.iterate()
    assert next(rows) == {"a": 0, "b": 0, "c": 0}
    assert next(rows) == {"a": 0, "b": 0, "c": 1}


def test_inner_factor_larger_than_cache_is_reiterated(monkeypatch):
    from psyrun.pspace import spaces

    monkeypatch.setattr(spaces, "CACHE_ROWS", 2)
    p = Param(a=[1, 2]) * Param(b=[1, 2, 3]) * Param(c=[0, 1])
    rows = list(p.iterate())
    assert [(r["a"], r["b"], r["c"]) for r in rows] == [
        (a, b, c) for a in (1, 2) for b in (1, 2, 3) for c in (0, 1)
    ]


def test_operators_reject_other_types():
    with pytest.raises(TypeError):
        Param(a=[1]) * 3
    with pytest.raises(TypeError):
        Param(a=[1]) + {"a": [2]}


# ------------------------------------------------------------------ sum
def test_sum_fills_missing_keys_with_nan():
    p = Param(a=[1, 2]) + Param(a=[2, 3], b=[4, 4])
    built = p.build()
    assert built["a"] == [1, 2, 2, 3]
    assert math.isnan(built["b"][0]) and math.isnan(built["b"][1])
    assert built["b"][2:] == [4, 4]
    rows = list(p.iterate())
    assert math.isnan(rows[0]["b"]) and rows[3] == {"a": 3, "b": 4}
    assert len(p) == 4


def test_sum_chunks_fill_nan():
    p = Param(a=[1, 2, 3]) + Param(b=[4])
    chunks = list(p.chunks(2))
    assert [len(c["a"]) for c in chunks] == [2, 1, 1]
    assert math.isnan(chunks[-1]["a"][0]) and chunks[-1]["b"] == [4]


# ------------------------------------------------------------------ difference and missing
def test_difference_removes_matching_rows():
    assert (Param(a=[1, 2, 3], b=[1, 2, 3]) - Param(a=[2])).build() == {"a": [1, 3], "b": [1, 3]}


def test_difference_removes_every_matching_row():
    p = Param(a=[1, 2, 2], b=[4, 5, 6]) - Param(a=[2])
    assert p.build() == {"a": [1], "b": [4]}
    assert len(p) == 1


def test_difference_compares_rows_not_columns():
    p = Param(a=[1, 2]) * Param(b=[1, 2]) - Param(a=[1, 2], b=[1, 2])
    assert p.build() == {"a": [1, 2], "b": [2, 1]}


def test_difference_with_extra_key_in_subtrahend_raises_guide_message():
    with pytest.raises(AmbiguousOperationError) as info:
        Param(a=[1, 2, 3]) - Param(a=[2], c=[4])
    assert str(info.value) == "Key `c` not existent in minuend."


def test_ambiguous_operation_error_is_the_same_class_everywhere():
    assert psyrun.pspace.AmbiguousOperationError is AmbiguousOperationError
    assert AmbiguousOperationError.__module__ == "psyrun.pspace"
    assert isinstance(pickle.loads(pickle.dumps(AmbiguousOperationError("m"))), AmbiguousOperationError)


def test_missing_is_row_wise_and_ignores_extra_keys():
    space = Param(a=[1, 2]) * Param(b=[1, 2])
    done = Param(a=[1, 2], b=[1, 2], result=[0.1, 0.2])
    assert missing(space, done).build() == {"a": [1, 2], "b": [2, 1]}


def test_missing_needs_all_keys_of_first_space():
    with pytest.raises(AmbiguousOperationError, match="`b`"):
        missing(Param(a=[1], b=[2]), Param(a=[1]))


def test_missing_of_itself_is_empty_and_of_empty_is_all():
    p = Param(a=[1, 2, 3]) * Param(b=["x", "y"])
    assert len(missing(p, p)) == 0
    assert missing(p, p).build() == {"a": [], "b": []}
    assert missing(p, Param(a=[], b=[])).build() == p.build()


def test_missing_against_a_space_without_keys_is_everything():
    # e.g. Param(**load_result(path)) of a result file saved without rows
    p = Param(a=[1, 2]) * Param(b=["x"])
    assert missing(p, Param()).build() == p.build()


def test_nan_matches_nan():
    filled = Param(a=[1, 2]) + Param(a=[3], b=[4])
    present = Param(a=[1, 3], b=[float("nan"), 4])
    assert missing(filled, present).build()["a"] == [2]
    numpy_nan = Param(a=[1, 3], b=np.array([np.nan, 4.0]))
    assert missing(filled, numpy_nan).build()["a"] == [2]
    assert (filled - Param(b=[np.nan])).build() == {"a": [3], "b": [4]}


def test_array_and_list_values_compare_by_value():
    space = Param(w=np.arange(6).reshape(3, 2), k=[1, 2, 3])
    done = Param(w=[[2, 3], [0, 1]], k=[2, 9])
    result = missing(space, done)
    assert [r["k"] for r in result.iterate()] == [1, 3]
    assert len(space - Param(w=np.array([[4, 5]]))) == 2
    floats = Param(w=np.array([[0.0, 1.0]]))
    assert len(space - floats) == 2


def test_unhashable_value_names_the_key():
    class Opaque:
        __hash__ = None

        def __eq__(self, other):
            return self is other

    space = Param(thing=[Opaque(), Opaque()], b=[1, 2])
    with pytest.raises(UnhashableValueError, match="`thing`"):
        missing(space, Param(thing=[1], b=[1])).build()


def test_difference_hashes_smaller_side_either_way():
    big = Param(a=range(50)) * Param(b=range(4))
    small = Param(a=[3, 7, 100], b=[1, 1, 1])
    reference = [(a, b) for a in range(50) for b in range(4) if (a, b) not in {(3, 1), (7, 1)}]
    got = missing(big, small)
    assert list(zip(*got.build().values())) == reference
    # the minuend smaller than the subtrahend
    got = missing(Param(a=[3, 7, 100], b=[1, 1, 1]), big)
    assert got.build() == {"a": [100], "b": [1]}


def test_missing_is_lazy_on_a_huge_space():
    huge = Param(a=range(10**6)) * Param(b=range(10**6))
    rows = missing(huge, Param(a=[0], b=[0])).iterate()
    assert next(rows) == {"a": 0, "b": 1}


def test_len_of_difference_is_cached_and_consistent():
    p = Param(a=range(100)) - Param(a=range(0, 100, 3))
    assert len(p) == len(p.build()["a"]) == 66
    assert p._length == 66


def test_difference_of_differences():
    p = (Param(a=range(10)) - Param(a=[1, 2])) - Param(a=[5])
    assert p.build() == {"a": [0, 3, 4, 6, 7, 8, 9]}
    assert isinstance(p, ParameterSpace)


# ------------------------------------------------------------------ dict_concat
def test_dict_concat_of_columns_fills_nan():
    out = dict_concat([{"a": [1, 2], "b": [3, 4]}, {"a": [5]}])
    assert out["a"] == [1, 2, 5]
    assert out["b"][:2] == [3, 4] and math.isnan(out["b"][2])


def test_dict_concat_of_scalar_rows_and_arrays():
    out = dict_concat([{"a": 0, "b": 0}, {"a": np.array([1, 2])}])
    assert out["a"] == [0, 1, 2]
    assert out["b"][0] == 0 and all(math.isnan(v) for v in out["b"][1:])


def test_dict_concat_rejects_ragged_dicts():
    with pytest.raises(ParameterLengthError, match="a: 2, b: 1"):
        dict_concat([{"a": [1, 2], "b": [3]}])


# ------------------------------------------------------------------ compatibility
def test_old_names_are_importable():
    from psyrun.mapper import map_pspace, map_pspace_hdd_backed, map_pspace_parallel
    from psyrun.pspace import AmbiguousOperationError as Old

    assert psyrun.Param is Param
    assert psyrun.map_pspace is map_pspace
    assert psyrun.map_pspace_parallel is map_pspace_parallel
    assert psyrun.map_pspace_hdd_backed is map_pspace_hdd_backed
    assert Old is AmbiguousOperationError


def test_row_keys_can_match_the_values_stores_write_for_nan():
    from psyrun.pspace.rowkeys import row_keys

    space = (Param(w=[np.array([1.0, 2.0])], k=[1]) + Param(k=[2], s=["ab"])).build()
    # what an npz or h5 file gives back for those rows
    stored = {"w": np.array([[1.0, 2.0], [np.nan, np.nan]]), "k": np.array([1, 2]),
              "s": np.array(["", "ab"])}
    keys = ["w", "k", "s"]
    assert set(row_keys(space, keys)).isdisjoint(row_keys(stored, keys))
    assert list(row_keys(space, keys, store_fills=True)) == list(
        row_keys(stored, keys, store_fills=True))
    # a real value is never a fill
    assert len(set(row_keys({"s": ["a", "", "b"]}, ["s"], store_fills=True))) == 3


@pytest.mark.parametrize("unit", ["D", "ns"])
def test_dates_and_durations_stay_numpy_values(unit):
    days = np.array(["2020-01-01", "2020-01-02"], f"datetime64[{unit}]")
    for given in (days, list(days)):
        built = Param(d=given, t=days - days[0]).build()
        assert built["d"] == list(days) and isinstance(built["d"][0], np.datetime64)
        assert isinstance(built["t"][1], np.timedelta64)
    assert missing(Param(d=days), Param(d=days[:1])).build() == {"d": [days[1]]}
