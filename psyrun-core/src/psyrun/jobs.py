"""The job graph: what a backend asks the scheduler to run, and in which order.

A backend turns a task into a small tree of records:

* :class:`Job` -- one worker invocation (``python -m psyrun.worker ... --job
  NAME``);
* :class:`JobArray` -- ``n`` invocations of the same job that differ only in
  ``--index`` (the scheduler's array index);
* :class:`JobChain` -- jobs that run one after the other: each waits for the
  one before it;
* :class:`JobGroup` -- jobs that may run at the same time.

Every job names the files it reads (``dependencies``) and the files it writes
(``targets``).  A job is *up to date* when it has targets, every target exists
and no dependency is newer than the oldest target -- the same rule as make or
doit.  The runner (:mod:`psyrun.runner`) skips up-to-date jobs, but once a job
in a chain runs, every later job of the chain runs too, because its inputs are
being rewritten.

The records carry no command line: the runner builds it from the task and the
job name, so a backend never has to know how the worker is started.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs


def _paths(values: Iterable[str | os.PathLike[str]] | None) -> tuple[Path, ...]:
    return tuple(Path(v) for v in (values or ()))


def _frozen_dict(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value or {})


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def is_up_to_date(dependencies: Iterable[Path], targets: Iterable[Path]) -> bool:
    """True if there are targets, all exist, and none is older than a dependency.

    A dependency that does not exist makes the job out of date: something
    upstream has to produce it first.
    """
    target_times = [_mtime(p) for p in targets]
    if not target_times or any(t is None for t in target_times):
        return False
    oldest_target = min(target_times)  # type: ignore[type-var]
    for dep in dependencies:
        dep_time = _mtime(dep)
        if dep_time is None or dep_time > oldest_target:
            return False
    return True


@attrs.frozen
class Job:
    """One job: a single run of the worker for ``name``.

    ``scheduler_args`` are passed to the scheduler (values that are callables
    of the full job name ``<task>:<job>`` are evaluated by the runner), with
    ``n_cpus`` added unless the task set it and the scheduler does not know it.
    """

    name: str
    dependencies: tuple[Path, ...] = attrs.field(factory=tuple, converter=_paths)
    targets: tuple[Path, ...] = attrs.field(factory=tuple, converter=_paths)
    scheduler_args: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    #: Processes the job runs at once; passed to the scheduler as ``n_cpus``.
    n_cpus: int = 1

    def is_up_to_date(self) -> bool:
        return is_up_to_date(self.dependencies, self.targets)


@attrs.frozen
class JobArray:
    """``n`` elements of one job, run with ``--index 0`` to ``--index n-1``.

    ``dependencies`` and ``targets`` are those of all elements together.  An
    array with ``n == 0`` has nothing to do and is never submitted.
    """

    name: str
    n: int
    dependencies: tuple[Path, ...] = attrs.field(factory=tuple, converter=_paths)
    targets: tuple[Path, ...] = attrs.field(factory=tuple, converter=_paths)
    scheduler_args: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    #: Processes each element runs at once; passed to the scheduler as ``n_cpus``.
    n_cpus: int = 1

    def is_up_to_date(self) -> bool:
        return self.n == 0 or is_up_to_date(self.dependencies, self.targets)


@attrs.frozen
class JobChain:
    """Jobs run in order: each one waits for all jobs submitted before it."""

    jobs: tuple[JobNode, ...] = attrs.field(converter=tuple)


@attrs.frozen
class JobGroup:
    """Jobs that do not depend on each other."""

    jobs: tuple[JobNode, ...] = attrs.field(converter=tuple)


JobNode = Job | JobArray | JobChain | JobGroup


def iter_jobs(node: JobNode) -> Iterator[Job | JobArray]:
    """Every :class:`Job` and :class:`JobArray` in the graph, in submission order."""
    if isinstance(node, (Job, JobArray)):
        yield node
    else:
        for child in node.jobs:
            yield from iter_jobs(child)


def find_job(node: JobNode, name: str) -> Job | JobArray:
    """The job called ``name`` in the graph; ``KeyError`` if there is none."""
    for job in iter_jobs(node):
        if job.name == name:
            return job
    raise KeyError(name)
