"""A working third-party plugin: a store and a scheduler (test data)."""

from __future__ import annotations

from psyrun.plugins import PsyrunScheduler, PsyrunStore, hookimpl


class JsonLinesStore:
    """Stands in for a store; the registry only needs something callable."""


class FifoScheduler:
    """Stands in for a scheduler."""


@hookimpl
def psyrun_register_stores():
    yield PsyrunStore(name="JSON_Lines", store=JsonLinesStore, extensions=("jsonl",))


@hookimpl
def psyrun_register_schedulers():
    yield PsyrunScheduler(name="fifo", scheduler=FifoScheduler)
