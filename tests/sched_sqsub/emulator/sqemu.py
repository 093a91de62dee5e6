"""State and job runner shared by the sqsub emulator's ``sqsub``, ``sqjobs`` and ``sqkill``.

Sharcnet's clusters, and with them the real sqsub, are retired.  These three
executables behave like the documented command-line tools so that psyrun's
sqsub scheduler can be tested end to end:

``sqsub [options] command [args...]``
    Options: ``-r TIME`` (required; minutes or a number with m/h/d),
    ``--mpp=SIZE`` (required; memory per process, e.g. ``1G``), ``-n NCPUS``,
    ``-N NODES``, ``-q QUEUE``, ``-f FLAG``, ``--pack``, ``-o OUTFILE``,
    ``-e ERRFILE``, ``-i INFILE``, ``-j NAME``, ``-w``/``--waitfor=ID[,ID...]``,
    ``--idfile=FILE``.  Short options take their value as the next word or
    attached (``-N2``), long ones after ``=`` or as the next word.  An unknown
    option, a missing ``-r`` or ``--mpp``, a malformed value or a ``-w`` id
    that does not exist is an error on stderr and exit status 1.  On success
    it writes the id to ``--idfile``, prints ``submitted as jobid N`` and runs
    the job in the background: the job waits until every job in ``-w`` is
    done (finished in any way, as sqsub did: it does not cancel the dependents
    of a failed job), then runs the command in the directory sqsub was called
    from, with its stdout and stderr appended to ``-o`` (stderr to ``-e`` if
    given).
``sqjobs [-u USER] [-a] [jobid...]``
    Two header lines, then one row per job: jobid, user, queue, state, ncpus,
    nodes, time, and the job's name (``-j``) or command.  States: ``Q``
    queued, ``*Q`` queued waiting for the jobs in ``-w``, ``R`` running,
    ``D`` done, ``C`` cancelled (``Z``, suspended, never occurs here).  A job
    that has ended is listed for ``SQSUB_EMULATOR_LINGER`` seconds (default 5)
    and then forgotten, as the real tool forgot old jobs.  With ids, the exit
    status is 1 if any of them is not pending, running or suspended.
``sqkill jobid...``
    Ends the job's process group (SIGTERM, then SIGKILL after a grace period)
    and marks it ``C``; exit status 1 for a job that does not exist or has
    already ended.

The state lives in the directory named by ``SQSUB_EMULATOR_STATE``: one JSON
file per job (``jobs/<id>.json``: state, pid, exit code, name, ...), a job id
counter and a lock file.

Left out: scheduling itself (every job starts as soon as its dependencies are
done: no CPU limits, fair share or queue waiting), enforcement of the run time
(``-r``) and memory (``--mpp``) limits, several nodes and MPI launching
(``-N``, ``-q mpi`` just run the command once), suspension (``sqsuspend``,
``sqresume``, state ``Z``), the summary lines and the per-job resource report
some versions appended to the output file, other users' jobs, and email.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

STATE_ENV = "SQSUB_EMULATOR_STATE"
LINGER_ENV = "SQSUB_EMULATOR_LINGER"
ACTIVE = ("Q", "*Q", "R", "Z")
FINAL = ("D", "C")
FIRST_ID = 1001
KILL_GRACE = 3.0

TIME_PATTERN = re.compile(r"^\d+(?:\.\d+)?[mhd]?$")
MEMORY_PATTERN = re.compile(r"^\d+(?:\.\d+)?[kmgt]?b?$", re.IGNORECASE)


def fail(tool: str, message: str) -> int:
    print(f"{tool}: error: {message}", file=sys.stderr)
    return 1


def state_root(tool: str) -> Path:
    value = os.environ.get(STATE_ENV)
    if not value:
        sys.exit(fail(tool, f"the emulator needs {STATE_ENV} set to its state directory"))
    root = Path(value)
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    return root


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@contextlib.contextmanager
def locked(root: Path):
    with open(root / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def job_path(root: Path, job_id: str) -> Path:
    return root / "jobs" / f"{job_id}.json"


def read_job(root: Path, job_id: str) -> dict | None:
    if not job_id.isdigit():
        return None
    try:
        return json.loads(job_path(root, job_id).read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_job(root: Path, job: dict) -> None:
    path = job_path(root, str(job["id"]))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(job))
    os.replace(tmp, path)


def all_jobs(root: Path) -> list[dict]:
    jobs = []
    for path in (root / "jobs").glob("*.json"):
        with contextlib.suppress(ValueError, FileNotFoundError):
            jobs.append(json.loads(path.read_text()))
    return sorted(jobs, key=lambda job: job["id"])


def next_id(root: Path) -> int:
    """A new job id (call with the lock held)."""
    counter = root / "next-id"
    value = int(counter.read_text()) if counter.exists() else FIRST_ID
    counter.write_text(str(value + 1))
    return value


def update_job(root: Path, job_id: str, **changes) -> dict | None:
    """Change a job's fields unless it has already ended; return the job as it is now."""
    with locked(root):
        job = read_job(root, job_id)
        if job is None or job["state"] in FINAL:
            return job
        job.update(changes)
        write_job(root, job)
        return job


def group_alive(pgid: int) -> bool:
    """True while a process of the group is alive (zombies do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def end_groups(pgids: list[int], grace: float = KILL_GRACE) -> None:
    """SIGTERM each process group, then SIGKILL what is left after ``grace`` seconds."""
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    remaining = list(pgids)
    while remaining and time.monotonic() < deadline:
        remaining = [p for p in remaining if group_alive(p)]
        if remaining:
            time.sleep(0.05)
    for pgid in remaining:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


# --------------------------------------------------------------------- runner
def run_job(root: Path, job_id: str) -> int:
    """Body of a job's background process: wait for ``-w``, run, record the end."""
    job = read_job(root, job_id)
    if job is None:
        return 1
    while True:
        job = read_job(root, job_id)
        if job is None or job["state"] in FINAL:
            return 0  # killed while waiting
        waiting = [d for d in job["waitfor"]
                   if (read_job(root, d) or {"state": "D"})["state"] not in FINAL]
        if not waiting:
            break
        time.sleep(0.1)
    job = update_job(root, job_id, state="R", started=time.time(), pid=os.getpid(),
                     pgid=os.getpgrp(), node=socket.gethostname().split(".")[0])
    if job is None or job["state"] != "R":
        return 0
    with contextlib.ExitStack() as files:
        try:
            stdin = (files.enter_context(open(job["infile"], "rb")) if job.get("infile")
                     else subprocess.DEVNULL)
            out = files.enter_context(open(job["outfile"], "ab"))
            err = files.enter_context(open(job["errfile"], "ab")) if job.get("errfile") else out
        except OSError as exc:
            update_job(root, job_id, state="D", exit_code=1, finished=time.time(),
                       reason=f"cannot open the job's files: {exc}")
            return 1
        try:
            child = subprocess.Popen(job["command"], cwd=job["cwd"], stdin=stdin, stdout=out,
                                     stderr=err)
        except OSError as exc:
            err.write(f"sqsub: cannot run {job['command'][0]}: {exc}\n".encode())
            code = 127
        else:
            code = child.wait()
    update_job(root, job_id, state="D", exit_code=code, finished=time.time())
    return 0


if __name__ == "__main__":
    # Started by sqsub as: python sqemu.py STATE_DIR JOB_ID
    sys.exit(run_job(Path(sys.argv[1]), sys.argv[2]))
