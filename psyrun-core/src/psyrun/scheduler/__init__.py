"""Schedulers: the interface and the embedded ``immediate`` scheduler.

``Slurm`` and ``Sqsub`` are importable from here for task files written for
psyrun 0.8; they come from the ``psyrun[slurm]`` and ``psyrun[sqsub]`` plugins.
"""

from __future__ import annotations

from typing import Any

from psyrun.scheduler.base import (
    ARRAY_INDEX,
    JobState,
    JobStatus,
    Scheduler,
    combine_states,
)

__all__ = ["ARRAY_INDEX", "ImmediateRun", "JobState", "JobStatus", "Scheduler", "Slurm",
           "Sqsub", "combine_states"]

# Names of 0.8 that live in plugin distributions: name -> (module, extra).
_PLUGIN_NAMES = {
    "Slurm": ("psyrun_sched_slurm", "slurm"),
    "Sqsub": ("psyrun_sched_sqsub", "sqsub"),
}


def __getattr__(name: str) -> Any:
    if name == "ImmediateRun":
        from psyrun.scheduler.immediate import ImmediateRun

        return ImmediateRun
    if name in _PLUGIN_NAMES:
        module, extra = _PLUGIN_NAMES[name]
        try:
            imported = __import__(module)
        except ImportError:
            raise ImportError(
                f"psyrun.scheduler.{name} needs the {extra} plugin. "
                f"Install it with: pip install 'psyrun[{extra}]'"
            ) from None
        return getattr(imported, name)
    raise AttributeError(f"module 'psyrun.scheduler' has no attribute {name!r}")
