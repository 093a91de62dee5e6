"""``psy kill``: cancel the jobs of tasks."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

import click

from psyrun.cli.common import load, short_warnings, taskdir_option, tasks_argument
from psyrun.exceptions import PsyrunError


@click.command()
@taskdir_option
@tasks_argument
@short_warnings
def kill(taskdir: str, tasks: tuple[str, ...]) -> None:
    """Cancel the queued and running jobs of TASKS (default: all tasks).

    Only the jobs that psy run recorded for these tasks are cancelled, never
    other jobs of yours.  Jobs of the immediate scheduler run inside the
    psy run process that started them; that process is interrupted.
    """
    from psyrun.jobrecord import load_record

    interrupted: set[int] = set()
    stuck = False
    for task in load(taskdir, tasks):
        record = load_record(task.taskworkdir)
        if record is None or not record.jobs:
            click.echo(f"{task.name}: no jobs recorded")
            continue
        if record.in_process:
            if (record.host != socket.gethostname()
                    and _lock_pid(task.taskworkdir) == record.pid):
                # A shared file system: the run is on another login node,
                # where no signal from here reaches it.
                click.echo(f"{task.name}: its jobs run inside psy run (pid {record.pid}) on "
                           f"{record.host}; run psy kill {task.name} there")
                stuck = True
            elif record.pid in interrupted:
                click.echo(f"{task.name}: stopped with the psy run (pid {record.pid}) "
                           "interrupted above")
            elif record.process_alive() and _lock_pid(task.taskworkdir) == record.pid:
                # Ctrl-C for that process: it stops its jobs before exiting.
                # Sent once: a second one could cut its clean-up short.
                os.kill(record.pid, signal.SIGINT)
                interrupted.add(record.pid)
                others = _other_tasks_of(record.pid, task)
                also = (f"; it also ran {', '.join(others)}, stopped as well"
                        if others else "")
                click.echo(f"{task.name}: interrupted psy run (pid {record.pid}), "
                           f"which stops its jobs{also}")
            else:
                # No lock of that pid: the run is over (and the pid may now be
                # another process's, which must not be signalled).
                click.echo(f"{task.name}: no running jobs")
            continue
        ids = _unfinished(task.scheduler, record.ids)
        if not ids:
            click.echo(f"{task.name}: no queued or running jobs")
            continue
        task.scheduler.kill(ids)
        click.echo(f"{task.name}: cancelled "
                   + ", ".join(f"{j.name} ({j.id})" for j in record.jobs if j.id in ids))
    if stuck:
        raise PsyrunError("Some jobs run on another host and were not stopped (see above).")


def _lock_pid(taskworkdir: Path) -> int | None:
    """The pid of the psy run holding the task's lock, if one does."""
    from psyrun.tasklock import lock_holder

    pid = (lock_holder(taskworkdir) or {}).get("pid")
    return pid if isinstance(pid, int) else None


def _other_tasks_of(pid: int, task: Any) -> list[str]:
    """The other tasks in the task's workdir that the psy run ``pid`` is running.

    A psy run of several tasks runs their jobs in one process: interrupting
    it stops all of them, which the user should be told.
    """
    try:
        siblings = sorted(d for d in task.workdir.iterdir() if d.is_dir())
    except OSError:
        return []
    return [d.name for d in siblings if d.name != task.name and _lock_pid(d) == pid]


def _unfinished(scheduler: Any, ids: list[str]) -> list[str]:
    """The ids among ``ids`` that are not finished (all of them if the scheduler cannot say).

    Finished jobs are left out so that psy kill does not claim to cancel
    them; a scheduler that does not answer gets them all, as kill ignores
    finished ones anyway.
    """
    try:
        statuses = scheduler.status(ids)
    except Exception:
        return list(ids)
    return [i for i in ids if i not in statuses or not statuses[i].state.finished]
