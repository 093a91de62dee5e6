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
    failed, 2 for a broken task file or bad usage, 130 if interrupted (Ctrl-C
    or psy kill).
    """
    from psyrun.runner import run_tasks

    try:
        run_tasks(load(taskdir, tasks), cont=cont, wait=wait, echo=click.echo)
    except KeyboardInterrupt:
        # Instead of click's bare "Aborted!": say what became of the jobs and
        # how to go on.  The immediate scheduler stopped its jobs already.
        names = " ".join(tasks)
        click.echo(
            "\nInterrupted: jobs running inside this psy run were stopped (jobs on a "
            "cluster keep running; see psy status). Results of finished jobs are kept; "
            f"compute the rest with: psy run -c{' ' + names if names else ''}", err=True)
        raise SystemExit(130) from None
