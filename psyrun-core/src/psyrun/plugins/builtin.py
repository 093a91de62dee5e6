"""The plugins that ship with the core, registered like any other plugin.

Each hook imports its implementations when it is called, not when this module
is imported, and those modules keep numpy out of their top level, so building
the plugin manager stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator

from psyrun.plugins import hookimpl
from psyrun.plugins.types import PsyrunBackend, PsyrunScheduler, PsyrunStore


@hookimpl
def psyrun_register_stores() -> Iterator[PsyrunStore]:
    from psyrun.store.npz import NpzStore
    from psyrun.store.pickle import PickleStore

    yield PsyrunStore(name="pickle", store=PickleStore, extensions=(".pkl", ".pickle"))
    yield PsyrunStore(name="npz", store=NpzStore, extensions=(".npz",))


@hookimpl
def psyrun_register_schedulers() -> Iterator[PsyrunScheduler]:
    from psyrun.scheduler.immediate import ImmediateRun

    yield PsyrunScheduler(name="immediate", scheduler=ImmediateRun)


@hookimpl
def psyrun_register_backends() -> Iterator[PsyrunBackend]:
    from psyrun.backend.distribute import DistributeBackend
    from psyrun.backend.load_balancing import LoadBalancingBackend

    yield PsyrunBackend(name="distribute", backend=DistributeBackend)
    yield PsyrunBackend(name="load-balancing", backend=LoadBalancingBackend)
