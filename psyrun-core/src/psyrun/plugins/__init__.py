"""psyrun's plugin system.

Stores, schedulers and backends are all plugins, the built-in ones included:
they register through the hookspecs in :mod:`psyrun.plugins.hookspec`, yield
the records of :mod:`psyrun.plugins.types`, and are looked up by name through
the cached manager of :mod:`psyrun.plugins.manager`.  Only code in this
package looks at plugin names.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "psyrun"
ENTRY_POINT_GROUP = "psyrun"

#: Decorator for the functions of a plugin module.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

from psyrun.plugins.types import PsyrunBackend, PsyrunScheduler, PsyrunStore  # noqa: E402

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "PsyrunBackend",
    "PsyrunScheduler",
    "PsyrunStore",
    "hookimpl",
]
