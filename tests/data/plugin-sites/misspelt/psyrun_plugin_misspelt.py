"""A plugin with a misspelt hook name, which must fail loudly (test data)."""

from __future__ import annotations

from psyrun.plugins import PsyrunStore, hookimpl


class YamlStore:
    """Stands in for a store."""


@hookimpl
def psyrun_register_store():  # the hook is psyrun_register_stores
    yield PsyrunStore(name="yaml", store=YamlStore, extensions=(".yaml",))
