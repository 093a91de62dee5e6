"""The npz store: NumPy's ``.npz`` format, readable with a plain ``numpy.load``.

A file holds one ``<column>.npy`` member per column, uncompressed, exactly as
:func:`numpy.savez` writes it, so ``numpy.load("result.npz")["x"]`` works
without psyrun.  Objects are never pickled into the file (``numpy.load``
refuses them by default): numbers, booleans, strings, bytes and arrays of
equal shape per row are supported; anything else raises
:class:`~psyrun.exceptions.UnsupportedDataError` and points to the pickle
store.

Missing rows are filled by the rules of :mod:`psyrun.store.columns`: ``nan``
for numbers (bool and int columns become float64), ``""`` for strings.

The zip format cannot grow in place safely, so :meth:`NpzStore.append`
reads the file, adds the rows and writes it anew (atomically).  ``psy merge``
does not pay that price per input: it joins all inputs and writes once.
Reading one row or a slice with step 1 seeks to it inside the uncompressed
member instead of reading the whole column; :meth:`NpzStore.count` reads one
member's header only.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from psyrun.exceptions import CorruptFileError, StoreFileNotFoundError
from psyrun.store.atomic import atomic_path
from psyrun.store.base import Data, PathLike, Store
from psyrun.store.columns import concatenate, count_rows, select_rows, to_array

_MEMBER_SUFFIX = ".npy"
# A zip local file header: signature, versions, flags, sizes ... and the
# lengths of the name and the extra field that precede the member's data.
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


def _corrupt(path: Path, exc: BaseException) -> CorruptFileError:
    return CorruptFileError(
        f"{path} cannot be read as an npz file ({type(exc).__name__}: {exc}). Restore it from "
        "a backup or recompute it; psyrun has not changed it."
    )


def _read_header(member: Any) -> tuple[tuple[int, ...], bool, Any]:
    import numpy as np

    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise ValueError(f"unsupported .npy version {version}")


class NpzStore(Store):
    """Stores data as NumPy ``.npz`` files (one uncompressed array per column)."""

    ext = ".npz"
    reads_rows_cheaply = True

    # ------------------------------------------------------------ writing
    def _arrays(self, data: Data) -> tuple[int, dict[str, Any]]:
        rows = count_rows(data)
        return rows, {name: to_array(name, values, "npz") for name, values in data.items()}

    def _write(self, filename: PathLike, arrays: dict[str, Any]) -> None:
        import numpy as np

        with atomic_path(filename) as temp, zipfile.ZipFile(
            temp, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True
        ) as archive:
            for name, array in arrays.items():
                # Written member by member, as numpy.savez does, but without
                # its keyword arguments, which would swallow a column named
                # "file" or "allow_pickle".
                with archive.open(name + _MEMBER_SUFFIX, mode="w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)

    def save(self, filename: PathLike, data: Data) -> None:
        self._write(filename, self._arrays(data)[1])

    def save_many(self, filename: PathLike, chunks: Iterable[Data]) -> None:
        self._write(filename, concatenate((self._arrays(data) for data in chunks), "npz"))

    def append(self, filename: PathLike, data: Data) -> None:
        path = Path(filename)
        new = self._arrays(data)
        if not path.exists():
            self._write(path, new[1])
            return
        old = self.load(path)
        self._write(path, concatenate([(self.count(path), old), new], "npz"))

    # ------------------------------------------------------------ reading
    def _open(self, path: Path) -> zipfile.ZipFile:
        try:
            return zipfile.ZipFile(path)
        except FileNotFoundError:
            raise StoreFileNotFoundError(
                f"No such file: {path}. Check the path, or run the task that writes it."
            ) from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise _corrupt(path, exc) from None

    def load(self, filename: PathLike, row: int | slice | None = None) -> Data:
        path = Path(filename)
        with self._open(path) as archive:
            try:
                members = [m for m in archive.infolist() if m.filename.endswith(_MEMBER_SUFFIX)]
                if row is None:
                    return {m.filename[: -len(_MEMBER_SUFFIX)]: self._read_all(archive, m)
                            for m in members}
                n = self._rows(archive, members)
                wanted = select_rows(n, row, path)
                with open(path, "rb") as raw:
                    return {m.filename[: -len(_MEMBER_SUFFIX)]:
                            self._read_rows(archive, raw, m, wanted) for m in members}
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
                raise _corrupt(path, exc) from None

    def count(self, filename: PathLike) -> int:
        path = Path(filename)
        with self._open(path) as archive:
            members = [m for m in archive.infolist() if m.filename.endswith(_MEMBER_SUFFIX)]
            try:
                return self._rows(archive, members)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise _corrupt(path, exc) from None

    @staticmethod
    def _rows(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> int:
        if not members:
            return 0
        with archive.open(members[0]) as member:
            shape = _read_header(member)[0]
        if not shape:
            raise ValueError(f"member {members[0].filename} is a scalar, not a column")
        return shape[0]

    @staticmethod
    def _read_all(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
        import numpy as np

        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)

    @classmethod
    def _read_rows(cls, archive: zipfile.ZipFile, raw: BinaryIO, info: zipfile.ZipInfo,
                   wanted: range) -> Any:
        import numpy as np

        if info.compress_type == zipfile.ZIP_STORED and wanted.step == 1:
            # An uncompressed member is a plain .npy file inside the archive:
            # seek to the rows instead of reading up to them.
            raw.seek(info.header_offset)
            local = raw.read(_LOCAL_HEADER.size)
            if len(local) == _LOCAL_HEADER.size and local[:4] == b"PK\x03\x04":
                name_length, extra_length = _LOCAL_HEADER.unpack(local)[-2:]
                raw.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
                shape, fortran_order, dtype = _read_header(raw)
                if not fortran_order and not dtype.hasobject:
                    per_row = int(np.prod(shape[1:], dtype=np.int64))
                    raw.seek(raw.tell() + wanted.start * per_row * dtype.itemsize)
                    count = len(wanted) * per_row
                    data = raw.read(count * dtype.itemsize)
                    if len(data) != count * dtype.itemsize:
                        raise ValueError(f"member {info.filename} is shorter than its header says")
                    values = np.frombuffer(data, dtype=dtype, count=count).copy()
                    return values.reshape((len(wanted), *shape[1:]))
        with archive.open(info) as member:
            values = np.lib.format.read_array(member, allow_pickle=False)
        return values[list(wanted)] if wanted else values[:0]
