"""Stores: how psyrun writes tables of rows to files and reads them back.

A store is chosen by file extension through the plugin manager: ``.pkl``
(:class:`PickleStore`, the default), ``.npz`` (:class:`NpzStore`) and, with
``psyrun[h5]``, ``.h5``.  :func:`load_result` reads any of them;
:func:`to_dataframe` turns the columns into a pandas DataFrame;
:func:`merge_files` joins a directory of output files into one.

Nothing here imports NumPy until data is actually read or written.
"""

from __future__ import annotations

from psyrun.store.autodetect import AutodetectStore, load_result, store_for
from psyrun.store.base import AbstractStore, Data, PathLike, Store
from psyrun.store.dataframe import to_dataframe
from psyrun.store.merge import MergeResult, merge_files
from psyrun.store.npz import NpzStore
from psyrun.store.pickle import PickleStore

#: The store used when a task does not name one.
DefaultStore = PickleStore

__all__ = [
    "AbstractStore",
    "AutodetectStore",
    "Data",
    "DefaultStore",
    "MergeResult",
    "NpzStore",
    "PathLike",
    "PickleStore",
    "Store",
    "load_result",
    "merge_files",
    "store_for",
    "to_dataframe",
]

