"""Compatibility path ``psyrun.store.h5.H5Store`` (where psyrun 0.8 had it).

The HDF5 store lives in the ``psyrun-store-h5`` distribution; this module
re-exports it when that is installed.
"""

from __future__ import annotations

try:
    from psyrun_store_h5.store import H5Store
except ImportError as exc:
    if exc.name not in {"psyrun_store_h5", "psyrun_store_h5.store", "tables"}:
        raise
    raise ImportError(
        "The HDF5 store is not installed. Install it with: pip install 'psyrun[h5]'",
        name=exc.name,
    ) from exc

__all__ = ["H5Store"]
