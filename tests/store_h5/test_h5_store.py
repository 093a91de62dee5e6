"""The HDF5 store: the contract suite plus in-place appends and lazy row reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

tables = pytest.importorskip("tables")

from psyrun.exceptions import UnsupportedDataError  # noqa: E402
from psyrun.testing.store import StoreContract, assert_data_equal  # noqa: E402
from psyrun_store_h5.store import H5Store  # noqa: E402


class TestH5Store(StoreContract):
    supports_ragged = True
    string_fill = ""
    appends_in_place = True
    concurrent_appends = True
    # HDF5 does not promise a readable file after a writer is killed while the
    # library flushes metadata (see the module documentation).
    crash_safe_append = False

    @pytest.fixture
    def store(self):
        return H5Store()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data.h5"


def test_compat_import_path():
    from psyrun.store.h5 import H5Store as Compat

    assert Compat is H5Store


def test_append_extends_the_arrays_in_place(path):
    store = H5Store()
    store.save(path, {"x": np.arange(100_000.0)})
    inode, size = path.stat().st_ino, path.stat().st_size
    store.append(path, {"x": [1.0]})
    assert path.stat().st_ino == inode
    # Rewriting would copy the 800 kB of data; an append adds a chunk at most.
    assert path.stat().st_size - size < 200_000
    with tables.open_file(str(path)) as h5:
        assert h5.root.psyrun.x.nrows == 100_001


def test_a_single_row_is_read_without_loading_the_file(path, monkeypatch):
    store = H5Store()
    store.save(path, {"x": np.arange(200_000.0), "i": np.arange(200_000)})
    read_rows = []
    original = tables.EArray.read

    def counting_read(self, start=None, stop=None, step=None, out=None):
        read_rows.append((stop or 0) - (start or 0))
        return original(self, start, stop, step, out)

    monkeypatch.setattr(tables.EArray, "read", counting_read)
    assert_data_equal(store.load(path, row=123_456), {"x": [123_456.0], "i": [123_456]})
    assert read_rows and max(read_rows) <= 1


def test_rows_after_the_committed_count_are_ignored(path):
    """What a writer killed before committing leaves behind does not count."""
    store = H5Store()
    store.save(path, {"x": [1.0, 2.0]})
    with tables.open_file(str(path), "a") as h5:
        h5.root.psyrun.x.append([99.0, 99.0])  # rows never committed
    assert store.count(path) == 2
    assert_data_equal(store.load(path), {"x": [1.0, 2.0]})
    store.append(path, {"x": [3.0]})
    assert_data_equal(store.load(path), {"x": [1.0, 2.0, 3.0]})


def test_strings_grow_wider(path):
    store = H5Store()
    store.save(path, {"s": ["a", "bb"]})
    store.append(path, {"s": ["a much longer string, with ünïcödé"]})
    loaded = store.load(path)["s"]
    assert loaded.tolist() == ["a", "bb", "a much longer string, with ünïcödé"]


def test_fixed_shape_rows_become_ragged_when_lengths_differ(path):
    store = H5Store()
    store.append(path, {"r": [np.arange(3.0)]})
    store.append(path, {"r": [np.arange(5.0)]})
    assert_data_equal(store.load(path), {"r": [np.arange(3.0), np.arange(5.0)]})


def test_missing_ragged_rows_are_empty(path):
    store = H5Store()
    store.save(path, {"r": [np.arange(3.0), np.arange(1.0)], "k": [1, 2]})
    store.append(path, {"k": [3]})
    loaded = store.load(path)
    assert [len(r) for r in loaded["r"]] == [3, 1, 0]


def test_strings_and_numbers_do_not_mix_in_a_column(path):
    store = H5Store()
    store.save(path, {"c": [1.0]})
    with pytest.raises(UnsupportedDataError, match="'c'.*pickle"):
        store.append(path, {"c": ["x"]})
    assert_data_equal(store.load(path), {"c": [1.0]})


def test_ragged_multidimensional_rows_are_refused(path):
    with pytest.raises(UnsupportedDataError, match="'m'"):
        H5Store().save(path, {"m": [np.zeros((2, 2)), np.zeros((3, 2))]})


def test_int_column_becomes_float_when_rows_are_missing(path):
    store = H5Store()
    store.save(path, {"i": [1, 2]})
    store.append(path, {"o": [0.5]})
    loaded = store.load(path)
    assert loaded["i"].dtype == np.float64
    assert_data_equal(loaded, {"i": [1, 2, math.nan], "o": [math.nan, math.nan, 0.5]})


def test_reads_a_file_laid_out_as_psyrun_08_wrote_it(path):
    with tables.open_file(str(path), "w") as h5:
        group = h5.create_group("/", "psyrun")
        h5.create_array(group, "a", np.array([1, 2, 3]))
        h5.create_earray(group, "b", obj=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    store = H5Store()
    assert store.count(path) == 3
    assert_data_equal(store.load(path, row=1), {"a": [2], "b": [[3.0, 4.0]]})


def test_a_column_saved_without_rows_takes_the_type_of_its_first_rows(path):
    store = H5Store()
    store.save(path, {"s": [], "n": []})
    store.append(path, {"s": ["text"], "n": [1]})
    loaded = store.load(path)
    assert list(loaded) == ["s", "n"]
    assert loaded["s"].tolist() == ["text"] and loaded["n"].tolist() == [1]


def test_an_append_that_never_commits_leaves_the_file_as_it_was(path):
    """Like a writer killed after rewriting a column but before committing."""
    from psyrun_store_h5.store import H5Writer

    store = H5Store()
    store.save(path, {"s": ["a"], "i": [1]})
    with tables.open_file(str(path), "a") as h5:
        writer = H5Writer(h5, path)
        # A longer string rewrites "s", a missing "i" turns it into floats
        # and "new" is a new column: all before the commit that never comes.
        writer.add({"s": ["much longer"], "new": [2.0]}, commit=False)
        h5.flush()
    assert_data_equal(store.load(path), {"s": ["a"], "i": [1]})
    store.append(path, {"s": ["b"], "i": [2]})
    assert_data_equal(store.load(path), {"s": ["a", "b"], "i": [1, 2]})
    with tables.open_file(str(path)) as h5:
        assert len(h5.root.psyrun._v_children) == 2  # the leftovers are gone


def test_reads_rows_cheaply():
    assert H5Store.reads_rows_cheaply is True


@pytest.fixture
def writer_holding(path):
    """Start a process that keeps ``path`` open for writing for a while."""
    import subprocess
    import sys

    processes = []

    def hold(seconds):
        process = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time, tables\n"
             "f = tables.open_file(sys.argv[1], 'a')\n"
             "print('open', flush=True)\n"
             "time.sleep(float(sys.argv[2]))\n"
             "f.close()\n", str(path), str(seconds)],
            stdout=subprocess.PIPE, text=True,
        )
        processes.append(process)
        assert process.stdout.readline().strip() == "open"
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_a_file_being_written_is_waited_for(path, writer_holding):
    store = H5Store()
    store.save(path, {"a": [1]})
    writer_holding(1.0)
    store.append(path, {"a": [2]})  # waits for the other writer to close the file
    assert_data_equal(store.load(path), {"a": [1, 2]})


def test_a_file_locked_too_long_is_an_error_not_corruption(path, writer_holding):
    from psyrun.exceptions import CorruptFileError, StoreError

    store = H5Store(lock_timeout=0.3)
    store.save(path, {"a": [1]})
    writer_holding(30)
    for action in (store.load, store.count, lambda p: store.append(p, {"a": [2]})):
        with pytest.raises(StoreError, match="locked") as info:
            action(path)
        assert not isinstance(info.value, CorruptFileError)


@pytest.mark.parametrize(
    ("damage", "cause"),
    [(lambda raw: raw[: len(raw) // 2], "truncated file"),
     (lambda raw: b"garbage" * 10, "signature not found")],
)
def test_a_damaged_file_is_reported_by_its_cause_not_the_c_back_trace(path, damage, cause):
    from psyrun.exceptions import CorruptFileError

    H5Store().save(path, {"x": np.arange(1000.0)})
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)
    with pytest.raises(CorruptFileError) as info:
        H5Store().load(path)
    message = str(info.value)
    assert str(path) in message and cause in message and "recompute" in message
    assert "H5F.c" not in message and len(message.splitlines()) == 1
    assert path.read_bytes() == damaged
