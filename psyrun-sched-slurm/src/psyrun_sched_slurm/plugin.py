"""Registers the Slurm scheduler with psyrun (entry point ``psyrun: slurm``)."""

from __future__ import annotations

from collections.abc import Iterator

from psyrun.plugins import PsyrunScheduler, hookimpl


@hookimpl
def psyrun_register_schedulers() -> Iterator[PsyrunScheduler]:
    from psyrun_sched_slurm.scheduler import Slurm

    yield PsyrunScheduler(name="slurm", scheduler=Slurm)
