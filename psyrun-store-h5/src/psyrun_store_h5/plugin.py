"""Registers the HDF5 store with psyrun (entry point ``psyrun: h5``)."""

from __future__ import annotations

from collections.abc import Iterator

from psyrun.plugins import PsyrunStore, hookimpl


@hookimpl
def psyrun_register_stores() -> Iterator[PsyrunStore]:
    from psyrun_store_h5.store import H5Store

    yield PsyrunStore(name="h5", store=H5Store, extensions=(".h5", ".hdf5"))
