"""psyrun-store-h5: an HDF5 store for psyrun, written with PyTables."""

from __future__ import annotations

from typing import Any

__all__ = ["H5Store"]


def __getattr__(name: str) -> Any:
    if name == "H5Store":
        from psyrun_store_h5.store import H5Store

        return H5Store
    raise AttributeError(f"module 'psyrun_store_h5' has no attribute {name!r}")
