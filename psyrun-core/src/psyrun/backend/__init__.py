"""Backends: the ways a task is cut into jobs.

``distribute`` (the default) splits the parameter space into input files, runs
one job per file and merges the outputs; ``load-balancing`` lets a few workers
pull items from one shared input.  Both register as plugins in
:mod:`psyrun.plugins.builtin`; the classes are importable from here for task
files written for psyrun 0.8 (``backend = DistributeBackend``).
"""

from __future__ import annotations

from typing import Any

from psyrun.backend.base import Backend, FailedItem, TaskSummary

__all__ = ["Backend", "DefaultBackend", "DistributeBackend", "FailedItem",
           "LoadBalancingBackend", "TaskSummary"]

_LAZY = {
    "DistributeBackend": "psyrun.backend.distribute",
    "DefaultBackend": "psyrun.backend.distribute",
    "LoadBalancingBackend": "psyrun.backend.load_balancing",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'psyrun.backend' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
