"""The npz store: the contract suite plus what the npz format promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
from psyrun.exceptions import UnsupportedDataError
from psyrun.store import NpzStore
from psyrun.testing.store import StoreContract, assert_data_equal


class TestNpzStore(StoreContract):
    string_fill = ""

    @pytest.fixture
    def store(self):
        return NpzStore()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data.npz"


def test_files_load_with_plain_numpy(path):
    NpzStore().save(path, {"a": [1, 2], "s": ["x", "yz"], "file": [0.5, 1.5]})
    with np.load(path) as npz:
        assert sorted(npz.files) == ["a", "file", "s"]
        assert npz["a"].tolist() == [1, 2] and npz["s"].tolist() == ["x", "yz"]


def test_nan_in_a_string_column_becomes_the_string_fill(path):
    # A parameter space built with + fills missing strings with nan.
    NpzStore().save(path, {"s": ["x", math.nan]})
    assert NpzStore().load(path)["s"].tolist() == ["x", ""]


def test_mixing_strings_and_numbers_is_refused(path):
    with pytest.raises(UnsupportedDataError, match="'m'.*pickle"):
        NpzStore().save(path, {"m": ["x", 1]})


def test_arrays_of_other_shapes_in_a_later_chunk_are_refused(path):
    store = NpzStore()
    store.save(path, {"v": np.zeros((2, 3))})
    with pytest.raises(UnsupportedDataError, match="'v'"):
        store.append(path, {"v": np.zeros((1, 4))})
    assert_data_equal(store.load(path), {"v": np.zeros((2, 3))})


def test_a_row_is_read_without_reading_the_column(path, monkeypatch):
    store = NpzStore()
    store.save(path, {"x": np.arange(100_000.0)})
    monkeypatch.setattr(np.lib.format, "read_array",
                        lambda *a, **k: pytest.fail("read the whole column"))
    assert store.load(path, row=54_321)["x"].tolist() == [54_321.0]
    assert store.load(path, row=slice(10, 13))["x"].tolist() == [10.0, 11.0, 12.0]
    assert store.count(path) == 100_000


def test_a_column_of_nan_stays_a_float_column(path):
    NpzStore().save(path, {"f": [math.nan, math.nan]})
    loaded = NpzStore().load(path)["f"]
    assert loaded.dtype.kind == "f" and np.isnan(loaded).all()


def test_reads_rows_cheaply():
    from psyrun.store import PickleStore

    assert NpzStore.reads_rows_cheaply is True and PickleStore.reads_rows_cheaply is False
