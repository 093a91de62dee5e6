"""``psy kill``: cancel the jobs of tasks."""

from __future__ import annotations

import os
import signal

import click

from psyrun.cli.common import load, short_warnings, taskdir_option, tasks_argument


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

    for task in load(taskdir, tasks):
        record = load_record(task.taskworkdir)
        if record is None or not record.jobs:
            click.echo(f"{task.name}: no jobs recorded")
            continue
        if record.in_process:
            if record.process_alive():
                # Ctrl-C for that process: it stops its jobs before exiting.
                os.kill(record.pid, signal.SIGINT)
                click.echo(f"{task.name}: interrupted psy run (pid {record.pid}), "
                           "which stops its jobs")
            else:
                click.echo(f"{task.name}: no running jobs")
            continue
        task.scheduler.kill(record.ids)
        click.echo(f"{task.name}: cancelled {', '.join(j.name + ' (' + j.id + ')' for j in record.jobs)}")
