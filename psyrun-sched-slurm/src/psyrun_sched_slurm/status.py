"""Job status from squeue, sacct and the exit records on disk.

No single source tells the truth about a Slurm job:

* ``squeue`` knows pending and running jobs, and finished ones only for
  MinJobAge seconds;
* ``sacct`` (only with accounting) knows finished jobs, but its records arrive
  late, so "not yet in sacct" does not mean "gone";
* the exit record our batch script appends to knows how a job ended, even when
  Slurm has forgotten it, but nothing of jobs that never ran to the end.

:func:`element_status` combines them in that order; a job that none of them
knows although psyrun submitted it was cancelled before it could run (Slurm
drops cancelled pending array elements from both ``squeue`` and ``sacct``).
The parsing functions are pure, so they are tested on recorded outputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
from psyrun.scheduler.base import JobState, JobStatus, combine_states

#: Format of the squeue call: id (``123`` or ``123_4``), state, reason.
SQUEUE_FORMAT = "%i|%T|%r"
#: Fields of the sacct call.
SACCT_FIELDS = "JobID,State,ExitCode,Reason"

#: Slurm's state names (squeue and sacct) -> psyrun's.
SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.QUEUED,
    "CONFIGURING": JobState.QUEUED,
    "REQUEUED": JobState.QUEUED,
    "REQUEUE_FED": JobState.QUEUED,
    "REQUEUE_HOLD": JobState.QUEUED,
    "RESV_DEL_HOLD": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.FAILED,
    "NODE_FAIL": JobState.FAILED,
    "OUT_OF_MEMORY": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
}

#: Why a job was cancelled, in words for ``psy status``.
REASONS = {
    "DependencyNeverSatisfied": "a dependency failed or was cancelled",
    "InvalidDependency": "a dependency failed or was cancelled",
    # sacct's word for the same, once squeue has forgotten the job
    "Dependency": "a dependency failed or was cancelled",
}

_JOB_ID = re.compile(r"^(\d+)(?:_(\d+|\[[^\]]*\]))?(?:\+.*)?$")


@attrs.frozen
class SlurmEntry:
    """One line of squeue or sacct about a job or an array element."""

    state: str
    reason: str | None = None
    exit_code: int | None = None
    signal: int | None = None

    @property
    def job_state(self) -> JobState:
        # sacct writes "CANCELLED by 0"; truncated fields may end in "+".
        word = self.state.split()[0].rstrip("+") if self.state.strip() else ""
        return SLURM_STATES.get(word, JobState.UNKNOWN)


#: (Slurm job id, array task id or None) -> entry.
Entries = dict[tuple[str, "int | None"], SlurmEntry]


def expand_tasks(spec: str) -> list[int]:
    """Task ids of a bracketed range such as ``[0-3,7,9-10%2]``."""
    tasks = []
    for part in spec.strip("[]").split("%")[0].split(","):
        if "-" in part:
            first, last = part.split("-", 1)
            tasks.extend(range(int(first), int(last) + 1))
        elif part.strip():
            tasks.append(int(part))
    return tasks


def _add(entries: Entries, job_id: str, entry: SlurmEntry) -> None:
    match = _JOB_ID.match(job_id.strip())
    if not match:
        return  # job steps (123.batch) and anything unexpected
    slurm_id, task = match.groups()
    if task is None:
        entries[(slurm_id, None)] = entry
    elif task.startswith("["):
        for t in expand_tasks(task):
            entries.setdefault((slurm_id, t), entry)
    else:
        entries[(slurm_id, int(task))] = entry


def _reason(text: str) -> str | None:
    text = text.strip()
    return None if text in ("", "None", "(null)") else text


def parse_squeue(text: str) -> Entries:
    """Entries from ``squeue -h -r -t all -o '%i|%T|%r'``."""
    entries: Entries = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) >= 3:
            _add(entries, fields[0], SlurmEntry(fields[1].strip(), _reason(fields[2])))
    return entries


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``"2:0"`` -> (2, 0): exit code and signal as sacct writes them."""
    code, _, signal = text.strip().partition(":")
    try:
        return int(code), int(signal or 0)
    except ValueError:
        return None, None


def parse_sacct(text: str) -> Entries:
    """Entries from ``sacct -n -X -P -o JobID,State,ExitCode,Reason``."""
    entries: Entries = {}
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) >= 4:
            code, signal = parse_exit_code(fields[2])
            _add(entries, fields[0], SlurmEntry(fields[1].strip(), _reason(fields[3]), code, signal))
    return entries


def _lookup(entries: Entries, slurm_id: str, task: int | None) -> SlurmEntry | None:
    entry = entries.get((slurm_id, task))
    if entry is None and task is not None:
        # An array's own line stands for the elements that never ran on their own.
        entry = entries.get((slurm_id, None))
    return entry


def element_status(
    job_id: str,
    *,
    slurm_id: str,
    task: int | None,
    name: str | None,
    log: Path | None,
    squeue: Entries,
    sacct: Entries,
    exit_code: int | None,
    submitted: bool,
    squeue_answered: bool = True,
    stopped: bool = False,
) -> JobStatus:
    """The status of one job or array element from everything that is known of it.

    ``exit_code`` comes from the exit record on disk, ``stopped`` tells that
    the record says Slurm stopped the job with SIGTERM; ``submitted`` says
    psyrun has its own record of the job (so "nobody knows it" means it vanished).
    """
    queued = _lookup(squeue, slurm_id, task)
    if queued is not None and not queued.job_state.finished:
        state = queued.job_state
        reason = queued.reason if state is JobState.QUEUED else None
        return JobStatus(job_id, state, name=name, log=log, reason=reason)
    final = queued or _lookup(sacct, slurm_id, task)
    if final is not None and final.job_state is not JobState.UNKNOWN:
        state = final.job_state
        accounted = _lookup(sacct, slurm_id, task)
        code = exit_code
        if code is None and accounted is not None:
            code = accounted.exit_code if not accounted.signal else None
        if code is None and state is JobState.COMPLETED:
            code = 0
        if state is JobState.CANCELLED:
            code = None  # whatever the killed program returned says nothing
        return JobStatus(job_id, state, name=name, exit_code=code, log=log,
                         reason=describe(final, code))
    if exit_code is not None and stopped:
        return JobStatus(job_id, JobState.CANCELLED, name=name, log=log,
                         reason="stopped by Slurm (scancel or the time limit); "
                                "Slurm no longer knows which")
    if exit_code is not None:
        state = JobState.COMPLETED if exit_code == 0 else JobState.FAILED
        reason = None if exit_code == 0 else f"exit code {exit_code} (from the exit record)"
        return JobStatus(job_id, state, name=name, exit_code=exit_code, log=log, reason=reason)
    if submitted and squeue_answered:
        return JobStatus(job_id, JobState.CANCELLED, name=name, log=log,
                         reason="gone from squeue and sacct without an exit record: "
                                "cancelled before it ran, or killed")
    return JobStatus(job_id, JobState.UNKNOWN, name=name, log=log,
                     reason=None if squeue_answered else "squeue did not answer")


def describe(entry: SlurmEntry, exit_code: int | None) -> str | None:
    """Words for a finished job's state: why it failed or was cancelled."""
    state = entry.job_state
    word = entry.state.split()[0].rstrip("+") if entry.state.strip() else ""
    if state is JobState.CANCELLED:
        why = REASONS.get(entry.reason or "")
        if why:
            return f"{why} ({entry.reason})"
        return entry.state if entry.reason is None else f"{entry.state} ({entry.reason})"
    if state is JobState.FAILED:
        if word != "FAILED":
            return word  # TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...
        if exit_code is not None:
            return f"exit code {exit_code}"
        if entry.signal:
            return f"killed by signal {entry.signal}"
        return entry.reason
    return None


def array_status(job_id: str, name: str | None, elements: Iterable[JobStatus]) -> JobStatus:
    """The status of a whole array from its elements' statuses."""
    elements = tuple(elements)
    state = combine_states(e.state for e in elements)
    failed = [(i, e) for i, e in enumerate(elements) if e.state is JobState.FAILED]
    reason = None
    exit_code = None
    if failed:
        exit_code = failed[0][1].exit_code
        shown = ", ".join(str(i) for i, _ in failed[:10]) + (", ..." if len(failed) > 10 else "")
        reason = f"{len(failed)} of {len(elements)} elements failed (indices {shown})"
    return JobStatus(job_id, state, name=name, exit_code=exit_code, reason=reason,
                     elements=elements)


def counts(statuses: Mapping[str, JobStatus]) -> dict[JobState, int]:
    """How many jobs and array elements are in each state (for ``psy status``)."""
    result = {state: 0 for state in JobState}
    for status in statuses.values():
        for element in status.elements or (status,):
            result[element.state] += 1
    return result
