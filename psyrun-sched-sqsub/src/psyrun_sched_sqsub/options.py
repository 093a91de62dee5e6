"""Turn a task's ``scheduler_args`` into sqsub command-line options.

sqsub wants a run time (``-r``) and a memory per process (``--mpp``) for
every job; the number of CPUs (``-n``), of nodes (``-N``) and the queue
(``-q``) are optional.  Values are checked here, before anything is submitted,
so that a typo in a task file is reported at ``psy run`` and not by the
cluster after a long wait in its queue.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from psyrun.exceptions import SchedulerArgumentError

#: scheduler_args the sqsub scheduler understands.
KNOWN_ARGS = frozenset({"timelimit", "memory", "n_cpus", "n_nodes", "queue"})
#: scheduler_args every task submitted through sqsub must give.
REQUIRED_ARGS = frozenset({"timelimit", "memory"})

# sqsub -r: minutes, or a number with the unit m, h or d ("90", "30m", "1.5h", "7d").
_TIME_PATTERN = re.compile(r"^\d+(?:\.\d+)?[mhd]?$")
# sqsub --mpp: a size with an optional unit ("500M", "1G", "2.5g", "1024k").
_MEMORY_PATTERN = re.compile(r"^\d+(?:\.\d+)?[kmgt]?b?$", re.IGNORECASE)
_QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


def format_timelimit(value: Any) -> str:
    """The ``-r`` value for a time limit.

    Strings in sqsub's own notation pass through; an ``int`` counts minutes
    and a :class:`datetime.timedelta` is rounded up to whole minutes.

    >>> format_timelimit("1h"), format_timelimit(90), format_timelimit(datetime.timedelta(seconds=61))
    ('1h', '90', '2')
    """
    if isinstance(value, datetime.timedelta):
        minutes = math.ceil(value.total_seconds() / 60)
        if minutes < 1:
            raise SchedulerArgumentError(
                f"scheduler_args 'timelimit' must be positive, got {value!r}.")
        return str(minutes)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SchedulerArgumentError(
            f"scheduler_args 'timelimit' must be a string such as '30m', '2h' or '1d', "
            f"a number of minutes or a datetime.timedelta; got {value!r}.")
    text = str(value).strip()
    if not _TIME_PATTERN.match(text) or float(re.sub(r"[mhd]$", "", text)) <= 0:
        raise SchedulerArgumentError(
            f"scheduler_args 'timelimit' {value!r} is not a time sqsub -r understands: "
            "use minutes or a number with m, h or d, for example '30m', '2h' or '1d'.")
    return text


def format_memory(value: Any) -> str:
    """The ``--mpp`` value for a memory per process; an ``int`` counts megabytes.

    >>> format_memory("1G"), format_memory(512)
    ('1G', '512M')
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SchedulerArgumentError(
            f"scheduler_args 'memory' must be a string such as '500M' or '2G' "
            f"or a number of megabytes; got {value!r}.")
    text = f"{value}M" if isinstance(value, int) else value.strip()
    if not _MEMORY_PATTERN.match(text) or float(re.sub(r"[a-zA-Z]+$", "", text)) <= 0:
        raise SchedulerArgumentError(
            f"scheduler_args 'memory' {value!r} is not a size sqsub --mpp understands: "
            "use a number with k, M, G or T, for example '500M' or '2G'.")
    return text


def _positive_int(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SchedulerArgumentError(
            f"scheduler_args {key!r} must be a whole number of at least 1, got {value!r}.")
    return str(value)


def _queue(value: Any) -> str:
    if not isinstance(value, str) or not _QUEUE_PATTERN.match(value):
        raise SchedulerArgumentError(
            f"scheduler_args 'queue' must be the name of a sqsub queue such as 'serial', "
            f"'threaded' or 'mpi', got {value!r}.")
    return value


def sqsub_options(scheduler_args: Mapping[str, Any]) -> list[str]:
    """sqsub options for evaluated ``scheduler_args`` (no callables left).

    >>> sqsub_options({"timelimit": "1h", "memory": "1G", "n_nodes": 2})
    ['-r', '1h', '--mpp=1G', '-n', '1', '-N', '2']
    """
    missing = sorted(REQUIRED_ARGS - set(scheduler_args))
    if missing:
        raise SchedulerArgumentError(
            f"The sqsub scheduler needs scheduler_args {', '.join(map(repr, missing))}; "
            "add them to the task file, for example "
            "scheduler_args = {'timelimit': '1h', 'memory': '1G'}.")
    options = ["-r", format_timelimit(scheduler_args["timelimit"]),
               f"--mpp={format_memory(scheduler_args['memory'])}",
               "-n", _positive_int("n_cpus", scheduler_args.get("n_cpus", 1))]
    if scheduler_args.get("n_nodes") is not None:
        options += ["-N", _positive_int("n_nodes", scheduler_args["n_nodes"])]
    if scheduler_args.get("queue") is not None:
        options += ["-q", _queue(scheduler_args["queue"])]
    return options


_FORMATTERS = {
    "timelimit": format_timelimit,
    "memory": format_memory,
    "n_cpus": lambda value: _positive_int("n_cpus", value),
    "n_nodes": lambda value: _positive_int("n_nodes", value),
    "queue": _queue,
}


def check_values(scheduler_args: Mapping[str, Any]) -> None:
    """Raise :class:`SchedulerArgumentError` for a value sqsub would refuse.

    Keys this scheduler does not know are left to
    :func:`psyrun.scheduler.base.check_known_args`.
    """
    for key, value in scheduler_args.items():
        formatter = _FORMATTERS.get(key)
        if formatter is not None and not (value is None and key in ("n_nodes", "queue")):
            formatter(value)
