"""psyrun.store as users see it: choosing by extension, loading, pandas, 0.8 names."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import psyrun
import pytest
from psyrun.exceptions import PluginNotFoundError
from psyrun.store import (
    AbstractStore,
    AutodetectStore,
    DefaultStore,
    NpzStore,
    PickleStore,
    Store,
    load_result,
    to_dataframe,
)
from psyrun.testing.store import assert_data_equal

STORES = [".pkl", ".npz", ".h5"]


def store_or_skip(ext):
    if ext == ".h5":
        pytest.importorskip("tables")
    return psyrun.store.store_for("x" + ext)


def test_names_psyrun_08_had():
    assert DefaultStore is PickleStore and AbstractStore is Store
    assert psyrun.PickleStore is PickleStore and psyrun.NpzStore is NpzStore
    assert psyrun.load_result is load_result and psyrun.to_dataframe is to_dataframe
    from psyrun.store.npz import NpzStore as Npz
    from psyrun.store.pickle import PickleStore as Pickle

    assert (Pickle, Npz) == (PickleStore, NpzStore)
    assert (PickleStore.ext, NpzStore.ext) == (".pkl", ".npz")


def test_h5_compat_path_names_the_extra_when_missing():
    code = ("import sys; sys.modules['psyrun_store_h5'] = None\n"
            "try:\n    import psyrun.store.h5\n"
            "except ImportError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'psyrun[h5]'" in done.stdout, done


def test_importing_the_stores_does_not_import_numpy():
    code = ("import sys, psyrun.store, psyrun.store.pickle, psyrun.store.npz, psyrun.store.merge\n"
            "from psyrun.plugins.manager import get_plugin_manager\n"
            "get_plugin_manager().store_for_path('x.h5')\n"
            "print(sorted(m for m in ('numpy', 'tables', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done


@pytest.mark.parametrize("ext", STORES)
def test_autodetect_store_uses_the_store_of_the_extension(tmp_path, ext):
    real = store_or_skip(ext)
    store = AutodetectStore()
    path = tmp_path / f"r{ext}"
    store.save(path, {"a": [1, 2]})
    store.append(path, {"a": [3]})
    assert store.count(path) == 3
    assert_data_equal(store.load(path, row=slice(1, None)), {"a": [2, 3]})
    assert_data_equal(real.load(path), {"a": [1, 2, 3]})
    assert_data_equal(load_result(path), {"a": [1, 2, 3]})


def test_get_concrete_store_as_in_psyrun_08():
    assert isinstance(AutodetectStore.get_concrete_store("r.npz"), NpzStore)


def test_autodetect_store_ext_is_the_default_stores():
    assert AutodetectStore().ext == DefaultStore.ext == ".pkl"


def test_an_unknown_extension_names_the_installed_stores(tmp_path):
    with pytest.raises(PluginNotFoundError, match=r"'\.csv'.*\.npz \(npz\)"):
        AutodetectStore().save(tmp_path / "r.csv", {"a": [1]})
    with pytest.raises(PluginNotFoundError, match="no file extension"):
        load_result(tmp_path / "result")


def test_to_dataframe_keeps_scalars_and_wraps_arrays(tmp_path):
    pd = pytest.importorskip("pandas")
    NpzStore().save(tmp_path / "r.npz", {"k": [1, 2], "x": [0.5, math.nan],
                                         "v": np.arange(12.0).reshape(2, 3, 2), "s": ["a", "b"]})
    frame = to_dataframe(load_result(tmp_path / "r.npz"))
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["k", "x", "v", "s"]
    assert frame["k"].dtype.kind == "i" and frame["x"].dtype.kind == "f"
    assert frame["v"].dtype == object and frame["v"][1].shape == (3, 2)
    assert frame["v"][1][2, 1] == 11.0 and math.isnan(frame["x"][1])


@pytest.mark.parametrize("ext", STORES)
def test_map_pspace_hdd_backed_with_every_store(tmp_path, ext):
    store_or_skip(ext)
    mapper = pytest.importorskip("psyrun.mapper")
    from psyrun.pspace import Param

    calls = []

    def square(x):
        calls.append(x)
        if x == 3 and calls.count(3) == 1:
            raise RuntimeError("fails the first time")
        return {"y": x * x, "v": np.full(2, x)}

    path = tmp_path / f"hdd{ext}"
    with pytest.raises(RuntimeError):
        mapper.map_pspace_hdd_backed(square, Param(x=[1, 2, 3, 4]), path, chunk_size=1)
    assert load_result(path)["x"].__len__() == 2  # the rows before the failure were kept
    result = mapper.map_pspace_hdd_backed(square, Param(x=[1, 2, 3, 4]), path, chunk_size=1)
    assert sorted(np.asarray(result["x"]).tolist()) == [1, 2, 3, 4]
    by_x = dict(zip(np.asarray(result["x"]).tolist(), np.asarray(result["y"]).tolist()))
    assert by_x == {1: 1, 2: 4, 3: 9, 4: 16}
    assert calls == [1, 2, 3, 3, 4]  # nothing computed twice


class _RewritingStore(Store):
    """A minimal third-party store that relies on the default save_many."""

    ext = ".pkl"

    def save(self, filename, data):
        import pickle

        from psyrun.store.atomic import atomic_path

        with atomic_path(filename) as temp:
            temp.write_bytes(pickle.dumps({k: list(v) for k, v in data.items()}))

    def load(self, filename, row=None):
        import pickle
        from pathlib import Path

        return pickle.loads(Path(filename).read_bytes())

    def append(self, filename, data):
        from pathlib import Path

        if not Path(filename).exists():
            return self.save(filename, data)
        old = self.load(filename)
        n_old, n_new = self.count(filename), len(next(iter(data.values()), []))
        names = list(old) + [k for k in data if k not in old]
        self.save(filename, {k: list(old.get(k, [math.nan] * n_old))
                             + list(data.get(k, [math.nan] * n_new)) for k in names})

    def count(self, filename):
        return len(next(iter(self.load(filename).values()), []))


def test_default_save_many_joins_chunks_atomically(tmp_path):
    store, path = _RewritingStore(), tmp_path / "r.pkl"
    store.save_many(path, [{"a": [1]}, {"b": [2]}, {"a": [3]}])
    assert_data_equal(store.load(path), {"a": [1, math.nan, 3], "b": [math.nan, 2, math.nan]})

    def failing():
        yield {"a": [9]}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.save_many(path, failing())
    assert_data_equal(store.load(path), {"a": [1, math.nan, 3], "b": [math.nan, 2, math.nan]})
    assert [p.name for p in tmp_path.iterdir()] == ["r.pkl"]
    store.save_many(path, [])
    assert store.load(path) == {}


@pytest.mark.parametrize("ext", STORES)
def test_hdd_backed_array_output_some_rows_lack_is_nan_in_every_store(tmp_path, ext):
    store_or_skip(ext)
    from psyrun.mapper import map_pspace_hdd_backed
    from psyrun.pspace import Param

    def odd_rows_only(x):
        return {"v": np.full((2, 3), x)} if x % 2 else {"label": f"even {x}"}

    result = map_pspace_hdd_backed(odd_rows_only, Param(x=range(5)), tmp_path / f"r{ext}",
                                   chunk_size=3)
    v = result["v"]
    assert [np.all(np.isnan(np.asarray(v[i], dtype=float))) for i in range(5)] == [
        True, False, True, False, True]
    assert np.array_equal(v[3], np.full((2, 3), 3))


@pytest.mark.parametrize("ext", STORES)
def test_hdd_backed_sum_space_with_array_and_string_parameters_in_every_store(tmp_path, ext):
    # `+` fills the parameters one part lacks with nan; in chunks of one row
    # those columns are all nan in some chunks and arrays or strings in others.
    store_or_skip(ext)
    from psyrun.mapper import map_pspace_hdd_backed
    from psyrun.pspace import Param

    space = Param(w=[np.array([1.0, 2.0])], k=[1.0]) + Param(k=[2.0], s=["ab"])
    calls = []

    def fn(w, k, s):
        calls.append(k)
        return {"y": 2 * k}

    path = tmp_path / f"r{ext}"
    map_pspace_hdd_backed(fn, space, path, chunk_size=1)
    result = map_pspace_hdd_backed(fn, space, path, chunk_size=1)  # resumes: nothing left
    assert calls == [1.0, 2.0]
    assert list(result["y"]) == [2.0, 4.0]
    assert np.array_equal(result["w"][0], [1.0, 2.0])
    assert np.all(np.isnan(np.asarray(result["w"][1], dtype=float)))
    assert result["s"][1] == "ab"


def test_hdd_backed_with_date_parameters_in_npz_resumes(tmp_path):
    from psyrun.mapper import map_pspace_hdd_backed
    from psyrun.pspace import Param

    days = np.array(["2020-01-01", "2020-01-02"], "datetime64[D]")
    calls = []

    def fn(d):
        calls.append(d)
        return {"y": str(d)}

    path = tmp_path / "r.npz"
    map_pspace_hdd_backed(fn, Param(d=days), path)
    result = map_pspace_hdd_backed(fn, Param(d=days), path)
    assert calls == list(days)
    assert result["d"].dtype == days.dtype and list(result["y"]) == ["2020-01-01", "2020-01-02"]
