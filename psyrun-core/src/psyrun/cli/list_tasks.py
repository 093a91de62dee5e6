"""``psy list``: the names of the tasks."""

from __future__ import annotations

import click

from psyrun.cli.common import taskdir_option


@click.command("list")
@taskdir_option
def list_tasks(taskdir: str) -> None:
    """List the names of the tasks in the task directory."""
    from psyrun.tasks import task_names

    for name in task_names(taskdir):
        click.echo(name)
