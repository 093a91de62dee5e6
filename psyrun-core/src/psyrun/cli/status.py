"""``psy status``: how far each task is."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import click

from psyrun.cli.common import load, short_warnings, taskdir_option, tasks_argument


def job_counts(task: Any) -> dict[str, Any]:
    """Queued and running job units of the task's last ``psy run``, from its scheduler.

    ``None`` counts mean the scheduler cannot be asked (the jobs run inside
    another ``psy run`` process, or the scheduler failed to answer).
    """
    from psyrun.jobrecord import load_record
    from psyrun.scheduler.base import JobState

    record = load_record(task.taskworkdir)
    counts: dict[str, Any] = {"queued": 0, "running": 0, "note": None, "failed_jobs": []}
    if record is None or not record.jobs:
        return counts
    if record.in_process:
        from psyrun.tasklock import lock_holder

        holder = lock_holder(task.taskworkdir) or {}
        if record.process_alive():
            counts.update(queued=None, running=None,
                          note=f"jobs run inside psy run (pid {record.pid})")
        elif record.host != socket.gethostname() and holder.get("pid") == record.pid:
            # Another login node on a shared file system: no pid to check
            # from here, but its lock says the run goes on.
            counts.update(queued=None, running=None,
                          note=f"jobs run inside psy run (pid {record.pid}) on {record.host}")
        return counts
    try:
        statuses = task.scheduler.status(record.ids)
    except Exception as exc:  # the cluster may be unreachable: say so, show the rest
        counts.update(queued=None, running=None,
                      note=f"cannot ask the scheduler: {type(exc).__name__}: {exc}")
        return counts
    for status in statuses.values():
        for part in status.elements or (status,):
            if part.state is JobState.QUEUED:
                counts["queued"] += 1
            elif part.state is JobState.RUNNING:
                counts["running"] += 1
            elif part.state is JobState.FAILED:
                # The jobs died, not items: they hold no failure record, so
                # the scheduler's exit code and the log are all there is.
                log = part.log or status.log
                counts["failed_jobs"].append({
                    "job": part.name or status.name or part.id, "id": part.id,
                    "exit_code": part.exit_code,
                    "log": os.path.relpath(log) if log else None})
    return counts


#: Failed jobs listed by name before the rest are only counted.
MAX_FAILED_JOBS_SHOWN = 10


def _show(value: Any) -> str:
    return "?" if value is None else str(value)


@click.command()
@taskdir_option
@click.option("-v", "--verbose", is_flag=True,
              help="List the missing and the failed assignments.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@tasks_argument
@short_warnings
def status(taskdir: str, verbose: bool, as_json: bool, tasks: tuple[str, ...]) -> None:
    """Show total, done, queued, running, failed and missing per task.

    Queued and running count jobs (array elements); the others count
    parameter assignments.
    """
    from psyrun.backend.table import value_key
    from psyrun.jobs import is_up_to_date

    reports = []
    for task in load(taskdir, tasks):
        backend = task.create_backend()
        summary = backend.summary()
        results = [p for p in backend.result_files() if p.exists()]
        counts = job_counts(task)
        report: dict[str, Any] = {
            "task": task.name, "total": summary.total, "done": summary.done,
            **counts,
            "failed": summary.failed, "missing": summary.missing,
            "in_progress": getattr(summary, "in_progress", None),
            "results": [os.path.relpath(p) for p in results],
            # The counts are those of the current task file, read against the
            # old result; say that psy run would compute the task again.
            "out_of_date": bool(results) and not counts["queued"] and not counts["running"]
            and counts["note"] is None and not is_up_to_date(task.dependencies, results),
        }
        if verbose:
            failed = backend.get_failed()
            keys = list(task.pspace.keys())
            failed_keys = {tuple(value_key(f.params.get(k), k) for k in keys) for f in failed}
            report["missing_assignments"] = [
                p for p in backend.get_missing().iterate()
                if tuple(value_key(p.get(k), k) for k in keys) not in failed_keys]
            report["failed_assignments"] = [
                {"params": f.params, "error": f.error, "traceback": f.traceback}
                for f in failed]
        report["keeps_dirty_result"] = not task.overwrite_dirty
        reports.append(report)
    if as_json:
        click.echo(json.dumps(reports, indent=1, default=_jsonable))
        return
    for report in reports:
        click.echo(
            f"{report['task']}: {report['total']} total, {report['done']} done, "
            f"{_show(report['queued'])} queued, {_show(report['running'])} running, "
            f"{report['failed']} failed, {report['missing']} missing"
            + (f", {report['in_progress']} in progress"
               if report["in_progress"] is not None else ""))
        if report["note"]:
            click.echo(f"  ({report['note']})")
        for job in report["failed_jobs"][:MAX_FAILED_JOBS_SHOWN]:
            code = "" if job["exit_code"] is None else f", exit code {job['exit_code']}"
            log = "" if job["log"] is None else f", log: {job['log']}"
            click.echo(f"  failed job {job['job']} (id {job['id']}{code}{log})")
        if len(report["failed_jobs"]) > MAX_FAILED_JOBS_SHOWN:
            click.echo(f"  ... and {len(report['failed_jobs']) - MAX_FAILED_JOBS_SHOWN} more "
                       "failed jobs (psy status --json lists them all)")
        for path in report["results"]:
            click.echo(f"  results: {path}")
        if report["out_of_date"]:
            name = report["task"]
            rerun = ("skips it (overwrite_dirty = False)" if report["keeps_dirty_result"]
                     else "computes it again")
            click.echo(f"  out of date: the task file (or a file_dep) changed since the results "
                       f"were written; psy run {name} {rerun}, psy run -c {name} keeps the rows "
                       "still in the parameter space")
        if verbose:
            if report["missing_assignments"]:
                click.echo("  missing:")
                for params in report["missing_assignments"]:
                    click.echo(f"    {_params(params)}")
            if report["failed_assignments"]:
                click.echo("  failed:")
                for failure in report["failed_assignments"]:
                    click.echo(f"    {_params(failure['params'])}: {failure['error']}")
                    for line in failure["traceback"].rstrip().splitlines():
                        click.echo(f"      {line}")


def _jsonable(value: Any) -> Any:
    """NumPy values as JSON numbers and lists (what a script reading --json wants)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())
