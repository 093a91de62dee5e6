"""``psy clean``: delete what psyrun wrote for tasks."""

from __future__ import annotations

import os
import shutil

import click

from psyrun.cli.common import load, short_warnings, taskdir_option, tasks_argument


@click.command()
@taskdir_option
@tasks_argument
@short_warnings
def clean(taskdir: str, tasks: tuple[str, ...]) -> None:
    """Delete the work directory (inputs, outputs, logs, result) of TASKS (default: all).

    A result file outside the work directory is deleted too.  A task that a
    psy run is working on is left alone.
    """
    from psyrun.runner import unfinished_jobs
    from psyrun.tasklock import TaskLock, TaskLockedError

    left: list[str] = []
    for task in load(taskdir, tasks):
        lock = TaskLock(task.taskworkdir, task.name, command="psy clean")
        existed = task.taskworkdir.exists()
        try:
            lock.acquire()  # refuses while a psy run holds the task
        except TaskLockedError as exc:
            left.append(str(exc))  # left alone; the other tasks are still cleaned
            continue
        try:
            busy = unfinished_jobs(task, task.scheduler)
        except TaskLockedError as exc:  # the scheduler cannot say: keep everything
            lock.release()
            left.append(str(exc))
            continue
        if busy:
            lock.release()
            left.append(
                f"Task {task.name} has queued or running jobs ({', '.join(busy)}); nothing "
                f"of it was deleted. Cancel them first with: psy kill {task.name}")
            continue
        if task.resultfile.exists() and task.taskworkdir not in task.resultfile.parents:
            task.resultfile.unlink()
            click.echo(f"{task.name}: deleted {os.path.relpath(task.resultfile)}")
        shutil.rmtree(task.taskworkdir)  # the lock goes with it
        click.echo(f"{task.name}: deleted {os.path.relpath(task.taskworkdir)}"
                   if existed else f"{task.name}: nothing to clean")
    if left:
        raise TaskLockedError("\n".join(left))
