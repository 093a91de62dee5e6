"""What psyrun needs to know about the Slurm cluster, read once from ``scontrol show config``."""

from __future__ import annotations

import functools

import attrs

from psyrun_sched_slurm.commands import run_slurm

#: Slurm's default MaxArraySize, used if the configuration does not say.
DEFAULT_MAX_ARRAY_SIZE = 1001


@attrs.frozen
class ClusterConfig:
    """The few configuration values that change how psyrun submits and reads status."""

    #: Array indices must be below this; 0 means arrays are disabled.
    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE
    #: True when slurmdbd records jobs, so that ``sacct`` knows finished jobs.
    accounting: bool = False
    #: Seconds a finished job stays visible to ``squeue``.
    min_job_age: int = 300


def parse_config(text: str) -> ClusterConfig:
    """Read a :class:`ClusterConfig` from the output of ``scontrol show config``."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()

    def integer(key: str, default: int) -> int:
        words = values.get(key, "").split()
        return int(words[0]) if words and words[0].isdigit() else default

    storage = values.get("AccountingStorageType", "accounting_storage/none")
    return ClusterConfig(
        max_array_size=integer("MaxArraySize", DEFAULT_MAX_ARRAY_SIZE),
        accounting=storage not in ("", "accounting_storage/none", "(null)"),
        min_job_age=integer("MinJobAge", 300),
    )


@functools.lru_cache(maxsize=1)
def cluster_config() -> ClusterConfig:
    """The configuration of the cluster, asked once per process."""
    return parse_config(run_slurm(["scontrol", "show", "config"]).stdout)
