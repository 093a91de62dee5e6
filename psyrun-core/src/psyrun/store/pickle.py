"""The pickle store: any picklable data, no dependency, appends in place.

File format
-----------

A ``.pkl`` file written by this store is a 32-byte header followed by frames::

    header: magic (16 bytes) | end offset (uint64) | number of rows (uint64)
    frame:  meta length | payload length | rows (3 x uint64)
            | meta (pickled list of column names) | payload (pickled dict)

Each :meth:`PickleStore.append` adds one frame, so appending costs as much as
the new rows and never rewrites the file.  The header is the commit record:

1. the new frame is written after the committed end and synced to disk;
2. only then is the header's end offset and row count rewritten (16 bytes in
   the first disk sector, written in one call) and synced.

A writer killed during step 1 leaves bytes after the committed end; readers
ignore them and the next append overwrites them, so the file reads exactly as
before the interrupted append.  A file shorter than its committed end was
truncated by something else (a copy cut short, a full disk) and raises
:class:`~psyrun.exceptions.CorruptFileError`.  :meth:`PickleStore.save`
replaces the file atomically (temporary file, fsync, rename).

Appends from several processes take turns: each holds an exclusive
``flock`` on the file while it appends (on POSIX systems whose file system
supports locks).  A :meth:`PickleStore.save` does not wait for appends.

Reading one row (``load(path, row=i)``) reads the small meta blocks of all
frames but unpickles only the frame holding the row.  Files written by psyrun
0.8 (one plain pickled dict) are read too; appending to one converts it.

Columns and missing values
--------------------------

Columns come back as they went in: a column that was a list in every chunk
is a list, one that was a NumPy array in every chunk is an array.  Rows of a
column that a chunk lacks are filled with ``nan`` (for arrays of numbers:
``nan`` arrays of the row shape, which turns bool and int arrays into float,
as NumPy would; other arrays become lists).
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from psyrun.exceptions import CorruptFileError, StoreFileNotFoundError, UnsupportedDataError
from psyrun.store.atomic import atomic_create, atomic_path
from psyrun.store.base import Data, PathLike, Store
from psyrun.store.columns import count_rows, select_rows

MAGIC = b"\x00psyrun-pickle\x01\x00"
_HEADER = struct.Struct("<16sQQ")
_COMMIT = struct.Struct("<QQ")  # the part of the header an append rewrites
_FRAME = struct.Struct("<QQQ")
PROTOCOL = pickle.HIGHEST_PROTOCOL


@attrs.frozen
class _Frame:
    """Where one appended chunk lies in the file."""

    payload_offset: int
    payload_length: int
    rows: int
    names: tuple[str, ...]


def _write_frame(f: BinaryIO, data: Data, rows: int, protocol: int = PROTOCOL) -> int:
    """Write one frame at the current position; return its length in bytes.

    The payload is pickled straight into the file (no copy in memory); its
    length goes into the frame header afterwards.
    """
    start = f.tell()
    meta = pickle.dumps(list(data), protocol=PROTOCOL)
    f.write(_FRAME.pack(len(meta), 0, rows))
    f.write(meta)
    payload_start = f.tell()
    try:
        pickle.dump(dict(data), f, protocol=protocol)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise UnsupportedDataError(
            f"Column {_unpicklable_column(data)!r} cannot be pickled ({exc}). Make every value "
            "picklable (for example, functions and classes defined at module level)."
        ) from None
    end = f.tell()
    f.seek(start)
    f.write(_FRAME.pack(len(meta), end - payload_start, rows))
    f.seek(end)
    return end - start


def _lock(f: BinaryIO) -> None:
    """Hold an exclusive lock on ``f`` until it is closed (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: appends are not coordinated
        return
    # On a file system without locks, go on uncoordinated.
    with contextlib.suppress(OSError):
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)


def _unpicklable_column(data: Data) -> str | None:
    for name, values in data.items():
        try:
            pickle.dumps(values, protocol=PROTOCOL)
        except Exception:  # whatever pickling raises names this column
            return name
    return None


def _missing_fill(template: Any, n: int) -> Any:
    """``n`` rows of ``nan`` for a column shaped like ``template``, or None for a list."""
    if type(template).__module__ == "numpy" and type(template).__name__ == "ndarray":
        import numpy as np

        if template.dtype.kind in "biufc":
            dtype = template.dtype if template.dtype.kind in "fc" else np.float64
            return np.full((n, *template.shape[1:]), np.nan, dtype=dtype)
    return None


def _join(pieces: list[tuple[int, Any]]) -> Any:
    """Join the pieces ``(rows, column or None)`` of one column; None is missing."""
    present = [p for _, p in pieces if p is not None]
    if not present:
        return [math.nan] * sum(n for n, _ in pieces)
    if len(pieces) == 1:
        return present[0]
    if all(type(p).__name__ == "ndarray" and type(p).__module__ == "numpy" for p in present):
        import numpy as np

        template = present[0]
        filled = [p if p is not None else _missing_fill(template, n) for n, p in pieces]
        if all(f is not None for f in filled) and len({f.shape[1:] for f in filled}) == 1:
            kinds = {"text" if f.dtype.kind in "US" else f.dtype.kind for f in filled}
            if len(kinds) == 1 or kinds <= set("biufc"):
                return np.concatenate(filled)
    joined: list[Any] = []
    for n, piece in pieces:
        joined.extend([math.nan] * n if piece is None else list(piece))
    return joined


def _concatenate(chunks: list[tuple[int, Data]], extra_names: Iterable[str] = ()) -> Data:
    """Join chunks ``(rows, data)``; columns in ``extra_names`` but in no chunk are all nan."""
    names: dict[str, None] = {}
    for _, data in chunks:
        names.update(dict.fromkeys(data))
    names.update(dict.fromkeys(extra_names))
    if len(chunks) == 1 and len(names) == len(chunks[0][1]):
        return dict(chunks[0][1])
    return {name: _join([(n, data.get(name)) for n, data in chunks]) for name in names}


def _take(data: Data, indices: range) -> Data:
    """The rows ``indices`` (relative to the start of ``data``) of every column."""
    result = {}
    for name, column in data.items():
        if type(column).__name__ == "ndarray":
            if not indices:
                result[name] = column[:0]
            elif indices.step > 0:
                result[name] = column[indices.start:indices.stop:indices.step]
            else:  # a reversed slice may end before row 0, which a slice cannot say
                result[name] = column[list(indices)]
        else:
            column = list(column) if not isinstance(column, list) else column
            result[name] = [column[i] for i in indices]
    return result


class PickleStore(Store):
    """Stores data with :mod:`pickle`: any picklable values, no extra dependency.

    Appends add a frame to the file instead of rewriting it (see the module
    documentation for the format and why an interrupted append is harmless).
    """

    ext = ".pkl"

    def __init__(self, protocol: int = PROTOCOL) -> None:
        #: The pickle protocol of the columns (psyrun 0.8 took it too).
        self.protocol = protocol

    # ------------------------------------------------------------ writing
    def save(self, filename: PathLike, data: Data) -> None:
        self.save_many(filename, [data])

    def save_many(self, filename: PathLike, chunks: Iterable[Data]) -> None:
        with atomic_path(filename) as temp:
            self._write(temp, chunks)

    def _write(self, temp: Path, chunks: Iterable[Data]) -> None:
        with open(temp, "wb") as f:
            f.write(_HEADER.pack(MAGIC, _HEADER.size, 0))
            end, total = _HEADER.size, 0
            for data in chunks:
                rows = count_rows(data)
                end += _write_frame(f, data, rows, self.protocol)
                total += rows
            f.seek(0)
            f.write(_HEADER.pack(MAGIC, end, total))

    def append(self, filename: PathLike, data: Data) -> None:
        path = Path(filename)
        rows = count_rows(data)
        if not path.exists():
            try:
                with atomic_create(path) as temp:
                    self._write(temp, [data])
                return
            except FileExistsError:  # another process created it just now
                pass
        with open(path, "r+b") as f:
            _lock(f)  # appends from several processes take turns
            header = self._read_header(f, path)
            if header is None:  # a psyrun 0.8 file: rewrite it in our format
                f.close()
                self.save_many(path, [self.load(path), data])
                return
            end, total = header
            f.seek(end)
            f.truncate()  # drop what an interrupted append left behind
            length = _write_frame(f, data, rows, self.protocol)
            f.flush()
            os.fsync(f.fileno())
            f.seek(len(MAGIC))
            f.write(_COMMIT.pack(end + length, total + rows))
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------ reading
    def load(self, filename: PathLike, row: int | slice | None = None) -> Data:
        path = Path(filename)
        with self._open(path) as f:
            header = self._read_header(f, path)
            if header is None:
                data = self._load_legacy(f, path)
                if row is None:
                    return data
                return _take(data, select_rows(count_rows(data), row, path))
            frames = self._read_frames(f, path, *header)
            if row is None:
                return _concatenate([(fr.rows, self._read_payload(f, path, fr)) for fr in frames])
            wanted = select_rows(header[1], row, path)
            lo, hi = (min(wanted), max(wanted)) if wanted else (0, 0)
            chunks, start, first = [], 0, 0
            for frame in frames:
                stop = start + frame.rows
                if start <= hi and lo < stop:
                    first = start if not chunks else first
                    chunks.append((frame.rows, self._read_payload(f, path, frame)))
                start = stop
            # Columns only other frames have are part of the file: fill them.
            names = [name for frame in frames for name in frame.names]
            data = _concatenate(chunks, names)
            relative = range(wanted.start - first, wanted.stop - first, wanted.step)
            return _take(data, relative)

    def count(self, filename: PathLike) -> int:
        path = Path(filename)
        with self._open(path) as f:
            header = self._read_header(f, path)
            if header is None:
                return count_rows(self._load_legacy(f, path))
            return header[1]

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _open(path: Path) -> BinaryIO:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            raise StoreFileNotFoundError(
                f"No such file: {path}. Check the path, or run the task that writes it."
            ) from None

    @staticmethod
    def _read_header(f: BinaryIO, path: Path) -> tuple[int, int] | None:
        """(end, rows) of our format, None for a psyrun 0.8 file."""
        raw = f.read(_HEADER.size)
        if raw[:1] != MAGIC[:1]:  # 0.8 files are plain pickles, which never start with 0
            f.seek(0)
            return None
        if len(raw) < _HEADER.size or raw[:len(MAGIC)] != MAGIC:
            raise CorruptFileError(
                f"{path} is not a psyrun pickle file or its header is damaged. Restore it from "
                "a backup or recompute it; psyrun has not changed it."
            )
        _, end, rows = _HEADER.unpack(raw)
        size = os.fstat(f.fileno()).st_size
        if size < end:
            raise CorruptFileError(
                f"{path} is truncated: it should hold {end} bytes but has {size}. Restore it "
                "from a backup or recompute it; psyrun has not changed it."
            )
        return end, rows

    @staticmethod
    def _read_frames(f: BinaryIO, path: Path, end: int, total: int) -> list[_Frame]:
        frames, offset, rows = [], _HEADER.size, 0
        try:
            while offset < end:
                f.seek(offset)
                meta_length, payload_length, n = _FRAME.unpack(f.read(_FRAME.size))
                names = tuple(pickle.loads(f.read(meta_length)))
                payload_offset = offset + _FRAME.size + meta_length
                frames.append(_Frame(payload_offset, payload_length, n, names))
                offset = payload_offset + payload_length
                rows += n
        except (struct.error, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"{path} is damaged at byte {offset} ({exc}). Restore it from "
                                   "a backup or recompute it; psyrun has not changed it.") from None
        if offset != end or rows != total:
            raise CorruptFileError(f"{path} is damaged: its frames do not match its header. "
                                   "Restore it from a backup or recompute it.")
        return frames

    @staticmethod
    def _read_payload(f: BinaryIO, path: Path, frame: _Frame) -> Data:
        f.seek(frame.payload_offset)
        try:
            # Unpickling from the file lets arrays be read straight into
            # their buffers; a pickle knows where it ends.
            data = pickle.load(f)
        except Exception as exc:  # unpickling can raise nearly anything
            raise CorruptFileError(f"{path} is damaged ({type(exc).__name__}: {exc}). Restore it "
                                   "from a backup or recompute it.") from None
        if f.tell() != frame.payload_offset + frame.payload_length:
            raise CorruptFileError(f"{path} is damaged: a chunk does not end where its frame "
                                   "says. Restore it from a backup or recompute it.")
        if not isinstance(data, dict):
            raise CorruptFileError(f"{path} is damaged: a chunk is not a dict of columns.")
        return data

    @staticmethod
    def _load_legacy(f: BinaryIO, path: Path) -> Data:
        try:
            data = pickle.load(f)
        except Exception as exc:  # unpickling can raise nearly anything
            raise CorruptFileError(
                f"{path} cannot be read as a pickle file ({type(exc).__name__}: {exc}). Restore "
                "it from a backup or recompute it; psyrun has not changed it."
            ) from None
        if not isinstance(data, dict):
            raise CorruptFileError(f"{path} holds a pickled {type(data).__name__}, not a dict of "
                                   "columns; it was not written by psyrun.")
        return data
