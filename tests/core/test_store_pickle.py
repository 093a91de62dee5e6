"""The pickle store: the contract suite plus its own format's promises."""

from __future__ import annotations

import math
import pickle
import struct

import numpy as np
import pytest
from psyrun.exceptions import CorruptFileError, UnsupportedDataError
from psyrun.store import PickleStore
from psyrun.store.pickle import MAGIC
from psyrun.testing.store import StoreContract, assert_data_equal


class TestPickleStore(StoreContract):
    supports_objects = True
    supports_ragged = True
    string_fill = math.nan
    ints_become_floats = False  # lists stay lists: [1, 2] + missing is [1, 2, nan]
    appends_in_place = True
    concurrent_appends = True

    @pytest.fixture
    def store(self):
        return PickleStore()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data.pkl"


def test_columns_come_back_as_they_went_in(path):
    store = PickleStore()
    store.save(path, {"l": [1, 2], "a": np.array([1, 2])})
    store.append(path, {"l": [3], "a": np.array([3])})
    loaded = store.load(path)
    assert loaded["l"] == [1, 2, 3]
    assert isinstance(loaded["a"], np.ndarray) and loaded["a"].dtype.kind == "i"


def test_missing_rows_of_int_arrays_become_float_nan(path):
    store = PickleStore()
    store.save(path, {"a": np.array([1, 2])})
    store.append(path, {"b": np.array([0.5])})
    loaded = store.load(path)
    assert loaded["a"].dtype == np.float64
    assert_data_equal(loaded, {"a": [1, 2, math.nan], "b": [math.nan, math.nan, 0.5]})


def test_append_writes_only_the_new_frame(path):
    store = PickleStore()
    store.save(path, {"a": list(range(10_000))})
    before = path.read_bytes()
    store.append(path, {"a": [1]})
    after = path.read_bytes()
    # Everything but the 16-byte commit record in the header is untouched.
    assert after[len(MAGIC) + 16:len(before)] == before[len(MAGIC) + 16:]
    assert len(after) - len(before) < 200


def test_bytes_after_the_committed_end_are_ignored_and_overwritten(path):
    """What a writer killed during append leaves behind does not count."""
    store = PickleStore()
    store.save(path, {"a": [1, 2]})
    with open(path, "ab") as f:
        f.write(b"\x07" * 1000)  # half a frame
    assert store.load(path) == {"a": [1, 2]}
    assert store.count(path) == 2
    store.append(path, {"a": [3]})
    assert store.load(path) == {"a": [1, 2, 3]}


def test_a_damaged_frame_is_reported(path):
    store = PickleStore()
    store.save(path, {"a": [1, 2]})
    store.append(path, {"a": [3]})
    data = bytearray(path.read_bytes())
    data[40:48] = struct.pack("<Q", 10**9)  # the first frame's payload length
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="data.pkl"):
        store.load(path)


def test_reads_a_plain_pickled_dict_as_written_by_psyrun_08(path):
    with open(path, "wb") as f:
        pickle.dump({"a": [1, 2], "b": ["x", "y"]}, f)
    store = PickleStore()
    assert store.load(path) == {"a": [1, 2], "b": ["x", "y"]}
    assert store.count(path) == 2
    assert store.load(path, row=1) == {"a": [2], "b": ["y"]}
    store.append(path, {"a": [3]})
    assert_data_equal(store.load(path), {"a": [1, 2, 3], "b": ["x", "y", math.nan]})


def test_a_pickled_non_dict_is_refused(path):
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CorruptFileError, match="not a dict"):
        PickleStore().load(path)


def test_unpicklable_data_is_refused_without_writing(path):
    with pytest.raises(UnsupportedDataError, match="Column 'f' cannot be pickled"):
        PickleStore().save(path, {"ok": [1], "f": [lambda: 1]})
    assert not path.exists()


def test_row_read_unpickles_only_the_frame_holding_the_row(path, monkeypatch):
    store = PickleStore()
    for i in range(5):
        store.append(path, {"i": [i], "late": [i]} if i == 4 else {"i": [i]})
    payloads = []
    real = pickle.load
    monkeypatch.setattr(pickle, "load", lambda f, *a, **k: payloads.append(f.tell()) or real(f))
    assert_data_equal(store.load(path, row=1), {"i": [1], "late": [math.nan]})
    assert len(payloads) == 1  # the second frame's only


def test_protocol_can_be_chosen_as_in_psyrun_08(path):
    store = PickleStore(protocol=2)
    store.save(path, {"a": [1, 2]})
    store.append(path, {"a": [3]})
    assert PickleStore().load(path) == {"a": [1, 2, 3]}
    assert b"\x80\x02" in path.read_bytes()  # protocol 2 pickles inside
