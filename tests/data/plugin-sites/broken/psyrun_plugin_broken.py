"""A plugin whose import fails, as when a dependency is missing (test data)."""

from __future__ import annotations

import psyrun_plugin_broken_dependency  # noqa: F401  (does not exist, on purpose)
