"""The scheduler interface: what psyrun asks of anything that runs its jobs.

A job is an argument list (``python -m psyrun.worker ...``) with a name of the
form ``<task>:<job>``, a file for its output, the ids of the jobs it must wait
for, and scheduler arguments (time limit, memory, ...).  A scheduler returns an
opaque id string per submission; ids are only ever handed back to the same
scheduler (as dependencies, to :meth:`Scheduler.status` or to
:meth:`Scheduler.kill`), so a scheduler may encode anything in them.

An array submission runs ``n`` elements.  Wherever :data:`ARRAY_INDEX`
appears in the argument list or the output path, the scheduler replaces it by
the element's index, ``0`` to ``n - 1``.  The id of an array stands for all
of its elements: a job that depends on it waits for every element.
"""

from __future__ import annotations

import abc
import enum
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from psyrun.exceptions import SchedulerArgumentError

#: Placeholder for the element index in the arguments of an array job.
ARRAY_INDEX = "{psyrun_array_index}"


class JobState(str, enum.Enum):
    """The normalised state of a job, whatever the scheduler calls it."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        """True once the job will not change state any more."""
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)

    def __str__(self) -> str:
        return self.value


def _to_path(value: Any) -> Path | None:
    return None if value is None else Path(value)


@attrs.frozen
class JobStatus:
    """What a scheduler knows of one job (or one whole array)."""

    id: str
    state: JobState = attrs.field(converter=JobState)
    name: str | None = None
    exit_code: int | None = None
    #: The job's output file, where its traceback ends up when it fails.
    log: Path | None = attrs.field(default=None, converter=_to_path)
    #: The scheduler's own words for why the job is in this state.  A job
    #: cancelled because a job it depends on did not complete must say
    #: "dependency" here (see :attr:`cancelled_by_dependency`).
    reason: str | None = None
    #: For an array: the status of each element, in index order.
    elements: tuple[JobStatus, ...] = ()

    @property
    def cancelled_by_dependency(self) -> bool:
        """True if the job never ran because a job before it failed.

        Such a job is a consequence of that failure, reported there, not a
        failure of its own.
        """
        return self.state is JobState.CANCELLED and "dependency" in (self.reason or "").lower()


def combine_states(states: Iterable[JobState]) -> JobState:
    """The state of an array from the states of its elements.

    An array is finished only when every element is: while one element still
    runs or waits, the array is running (or queued if none has started), even
    if another element already failed, so that whoever waits for the array
    sees every element's outcome.  Once all are finished, failure wins (it
    needs the user's attention), then cancellation; an array is completed
    only when every element is.
    """
    states = set(states)
    if not states:
        return JobState.UNKNOWN
    if JobState.RUNNING in states:
        return JobState.RUNNING
    if JobState.QUEUED in states:
        return JobState.QUEUED if states == {JobState.QUEUED} else JobState.RUNNING
    for state in (JobState.FAILED, JobState.UNKNOWN, JobState.CANCELLED):
        if state in states:
            return state
    return JobState.COMPLETED


def substitute_index(values: Sequence[str], index: int) -> list[str]:
    """Replace :data:`ARRAY_INDEX` by ``index`` in each value."""
    return [v.replace(ARRAY_INDEX, str(index)) for v in values]


def evaluate_scheduler_args(
    scheduler_args: Mapping[str, Any] | None, name: str
) -> dict[str, Any]:
    """Resolve scheduler arguments whose values are callables of the job name.

    A callable that raises is the task file's mistake: it is reported as a
    :class:`SchedulerArgumentError` naming the key and the job, not as a
    traceback out of ``psy run``.
    """
    result = {}
    for key, value in (scheduler_args or {}).items():
        if not callable(value):
            result[key] = value
            continue
        try:
            result[key] = value(name)
        except SchedulerArgumentError:
            raise
        except Exception as exc:
            raise SchedulerArgumentError(
                f"scheduler_args[{key!r}] is a function that failed for the job {name!r}: "
                f"{type(exc).__name__}: {exc}. Fix it in the task file so that it returns "
                f"a value for every job name (the jobs are named <task>:<job>)."
            ) from exc
    return result


def check_known_args(
    scheduler_args: Mapping[str, Any] | None,
    known: Iterable[str],
    scheduler_name: str,
    required: Iterable[str] = (),
) -> None:
    """Raise :class:`SchedulerArgumentError` for unknown or missing keys."""
    known = sorted(known)
    given = set(scheduler_args or {})
    unknown = sorted(given - set(known))
    if unknown:
        raise SchedulerArgumentError(
            f"Unknown scheduler_args for the {scheduler_name} scheduler: "
            f"{', '.join(unknown)}. Known: {', '.join(known)}."
        )
    absent = [key for key in required if key not in given]
    if absent:
        raise SchedulerArgumentError(
            f"The {scheduler_name} scheduler needs scheduler_args "
            f"{', '.join(repr(k) for k in absent)}; add them to the task file, "
            f"for example scheduler_args = {{{', '.join(repr(k) + ': ...' for k in absent)}}}."
        )


class Scheduler(abc.ABC):
    """Runs psyrun's jobs: here (``immediate``) or on a cluster.

    Subclasses implement :meth:`submit`, :meth:`submit_array`, :meth:`kill`
    and :meth:`status`; the other methods have working defaults.
    """

    #: Scheduler arguments this scheduler understands (checked before submission).
    known_args: frozenset[str] = frozenset()
    #: Scheduler arguments a task must give.
    required_args: frozenset[str] = frozenset()
    #: True if :meth:`submit` returns only when the job has finished.
    blocking: bool = False
    #: True if the jobs run inside this process's lifetime and die with it (as
    #: with ``immediate``): ``psy run`` then waits for them before it exits.
    #: False for cluster schedulers, whose jobs outlive the submitting process.
    in_process: bool = False

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        #: Where the scheduler may keep its own files (id files, scripts).
        self.workdir = None if workdir is None else Path(workdir)

    @abc.abstractmethod
    def submit(
        self,
        argv: Sequence[str],
        *,
        name: str,
        output: str | os.PathLike[str],
        depends_on: Sequence[str] = (),
        scheduler_args: Mapping[str, Any] | None = None,
    ) -> str:
        """Submit one job and return its id.

        ``output`` receives the job's stdout and stderr.  The job starts only
        after every job in ``depends_on`` completed successfully; if one of
        them fails or is cancelled, this job is cancelled, never left waiting
        for ever.
        """

    @abc.abstractmethod
    def submit_array(
        self,
        n: int,
        argv: Sequence[str],
        *,
        name: str,
        output: str | os.PathLike[str],
        depends_on: Sequence[str] = (),
        scheduler_args: Mapping[str, Any] | None = None,
    ) -> str:
        """Submit ``n`` jobs that differ only in :data:`ARRAY_INDEX`; return one id for all."""

    @abc.abstractmethod
    def kill(self, ids: Iterable[str]) -> None:
        """Cancel the jobs with these ids; ids of finished jobs are ignored."""

    @abc.abstractmethod
    def status(self, ids: Iterable[str]) -> dict[str, JobStatus]:
        """The status of each id; an id the scheduler has never seen is ``unknown``."""

    def jobs(self) -> list[str]:
        """Ids of the jobs psyrun submitted through this scheduler that are not finished."""
        return []

    def validate_args(self, scheduler_args: Mapping[str, Any] | None, name: str = "") -> None:
        """Check ``scheduler_args`` before anything is submitted.

        The default accepts everything if :attr:`known_args` is empty.
        """
        if self.known_args or self.required_args:
            check_known_args(scheduler_args, self.known_args, type(self).__name__,
                             self.required_args)

    def wait(
        self,
        ids: Iterable[str],
        timeout: float | None = None,
        poll_interval: float = 0.5,
        on_poll: Callable[[dict[str, JobStatus]], None] | None = None,
    ) -> dict[str, JobStatus]:
        """Poll :meth:`status` until every job has finished (or ``timeout`` passed)."""
        ids = list(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            statuses = self.status(ids)
            if on_poll is not None:
                on_poll(statuses)
            if all(s.state.finished for s in statuses.values()):
                return statuses
            if deadline is not None and time.monotonic() > deadline:
                return statuses
            time.sleep(poll_interval)

    @classmethod
    def task_template(cls) -> str:
        """The scheduler section ``psy new-task --scheduler NAME`` writes (commented Python)."""
        return "# This scheduler takes no scheduler_args.\nscheduler_args = {}\n"
