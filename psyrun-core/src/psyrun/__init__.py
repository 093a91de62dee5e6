"""psyrun: evaluate functions on parameter spaces, here or on a cluster.

The public names are imported on first use (PEP 562), so ``import psyrun``
and the ``psy`` command start without loading numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Param": "psyrun.pspace",
    "map_pspace": "psyrun.mapper",
    "map_pspace_parallel": "psyrun.mapper",
    "map_pspace_hdd_backed": "psyrun.mapper",
    "load_result": "psyrun.store",
    "to_dataframe": "psyrun.store",
    "DefaultStore": "psyrun.store",
    "AutodetectStore": "psyrun.store",
    "PickleStore": "psyrun.store",
    "NpzStore": "psyrun.store",
    "DistributeBackend": "psyrun.backend",
    "LoadBalancingBackend": "psyrun.backend",
    "ImmediateRun": "psyrun.scheduler",
    "Sqsub": "psyrun.scheduler",
    "Slurm": "psyrun.scheduler",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def _version() -> str:
    # Read from the installed metadata only when asked: it costs tens of
    # milliseconds, which every worker process and `psy --help` would pay.
    from importlib import metadata

    try:
        return metadata.version("psyrun")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'psyrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | {"__version__"})
