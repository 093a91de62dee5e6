"""The backend interface: how a task is cut into jobs and how a job runs.

A backend is created for one task (``Backend(task)``, ``task`` a
:class:`psyrun.tasks.TaskDef`) in two places:

* in ``psy run``, where :meth:`Backend.create_job` returns the job graph
  (:mod:`psyrun.jobs`) that the runner submits to the scheduler;
* in the worker (``python -m psyrun.worker``), where
  :meth:`Backend.run_job` runs one job of that graph by name (and array index).

``psy status`` asks it for :meth:`Backend.summary`, and with ``-v`` for
:meth:`Backend.get_missing` and :meth:`Backend.get_failed`.

Everything a backend writes lives in ``task.taskworkdir`` (``psy-work/<task>``)
apart from the result file.  Files are written atomically (temporary file and
rename) so that a killed job never leaves a truncated file behind.

Items that raise are not fatal: :func:`evaluate_items` records each failure
with its parameters and traceback (:class:`FailedItem`), keeps going with the
other items, and the backend stores the failures where :meth:`get_failed`
finds them; ``psy run -c`` computes them again because they have no result.
"""

from __future__ import annotations

import abc
import json
import pickle
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from psyrun.exceptions import JobFailedError
from psyrun.store.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from psyrun.jobs import JobNode
    from psyrun.tasks import TaskDef


@attrs.frozen
class FailedItem:
    """An assignment whose ``execute`` raised."""

    params: dict[str, Any]
    error: str  # "ValueError: message"
    traceback: str


@attrs.frozen
class TaskSummary:
    """Counts of a task's assignments, as shown by ``psy status``.

    ``done`` have a result, ``failed`` raised in ``execute``, ``missing`` have
    neither (not run yet, or lost with a killed job).  Queued and running jobs
    come from the scheduler, not from here.
    """

    total: int
    done: int
    failed: int
    missing: int
    #: Assignments being computed right now, for backends that can tell
    #: (load-balancing); None where the backend cannot (they count as missing).
    in_progress: int | None = None


class Backend(abc.ABC):
    """Cuts a task into jobs, runs them, and reports what is done.

    Subclasses implement the abstract methods; the job names used in the graph
    are the names :meth:`run_job` receives.
    """

    def __init__(self, task: TaskDef) -> None:
        self.task = task
        #: Where the backend keeps its files: ``<workdir>/<task name>``.
        self.workdir: Path = task.taskworkdir
        #: The plan of the run being submitted: made by :meth:`create_job`,
        #: written by :meth:`before_submit`, read by the jobs.
        self.planfile: Path = self.workdir / "plan.json"
        self._plan: dict[str, Any] | None = None

    @abc.abstractmethod
    def create_job(self, cont: bool = False) -> JobNode:
        """The job graph computing the task.

        With ``cont`` (``psy run -c``) existing results are kept and only the
        missing assignments are computed.  Called in ``psy run`` before
        submission; files the jobs need are written in :meth:`before_submit`.
        """

    def before_submit(self) -> None:
        """Called by ``psy run`` after :meth:`create_job` once every check passed.

        The place to write files the jobs read: ``create_job`` itself should
        write nothing, so that a refused run leaves no trace.  The default
        writes the plan ``create_job`` left in ``self._plan``, if any.
        """
        if self._plan is not None:
            atomic_write_bytes(self.planfile, json.dumps(self._plan).encode())

    def read_plan(self) -> dict[str, Any]:
        """The plan of the run the calling job belongs to."""
        try:
            return json.loads(self.planfile.read_text())
        except FileNotFoundError:
            raise JobFailedError(
                f"{self.planfile} is missing: jobs of task {self.task.name} must be "
                "submitted by psy run."
            ) from None

    @abc.abstractmethod
    def run_job(self, job: str, index: int | None = None) -> None:
        """Run job ``job`` (element ``index`` of an array) in this process.

        Raise :class:`psyrun.exceptions.JobFailedError` to make the job fail
        with a message (the worker exits with code 1).
        """

    @abc.abstractmethod
    def get_missing(self) -> Any:
        """A parameter space of the assignments without a result."""

    def get_failed(self) -> list[FailedItem]:
        """The assignments whose ``execute`` raised in the last run."""
        return []

    @abc.abstractmethod
    def summary(self) -> TaskSummary:
        """Counts of total, done, failed and missing assignments (cheap)."""

    def result_files(self) -> list[Path]:
        """The files holding the task's results."""
        return [self.task.resultfile]


# ---------------------------------------------------------------- helpers for backends
def save_failures(path: Path, failures: Sequence[FailedItem]) -> None:
    """Store failure records (pickle: parameters may be any Python value)."""
    records = [attrs.asdict(f, recurse=False) for f in failures]
    atomic_write_bytes(path, pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL))


def load_failures(path: Path) -> list[FailedItem]:
    try:
        with open(path, "rb") as f:
            return [FailedItem(**r) for r in pickle.load(f)]
    except FileNotFoundError:
        return []


def call_setup(task: TaskDef, proc_id: int) -> dict[str, Any]:
    """Call the task's ``setup(proc_id)`` (if any) and check what it returns."""
    from psyrun.exceptions import JobFailedError

    if task.setup is None:
        return {}
    result = task.setup(proc_id)
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise JobFailedError(
            f"setup() of task {task.name} returned {type(result).__name__}; it must return "
            "a dict of extra keyword arguments for execute (or None)."
        )
    return dict(result)


def evaluate_items(
    execute: Callable[..., Any],
    items: Iterable[dict[str, Any]],
    extra_kwargs: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], list[FailedItem]]:
    """Call ``execute(**params, **extra_kwargs)`` for each item.

    Returns the result rows (the parameters plus the outputs, without the
    ``exclude`` keys) and the failures.  An item that raises, or that returns
    something other than a dict, is a failure; the others go on.
    """
    extra = dict(extra_kwargs or {})
    exclude = frozenset(exclude)
    rows: list[dict[str, Any]] = []
    failures: list[FailedItem] = []
    for params in items:
        try:
            output = execute(**params, **extra) if extra else execute(**params)
            if not isinstance(output, Mapping):
                raise TypeError(
                    f"execute must return a dict, it returned {type(output).__name__}"
                )
            if output.keys() & params.keys():
                check_parameter_outputs(params, output)
        except Exception as exc:
            # Start the traceback at execute: the frame of this loop is noise.
            tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
            text = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
            failures.append(FailedItem(dict(params), f"{type(exc).__name__}: {exc}", text))
            continue
        row = dict(params)
        row.update(output)
        for key in exclude:
            row.pop(key, None)
        rows.append(row)
    return rows, failures


def check_parameter_outputs(params: Mapping[str, Any], output: Mapping[str, Any]) -> None:
    """Refuse an output that has a parameter's name but another value.

    It would replace the parameter in the result row, so the row would claim
    an assignment that was never computed (and ``psy status`` and ``psy run
    -c`` would count the real one as missing).  Returning a parameter with
    its own value, as ``return dict(params, y=...)`` does, is fine.
    """
    for key in output.keys() & params.keys():
        if not _same_value(output[key], params[key]):
            raise ValueError(
                f"execute returned {key}={output[key]!r} for the parameter "
                f"{key}={params[key]!r}: an output must not replace a parameter. "
                f"Give that output another name.")


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        equal = a == b
        if isinstance(equal, bool):
            return equal or (a != a and b != b)  # nan is nan
        import numpy as np

        return bool(np.array_equal(a, b, equal_nan=True))
    except Exception:  # values that cannot be compared are not the same
        try:
            import numpy as np

            return bool(np.array_equal(a, b))
        except Exception:
            return False


def rows_to_columns(rows: Sequence[Mapping[str, Any]],
                    keys: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Columns from rows; a key absent in a row is filled with nan."""
    if keys is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        keys = list(seen)
    nan = float("nan")
    return {key: [row.get(key, nan) for row in rows] for key in keys}


def columns_to_rows(data: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Rows (dicts) from equally long columns."""
    keys = list(data)
    # 1-d numpy columns: tolist() gives Python scalars and is much faster to
    # walk; cells of higher-dimensional columns stay arrays.
    columns = [data[k].tolist() if getattr(data[k], "ndim", 0) == 1 else data[k]
               for k in keys]
    for values in zip(*columns):
        yield dict(zip(keys, values))
