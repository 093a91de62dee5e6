"""The worker: runs one job of a task's job graph in this process.

Every job psyrun submits is the same command::

    python -m psyrun.worker --taskdir DIR --task NAME --job JOB [--index I] [--cwd DIR]
        [--plugin KIND=MODULE:NAME]...

It loads ``DIR/task_NAME.py`` like ``psy`` does (``--cwd`` makes relative
paths in the task file mean what they meant when ``psy run`` was called) and
calls ``backend.run_job(JOB, I)``.  The scheduler sends stdout and stderr to
the job's log file, ``psy-work/<task>/<task>:<job>.log`` (arrays:
``<task>:<job>:<index>.log``), where a failure leaves its traceback.

Exit codes: 0 success, 1 the job failed (an exception, or items that failed),
2 the task file is broken.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import traceback
from collections.abc import Sequence

from psyrun.exceptions import JobFailedError, PsyrunError


def worker_argv(python: str, taskdir: str, task: str, job: str, cwd: str,
                index: str | None = None, plugins: dict[str, str] | None = None) -> list[str]:
    """The command line that runs ``job`` of ``task``; ``index`` may be a placeholder.

    ``plugins`` (kind -> ``"module:qualname"``) are the implementations
    ``psy run`` resolved; the worker imports them directly instead of building
    the plugin manager, which saves start-up time in every job.
    """
    argv = [python, "-m", "psyrun.worker", "--taskdir", taskdir, "--task", task,
            "--job", job, "--cwd", cwd]
    if index is not None:
        argv += ["--index", index]
    for kind, path in sorted((plugins or {}).items()):
        argv += ["--plugin", f"{kind}={path}"]
    return argv


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m psyrun.worker",
                                     description="Run one job of a psyrun task.")
    parser.add_argument("--taskdir", required=True, help="directory of the task files")
    parser.add_argument("--task", required=True, help="task name (task_<name>.py)")
    parser.add_argument("--job", required=True, help="job name within the task")
    parser.add_argument("--index", type=int, default=None, help="array element index")
    parser.add_argument("--cwd", default=None, help="directory psy run was called from")
    parser.add_argument("--plugin", action="append", default=[], metavar="KIND=MODULE:NAME",
                        help="a plugin psy run resolved (store, backend, scheduler)")
    return parser


def run(taskdir: str, task: str, job: str, index: int | None = None,
        plugins: dict[str, str] | None = None) -> None:
    """Load the task and run one of its jobs (raises on failure)."""
    from pathlib import Path

    from psyrun.tasks import TaskDef, task_path

    taskdef = TaskDef(task_path(Path(taskdir), task), plugins=plugins)
    taskdef.create_backend().run_job(job, index)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cwd:
        os.chdir(args.cwd)
    label = f"{args.task}:{args.job}" + (f":{args.index}" if args.index is not None else "")
    print(f"psyrun worker {label} on {socket.gethostname()} (pid {os.getpid()}) "
          f"started {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    try:
        plugins = dict(p.split("=", 1) for p in args.plugin if "=" in p)
        run(args.taskdir, args.task, args.job, args.index, plugins)
    except JobFailedError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    except PsyrunError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 2
    except BaseException:  # the traceback is what the user needs from the log
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    print(f"psyrun worker {label} finished {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
