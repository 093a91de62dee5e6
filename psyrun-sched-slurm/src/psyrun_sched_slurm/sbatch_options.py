"""psyrun's ``scheduler_args`` turned into sbatch command-line options.

Task files describe resources with the names psyrun has always used
(``timelimit``, ``memory``, ``n_cpus``, ...); this module is the one place
that knows which sbatch option each of them becomes.  Values may be callables
of the job name (``lambda name: "4G" if name.endswith(":merge") else "1G"``);
they are resolved per job before mapping.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from psyrun.exceptions import SchedulerArgumentError
from psyrun.scheduler.base import check_known_args, evaluate_scheduler_args

#: scheduler_args key -> (sbatch option, what the value means).
OPTIONS: dict[str, tuple[str, str]] = {
    "timelimit": ("--time", "wall time: minutes (int), 'HH:MM:SS', 'D-HH:MM' or a timedelta"),
    "memory": ("--mem", "memory per node: MB (int) or a string such as '4G'"),
    "memory_per_cpu": ("--mem-per-cpu", "memory per CPU: MB (int) or a string such as '500M'"),
    "n_cpus": ("--cpus-per-task", "CPUs per job (int)"),
    "n_nodes": ("--nodes", "number of nodes (int or a range such as '1-2')"),
    "cores_per_socket": ("--cores-per-socket", "cores per socket (int)"),
    "sockets_per_node": ("--sockets-per-node", "sockets per node (int)"),
    "partition": ("--partition", "partition (queue) name"),
    "account": ("--account", "account charged for the job"),
    "qos": ("--qos", "quality of service"),
    "gres": ("--gres", "generic resources, e.g. 'gpu:1'"),
    "constraint": ("--constraint", "node features, e.g. 'skylake'"),
}

#: Keys that are not a single sbatch option.
SPECIAL = {
    "max_running": "array throttle: at most this many elements of an array run at once (int)",
    "sbatch_args": "list of further sbatch options passed as they are, e.g. ['--exclusive']",
}

KNOWN_ARGS = frozenset(OPTIONS) | frozenset(SPECIAL)

_INTEGER_KEYS = {"n_cpus", "cores_per_socket", "sockets_per_node", "max_running"}


def validate(scheduler_args: Mapping[str, Any] | None) -> None:
    """Raise :class:`SchedulerArgumentError` for unknown keys or malformed values.

    Callable values are checked only when they are resolved for a job.
    """
    check_known_args(scheduler_args, KNOWN_ARGS, "Slurm")
    for key, value in (scheduler_args or {}).items():
        if not callable(value):
            _check_value(key, value)


def _check_value(key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        raise SchedulerArgumentError(
            f"scheduler_args[{key!r}] is {value!r}; give {_meaning(key)}.")
    if key == "sbatch_args":
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise SchedulerArgumentError(
                f"scheduler_args['sbatch_args'] must be a list of strings, one per option "
                f"word, e.g. ['--exclusive', '--mail-type=END']; got {value!r}.")
        return
    if key in _INTEGER_KEYS and not (isinstance(value, int) and value > 0):
        raise SchedulerArgumentError(
            f"scheduler_args[{key!r}] is {value!r}; give {_meaning(key)}, a positive integer.")
    if key == "timelimit" and not isinstance(value, (int, str, datetime.timedelta)):
        raise SchedulerArgumentError(
            f"scheduler_args['timelimit'] is {value!r}; give {_meaning(key)}.")


def _meaning(key: str) -> str:
    return OPTIONS[key][1] if key in OPTIONS else SPECIAL[key]


def format_timelimit(value: int | str | datetime.timedelta) -> str:
    """A time limit in a form sbatch accepts (``D-HH:MM:SS`` for a timedelta)."""
    if isinstance(value, datetime.timedelta):
        seconds = max(int(value.total_seconds()), 1)
        days, rest = divmod(seconds, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    return str(value)


def sbatch_options(scheduler_args: Mapping[str, Any] | None, name: str) -> list[str]:
    """The sbatch options for the job ``name`` (``max_running`` is left to the array spec)."""
    validate(scheduler_args)
    args = evaluate_scheduler_args(scheduler_args, name)
    options = []
    for key, (option, _) in OPTIONS.items():
        value = args.get(key)
        _check_value(key, value)
        if value is None:
            continue
        text = format_timelimit(value) if key == "timelimit" else str(value)
        options.append(f"{option}={text}")
    extra = args.get("sbatch_args") or []
    _check_value("sbatch_args", extra)
    options.extend(extra)
    return options


def max_running(scheduler_args: Mapping[str, Any] | None, name: str) -> int | None:
    """The array throttle for the job ``name``, or None."""
    value = evaluate_scheduler_args(scheduler_args, name).get("max_running")
    _check_value("max_running", value)
    return value


def describe() -> list[tuple[str, str, str]]:
    """(key, sbatch option, meaning) for every known key: the docs and the template use it."""
    rows = [(key, option, meaning) for key, (option, meaning) in OPTIONS.items()]
    rows.append(("max_running", "--array=...%N", SPECIAL["max_running"]))
    rows.append(("sbatch_args", "(as given)", SPECIAL["sbatch_args"]))
    return rows


def depends_option(slurm_ids: Sequence[str], after_any: Sequence[str] = ()) -> list[str]:
    """Options making a job wait for ``slurm_ids`` and be cancelled if one of them fails.

    Without ``--kill-on-invalid-dep`` Slurm would leave the job pending for ever
    (reason ``DependencyNeverSatisfied``).  ``after_any`` jobs only have to end,
    however they end (used to run the chunks of a throttled array in turn).
    """
    parts = []
    if slurm_ids:
        parts.append("afterok:" + ":".join(slurm_ids))
    if after_any:
        parts.append("afterany:" + ":".join(after_any))
    if not parts:
        return []
    return [f"--dependency={','.join(parts)}", "--kill-on-invalid-dep=yes"]
