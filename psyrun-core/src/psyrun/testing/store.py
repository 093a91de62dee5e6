"""The store contract suite.

Subclass :class:`StoreContract` in a test module, provide a ``store``
fixture returning the store under test and declare what the store can hold::

    import pytest
    from psyrun.testing.store import StoreContract

    class TestMyStore(StoreContract):
        supports_ragged = True        # rows of one column may differ in shape

        @pytest.fixture
        def store(self):
            return MyStore()

The suite writes real files in pytest's ``tmp_path`` and, for the crash
tests, kills a writer process with SIGKILL.  That writer receives the store
pickled, so the store's class must be importable (it is, for a store that
lives in an installed package).
"""

from __future__ import annotations

import math
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from psyrun.exceptions import (
    ColumnLengthError,
    CorruptFileError,
    UnsupportedDataError,
)
from psyrun.store.base import Store

# ---------------------------------------------------------------- comparing


def _same(actual: Any, expected: Any) -> bool:
    import numpy as np

    if isinstance(expected, (str, bytes)) or isinstance(actual, (str, bytes)):
        return type(actual) in (type(expected), np.str_, np.bytes_) and actual == expected
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        return False
    if a.dtype.kind in "fc" or e.dtype.kind in "fc":
        try:
            return bool(np.array_equal(a.astype(complex), e.astype(complex), equal_nan=True))
        except (TypeError, ValueError):
            return False
    if a.dtype.kind == "O" or e.dtype.kind == "O":
        return all(_same(x, y) for x, y in zip(a.ravel(), e.ravel()))
    return bool(np.array_equal(a, e))


def assert_data_equal(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """``actual`` has the columns of ``expected`` with equal rows (nan equals nan).

    Rows are compared by value, so a list of ints equals an int array; use
    :func:`assert_kind_kept` to check types as well.
    """
    assert sorted(actual) == sorted(expected), f"columns {sorted(actual)} != {sorted(expected)}"
    for name, column in expected.items():
        got, want = list(actual[name]), list(column)
        assert len(got) == len(want), f"column {name!r}: {len(got)} rows, expected {len(want)}"
        for i, (a, e) in enumerate(zip(got, want)):
            assert _same(a, e), f"column {name!r}, row {i}: {a!r} != {e!r}"


def assert_kind_kept(actual: Any, expected: Any) -> None:
    """The loaded column has the same kind of values (int, float, str, ...)."""
    import numpy as np

    got, want = np.asarray(actual).dtype.kind, np.asarray(expected).dtype.kind
    assert got == want, f"dtype kind {got!r} after loading, expected {want!r}"


# ---------------------------------------------------------------- a killed writer

_WRITER = r"""
import pickle, sys
from pathlib import Path
import numpy as np

store = pickle.loads(bytes.fromhex(sys.argv[1]))
path, mode, marker, rows = Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), int(sys.argv[5])
data = {"x": np.arange(rows, dtype=float), "i": np.arange(rows) % 7, "s": ["v"] * rows}
done = 0
while True:
    if mode == "save":
        store.save(path, data)
    else:
        store.append(path, data)
    done += 1
    marker.write_text(str(done))
"""


class StoreContract:
    """Behaviour every :class:`~psyrun.store.Store` must show."""

    #: The store holds any picklable object (not only numbers and strings).
    supports_objects: bool = False
    #: Rows of one column may be arrays of different shapes.
    supports_ragged: bool = False
    #: What a missing row of a string column becomes.
    string_fill: Any = ""
    #: Missing rows of int and bool columns become float nan (NumPy stores).
    ints_become_floats: bool = True
    #: append() extends the file instead of writing a new one.
    appends_in_place: bool = False
    #: A writer killed during append() leaves the rows appended before.
    crash_safe_append: bool = True
    #: Several processes may append to one file at the same time.
    concurrent_appends: bool = False
    #: Rows the killed writer writes per call (large enough to be slow).
    crash_rows: int = 50_000
    #: How often the crash tests kill a writer (each round starts a process).
    crash_rounds: int = 3

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("provide a 'store' fixture in the subclass")

    @pytest.fixture
    def path(self, store: Store, tmp_path: Path) -> Path:
        return tmp_path / ("data" + store.ext)

    # ------------------------------------------------------------ identity
    def test_ext_is_a_file_extension(self, store):
        assert store.ext.startswith(".") and len(store.ext) > 1

    def test_is_registered_for_its_extension(self, store, path):
        from psyrun.plugins.manager import get_plugin_manager

        assert isinstance(store, get_plugin_manager().store_for_path(path).store)

    # ------------------------------------------------------------ round trips
    @pytest.mark.parametrize("kind", ["int", "float", "bool", "str", "nan", "negative", "big-int",
                                      "complex", "unicode-str"])
    def test_round_trip_of_scalars(self, store, path, kind):
        import numpy as np

        values = {
            "int": [1, 2, 3],
            "float": [0.5, -1.25, 1e300],
            "bool": [True, False, True],
            "str": ["a", "bc", ""],
            "nan": [1.0, math.nan, 3.0],
            "negative": [-1, -(2**40), 0],
            "big-int": [2**62, 1, -(2**62)],
            "complex": [1 + 2j, 0j, -1j],
            "unicode-str": ["äöü", "日本語", "e\u0301"],
        }[kind]
        for given in (values, np.asarray(values)):
            store.save(path, {"c": given})
            loaded = store.load(path)
            assert_data_equal(loaded, {"c": values})
            assert_kind_kept(loaded["c"], np.asarray(values))

    @pytest.mark.parametrize("dtype", ["int8", "int32", "uint16", "uint64", "float16", "float32",
                                       "complex64", "bool"])
    def test_numpy_dtypes_are_kept(self, store, path, dtype):
        import numpy as np

        values = np.array([1, 0, 1]).astype(dtype)
        store.save(path, {"c": values})
        store.append(path, {"c": values[:1]})
        assert np.asarray(store.load(path)["c"]).dtype == dtype
        assert np.asarray(store.load(path, row=3)["c"]).dtype == dtype
        assert_data_equal(store.load(path), {"c": [1, 0, 1, 1]})

    def test_round_trip_of_bytes(self, store, path):
        store.save(path, {"b": [b"ab", b"", b"\x00\xff"]})
        store.append(path, {"b": [b"xyz"]})
        assert [bytes(v) for v in store.load(path)["b"]] == [b"ab", b"", b"\x00\xff", b"xyz"]

    @pytest.mark.parametrize("value", [b"a\x00", "a\x00"])
    def test_values_ending_in_nul_are_kept_or_refused(self, store, path, value):
        try:
            store.save(path, {"v": [value, value[:1]]})
        except UnsupportedDataError as exc:
            assert "'v'" in str(exc) and "pickle" in str(exc)
            assert not path.exists()
            return
        assert list(store.load(path)["v"]) == [value, value[:1]]

    @pytest.mark.parametrize("shape", [(2,), (2, 3), (1, 2, 2)])
    def test_round_trip_of_arrays_per_row(self, store, path, shape):
        import numpy as np

        values = np.arange(4 * int(np.prod(shape)), dtype=float).reshape(4, *shape)
        values[1] = np.nan
        store.save(path, {"a": values, "ints": np.ones((4, *shape), int)})
        loaded = store.load(path)
        assert_data_equal(loaded, {"a": values, "ints": np.ones((4, *shape), int)})
        assert np.asarray(loaded["a"]).shape == values.shape
        # The same data given as a list of arrays.
        store.save(path, {"a": list(values)})
        assert_data_equal(store.load(path), {"a": values})

    def test_round_trip_of_ragged_rows(self, store, path):
        import numpy as np

        rows = [np.arange(3.0), np.arange(1.0), np.arange(5.0)]
        if not self.supports_ragged:
            with pytest.raises(UnsupportedDataError, match="'r'"):
                store.save(path, {"r": rows})
            assert not path.exists()
            return
        store.save(path, {"r": rows, "n": [1, 2, 3]})
        assert_data_equal(store.load(path), {"r": rows, "n": [1, 2, 3]})
        store.append(path, {"r": [np.arange(7.0)], "n": [4]})
        assert_data_equal(store.load(path), {"r": rows + [np.arange(7.0)], "n": [1, 2, 3, 4]})
        assert_data_equal(store.load(path, row=-1), {"r": [np.arange(7.0)], "n": [4]})

    def test_objects(self, store, path):
        value = {"nested": [1, (2, 3)]}
        if self.supports_objects:
            store.save(path, {"o": [value, None]})
            assert store.load(path)["o"][0] == value
            return
        with pytest.raises(UnsupportedDataError, match="'o'") as info:
            store.save(path, {"o": [value, None]})
        assert "pickle" in str(info.value)
        assert not path.exists()

    def test_nan_rows_among_arrays_are_missing_rows(self, store, path):
        # map_pspace fills an array output that some rows lack with nan.
        import numpy as np

        block = np.arange(4).reshape(2, 2)
        store.save(path, {"v": [math.nan, block, math.nan], "k": [1, 2, 3]})
        store.append(path, {"v": [np.ones((2, 2)), math.nan], "k": [4, 5]})
        loaded = store.load(path)["v"]
        assert len(loaded) == 5
        assert_data_equal({"v": [loaded[1], loaded[3]]}, {"v": [block, np.ones((2, 2))]})
        for i in (0, 2, 4):
            assert np.all(np.isnan(np.asarray(loaded[i], dtype=float))), f"row {i}"
        if not self.supports_objects:
            assert np.asarray(loaded).shape == (5, 2, 2)

    @pytest.mark.parametrize("first", ["nan", "values"])
    def test_chunks_of_nan_rows_in_array_and_string_columns(self, store, path, first):
        # A chunk of rows that all lack an array or string value (filled
        # with nan by `+` or by map_pspace) is a chunk of missing rows.
        import numpy as np

        nan = math.nan
        chunks = [{"v": [nan, nan], "s": [nan, nan], "k": [1, 2]},
                  {"v": [np.ones((2, 2))], "s": ["ab"], "k": [3]}]
        if first == "values":
            chunks.reverse()
        for chunk in [*chunks, {"v": [nan], "s": [nan], "k": [4]}]:
            store.append(path, chunk)
        loaded = store.load(path)
        at = 0 if first == "values" else 2
        fill = self.string_fill
        assert_data_equal({"s": loaded["s"]}, {"s": [fill if i != at else "ab" for i in range(4)]})
        assert np.array_equal(np.asarray(loaded["v"][at]), np.ones((2, 2)))
        for i in {0, 1, 2, 3} - {at}:
            assert np.all(np.isnan(np.asarray(loaded["v"][i], dtype=float))), f"row {i}"
        if not self.supports_objects:
            assert np.asarray(loaded["v"]).shape == (4, 2, 2)

    def test_integers_beyond_64_bits(self, store, path):
        values = [2**70, -1]
        if self.supports_objects:
            store.save(path, {"n": values})
            assert list(store.load(path)["n"]) == values
            return
        with pytest.raises(UnsupportedDataError, match="'n'.*64-bit.*pickle"):
            store.save(path, {"n": values})
        assert not path.exists()

    def test_several_columns_keep_their_order(self, store, path):
        data = {"zeta": [1, 2], "alpha": [0.5, 0.25], "mid": ["x", "y"]}
        store.save(path, data)
        loaded = store.load(path)
        assert list(loaded) == list(data)
        assert_data_equal(loaded, data)

    def test_unicode_and_odd_column_names(self, store, path):
        data = {"größe": [1.0], "日本": [2.0], "with space": [3.0], "a.b": [4.0], "1st": [5.0],
                "class": [6.0], "_private": [7.0]}
        store.save(path, data)
        assert_data_equal(store.load(path), data)
        store.append(path, {"größe": [8.0]})
        assert_data_equal(store.load(path, row=1), {**{k: [math.nan] for k in data},
                                                     "größe": [8.0]})

    def test_save_replaces_the_file(self, store, path):
        store.save(path, {"a": [1, 2, 3]})
        store.save(path, {"b": [4.0]})
        assert_data_equal(store.load(path), {"b": [4.0]})

    # ------------------------------------------------------------ empty data
    def test_empty_data(self, store, path):
        store.save(path, {})
        assert store.load(path) == {}
        assert store.count(path) == 0
        store.append(path, {"a": [1.5]})
        assert_data_equal(store.load(path), {"a": [1.5]})

    def test_columns_without_rows(self, store, path):
        store.save(path, {"a": [], "b": []})
        assert store.count(path) == 0
        loaded = store.load(path)
        assert sorted(loaded) == ["a", "b"] and all(len(v) == 0 for v in loaded.values())
        store.append(path, {"a": [1.0], "b": [2.0]})
        assert_data_equal(store.load(path), {"a": [1.0], "b": [2.0]})

    # ------------------------------------------------------------ append
    def test_append_creates_a_missing_file(self, store, path):
        store.append(path, {"a": [1, 2]})
        assert_data_equal(store.load(path), {"a": [1, 2]})

    def test_append_adds_rows_in_order(self, store, path):
        import numpy as np

        store.save(path, {"a": [1, 2], "s": ["x", "y"], "v": np.zeros((2, 3))})
        store.append(path, {"a": [3], "s": ["zzz long"], "v": np.ones((1, 3))})
        store.append(path, {"a": np.array([4, 5]), "s": ["u", "w"], "v": [np.ones(3), np.ones(3)]})
        loaded = store.load(path)
        assert_data_equal(loaded, {"a": [1, 2, 3, 4, 5], "s": ["x", "y", "zzz long", "u", "w"],
                                   "v": [np.zeros(3)] * 2 + [np.ones(3)] * 3})
        assert_kind_kept(loaded["a"], [1])
        assert store.count(path) == 5

    def test_append_fills_missing_columns_with_nan(self, store, path):
        import numpy as np

        store.save(path, {"a": [1, 2], "f": [0.5, 1.5]})
        store.append(path, {"b": [3.0], "f": [2.5]})
        loaded = store.load(path)
        assert_data_equal(loaded, {"a": [1, 2, math.nan], "b": [math.nan, math.nan, 3.0],
                                   "f": [0.5, 1.5, 2.5]})
        if self.ints_become_floats:
            assert np.asarray(loaded["a"]).dtype.kind == "f"

    def test_append_fills_missing_arrays_with_nan_arrays(self, store, path):
        import numpy as np

        store.save(path, {"v": np.ones((2, 3)), "k": [1, 2]})
        store.append(path, {"k": [3]})
        loaded = store.load(path)
        assert_data_equal(loaded, {"v": [np.ones(3), np.ones(3), np.full(3, np.nan)],
                                   "k": [1, 2, 3]})

    def test_append_fills_missing_strings(self, store, path):
        store.save(path, {"s": ["x"], "k": [1]})
        store.append(path, {"k": [2]})
        store.append(path, {"s": ["y"], "k": [3]})
        assert_data_equal(store.load(path), {"s": ["x", self.string_fill, "y"], "k": [1, 2, 3]})

    def test_append_of_ints_to_floats_and_floats_to_ints(self, store, path):
        store.save(path, {"a": [1, 2], "b": [0.5, 1.5]})
        store.append(path, {"a": [2.5], "b": [7]})
        assert_data_equal(store.load(path), {"a": [1, 2, 2.5], "b": [0.5, 1.5, 7]})

    def test_many_small_appends(self, store, path):
        for i in range(30):
            store.append(path, {"i": [i], "sq": [float(i * i)]})
        assert store.count(path) == 30
        assert_data_equal(store.load(path), {"i": list(range(30)),
                                             "sq": [float(i * i) for i in range(30)]})
        assert_data_equal(store.load(path, row=17), {"i": [17], "sq": [289.0]})

    def test_append_in_place(self, store, path):
        if not self.appends_in_place:
            pytest.skip("this store rewrites the file on append")
        store.save(path, {"a": list(range(1000))})
        before = path.stat()
        store.append(path, {"a": [1000]})
        after = path.stat()
        assert after.st_ino == before.st_ino, "append wrote a new file"
        assert after.st_size >= before.st_size

    def test_random_appends_match_a_reference(self, store, tmp_path):
        """Any sequence of appends loads as the chunks joined with filled gaps."""
        hypothesis = pytest.importorskip("hypothesis")
        st = hypothesis.strategies
        import itertools

        values = {
            "i": st.integers(-(2**40), 2**40),
            "f": st.floats(allow_nan=True, allow_infinity=True, width=64),
            "s": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                         max_size=6),
            "b": st.booleans(),
        }

        @st.composite
        def chunk(draw):
            names = draw(st.lists(st.sampled_from(sorted(values)), unique=True))
            # A column of no rows has no type, so its fill is not defined.
            n = draw(st.integers(1, 4)) if names else 0
            return n, {name: draw(st.lists(values[name], min_size=n, max_size=n))
                       for name in names}

        files = itertools.count()

        # Derandomized, so a run of the suite does not depend on luck; set
        # PSYRUN_STORE_EXAMPLES high (and PSYRUN_STORE_RANDOM=1) to search further.
        @hypothesis.settings(max_examples=int(os.environ.get("PSYRUN_STORE_EXAMPLES", 25)),
                             deadline=None, database=None,
                             derandomize=not os.environ.get("PSYRUN_STORE_RANDOM"),
                             suppress_health_check=list(hypothesis.HealthCheck))
        @hypothesis.given(st.lists(chunk(), min_size=1, max_size=4))
        def check(chunks):
            path = tmp_path / f"random-{next(files)}{store.ext}"
            for _, data in chunks:
                store.append(path, data)
            names = list(dict.fromkeys(name for _, data in chunks for name in data))
            fill = {"i": math.nan, "f": math.nan, "b": math.nan, "s": self.string_fill}
            expected = {name: [v for n, data in chunks
                               for v in data.get(name, [fill[name]] * n)] for name in names}
            total = sum(n for n, _ in chunks)
            assert store.count(path) == total
            assert_data_equal(store.load(path), expected)
            for i in range(-total, total):
                assert_data_equal(store.load(path, row=i),
                                  {k: [v[i]] for k, v in expected.items()})
            for rows in (slice(1, -1), slice(None, None, 2), slice(None, None, -3)):
                assert_data_equal(store.load(path, row=rows),
                                  {k: v[rows] for k, v in expected.items()})

        check()

    # ------------------------------------------------------------ save_many
    def test_save_many_joins_chunks(self, store, path):
        chunks = [{"a": [1, 2]}, {"a": [3], "b": ["x"]}, {"b": ["y"]}, {}]
        store.save_many(path, iter(chunks))
        assert_data_equal(store.load(path), {"a": [1, 2, 3, math.nan],
                                             "b": [self.string_fill] * 2 + ["x", "y"]})

    def test_save_many_is_atomic(self, store, path):
        store.save(path, {"old": [1]})

        def chunks():
            yield {"a": [1, 2]}
            raise RuntimeError("the input ran out")

        with pytest.raises(RuntimeError):
            store.save_many(path, chunks())
        assert_data_equal(store.load(path), {"old": [1]})
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]

    # ------------------------------------------------------------ reading rows
    @pytest.fixture
    def ten_rows(self, store, path) -> dict[str, Any]:
        import numpy as np

        data = {"i": list(range(10)), "x": [i / 4 for i in range(10)],
                "s": [f"r{i}" for i in range(10)], "v": np.arange(30.0).reshape(10, 3)}
        store.save(path, {k: v[:4] for k, v in data.items()})
        store.append(path, {k: v[4:] for k, v in data.items()})
        return data

    @pytest.mark.parametrize("row", [0, 3, 4, 9, -1, -10])
    def test_load_one_row(self, store, path, ten_rows, row):
        loaded = store.load(path, row=row)
        assert_data_equal(loaded, {k: [v[row]] for k, v in ten_rows.items()})

    @pytest.mark.parametrize("rows", [slice(2, 7), slice(None, 3), slice(8, None), slice(1, 9, 3),
                                      slice(None, None, -1), slice(-3, None), slice(5, 5),
                                      slice(20, 30)])
    def test_load_a_slice(self, store, path, ten_rows, rows):
        loaded = store.load(path, row=rows)
        assert_data_equal(loaded, {k: list(v)[rows] for k, v in ten_rows.items()})

    @pytest.mark.parametrize("row", [10, -11])
    def test_load_a_row_out_of_range(self, store, path, ten_rows, row):
        with pytest.raises(IndexError):
            store.load(path, row=row)

    def test_count(self, store, path, ten_rows):
        assert store.count(path) == 10

    def test_declares_whether_it_reads_rows_cheaply(self, store):
        assert isinstance(store.reads_rows_cheaply, bool)

    # ------------------------------------------------------------ errors
    def test_unequal_columns_are_refused_and_named(self, store, path):
        store.save(path, {"a": [1], "b": [2]})
        for write in (store.save, store.append):
            with pytest.raises(ColumnLengthError, match="'a'.*'b'"):
                write(path, {"a": [1, 2], "b": [1]})
        assert_data_equal(store.load(path), {"a": [1], "b": [2]})

    def test_a_column_that_is_not_a_sequence_is_refused(self, store, path):
        with pytest.raises(UnsupportedDataError, match="'a'"):
            store.save(path, {"a": 5})

    def test_missing_file(self, store, path):
        with pytest.raises(FileNotFoundError, match=path.name):
            store.load(path)
        with pytest.raises(FileNotFoundError):
            store.count(path)

    @pytest.mark.parametrize("content", [b"", b"garbage that is no store's format\n" * 40])
    def test_corrupt_file(self, store, path, content):
        path.write_bytes(content)
        for read in (store.load, store.count, lambda p: store.load(p, row=0)):
            with pytest.raises(CorruptFileError, match=path.name):
                read(path)
        with pytest.raises(CorruptFileError, match=path.name):
            store.append(path, {"a": [1]})
        assert path.read_bytes() == content, "a failed append changed the file"

    def test_truncated_file(self, store, path):
        import numpy as np

        store.save(path, {"x": np.arange(50_000.0), "y": np.arange(50_000)})
        content = path.read_bytes()
        path.write_bytes(content[: len(content) // 2])
        with pytest.raises(CorruptFileError, match=path.name):
            store.load(path)
        half = path.read_bytes()
        with pytest.raises(CorruptFileError, match=path.name):
            store.append(path, {"x": [1.0], "y": [1]})
        assert path.read_bytes() == half

    # ------------------------------------------------------------ crashes
    def _run_and_kill(self, store: Store, path: Path, mode: str, tmp_path: Path,
                      check: Any) -> None:
        """Run a writer that saves or appends in a loop; SIGKILL it mid-write.

        ``check()`` runs after every kill.
        """
        marker = tmp_path / "done"
        rng = random.Random(1)
        for _ in range(self.crash_rounds):
            marker.unlink(missing_ok=True)
            process = subprocess.Popen(
                [sys.executable, "-c", _WRITER, pickle.dumps(store).hex(), str(path), mode,
                 str(marker), str(self.crash_rows if mode == "save" else self.crash_rows // 20)],
            )
            try:
                deadline = time.monotonic() + 60
                stamps: dict[str, float] = {}
                while len(stamps) < 2:
                    assert process.poll() is None, "the writer died on its own"
                    assert time.monotonic() < deadline, "the writer made no progress"
                    done = marker.read_text() if marker.exists() else ""
                    if done and done not in stamps:
                        stamps[done] = time.monotonic()
                    time.sleep(0.002)
                first, second = sorted(stamps.values())
                # Somewhere inside the next write, not between two.
                time.sleep(rng.uniform(0.1, 0.9) * (second - first))
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
            check()

    @pytest.mark.slow
    def test_a_killed_save_leaves_a_whole_file(self, store, path, tmp_path):
        import numpy as np

        rows = self.crash_rows

        def check():
            assert_data_equal(store.load(path), {"x": np.arange(rows, dtype=float),
                                                 "i": np.arange(rows) % 7, "s": ["v"] * rows})

        self._run_and_kill(store, path, "save", tmp_path, check)

    @pytest.mark.slow
    def test_a_killed_append_leaves_whole_chunks(self, store, path, tmp_path):
        import numpy as np

        if not self.crash_safe_append:
            pytest.skip("this store does not promise to survive a killed append")
        chunk = self.crash_rows // 20

        def check():
            loaded = store.load(path)
            n = store.count(path)
            assert n > 0 and n % chunk == 0, f"{n} rows is not a whole number of {chunk}-row chunks"
            repeats = n // chunk
            assert_data_equal(loaded, {"x": np.tile(np.arange(chunk, dtype=float), repeats),
                                       "i": np.tile(np.arange(chunk) % 7, repeats),
                                       "s": ["v"] * n})

        self._run_and_kill(store, path, "append", tmp_path, check)
        n = store.count(path)
        # The file still takes appends after the crash.
        store.append(path, {"x": [-1.0], "i": [-1], "s": ["end"]})
        assert store.count(path) == n + 1
        assert_data_equal(store.load(path, row=-1), {"x": [-1.0], "i": [-1], "s": ["end"]})

    @pytest.mark.slow
    def test_concurrent_appends_lose_nothing(self, store, path):
        if not self.concurrent_appends:
            pytest.skip("this store does not coordinate appending processes")
        code = ("import pickle, sys\n"
                "store = pickle.loads(bytes.fromhex(sys.argv[1]))\n"
                "for i in range(25):\n"
                "    store.append(sys.argv[2], {'w': [int(sys.argv[3])], 'i': [i]})\n")
        writers = [subprocess.Popen([sys.executable, "-c", code, pickle.dumps(store).hex(),
                                     str(path), str(w)]) for w in range(4)]
        assert [w.wait(timeout=300) for w in writers] == [0] * 4
        loaded = store.load(path)
        assert store.count(path) == 100
        pairs = sorted(zip((int(w) for w in loaded["w"]), (int(i) for i in loaded["i"])))
        assert pairs == [(w, i) for w in range(4) for i in range(25)]

    @pytest.mark.slow
    def test_concurrent_reader_sees_whole_files(self, store, path, tmp_path):
        """While a writer saves in a loop, every load sees a complete file."""
        import numpy as np

        rows = self.crash_rows // 10
        store.save(path, {"x": np.arange(rows, dtype=float), "i": np.arange(rows) % 7,
                          "s": ["v"] * rows})
        marker = tmp_path / "done"
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, pickle.dumps(store).hex(), str(path), "save",
             str(marker), str(rows)],
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            for _ in range(10):
                assert store.count(path) == rows
                assert len(store.load(path)["x"]) == rows
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        for leftover in path.parent.glob(f".{path.name}.*"):
            os.unlink(leftover)  # the killed writer's temporary file
