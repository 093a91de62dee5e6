"""Choosing a store by file extension, and loading results in one call.

The choice goes through the plugin manager, so a store installed as a plugin
(``psyrun[h5]``, or a third party's) is found exactly like the built-in ones.
"""

from __future__ import annotations

from typing import Any

from psyrun.store.base import Data, PathLike, Store
from psyrun.store.pickle import PickleStore


def store_for(filename: PathLike) -> Store:
    """An instance of the store that handles ``filename``'s extension.

    Raises :class:`~psyrun.exceptions.PluginNotFoundError` naming the
    installed stores (and the extra to install, for ``.h5``) if none does.
    """
    from psyrun.plugins.manager import get_plugin_manager

    return get_plugin_manager().store_for_path(filename).store()


def load_result(filename: PathLike, row: int | slice | None = None) -> Data:
    """The columns in ``filename``, read by the store its extension selects.

    ``row`` selects one row (an int) or a slice of rows, as in
    :meth:`psyrun.store.Store.load`.
    """
    return store_for(filename).load(filename, row=row)


class AutodetectStore(Store):
    """A store that picks the real store for each call by the file's extension.

    Files it creates without an extension of their own get :attr:`ext`, the
    default store's extension.
    """

    #: The extension of the default store (:class:`~psyrun.store.PickleStore`).
    ext = PickleStore.ext

    @classmethod
    def get_concrete_store(cls, filename: PathLike) -> Store:
        """The store for ``filename`` (the name psyrun 0.8 used; see :func:`store_for`)."""
        return store_for(filename)

    def save(self, filename: PathLike, data: Data) -> None:
        store_for(filename).save(filename, data)

    def save_many(self, filename: PathLike, chunks: Any) -> None:
        store_for(filename).save_many(filename, chunks)

    def load(self, filename: PathLike, row: int | slice | None = None) -> Data:
        return store_for(filename).load(filename, row=row)

    def append(self, filename: PathLike, data: Data) -> None:
        store_for(filename).append(filename, data)

    def count(self, filename: PathLike) -> int:
        return store_for(filename).count(filename)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
