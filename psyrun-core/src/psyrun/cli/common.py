"""Options and helpers shared by the task commands of ``psy``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import click

from psyrun.tasks import DEFAULT_TASKDIR

taskdir_option = click.option(
    "--taskdir", default=DEFAULT_TASKDIR, show_default=True,
    type=click.Path(file_okay=False),
    help="Directory holding the task files (task_<name>.py).")

tasks_argument = click.argument("tasks", nargs=-1, metavar="[TASKS]...")


def _format_warning(message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, line: str | None = None) -> str:
    return f"Warning: {message}\n"


def short_warnings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show psyrun's warnings as one ``Warning: ...`` line each."""
    import functools

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous = warnings.formatwarning
        warnings.formatwarning = _format_warning  # type: ignore[assignment]
        try:
            return command(*args, **kwargs)
        finally:
            warnings.formatwarning = previous  # type: ignore[assignment]

    return wrapper


def load(taskdir: str, names: tuple[str, ...]) -> list[Any]:
    from psyrun.tasks import load_tasks

    return load_tasks(taskdir, names)
