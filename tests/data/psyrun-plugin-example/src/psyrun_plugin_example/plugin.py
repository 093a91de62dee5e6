"""Registers the JSON-lines store with psyrun (entry point ``psyrun: jsonl``)."""

from __future__ import annotations

from collections.abc import Iterator

from psyrun.plugins import PsyrunStore, hookimpl


@hookimpl
def psyrun_register_stores() -> Iterator[PsyrunStore]:
    from psyrun_plugin_example.store import JsonLinesStore

    yield PsyrunStore(name="jsonl", store=JsonLinesStore, extensions=(".jsonl",))
