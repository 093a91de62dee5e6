"""The HDF5 store: PyTables files that grow in place and read single rows.

Layout
------

Every column is one array in the group ``/psyrun`` (the group psyrun 0.8
used, so its files load too).  The group's attribute ``psyrun_columns`` lists
the columns in order as JSON: each column's name (any string; the node gets a
safe name of its own), its node and its kind:

``array``
    an ``EArray`` of numbers or booleans, one row per entry along the first
    axis; rows may be arrays of any fixed shape.
``str``
    an ``EArray`` of fixed-width byte strings holding UTF-8; the width grows
    when a longer string is appended (the column is then rewritten once, the
    rest of the file is not).  Strings come back as NumPy ``str`` arrays;
    trailing NUL characters are not kept.
``bytes``
    like ``str`` but returned as bytes.
``ragged``
    a ``VLArray``: one 1-d numeric array of any length per row, returned as a
    list of arrays.  A column that was fixed-shape becomes ragged when rows of
    another length arrive.

The group's ``psyrun_rows`` attribute is the number of committed rows.
Keeping all of this in two attributes of one group makes opening a file
cheap: no per-column attributes need to be read.

Appending and crashes
---------------------

:meth:`H5Store.append` extends the arrays in place (it never rewrites the
file) and raises ``psyrun_rows`` last.  Rows beyond ``psyrun_rows`` are the
remains of an interrupted append: readers ignore them and the next append
cuts them off.  HDF5 itself is not crash-proof, though: a writer killed
while the library flushes its metadata can leave a file that no longer
opens, which then raises :class:`~psyrun.exceptions.CorruptFileError`.  If
that risk matters, write to a new file per job and merge (``psy merge``
writes its output to a temporary file that replaces the result only when
complete); :meth:`H5Store.save` is atomic like every store's.

HDF5 locks a file while a process has it open for writing.  The store waits
for such a file (up to ``lock_timeout`` seconds, 60 by default) instead of
failing, so appends from several processes take turns; a file that stays
locked raises :class:`~psyrun.exceptions.StoreError` (never
``CorruptFileError``).

Missing rows are filled as in :mod:`psyrun.store.columns`: ``nan`` (bool and
int columns become float64, which rewrites that column once), ``""`` for
strings; a missing row of a ragged column is an empty array.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from psyrun.exceptions import (
    CorruptFileError,
    StoreError,
    StoreFileNotFoundError,
    UnsupportedDataError,
)
from psyrun.store.atomic import atomic_create, atomic_path
from psyrun.store.base import Data, PathLike, Store
from psyrun.store.columns import (
    PICKLE_HINT,
    count_rows,
    fill_array,
    is_nan_rows,
    select_rows,
    to_array,
)

GROUP = "/psyrun"
ROWS_ATTR = "psyrun_rows"
COLUMNS_ATTR = "psyrun_columns"
KINDS = ("array", "str", "bytes", "ragged")
_WORDS = {"array": "numbers", "str": "strings", "bytes": "bytes",
          "ragged": "arrays of varying length"}
_STORE = "h5"


def _corrupt(path: Path, exc: BaseException | str) -> CorruptFileError:
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {_reason(exc)}"
    return CorruptFileError(
        f"{path} cannot be read as a psyrun HDF5 file ({detail}). Restore it from a backup or "
        "recompute it; psyrun has not changed it."
    )


def _reason(exc: BaseException) -> str:
    """The innermost cause of an HDF5 error, not its whole C back trace.

    HDF5 errors list every C function on the way (twenty lines); the last
    entry before the trace ends says what is wrong with the file (e.g.
    "truncated file: eof = ..." or "file signature not found").
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    if "End of HDF5 error back trace" in lines:
        trace = lines[: lines.index("End of HDF5 error back trace")]
        causes = [line for line in trace if line and not line.startswith(("File ", "HDF5 error"))]
        if causes:
            return causes[-1]
    return str(exc)


def _is_lock_error(exc: BaseException) -> bool:
    # HDF5 1.10+ locks files (flock); a file another process writes cannot be
    # opened until it is closed.  The library says so only in its message.
    # ("superblock" contains "lock" too, hence the whole phrases.)
    message = str(exc).lower()
    return "unable to lock" in message or "lock request failed" in message


def _node_name(name: str, taken: set[str]) -> str:
    """A node name PyTables accepts without warnings, derived from ``name``."""
    import keyword

    if name.isidentifier() and name.isascii() and not keyword.iskeyword(name) \
            and not name.startswith("_"):
        base = name
    else:
        base = "col_" + name.encode("utf-8").hex()
    candidate, i = base, 1
    while candidate in taken:
        i += 1
        candidate = f"{base}_{i}"
    return candidate


class _Column:
    """One column of an open file: its node and how to read and extend it."""

    def __init__(self, writer: H5Writer | None, node: Any, name: str, kind: str) -> None:
        self.writer, self.name, self.kind = writer, name, kind
        self.node = node

    @property
    def node(self) -> Any:
        return self._node

    @node.setter
    def node(self, node: Any) -> None:
        # PyTables attribute lookups are slow; a merge asks for these per input.
        self._node = node
        self.dtype = node.atom.dtype
        self.row_shape = tuple(node.shape[1:]) if self.kind != "ragged" else ()

    # ------------------------------------------------------------ reading
    def read(self, start: int, stop: int, step: int = 1) -> Any:
        import numpy as np

        if step < 0:
            indices = list(range(start, stop, step))
            if not indices:
                return self._empty()
            lo, hi = min(indices), max(indices)
            block = self.read(lo, hi + 1)
            return block[[i - lo for i in indices]] if self.kind != "ragged" else \
                [block[i - lo] for i in indices]
        if start >= stop:
            return self._empty()
        if self.kind == "ragged":
            return [np.asarray(r) for r in self.node.read(start, stop, step)]
        values = self.node.read(start, stop, step)
        if self.kind == "str":
            return np.char.decode(values, "utf-8") if values.size else values.astype(str)
        return values

    def _empty(self) -> Any:
        if self.kind == "ragged":
            return []
        values = self.node.read(0, 0)
        return values.astype(str) if self.kind == "str" else values

    # ------------------------------------------------------------ writing
    @property
    def rows(self) -> int:
        return self.node.nrows

    def truncate(self, rows: int) -> None:
        if self.node.nrows > rows:
            self.node.truncate(rows)

    def append(self, values: Any) -> None:
        """Append a converted column (see :meth:`H5Writer.convert`)."""
        import numpy as np

        if self.kind == "ragged":
            for row in values:
                self.node.append(np.ravel(row))
        elif len(values):
            self.node.append(values)

    def append_missing(self, n: int) -> None:
        import numpy as np

        if n == 0:
            return
        if self.kind == "ragged":
            for _ in range(n):
                self.node.append(np.zeros(0, dtype=self.dtype))
            return
        if self.dtype.kind in "biu":
            assert self.writer is not None
            self.writer.rewrite(self, np.float64)
        self.node.append(fill_array(np.zeros((0, *self.row_shape), dtype=self.dtype), n))


class H5Writer:
    """Adds rows to an open PyTables file, one chunk at a time."""

    def __init__(self, h5: Any, path: Path) -> None:
        self.h5, self.path = h5, path
        self.group = h5.get_node(GROUP) if GROUP in h5 else h5.create_group("/", GROUP[1:])
        self.columns = read_columns(h5, self.group, path)
        self.rows = committed_rows(self.group, self.columns, path)
        for column in self.columns.values():
            column.writer = self
            column.truncate(self.rows)  # remains of an interrupted append
        self.obsolete: list[Any] = []
        if COLUMNS_ATTR in self.group._v_attrs:
            # Nodes no committed column uses are remains of an interrupted append.
            used = {c.node._v_name for c in self.columns.values()}
            for node in list(self.group._f_iter_nodes()):
                if node._v_name not in used:
                    node._f_remove(recursive=True)
        self.taken = {n._v_name for n in self.group._f_iter_nodes()}

    # ------------------------------------------------------------ conversion
    @staticmethod
    def convert(name: str, values: Any) -> tuple[str, Any]:
        """(kind, values ready to append) for one column of new data."""
        import numpy as np

        array = to_array(name, values, _STORE, ragged=True)
        if isinstance(array, list):
            if any(r.ndim != 1 for r in array):
                raise UnsupportedDataError(
                    f"Column {name!r} has rows of different multi-dimensional shapes; the h5 "
                    f"store holds ragged rows only as 1-d arrays. {PICKLE_HINT}"
                )
            return "ragged", array
        kind = array.dtype.kind
        if kind == "U":
            return "str", np.char.encode(array, "utf-8")
        if kind == "S":
            return "bytes", array
        if kind not in "biufc":
            raise UnsupportedDataError(
                f"Column {name!r} has dtype {array.dtype}, which the h5 store cannot hold. "
                f"{PICKLE_HINT}"
            )
        return "array", array

    # ------------------------------------------------------------ nodes
    def create(self, name: str, kind: str, values: Any, position: int | None = None) -> _Column:
        """A new column for ``values``; the rows already in the file are filled."""
        import numpy as np
        import tables

        node_name = _node_name(name, self.taken)
        self.taken.add(node_name)
        if kind == "ragged":
            dtype = np.result_type(*[r.dtype for r in values]) if values else np.float64
            node = self.h5.create_vlarray(self.group, node_name, tables.Atom.from_dtype(dtype))
        else:
            dtype = values.dtype
            if kind in ("str", "bytes"):
                dtype = np.dtype(f"S{max(dtype.itemsize, 1)}")
            elif self.rows and dtype.kind in "biu":
                dtype = np.dtype(np.float64)  # the rows before this column existed are nan
            node = self.h5.create_earray(
                self.group, node_name, atom=tables.Atom.from_dtype(dtype),
                shape=(0, *values.shape[1:]), expectedrows=max(self.rows + len(values), 1000),
            )
        column = _Column(self, node, name, kind)
        if position is None:
            self.columns[name] = column
        else:  # keep the column where it was
            items = list(self.columns.items())
            items.insert(position, (name, column))
            self.columns = dict(items)
        column.append_missing(self.rows)
        return column

    def rewrite(self, column: _Column, dtype: Any = None, kind: str | None = None) -> Any:
        """Give a column a new node with a wider dtype, or a ragged one.

        Only this column is copied; the rest of the file stays where it is.
        The old node is removed after the next :meth:`commit`, so a crash
        before it leaves the committed column as it was.
        """
        import numpy as np
        import tables

        old = column.node
        rows = old.read(0, old.nrows)
        node_name = _node_name(column.name, self.taken)
        self.taken.add(node_name)
        if kind == "ragged":
            old_dtype = old.atom.dtype
            atom_dtype = np.result_type(old_dtype, dtype) if dtype is not None else old_dtype
            node = self.h5.create_vlarray(self.group, node_name, tables.Atom.from_dtype(atom_dtype))
            for row in rows:
                node.append(np.ravel(row).astype(atom_dtype))
        else:
            new_dtype = np.dtype(dtype) if dtype is not None else rows.dtype
            node = self.h5.create_earray(
                self.group, node_name, atom=tables.Atom.from_dtype(new_dtype),
                shape=(0, *rows.shape[1:]), expectedrows=max(old.nrows * 2, 1000),
            )
            if len(rows):
                node.append(rows.astype(new_dtype))
        if kind is not None:
            column.kind = kind
        self.obsolete.append(old)
        column.node = node
        return node

    def fit(self, column: _Column, kind: str, values: Any) -> None:
        """Make ``column`` able to hold ``values``, rewriting it if it must."""
        import numpy as np

        text = {"str", "bytes"}
        if (column.kind in text) != (kind in text) or (column.kind in text and column.kind != kind):
            raise UnsupportedDataError(
                f"Column {column.name!r} holds {_WORDS[column.kind]} in {self.path} but the new "
                f"rows hold {_WORDS[kind]}; the h5 store keeps one kind per column. {PICKLE_HINT}"
            )
        node_dtype = column.dtype
        if column.kind in text:
            if values.dtype.itemsize > node_dtype.itemsize:
                # Grow generously so that a column of slowly growing strings
                # is not rewritten on every append.
                width = max(values.dtype.itemsize, 2 * node_dtype.itemsize)
                self.rewrite(column, np.dtype(f"S{width}"))
            return
        new_dtypes = [r.dtype for r in values] if kind == "ragged" else [values.dtype]
        target = np.result_type(node_dtype, *new_dtypes)
        if column.kind == "ragged":
            if target != node_dtype:
                self.rewrite(column, target, kind="ragged")
            return
        row_shape = column.row_shape
        if kind == "ragged" or values.shape[1:] != row_shape:
            if len(row_shape) != 1 or (kind == "array" and values.ndim != 2):
                raise UnsupportedDataError(
                    f"Column {column.name!r} has rows of shape {tuple(map(int, row_shape))} in "
                    f"{self.path} but "
                    f"the new rows have another shape; the h5 store holds ragged rows only as "
                    f"1-d arrays. {PICKLE_HINT}"
                )
            self.rewrite(column, target, kind="ragged")
            return
        if target != node_dtype:
            self.rewrite(column, target)

    def only_nan(self, column: _Column, kind: str, values: Any) -> bool:
        """``column`` holds only nan scalars and ``values`` are strings or arrays.

        Such a column was missing in every row so far (filled by `+`, or an
        output no earlier row returned), so it may take the type of ``values``.
        """
        import numpy as np

        if column.kind != "array" or column.row_shape or column.dtype.kind != "f":
            return False
        if kind == "array" and values.ndim == 1:
            return False
        return bool(np.isnan(column.node.read(0, self.rows)).all())

    # ------------------------------------------------------------ chunks
    def add(self, data: Data, commit: bool = True) -> None:
        """Append the rows of ``data``, then :meth:`commit` them unless told not to."""
        n = count_rows(data)
        # Convert everything before touching the file, so that data the store
        # cannot hold is refused with the file unchanged.
        converted = {name: self.convert(name, values) for name, values in data.items()}
        for name, (kind, values) in list(converted.items()):
            column = self.columns.get(name)
            if (column is not None and self.rows and kind == "array"
                    and (column.kind != "array" or column.row_shape) and is_nan_rows(values)):
                # Rows of an array or string column that are all nan (a
                # parameter filled by `+`, an output no row of this chunk
                # returned) are missing rows: filled like a column the chunk lacks.
                del converted[name]
        for name, (kind, values) in converted.items():
            column = self.columns.get(name)
            if column is not None and (
                (self.rows == 0 and column.kind != kind) or self.only_nan(column, kind, values)
            ):
                # A column saved without rows had no real type, one of nan
                # only had missing rows: take the new type (create() fills).
                position = list(self.columns).index(name)
                self.obsolete.append(column.node)
                del self.columns[name]
                self.create(name, kind, values, position)
            elif column is None:
                self.create(name, kind, values)
            else:
                self.fit(column, kind, values)
        for name, (kind, values) in converted.items():
            column = self.columns[name]
            if column.kind == "ragged" and kind == "array":
                values = list(values)
            column.append(values)
        for name, column in self.columns.items():
            if name not in converted:
                column.append_missing(n)
        self.rows += n
        if commit:
            self.commit()

    def commit(self) -> None:
        """Record the columns and the row count: the rows written become visible.

        The data are flushed first, so the count never runs ahead of them.
        """
        self.h5.flush()
        self.group._v_attrs[COLUMNS_ATTR] = json.dumps(
            [[c.name, c.node._v_name, c.kind] for c in self.columns.values()]
        )
        self.group._v_attrs[ROWS_ATTR] = self.rows
        self.h5.flush()
        for node in self.obsolete:
            node._f_remove()
        self.obsolete.clear()


def read_columns(h5: Any, group: Any, path: Path) -> dict[str, _Column]:
    """The columns stored in ``group``, by column name, in order."""
    import tables

    attrs = group._v_attrs
    if COLUMNS_ATTR in attrs:
        try:
            listed = [(str(name), str(node), str(kind))
                      for name, node, kind in json.loads(attrs[COLUMNS_ATTR])]
        except (ValueError, TypeError) as exc:
            raise _corrupt(path, f"its column list is damaged ({exc})") from None
        columns = {}
        for name, node_name, kind in listed:
            if kind not in KINDS:
                raise _corrupt(path, f"column {name!r} has unknown kind {kind!r}")
            columns[name] = _Column(None, group._f_get_child(node_name), name, kind)
        return columns
    # A file of psyrun 0.8: columns are the arrays in the group, by node name.
    columns = {}
    for node in sorted(group._f_iter_nodes(), key=lambda n: n._v_name):
        if isinstance(node, tables.Leaf):
            kind = ("ragged" if isinstance(node, tables.VLArray)
                    else "bytes" if node.atom.dtype.kind == "S" else "array")
            columns[node._v_name] = _Column(None, node, node._v_name, kind)
    return columns


def committed_rows(group: Any, columns: dict[str, _Column], path: Path) -> int:
    """The number of committed rows (psyrun 0.8 files: the common length)."""
    lengths = {c.rows for c in columns.values()}
    if ROWS_ATTR in group._v_attrs:
        rows = int(group._v_attrs[ROWS_ATTR])
        if any(n < rows for n in lengths):
            raise _corrupt(path, f"a column has fewer than the {rows} committed rows")
        return rows
    if len(lengths) > 1:
        raise _corrupt(path, "its columns have different lengths")
    return lengths.pop() if lengths else 0


class H5Store(Store):
    """Stores data in HDF5 files with PyTables (``pip install 'psyrun[h5]'``).

    Appends extend the file in place and single rows are read without
    loading the rest; see the module documentation for the layout.
    """

    ext = ".h5"
    reads_rows_cheaply = True

    def __init__(self, node: str = GROUP, lock_timeout: float = 60.0) -> None:
        if node != GROUP:
            raise ValueError(f"H5Store keeps its data in {GROUP!r}; other nodes are not supported.")
        self.node = node
        #: Seconds to wait for a file another process has open for writing.
        self.lock_timeout = lock_timeout

    # ------------------------------------------------------------ files
    @contextlib.contextmanager
    def _open(self, path: Path, mode: str) -> Iterator[Any]:
        """Open ``path``; wait while another process writes it (HDF5 locks files)."""
        import tables

        if mode != "w" and not path.exists():
            raise StoreFileNotFoundError(
                f"No such file: {path}. Check the path, or run the task that writes it."
            )
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.01
        while True:
            try:
                h5 = self._open_once(path, mode)
                break
            except tables.HDF5ExtError as exc:
                if not _is_lock_error(exc):
                    raise _corrupt(path, exc) from None
                if time.monotonic() >= deadline:
                    raise StoreError(
                        f"{path} stayed locked for {self.lock_timeout:g} s: another process "
                        "has it open for writing. Wait for that process to finish (or stop "
                        "it), then try again."
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
            except (OSError, ValueError) as exc:
                raise _corrupt(path, exc) from None
        try:
            yield h5
        finally:
            h5.close()

    @staticmethod
    def _open_once(path: Path, mode: str) -> Any:
        import tables

        # Opening a file that is not HDF5 for appending would replace it.
        if mode == "a" and not tables.is_hdf5_file(str(path)):
            raise _corrupt(path, "not an HDF5 file")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tables.NaturalNameWarning)
            return tables.open_file(str(path), mode)

    @contextlib.contextmanager
    def _writer(self, path: Path, mode: str, shown: Path | None = None) -> Iterator[H5Writer]:
        """A writer of ``path``; its messages name ``shown`` (the file a temporary one becomes)."""
        import tables

        with self._open(path, mode) as h5:
            try:
                writer = H5Writer(h5, shown or path)
            except (tables.HDF5ExtError, tables.NoSuchNodeError) as exc:
                raise _corrupt(path, exc) from None
            yield writer

    # ------------------------------------------------------------ writing
    def save(self, filename: PathLike, data: Data) -> None:
        self.save_many(filename, [data])

    def save_many(self, filename: PathLike, chunks: Iterable[Data]) -> None:
        with atomic_path(filename) as temp, self._writer(temp, "w", Path(filename)) as writer:
            # The file is a temporary one until it is complete: commit once.
            for data in chunks:
                writer.add(data, commit=False)
            writer.commit()

    def append(self, filename: PathLike, data: Data) -> None:
        path = Path(filename)
        count_rows(data)  # fail before opening the file for writing
        if not path.exists():
            try:
                with atomic_create(path) as temp, self._writer(temp, "w", path) as writer:
                    writer.add(data)
                return
            except FileExistsError:  # another process created it just now
                pass
        with self._writer(path, "a") as writer:
            writer.add(data)

    # ------------------------------------------------------------ reading
    def load(self, filename: PathLike, row: int | slice | None = None) -> Data:
        import tables

        path = Path(filename)
        with self._open(path, "r") as h5:
            try:
                if GROUP not in h5:
                    return {}
                group = h5.get_node(GROUP)
                columns = read_columns(h5, group, path)
                n = committed_rows(group, columns, path)
                wanted = range(n) if row is None else select_rows(n, row, path)
                return {
                    name: column.read(wanted.start, wanted.stop, wanted.step)
                    for name, column in columns.items()
                }
            except (tables.HDF5ExtError, tables.NoSuchNodeError, OSError) as exc:
                raise _corrupt(path, exc) from None

    def count(self, filename: PathLike) -> int:
        path = Path(filename)
        with self._open(path, "r") as h5:
            if GROUP not in h5:
                return 0
            group = h5.get_node(GROUP)
            if ROWS_ATTR in group._v_attrs:
                return int(group._v_attrs[ROWS_ATTR])
            return committed_rows(group, read_columns(h5, group, path), path)
