"""Walking a task's job graph: skip what is up to date, submit the rest.

:func:`run_tasks` is ``psy run``.  It works in phases so that nothing is
submitted unless every task can go:

1. lock every task (:mod:`psyrun.tasklock`) and refuse a task whose jobs of
   an earlier run are still queued or running;
2. build each job graph and check every job's ``scheduler_args`` with the
   scheduler;
3. walk the graphs and submit (printing ``. <task>:<job>`` for a submitted
   job, ``- <task>:<job>`` for a skipped one), passing the scheduler ids of
   the jobs a job waits for, and record the ids in ``jobs.json``
   (:mod:`psyrun.jobrecord`);
4. wait for the jobs if they die with this process (``immediate``) or if
   asked to, and report failures and where the results are.

The walk follows make's rule: a job runs if it is out of date or if a job
before it in the same chain runs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from psyrun.exceptions import (
    JobFailedError,
    SchedulerArgumentError,
    TaskDefinitionError,
    TaskWorkdirDirtyWarning,
)
from psyrun.jobrecord import SubmittedJob, load_record, new_record, save_record
from psyrun.jobs import Job, JobArray, JobChain, JobGroup, JobNode, is_up_to_date, iter_jobs
from psyrun.scheduler.base import ARRAY_INDEX, JobState, JobStatus, evaluate_scheduler_args
from psyrun.tasklock import TaskLock, TaskLockedError
from psyrun.worker import worker_argv

Echo = Callable[[str], None]


def full_name(task: Any, job: Job | JobArray) -> str:
    return f"{task.name}:{job.name}"


def log_path(task: Any, job: Job | JobArray, index: str | None = None) -> Path:
    """The log of a job; ``index`` (or the array placeholder) for array elements."""
    suffix = "" if index is None else f":{index}"
    return task.taskworkdir / f"{full_name(task, job)}{suffix}.log"


def job_scheduler_args(task: Any, job: Job | JobArray, scheduler: Any) -> dict[str, Any]:
    """The job's scheduler arguments, callables evaluated, ``n_cpus`` added."""
    args = evaluate_scheduler_args(job.scheduler_args, full_name(task, job))
    known = getattr(scheduler, "known_args", frozenset())
    if "n_cpus" not in args and (not known or "n_cpus" in known):
        args["n_cpus"] = job.n_cpus
    return args


@attrs.define
class TaskRun:
    """One task on its way through ``psy run``."""

    task: Any
    scheduler: Any
    lock: TaskLock
    backend: Any = None
    graph: JobNode | None = None
    submitted: list[SubmittedJob] = attrs.Factory(list)


class Submitter:
    """Walks one task's graph and submits what is out of date."""

    def __init__(self, run: TaskRun, echo: Echo) -> None:
        self.run = run
        self.echo = echo

    def walk(self, node: JobNode, depends_on: list[str], force: bool) -> tuple[list[str], bool]:
        """Submit ``node``; return the ids later jobs wait for and whether anything ran."""
        if isinstance(node, (Job, JobArray)):
            task = self.run.task
            if (not force and node.is_up_to_date()) or (
                    isinstance(node, JobArray) and node.n == 0):
                self.echo(f"- {full_name(task, node)}")
                return depends_on, False
            job_id = self._submit(node, depends_on)
            self.echo(f". {full_name(task, node)}")
            return [job_id], True
        if isinstance(node, JobChain):
            submitted_any = False
            for child in node.jobs:
                depends_on, submitted = self.walk(child, depends_on, force or submitted_any)
                submitted_any = submitted_any or submitted
            return depends_on, submitted_any
        if isinstance(node, JobGroup):
            ids: list[str] = []
            submitted_any = False
            for child in node.jobs:
                child_ids, submitted = self.walk(child, depends_on, force)
                if submitted:
                    ids.extend(child_ids)
                    submitted_any = True
            return (ids if submitted_any else depends_on), submitted_any
        raise TypeError(f"not a job graph node: {node!r}")

    def _submit(self, job: Job | JobArray, depends_on: list[str]) -> str:
        task, scheduler = self.run.task, self.run.scheduler
        task.taskworkdir.mkdir(parents=True, exist_ok=True)
        args = job_scheduler_args(task, job, scheduler)
        cwd = str(Path.cwd())
        plugins = task.plugin_paths()
        if isinstance(job, JobArray):
            argv = worker_argv(task.python, str(task.taskdir), task.file_task_name, job.name,
                               cwd, index=ARRAY_INDEX, plugins=plugins)
            job_id = scheduler.submit_array(
                job.n, argv, name=full_name(task, job), output=log_path(task, job, ARRAY_INDEX),
                depends_on=list(depends_on), scheduler_args=args)
            self.run.submitted.append(SubmittedJob(full_name(task, job), str(job_id), job.n))
        else:
            argv = worker_argv(task.python, str(task.taskdir), task.file_task_name, job.name,
                               cwd, plugins=plugins)
            job_id = scheduler.submit(
                argv, name=full_name(task, job), output=log_path(task, job),
                depends_on=list(depends_on), scheduler_args=args)
            self.run.submitted.append(SubmittedJob(full_name(task, job), str(job_id)))
        # Recorded at once, so psy kill finds the jobs even if psy dies right now.
        save_record(task.taskworkdir, new_record(task.name, scheduler, self.run.submitted))
        return str(job_id)


def unfinished_jobs(task: Any, scheduler: Any) -> list[str]:
    """Ids of jobs of the task's last run that are still queued or running."""
    record = load_record(task.taskworkdir)
    if record is None or not record.jobs:
        return []
    if record.in_process and not record.process_alive():
        return []  # they died with the process that ran them
    try:
        statuses = scheduler.status(record.ids)
    except Exception as exc:
        # Going on could start a second run beside jobs that still run, and
        # its jobs.json would hide them from psy kill: refuse, with a way out.
        from psyrun.jobrecord import RECORD_NAME

        raise TaskLockedError(
            f"Cannot tell whether the jobs of the last run of task {task.name} "
            f"({', '.join(record.ids)}) are still queued or running: {exc} Try again when "
            f"the scheduler answers. If you know those jobs are gone, delete "
            f"{os.path.relpath(Path(task.taskworkdir) / RECORD_NAME)} and retry."
        ) from exc
    return [i for i, s in statuses.items()
            if s.state in (JobState.QUEUED, JobState.RUNNING)]


def _last_line(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        lines = [line.strip().removeprefix("Error: ")
                 for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


def _failures(run: TaskRun, statuses: dict[str, JobStatus]) -> list[str]:
    problems = []
    for job in run.submitted:
        status = statuses.get(job.id)
        if status is None or status.state is JobState.COMPLETED:
            continue
        if status.cancelled_by_dependency:
            continue  # a consequence of an earlier failure, reported there
        parts = [e for e in status.elements if e.state is not JobState.COMPLETED] or [status]
        for part in parts:
            log = part.log or status.log
            why = _last_line(log)
            where = f" (log: {os.path.relpath(log)})" if log else ""
            code = (f" with exit code {part.exit_code}"
                    if part.state is JobState.FAILED and part.exit_code is not None else "")
            problems.append(f"{part.name or job.name} {part.state.value}{code}{where}"
                            + (f": {why}" if why else ""))
            if len(problems) > 5:
                return problems
    return problems


#: Jobs per core at most on a scheduler that runs them on this machine.
LOCAL_JOBS_PER_CORE = 1


def _keeps_dirty_result(task: Any) -> bool:
    """True if the task must not overwrite a result of an older definition."""
    result = task.resultfile
    return (not task.overwrite_dirty and result.exists()
            and not is_up_to_date(task.dependencies, [result]))


def limit_jobs_to_local_cores(task: Any, scheduler: Any) -> None:
    """Lower the default ``max_jobs`` to one job per core for in-process schedulers.

    A ``max_jobs`` the task file (or psy-conf.py) sets is kept as it is.
    On one machine, jobs beyond the number of cores only add the start-up
    cost of a Python process each (about a quarter of a second); tasks whose
    items take very different times should use the load-balancing backend.
    Cluster schedulers keep the task's ``max_jobs``.
    """
    cores = getattr(scheduler, "cores", None)
    if ("max_jobs" in getattr(task, "given", ()) or not getattr(scheduler, "in_process", False)
            or not isinstance(cores, int)):
        return
    limit = max(1, LOCAL_JOBS_PER_CORE * cores // max(1, task.pool_size))
    task.max_jobs = min(task.max_jobs, limit)


def _shared_scheduler(task: Any, cache: dict[type, Any]) -> Any:
    """The task's scheduler; in-process schedulers are shared so they share the cores."""
    spec = task._scheduler_spec
    if task._scheduler is None and (isinstance(spec, (str, type))):
        from psyrun.plugins.manager import get_plugin_manager

        cls = get_plugin_manager().resolve("scheduler", spec)
        if getattr(cls, "in_process", False):
            if cls not in cache:
                cache[cls] = task.scheduler
            task._scheduler = cache[cls]
    return task.scheduler


def _check_file_dep(task: Any) -> None:
    """Refuse a ``file_dep`` that does not exist.

    A missing dependency would make the task out of date for ever, so every
    ``psy run`` would compute it again without saying why.
    """
    missing = [p for p in getattr(task, "file_dep", ()) if not Path(p).exists()]
    if missing:
        raise TaskDefinitionError(
            f"{os.path.relpath(task.path)}: file_dep {os.path.relpath(missing[0])} does not "
            "exist (file_dep paths are relative to the task directory). Create the file or "
            "fix the path.")


def run_tasks(tasks: Sequence[Any], *, cont: bool = False, wait: bool = False,
              echo: Echo = print, show_progress: bool | None = None) -> None:
    """``psy run``: submit every task's out-of-date jobs (see the module docstring).

    Raises :class:`JobFailedError` if a job failed (after waiting) and
    :class:`TaskLockedError` if a task is being run already.
    """
    from psyrun.progress import wait_for_jobs

    for task in tasks:
        _check_file_dep(task)
    schedulers: dict[type, Any] = {}
    runs: list[TaskRun] = []
    try:
        # 1. locks and leftovers of earlier runs
        for task in tasks:
            scheduler = _shared_scheduler(task, schedulers)
            run = TaskRun(task, scheduler, TaskLock(task.taskworkdir, task.name))
            run.lock.acquire()
            runs.append(run)
            busy = unfinished_jobs(task, scheduler)
            if busy:
                raise TaskLockedError(
                    f"Task {task.name} still has queued or running jobs ({', '.join(busy)}). "
                    f"Wait for them (psy status {task.name}) or cancel them "
                    f"(psy kill {task.name}).")
        # 2. graphs and arguments
        dirty = [r for r in runs if not cont and _keeps_dirty_result(r.task)]
        for run in dirty:
            warnings.warn(
                f"Task {run.task.name} changed since {os.path.relpath(run.task.resultfile)} "
                "was written, and overwrite_dirty = False keeps it: skipped. Run psy run -c "
                f"{run.task.name} to add to it, or psy clean {run.task.name} to start over.",
                TaskWorkdirDirtyWarning, stacklevel=2)
            run.lock.release()
        runs = [r for r in runs if r not in dirty]
        for run in runs:
            limit_jobs_to_local_cores(run.task, run.scheduler)
            run.backend = run.task.create_backend()
            run.graph = run.backend.create_job(cont=cont)
            for job in iter_jobs(run.graph):
                args = job_scheduler_args(run.task, job, run.scheduler)
                try:
                    run.scheduler.validate_args(args, full_name(run.task, job))
                except SchedulerArgumentError as exc:
                    raise TaskDefinitionError(
                        f"{os.path.relpath(run.task.path)}: scheduler_args: {exc}") from None
        # 3. submission
        for run in runs:
            assert run.graph is not None
            run.backend.before_submit()
            Submitter(run, echo).walk(run.graph, [], False)
        # 4. waiting and reporting
        waiting = [r for r in runs if r.submitted
                   and (wait or getattr(r.scheduler, "in_process", False))]
        statuses: dict[int, dict[str, JobStatus]] = {}
        for scheduler in {id(r.scheduler): r.scheduler for r in waiting}.values():
            ids = [j.id for r in waiting if r.scheduler is scheduler for j in r.submitted]
            statuses[id(scheduler)] = wait_for_jobs(scheduler, ids, label="psy run",
                                                    show=show_progress)
        problems = []
        for run in runs:
            results = ", ".join(os.path.relpath(p) for p in
                                run.task.create_backend().result_files())
            if run in waiting:
                failed = _failures(run, statuses[id(run.scheduler)])
                problems.extend(f"{run.task.name}: {p}" for p in failed)
                if not failed:
                    echo(f"{run.task.name}: results in {results}")
            elif run.submitted:
                echo(f"{run.task.name}: submitted {len(run.submitted)} job(s); results will "
                     f"be in {results}. Follow them with: psy status {run.task.name}")
            else:
                echo(f"{run.task.name}: up to date; results in {results}")
        if problems:
            failed_tasks = " ".join(sorted({p.split(":", 1)[0] for p in problems}))
            raise JobFailedError(
                f"{len(problems)} job(s) failed:\n  " + "\n  ".join(problems)
                + f"\nFix the cause, then compute what is missing with: psy run -c {failed_tasks}")
    finally:
        for run in runs:
            run.lock.release()
