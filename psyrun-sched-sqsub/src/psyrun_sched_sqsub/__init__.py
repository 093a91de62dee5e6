"""psyrun-sched-sqsub: submit psyrun's jobs with Sharcnet's sqsub."""

from __future__ import annotations

from typing import Any

__all__ = ["Sqsub"]


def __getattr__(name: str) -> Any:
    if name == "Sqsub":
        from psyrun_sched_sqsub.scheduler import Sqsub

        return Sqsub
    raise AttributeError(f"module 'psyrun_sched_sqsub' has no attribute {name!r}")
