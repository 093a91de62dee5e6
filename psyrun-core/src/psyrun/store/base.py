"""The store interface: how psyrun writes and reads tables of rows.

Data is a dict of equally long columns (lists or numpy arrays); each row holds
one scalar or array per column.  Stores are chosen by file extension.
"""

from __future__ import annotations

import abc
import os
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


#: The name psyrun 0.8 used for the interface.
AbstractStore = Store
