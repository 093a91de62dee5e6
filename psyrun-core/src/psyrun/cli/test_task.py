"""``psy test``: run one assignment of each task, here and now."""

from __future__ import annotations

import traceback

import click

from psyrun.cli.common import load, short_warnings, taskdir_option, tasks_argument
from psyrun.exceptions import JobFailedError


@click.command("test")
@taskdir_option
@tasks_argument
@short_warnings
def test_task(taskdir: str, tasks: tuple[str, ...]) -> None:
    """Run the first assignment of TASKS (default: all) in this process.

    No scheduler and no files: setup(0) and execute are called directly and
    the result is printed, to check a task before submitting it.
    """
    from psyrun.backend.base import call_setup, check_parameter_outputs

    failed = []
    for task in load(taskdir, tasks):
        params = next(iter(task.pspace.iterate()), None)
        if params is None:
            click.echo(f"{task.name}: the parameter space is empty; nothing to test")
            continue
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        try:
            kwargs = call_setup(task, 0)
        except Exception:
            click.echo(f"{task.name}: setup(0) raised:", err=True)
            click.echo(traceback.format_exc().rstrip(), err=True)
            failed.append(task.name)
            continue
        try:
            result = task.execute(**params, **kwargs)
            if not isinstance(result, dict):
                raise TypeError(f"execute must return a dict, it returned "
                                f"{type(result).__name__}")
            check_parameter_outputs(params, result)
        except Exception:
            click.echo(f"{task.name}: execute({shown}) raised:", err=True)
            click.echo(traceback.format_exc().rstrip(), err=True)
            failed.append(task.name)
            continue
        click.echo(f"{task.name}: execute({shown}) -> {result!r}")
    if failed:
        raise JobFailedError(f"the test of {', '.join(failed)} failed (traceback above).")
