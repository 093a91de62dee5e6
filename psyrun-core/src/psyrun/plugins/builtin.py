"""The plugins that ship with the core, registered like any other plugin.

Each hook imports its implementations when it is called, not when this module
is imported, and those modules keep numpy out of their top level, so building
the plugin manager stays cheap.  Each implementation is imported on its own:
if one fails, the others of its kind are still registered and the failure is
reported by ``psy plugins``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from psyrun.plugins import hookimpl
from psyrun.plugins.types import PsyrunBackend, PsyrunScheduler, PsyrunStore

# kind-specific record factory, name, "module:class", extra record fields
_STORES = [
    ("pickle", "psyrun.store.pickle:PickleStore", {"extensions": (".pkl", ".pickle")}),
    ("npz", "psyrun.store.npz:NpzStore", {"extensions": (".npz",)}),
]
_SCHEDULERS = [("immediate", "psyrun.scheduler.immediate:ImmediateRun", {})]
_BACKENDS = [
    ("distribute", "psyrun.backend.distribute:DistributeBackend", {}),
    ("load-balancing", "psyrun.backend.load_balancing:LoadBalancingBackend", {}),
]


def _records(make: Callable[..., Any], field: str,
             table: list[tuple[str, str, dict[str, Any]]]) -> Iterator[Any]:
    errors = []
    for name, target, extra in table:
        module, attribute = target.split(":")
        try:
            implementation = getattr(importlib.import_module(module), attribute)
        except Exception as exc:  # reported below, after the siblings are yielded
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        yield make(name=name, **{field: implementation}, **extra)
    if errors:
        raise ImportError("built-in plugins failed to import: " + "; ".join(errors))


@hookimpl
def psyrun_register_stores() -> Iterator[PsyrunStore]:
    yield from _records(PsyrunStore, "store", _STORES)


@hookimpl
def psyrun_register_schedulers() -> Iterator[PsyrunScheduler]:
    yield from _records(PsyrunScheduler, "scheduler", _SCHEDULERS)


@hookimpl
def psyrun_register_backends() -> Iterator[PsyrunBackend]:
    yield from _records(PsyrunBackend, "backend", _BACKENDS)
