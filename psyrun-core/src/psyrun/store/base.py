"""The store interface: how psyrun writes and reads tables of rows.

Data is a dict of equally long columns (lists or numpy arrays); each row holds
one scalar or array per column.  Stores are chosen by file extension.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike[str]
Data = dict[str, Any]


class Store(abc.ABC):
    """A file format for psyrun's tables.

    Subclasses set :attr:`ext` and implement the four methods.  Every write
    is atomic: a crash in the middle leaves the previous file intact.
    """

    #: The extension (with the dot) of the files this store writes.
    ext: str = ""

    #: True if ``load(filename, row=slice(...))`` reads only those rows, so
    #: that reading a large file batch by batch is cheap (npz, h5); False if
    #: it has to read (most of) the file for any row (pickle).
    reads_rows_cheaply: bool = False

    @abc.abstractmethod
    def save(self, filename: PathLike, data: Data) -> None:
        """Write ``data`` to ``filename``, replacing the file."""

    @abc.abstractmethod
    def load(self, filename: PathLike, row: int | slice | None = None) -> Data:
        """Read the whole file, or only row ``row`` (an int or a slice).

        A single row comes back as columns of length one.
        """

    @abc.abstractmethod
    def append(self, filename: PathLike, data: Data) -> None:
        """Add the rows of ``data`` to ``filename`` (created if absent).

        Columns missing on either side are filled with nan.
        """

    @abc.abstractmethod
    def count(self, filename: PathLike) -> int:
        """The number of rows in ``filename``, as cheaply as the format allows."""

    def save_many(self, filename: PathLike, chunks: Iterable[Data]) -> None:
        """Write the rows of all ``chunks``, in order, as one file (atomically).

        Missing columns are filled as in :meth:`append`.  ``psy merge`` uses
        this, so a store should override it with something linear in the
        total number of rows; this default writes a temporary file with
        :meth:`save` and :meth:`append`, then moves it over ``filename``.
        """
        from psyrun.store.atomic import atomic_path

        target = Path(filename)
        with atomic_path(target) as temp:
            temp.unlink()  # save() and append() create the file themselves
            for chunk in chunks:
                if temp.exists():
                    self.append(temp, chunk)
                else:
                    self.save(temp, chunk)
            if not temp.exists():
                self.save(temp, {})


#: The name psyrun 0.8 used for the interface.
AbstractStore = Store
