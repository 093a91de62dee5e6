"""``psy run``: compute the tasks that are not up to date."""

from __future__ import annotations

import click

from psyrun.cli.common import load, short_warnings, taskdir_option, tasks_argument


@click.command()
@taskdir_option
@click.option("-c", "--continue", "cont", is_flag=True,
              help="Keep existing results and compute only the missing assignments "
                   "(also retries failed ones).")
@click.option("--wait", is_flag=True,
              help="Wait for the jobs to finish, also on a cluster scheduler.")
@tasks_argument
@short_warnings
def run(taskdir: str, cont: bool, wait: bool, tasks: tuple[str, ...]) -> None:
    """Run TASKS (default: all tasks) that are not up to date.

    Prints '. <task>:<job>' for each job submitted and '- <task>:<job>' for each
    job skipped because its results are newer than the task file.  With the
    immediate scheduler psy run waits for the jobs; with a cluster scheduler it
    returns after submitting (unless --wait).  Exit code 1 if a job or an item
    failed, 2 for a broken task file or bad usage.
    """
    from psyrun.runner import run_tasks

    run_tasks(load(taskdir, tasks), cont=cont, wait=wait, echo=click.echo)
