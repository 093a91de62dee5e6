"""Registers the sqsub scheduler with psyrun (entry point ``psyrun: sqsub``)."""

from __future__ import annotations

from collections.abc import Iterator

from psyrun.plugins import PsyrunScheduler, hookimpl


@hookimpl
def psyrun_register_schedulers() -> Iterator[PsyrunScheduler]:
    from psyrun_sched_sqsub.scheduler import Sqsub

    yield PsyrunScheduler(name="sqsub", scheduler=Sqsub)
