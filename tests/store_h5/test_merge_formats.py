"""merge_files converts between every pair of formats: pkl, npz, h5 -> pkl, npz, h5.

The inputs hold what a scientist's runs produce: multi-dimensional output
arrays, strings, bools, ints near the 64-bit limit, a file without rows and
a column that only some files have.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tables")

from psyrun.exceptions import UnsupportedDataError  # noqa: E402
from psyrun.store import NpzStore, PickleStore, load_result, merge_files  # noqa: E402
from psyrun.testing.store import assert_data_equal, assert_kind_kept  # noqa: E402
from psyrun_store_h5.store import H5Store  # noqa: E402

STORES = {".pkl": PickleStore(), ".npz": NpzStore(), ".h5": H5Store()}

INPUTS = [
    {"i": [0, 1], "v": np.arange(12.0).reshape(2, 3, 2), "s": ["a", "bb"], "b": [True, False],
     "n": [2**62, 3]},
    # a job that had no rows
    {"i": np.zeros(0, int), "v": np.zeros((0, 3, 2)), "s": np.array([], dtype=str),
     "b": np.zeros(0, bool), "n": np.zeros(0, int)},
    {"i": [2], "v": np.full((1, 3, 2), 7.0), "s": ["ccc"], "b": [True], "n": [2**63 - 1]},
]


@pytest.mark.parametrize("out_ext", list(STORES))
@pytest.mark.parametrize("in_ext", list(STORES))
def test_merge_converts_between_all_formats(tmp_path, in_ext, out_ext):
    inputs = tmp_path / "out"
    inputs.mkdir()
    for k, data in enumerate(INPUTS):
        STORES[in_ext].save(inputs / f"out-{k}{in_ext}", data)
    merged = tmp_path / f"merged{out_ext}"
    result = merge_files(inputs, merged)
    assert result.rows == 3
    loaded = load_result(merged)
    expected = {
        "i": [0, 1, 2],
        "v": np.concatenate([np.arange(12.0).reshape(2, 3, 2), np.full((1, 3, 2), 7.0)]),
        "s": ["a", "bb", "ccc"],
        "b": [True, False, True],
        "n": [2**62, 3, 2**63 - 1],
    }
    assert_data_equal(loaded, expected)
    assert np.asarray(loaded["v"]).shape == (3, 3, 2)
    for key in ("i", "s", "b", "n"):
        assert_kind_kept(loaded[key], np.asarray(expected[key]))
    assert int(loaded["n"][2]) == 2**63 - 1  # not rounded through a float


@pytest.mark.parametrize("out_ext", list(STORES))
@pytest.mark.parametrize("in_ext", [".npz", ".h5"])
def test_a_column_some_files_lack_is_filled(tmp_path, in_ext, out_ext):
    store = STORES[in_ext]
    store.save(tmp_path / f"out-0{in_ext}", {"x": [1.0], "v": np.ones((1, 2, 2))})
    store.save(tmp_path / f"out-1{in_ext}", {"x": [2.0], "flag": [True]})
    merge_files(tmp_path, tmp_path / f"m{out_ext}")
    loaded = load_result(tmp_path / f"m{out_ext}")
    assert_data_equal(loaded, {"x": [1.0, 2.0], "v": [np.ones((2, 2)), np.full((2, 2), math.nan)],
                               "flag": [math.nan, 1.0]})


def test_rows_a_store_refuses_are_traced_to_their_input_file(tmp_path):
    PickleStore().save(tmp_path / "out-0.pkl", {"s": ["x", "yy"]})
    PickleStore().save(tmp_path / "out-1.pkl", {"s": [1.5]})  # numbers in a column of strings
    PickleStore().save(tmp_path / "out-2.pkl", {"s": ["z"]})
    merged = tmp_path / "m.h5"
    with pytest.raises(UnsupportedDataError) as info:
        merge_files(tmp_path, merged)
    message = str(info.value)
    assert "out-1.pkl" in message and "'s'" in message and "pickle" in message
    assert ".tmp" not in message and f"into {merged}" in message
    assert not merged.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-0.pkl", "out-1.pkl", "out-2.pkl"]


def test_rows_the_npz_store_refuses_when_joining_name_the_merged_file(tmp_path):
    NpzStore().save(tmp_path / "out-0.npz", {"v": np.ones((2, 3))})
    NpzStore().save(tmp_path / "out-1.npz", {"v": np.ones((1, 4))})
    NpzStore().save(tmp_path / "out-2.npz", {"v": np.ones((1, 3))})
    merged = tmp_path / "m.npz"
    with pytest.raises(UnsupportedDataError, match=r"Cannot merge 3 files into .*m\.npz.*'v'"):
        merge_files(tmp_path, merged)
    assert not merged.exists()
