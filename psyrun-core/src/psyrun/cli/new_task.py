"""``psy new-task``: write a commented task file to start from."""

from __future__ import annotations

from pathlib import Path

import click

from psyrun.cli.common import taskdir_option
from psyrun.exceptions import PsyrunError

TEMPLATE = '''\
"""Task {name}: <what it computes>.

Run it with `psy run {name}`, follow it with `psy status {name}`; the result
file is psy-work/{name}/result.pkl, .npz or .h5 as the store below says (load
it with psyrun.load_result).
"""

from psyrun import Param

# The parameter space: every combination of the values below.
pspace = Param(x=[1, 2, 3]) * Param(repetition=range(2))


def execute(x, repetition):
    """Compute the outputs for one assignment; return them as a dict."""
    return {{"y": x ** 2}}


# Optional: called once in each worker process with its number; the dict it
# returns is passed to every execute() call as extra keyword arguments.
# def setup(proc_id):
#     return {{}}

# --- How the work is cut into jobs (Distribute backend, the default) -------
# max_jobs = 100       # at most this many jobs run in parallel
# min_items = 1        # at least this many assignments per job
# pool_size = 1        # processes per job
# backend = "distribute"   # or "load-balancing"

# --- Files --------------------------------------------------------------
# store = "pickle"     # or "npz", "h5" (pip install 'psyrun[h5]')
# workdir = "psy-work"
# resultfile = "psy-work/{name}/result.pkl"
# file_dep = []        # other files whose change reruns the task
# exclude_from_result = []   # output keys to leave out of the result

# --- Scheduler ------------------------------------------------------------
{scheduler_line}{scheduler_section}'''


@click.command("new-task")
@taskdir_option
@click.option("--scheduler", "scheduler_name", default=None, metavar="NAME",
              help="Scheduler the task uses (see psy plugins); default: immediate.")
@click.argument("name")
def new_task(taskdir: str, scheduler_name: str | None, name: str) -> None:
    """Write TASKDIR/task_NAME.py, a commented task file to edit.

    An existing file is never overwritten.
    """
    from psyrun.plugins.manager import get_plugin_manager
    from psyrun.tasks import task_path

    path = task_path(taskdir, name)
    if path.exists():
        raise PsyrunError(f"{path} exists already; choose another name or edit that file.")
    manager = get_plugin_manager()
    if scheduler_name is None:
        scheduler_cls = manager.resolve("scheduler", "immediate")
        line = '# scheduler = "immediate"   # runs the jobs on this machine\n'
    else:
        record = manager.get("scheduler", scheduler_name)
        scheduler_cls = record.implementation
        line = f"scheduler = {record.name!r}\n"
    section = scheduler_cls.task_template()
    if any(ln.startswith("scheduler =") for ln in section.splitlines()):
        line = ""  # the scheduler's own section names it already
    text = TEMPLATE.format(name=name, scheduler_line=line,
                           scheduler_section=section)
    Path(taskdir).mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x") as f:  # "x": never clobber a file created meanwhile
            f.write(text)
    except FileExistsError:
        raise PsyrunError(f"{path} exists already; choose another name or edit that file.") \
            from None
    # The commands to go on must find the file: name a task directory that
    # is not the default.
    from psyrun.tasks import DEFAULT_TASKDIR

    where = "" if Path(taskdir) == Path(DEFAULT_TASKDIR) else f" --taskdir {taskdir}"
    click.echo(f"Wrote {path}. Edit it, check it with: psy test{where} {name}; run it with: "
               f"psy run{where} {name}")
