"""The ``psy`` command line.

Each subcommand lives in its own module and is imported only when it is
needed, so ``psy --help`` does not pay for numpy or PyTables.  Errors that
psyrun raises on purpose become one line on stderr: exit code 2 for bad usage
or a broken task file, 1 for a failed job or item.  ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import click

from psyrun.exceptions import JobFailedError, PsyrunError

#: subcommand -> "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "run": "psyrun.cli.run:run",
    "status": "psyrun.cli.status:status",
    "kill": "psyrun.cli.kill:kill",
    "clean": "psyrun.cli.clean:clean",
    "list": "psyrun.cli.list_tasks:list_tasks",
    "merge": "psyrun.cli.merge:merge",
    "test": "psyrun.cli.test_task:test_task",
    "new-task": "psyrun.cli.new_task:new_task",
    "plugins": "psyrun.cli.plugins:plugins",
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        available = [
            name for name, target in COMMANDS.items()
            if importlib.util.find_spec(target.split(":")[0]) is not None
        ]
        return sorted(available + list(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attribute)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if args and exc.message.startswith("No such command"):
                import difflib

                close = difflib.get_close_matches(args[0], self.list_commands(ctx), n=1)
                if close:
                    exc.message += f" Did you mean '{close[0]}'?"
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PsyrunError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1 if isinstance(exc, JobFailedError) else 2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="psyrun", prog_name="psy")
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """psyrun: evaluate a function on every point of a parameter space.

    Task files named task_<name>.py in the task directory (default psy-tasks)
    define what to compute; results go to psy-work/<name>/.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main() -> None:
    """Entry point of the ``psy`` console script."""
    cli(prog_name="psy")


if __name__ == "__main__":
    main()
