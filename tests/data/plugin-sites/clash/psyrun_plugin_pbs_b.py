"""One of two plugins that both register a scheduler named pbs (test data)."""

from __future__ import annotations

from psyrun.plugins import PsyrunScheduler, hookimpl


class PbsScheduler:
    """Stands in for a scheduler."""


@hookimpl
def psyrun_register_schedulers():
    yield PsyrunScheduler(name="PBS", scheduler=PbsScheduler)
