"""Property tests of the parameter space algebra against brute-force references."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from psyrun.pspace import Param, missing

SETTINGS = settings(max_examples=60, deadline=None)

# Small value pools make equal rows (and so removals) likely.
# Every nan is a new object: Python's containers treat an object as equal to
# itself, which would hide a failure to match distinct nans.
scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5]),
    st.builds(float, st.just("nan")),
    st.sampled_from(["x", "y"]),
)


@st.composite
def params(draw, keys=("a", "b", "c"), min_rows=0, max_rows=5):
    """A Param over a non-empty subset of ``keys``."""
    chosen = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
    n = draw(st.integers(min_rows, max_rows))
    return Param(**{k: draw(st.lists(scalars, min_size=n, max_size=n)) for k in chosen})


@st.composite
def disjoint_params(draw, count):
    """``count`` Params whose keys do not overlap (factors of a product)."""
    result = []
    for i in range(count):
        keys = (f"k{i}a", f"k{i}b")
        result.append(draw(params(keys=keys, max_rows=3)))
    return result


def canon(value):
    """Brute-force value equality: nan equals nan, arrays compare by content."""
    if isinstance(value, float) and math.isnan(value):
        return "<nan>"
    if isinstance(value, np.ndarray):
        return ("<seq>", tuple(canon(v) for v in value.tolist()))
    if isinstance(value, list):
        return ("<seq>", tuple(canon(v) for v in value))
    return value


def rows(space):
    built = space.build()
    keys = space.keys()
    return [dict(zip(keys, values)) for values in zip(*(built[k] for k in keys))]


def row_tuples(space, keys=None):
    keys = keys or space.keys()
    return [tuple(canon(row[k]) for k in keys) for row in rows(space)]


def same(a, b):
    return a.keys() == b.keys() and row_tuples(a) == row_tuples(b)


@SETTINGS
@given(disjoint_params(3))
def test_len_of_product_and_associativity(factors):
    a, b, c = factors
    assert len(a * b) == len(a) * len(b)
    assert same((a * b) * c, a * (b * c))
    assert row_tuples(a * b) == [x + y for x in row_tuples(a) for y in row_tuples(b)]


@SETTINGS
@given(params(), params(), params())
def test_len_of_sum_and_associativity(a, b, c):
    assert len(a + b) == len(a) + len(b)
    left, right = (a + b) + c, a + (b + c)
    assert set(left.keys()) == set(right.keys())
    keys = left.keys()
    assert row_tuples(left, keys) == row_tuples(right, keys)


@SETTINGS
@given(params(), params())
def test_sum_fills_absent_keys_with_nan(a, b):
    s = a + b
    keys = s.keys()
    for row, source in zip(rows(s), rows(a) + rows(b)):
        for key in keys:
            if key in source:
                assert canon(row[key]) == canon(source[key])
            else:
                assert canon(row[key]) == "<nan>"


@SETTINGS
@given(params())
def test_missing_of_itself_is_empty(a):
    assert len(missing(a, a)) == 0
    assert list(missing(a, a).iterate()) == []


@SETTINGS
@given(params(keys=("a", "b")), params(keys=("a", "b")))
def test_missing_matches_brute_force(a, b):
    if not set(a.keys()) <= set(b.keys()):
        return
    present = set(row_tuples(b, a.keys()))
    expected = [r for r in row_tuples(a) if r not in present]
    result = missing(a, b)
    assert row_tuples(result) == expected
    assert len(result) == len(expected)
    a_keys = a.keys()
    assert [tuple(canon(r[k]) for k in a_keys) for r in result.iterate()] == expected


@SETTINGS
@given(params(keys=("a", "b")), params(keys=("a", "b")))
def test_missing_plus_intersection_covers_a(a, b):
    if not set(a.keys()) <= set(b.keys()):
        return
    gone = missing(a, b)
    intersection = a - gone
    assert len(gone) + len(intersection) == len(a)
    assert sorted(map(repr, row_tuples(gone + intersection))) == sorted(map(repr, row_tuples(a)))


@SETTINGS
@given(params(keys=("a", "b", "c")), params(keys=("a", "b")))
def test_difference_matches_brute_force(a, b):
    if not set(b.keys()) <= set(a.keys()):
        return
    removed = set(row_tuples(b))
    b_keys = b.keys()
    expected = [
        t for t, row in zip(row_tuples(a), rows(a))
        if tuple(canon(row[k]) for k in b_keys) not in removed
    ]
    result = a - b
    assert row_tuples(result) == expected
    assert len(result) == len(expected)


@SETTINGS
@given(
    st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=0, max_size=6),
    st.lists(st.lists(st.integers(0, 2), min_size=2, max_size=2), min_size=0, max_size=6),
)
def test_array_values_compare_by_value(a_rows, b_rows):
    a = Param(v=np.array(a_rows, dtype=np.int64).reshape(len(a_rows), 2))
    b = Param(v=b_rows) if b_rows else Param(v=[])
    present = {tuple(r) for r in b_rows}
    expected = [tuple(r) for r in a_rows if tuple(r) not in present]
    assert [tuple(r["v"].tolist()) for r in missing(a, b).iterate()] == expected
    assert [tuple(r["v"].tolist()) for r in (a - b).iterate()] == expected


@SETTINGS
@given(disjoint_params(3), st.integers(1, 7))
def test_iterate_and_chunks_agree_with_build(factors, chunk):
    a, b, c = factors
    for space in (a * b * c, (a + b) * c, missing(a * b, a * b - b), a * b - b):
        built = space.build()
        keys = space.keys()
        assert [tuple(canon(r[k]) for k in keys) for r in space.iterate()] == [
            tuple(canon(v) for v in values) for values in zip(*(built[k] for k in keys))
        ]
        chunks = list(space.chunks(chunk))
        joined = {k: [v for ch in chunks for v in ch[k]] for k in keys}
        assert {k: [canon(v) for v in col] for k, col in joined.items()} == {
            k: [canon(v) for v in col] for k, col in built.items()
        }
