"""psyrun-sched-slurm: submit psyrun's jobs to a Slurm cluster with sbatch."""

from __future__ import annotations

from typing import Any

__all__ = ["Slurm"]


def __getattr__(name: str) -> Any:
    if name == "Slurm":
        from psyrun_sched_slurm.scheduler import Slurm

        return Slurm
    raise AttributeError(f"module 'psyrun_sched_slurm' has no attribute {name!r}")
