"""Tests of psyrun.mapper: map_pspace, map_pspace_parallel, map_pspace_hdd_backed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from psyrun.exceptions import (
    AmbiguousOperationError,
    IneffectiveExcludeWarning,
    InvalidResultError,
)
from psyrun.mapper import map_pspace, map_pspace_hdd_backed, map_pspace_parallel
from psyrun.pspace import Param
from psyrun.store import NpzStore, PickleStore
from psyrun.utils.example import square


def basic_math(a, b):
    return {"sum": a + b, "product": a * b}


def test_map_pspace_puts_parameters_and_outputs_side_by_side():
    result = map_pspace(basic_math, Param(a=[1, 2]) * Param(b=[3, 4]))
    assert result == {
        "a": [1, 1, 2, 2],
        "b": [3, 4, 3, 4],
        "sum": [4, 5, 5, 6],
        "product": [3, 4, 6, 8],
    }


def test_outputs_missing_in_some_rows_are_nan():
    def sometimes(x):
        return {"even": x} if x % 2 == 0 else {"odd": x}

    result = map_pspace(sometimes, Param(x=[0, 1, 2, 3]))
    assert result["x"] == [0, 1, 2, 3]
    assert result["even"][0] == 0 and result["even"][2] == 2
    assert math.isnan(result["even"][1]) and math.isnan(result["even"][3])
    assert math.isnan(result["odd"][0]) and result["odd"][1] == 1


def test_output_named_like_parameter_wins():
    result = map_pspace(lambda x: {"x": x * 10}, Param(x=[1, 2]))
    assert result == {"x": [10, 20]}


def test_exclude_drops_keys_and_warns_about_unknown_ones():
    with pytest.warns(IneffectiveExcludeWarning, match="`nope`"):
        result = map_pspace(basic_math, Param(a=[1], b=[2]), exclude=["product", "nope"])
    assert result == {"a": [1], "b": [2], "sum": [3]}


def test_exclude_of_existing_key_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = map_pspace(basic_math, Param(a=[1], b=[2]), exclude=["a"])
    assert result == {"b": [2], "sum": [3], "product": [2]}


def test_function_must_return_a_dict():
    with pytest.raises(InvalidResultError, match="not a dict"):
        map_pspace(lambda x: x, Param(x=[1]))
    # also after rows that took the fast path
    with pytest.raises(InvalidResultError):
        map_pspace(lambda x: {"y": x} if x < 3 else None, Param(x=range(5)))


def test_empty_space_gives_empty_columns():
    assert map_pspace(square, Param(x=[])) == {"x": []}


def test_array_outputs_and_parameters():
    result = map_pspace(lambda w: {"total": w.sum()}, Param(w=np.ones((3, 2))))
    assert result["total"] == [2.0, 2.0, 2.0]
    assert len(result["w"]) == 3


def test_map_pspace_parallel_with_processes():
    result = map_pspace_parallel(square, Param(x=[1, 2, 3]), n_jobs=2)
    assert result == {"x": [1, 2, 3], "y": [1, 4, 9]}


def test_map_pspace_parallel_with_threads_keeps_order_and_exclude():
    space = Param(a=range(20)) * Param(b=[1, 2])
    result = map_pspace_parallel(basic_math, space, n_jobs=2, backend="threading", exclude=["b"])
    assert result["a"] == [a for a in range(20) for _ in (1, 2)]
    assert result["sum"] == [a + b for a in range(20) for b in (1, 2)]
    assert "b" not in result


# ------------------------------------------------------------------ hdd backed
def recording(store_class):
    """The real store, recording the number of rows of each append."""

    class Recording(store_class):
        def __init__(self):
            super().__init__()
            self.appends = []

        def append(self, filename, data):
            self.appends.append(len(next(iter(data.values()))))
            super().append(filename, data)

    return Recording()


STORES = [(PickleStore, ".pkl"), (NpzStore, ".npz")]


def as_lists(data):
    return {k: np.asarray(v).tolist() for k, v in data.items()}


class Counter:
    def __init__(self, fail_at=None):
        self.calls = []
        self.fail_at = fail_at

    def __call__(self, a, b):
        if self.fail_at is not None and (a, b) == self.fail_at:
            raise RuntimeError("boom")
        self.calls.append((a, b))
        return {"y": a * 10 + b}


@pytest.mark.parametrize(("store_class", "ext"), STORES)
def test_hdd_backed_writes_file_in_chunks_and_returns_it(tmp_path, store_class, ext):
    store = recording(store_class)
    fn = Counter()
    space = Param(a=range(5)) * Param(b=range(2))
    result = map_pspace_hdd_backed(fn, space, tmp_path / f"r{ext}", store, chunk_size=4)
    assert store.appends == [4, 4, 2]
    assert as_lists(result) == as_lists(store_class().load(tmp_path / f"r{ext}"))
    assert as_lists(result)["y"] == [a * 10 + b for a in range(5) for b in range(2)]


@pytest.mark.parametrize(("store_class", "ext"), STORES)
def test_hdd_backed_keeps_finished_rows_and_resumes(tmp_path, store_class, ext):
    store = store_class()
    path = tmp_path / f"r{ext}"
    space = Param(a=range(4)) * Param(b=range(3))
    failing = Counter(fail_at=(2, 1))
    with pytest.raises(RuntimeError, match="boom"):
        map_pspace_hdd_backed(failing, space, path, store, chunk_size=5)
    kept = as_lists(store.load(path))
    assert list(zip(kept["a"], kept["b"])) == failing.calls
    assert len(failing.calls) == 7

    again = Counter()
    result = as_lists(map_pspace_hdd_backed(again, space, path, store, chunk_size=5))
    assert again.calls == [(a, b) for a in range(4) for b in range(3)][7:]
    assert sorted(zip(result["a"], result["b"], result["y"])) == [
        (a, b, a * 10 + b) for a in range(4) for b in range(3)
    ]
    # a third run has nothing left to do
    third = Counter()
    assert map_pspace_hdd_backed(third, space, path, store, return_data=False) is None
    assert third.calls == []


def test_hdd_backed_refuses_file_of_another_space(tmp_path):
    store = PickleStore()
    path = tmp_path / "r.pkl"
    store.save(path, {"x": [1], "y": [2]})
    with pytest.raises(AmbiguousOperationError, match="`a`"):
        map_pspace_hdd_backed(Counter(), Param(a=[1], b=[1]), path, store)
    assert store.load(path) == {"x": [1], "y": [2]}


@pytest.mark.parametrize("empty", [{}, {"x": []}])
def test_hdd_backed_starts_over_a_file_without_rows(tmp_path, empty):
    store = PickleStore()
    path = tmp_path / "r.pkl"
    store.save(path, empty)
    result = map_pspace_hdd_backed(lambda a: {"y": 2 * a}, Param(a=[1, 2]), path, store)
    assert (result["a"], result["y"]) == ([1, 2], [2, 4])
    # a column of the empty file is kept, with nan in the new rows
    assert sorted(result) == sorted({"a", "y", *empty})
    assert all(math.isnan(v) for v in result.get("x", []))


def test_hdd_backed_resume_after_excluding_a_parameter_says_why_it_cannot(tmp_path):
    path = tmp_path / "r.pkl"
    space = Param(a=[1, 2], b=[3, 4])
    map_pspace_hdd_backed(lambda a, b: {"y": a}, space, path, exclude=["b"])
    with pytest.raises(AmbiguousOperationError, match="`b`, which exclude leaves out"):
        map_pspace_hdd_backed(lambda a, b: {"y": a}, space, path, exclude=["b"])
    assert PickleStore().load(path) == {"a": [1, 2], "y": [1, 2]}


def test_hdd_backed_with_pool(tmp_path):
    result = map_pspace_hdd_backed(
        square, Param(x=range(6)), tmp_path / "r.pkl", pool_size=2, chunk_size=4
    )
    assert as_lists(result) == {"x": list(range(6)), "y": [x * x for x in range(6)]}


def test_hdd_backed_default_store_follows_extension(tmp_path):
    map_pspace_hdd_backed(square, Param(x=[1, 2]), tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as data:
        assert data["y"].tolist() == [1, 4]


def test_hdd_backed_resumes_with_nan_and_array_parameters(tmp_path):
    path = tmp_path / "r.pkl"
    # the nan row comes first, so the rerun must match it against the file
    space = Param(w=np.full((1, 2), np.nan), k=[np.nan]) + Param(
        w=np.arange(6.0).reshape(3, 2), k=[0.0, 1.0, 2.0]
    )
    calls = []

    def fn(w, k):
        calls.append(k)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return {"s": float(np.nansum(w))}

    with pytest.raises(KeyboardInterrupt):
        map_pspace_hdd_backed(fn, space, path, chunk_size=1)
    calls.clear()
    map_pspace_hdd_backed(fn, space, path)
    assert calls == [1.0, 2.0]  # the interrupted row and the last one
    assert PickleStore().count(path) == 4


def reordered(b, a, c=100):
    return {"r": (a, b, c)}


def keyword_only(*, a, b):
    return {"r": (a, b, None)}


def with_kwargs(**params):
    return {"r": (params["a"], params["b"], len(params))}


@pytest.mark.parametrize(
    ("fn", "third"), [(reordered, 100), (keyword_only, None), (with_kwargs, 2)]
)
def test_parameters_reach_the_right_arguments(fn, third):
    result = map_pspace(fn, Param(a=[1, 2], b=["x", "y"]))
    assert result["r"] == [(1, "x", third), (2, "y", third)]


def test_parameter_space_key_not_first_positional_goes_by_keyword():
    def fn(c, a, b=0):
        return {"r": (a, b, c)}

    result = map_pspace(fn, Param(a=[1], c=[3]))
    assert result["r"] == [(1, 0, 3)]


def test_each_call_gets_its_own_keyword_dict():
    seen = []

    def keep(**params):
        seen.append(params)
        return {}

    map_pspace(keep, Param(a=[1, 2]) * Param(b=[3, 4]))
    assert seen == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4}]


def test_rows_without_outputs_keep_parameters():
    assert map_pspace(lambda x: {}, Param(x=[1, 2])) == {"x": [1, 2]}


@pytest.mark.parametrize(
    "keys",
    [
        ["a"],
        ["_fn", "_v0", "_v1"],  # the names the generated keyword call uses inside
        ["my-key", "class"],  # not identifiers: passed through a dict
        ["ﬁ"],  # an identifier the parser would normalise to "fi"
    ],
)
def test_keyword_functions_get_exactly_the_parameter_names(keys):
    seen = []

    def keep(**params):
        seen.append(params)
        return {"n": len(params)}

    space = Param(**{key: [i, i + 10] for i, key in enumerate(keys)})
    result = map_pspace(keep, space)
    assert seen == [
        {key: i for i, key in enumerate(keys)},
        {key: i + 10 for i, key in enumerate(keys)},
    ]
    assert result["n"] == [len(keys), len(keys)]


def test_keyword_function_that_fails_keeps_finished_rows(tmp_path):
    path = tmp_path / "out.pkl"

    def fail_at_three(*, x):
        if x == 3:
            raise ValueError("row three")
        return {"y": 2 * x}

    with pytest.raises(ValueError, match="row three"):
        map_pspace_hdd_backed(fail_at_three, Param(x=range(5)), path, chunk_size=64)
    assert PickleStore().load(path) == {"x": [0, 1, 2], "y": [0, 2, 4]}
