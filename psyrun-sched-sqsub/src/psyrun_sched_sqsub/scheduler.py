"""The sqsub scheduler: psyrun's jobs as jobs of Sharcnet's sqsub.

Each job is submitted with ``sqsub`` as the command
``python -m psyrun_sched_sqsub.wrap ... -- argv`` (see
:mod:`psyrun_sched_sqsub.wrap`), with ``-w`` for the jobs it waits for and
``--idfile`` to learn its id.  sqsub has no job arrays, so an array is one
sqsub job per element; its id is the element ids joined by commas
(``"101,102,103"``; a one-element array is ``"101,"``), and a job that depends
on it waits for all of them.

Status combines two sources: ``sqjobs`` for the jobs it still lists (R, Q,
``*Q``, Z) and the exit records the wrapper writes for jobs that have ended,
because sqjobs drops a finished job soon and never tells success from failure.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from psyrun.exceptions import SchedulerArgumentError, SchedulerError
from psyrun.scheduler.base import (
    JobState,
    JobStatus,
    Scheduler,
    combine_states,
    evaluate_scheduler_args,
    substitute_index,
)

from psyrun_sched_sqsub.commands import run_tool
from psyrun_sched_sqsub.options import KNOWN_ARGS, REQUIRED_ARGS, check_values, sqsub_options
from psyrun_sched_sqsub.records import ExitRecord, JobRecord, RecordStore
from psyrun_sched_sqsub.sqjobs import SqjobsRow, interpret_state, parse_sqjobs
from psyrun_sched_sqsub.template import task_template as _task_template
from psyrun_sched_sqsub.wrap import DEFAULT_GRACE


def split_id(job_id: str) -> list[str]:
    """The sqsub job ids behind one of this scheduler's ids.

    >>> split_id("101"), split_id("101,102"), split_id("101,")
    (['101'], ['101', '102'], ['101'])
    """
    return [part for part in job_id.split(",") if part]


def is_array_id(job_id: str) -> bool:
    return "," in job_id


_NO_RECORD = ("it ended without recording how (sqsub may have killed it for exceeding "
              "its run time or memory, or its node failed); see its output file")


class Sqsub(Scheduler):
    """Submit jobs with Sharcnet's sqsub.

    ``workdir`` is where the scheduler keeps its records (``<workdir>/sqsub``);
    psyrun passes the task's work directory.  Without one, the records go to
    ``psy-work/sqsub`` in the current directory.  ``python`` is the
    interpreter the jobs run the wrapper with (default: this one).
    """

    known_args = KNOWN_ARGS
    required_args = REQUIRED_ARGS

    #: Seconds of doubt: a job that sqjobs does not list yet is queued for this
    #: long after its submission (the cluster may take a moment to show it),
    #: and a job that ended without a visible exit record is still running for
    #: this long after its log last changed (a shared file system may show the
    #: record late).  After that, a job without a record has failed.
    listing_grace: float = 30.0
    #: Seconds a job waits for the exit record of a job it depends on.
    dependency_grace: float = DEFAULT_GRACE
    #: sqsub calls running at once when an array is submitted.
    parallel_submissions: int = 4
    #: sqjobs calls (and seconds between them) before its failure is an error.
    sqjobs_attempts: int = 3
    sqjobs_retry_pause: float = 1.0

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *,
                 python: str | None = None) -> None:
        super().__init__(workdir)
        self.python = python or sys.executable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.workdir) if self.workdir else None!r})"

    # ------------------------------------------------------------ records
    @property
    def records(self) -> RecordStore:
        """The on-disk records (looked up on each use: ``workdir`` may be set late)."""
        base = self.workdir if self.workdir is not None else Path("psy-work")
        return RecordStore(Path(base).absolute() / "sqsub")

    # ------------------------------------------------------------ arguments
    def validate_args(self, scheduler_args: Mapping[str, Any] | None, name: str = "") -> None:
        """Refuse unknown keys, a missing ``timelimit`` or ``memory``, and bad values.

        Values that are functions of the job name are checked only when
        ``name`` is given.
        """
        super().validate_args(scheduler_args, name)
        args = dict(scheduler_args or {})
        if name:
            try:
                values = evaluate_scheduler_args(args, name)
            except SchedulerArgumentError:
                raise
            except Exception as exc:
                raise SchedulerArgumentError(
                    f"A scheduler_args function failed for the job {name!r}: "
                    f"{type(exc).__name__}: {exc}. Fix it in the task file.") from exc
        else:
            values = {key: value for key, value in args.items() if not callable(value)}
        check_values(values)

    def _options(self, scheduler_args: Mapping[str, Any] | None, name: str) -> list[str]:
        self.validate_args(scheduler_args, name)
        return sqsub_options(evaluate_scheduler_args(scheduler_args, name))

    # ------------------------------------------------------------ submission
    def _dependencies(self, depends_on: Sequence[str]) -> tuple[list[str], list[Path]]:
        """The ids for sqsub ``-w`` and the exit records the wrapper must check."""
        records = self.records
        wait_for: list[str] = []
        after: list[Path] = []
        for dependency in depends_on:
            for element in split_id(str(dependency)):
                record = records.load_job(element)
                if record is None:
                    wait_for.append(element)  # not ours: sqsub alone can wait for it
                    continue
                after.append(records.exit_path(record.token))
                # A job that has ended needs no -w (sqsub may have forgotten its id).
                if records.read_exit(record.token) is None and not records.killed(record.token):
                    wait_for.append(element)
        return wait_for, after

    def _submit_one(self, argv: Sequence[str], *, name: str, output: Path,
                    options: list[str], wait_for: list[str], after: list[Path],
                    array: str | None = None, index: int | None = None) -> str:
        records = self.records
        token = records.new_token()
        idfile = records.id_path(token)
        output = Path(output).absolute()
        output.parent.mkdir(parents=True, exist_ok=True)
        command = [self.python, "-m", "psyrun_sched_sqsub.wrap",
                   "--record", str(records.exit_path(token)), "--name", name,
                   "--grace", str(self.dependency_grace)]
        for path in after:
            command += ["--after", str(path)]
        command += ["--", *map(str, argv)]
        sqsub = ["sqsub", *options, "-o", str(output), "-j", name]
        if wait_for:
            sqsub += ["-w", ",".join(wait_for)]
        sqsub += [f"--idfile={idfile}", *command]
        result = run_tool(sqsub)
        job_id = self._read_id(idfile, result.stdout)
        records.save_job(JobRecord(id=job_id, token=token, name=name, output=str(output),
                                   submitted=time.time(), array=array, index=index))
        idfile.unlink(missing_ok=True)
        return job_id

    @staticmethod
    def _read_id(idfile: Path, stdout: str) -> str:
        try:
            job_id = idfile.read_text().strip()
        except OSError:
            job_id = ""
        if not job_id:
            # sqsub also says "submitted as jobid 12345".
            words = stdout.split()
            if "jobid" in words and words.index("jobid") + 1 < len(words):
                job_id = words[words.index("jobid") + 1].strip(".")
        if not job_id.isdigit():
            raise SchedulerError(
                f"sqsub did not report the id of the job it submitted (id file {idfile}, "
                f"output {stdout.strip()!r}). Check with sqjobs whether it was submitted.")
        return job_id

    def submit(
        self,
        argv: Sequence[str],
        *,
        name: str,
        output: str | os.PathLike[str],
        depends_on: Sequence[str] = (),
        scheduler_args: Mapping[str, Any] | None = None,
    ) -> str:
        options = self._options(scheduler_args, name)
        wait_for, after = self._dependencies(depends_on)
        return self._submit_one(argv, name=name, output=Path(output), options=options,
                                wait_for=wait_for, after=after)

    def submit_array(
        self,
        n: int,
        argv: Sequence[str],
        *,
        name: str,
        output: str | os.PathLike[str],
        depends_on: Sequence[str] = (),
        scheduler_args: Mapping[str, Any] | None = None,
    ) -> str:
        if n < 1:
            raise ValueError(f"an array needs at least one element, got n={n}")
        options = self._options(scheduler_args, name)
        wait_for, after = self._dependencies(depends_on)

        def element(index: int) -> str:
            return self._submit_one(
                substitute_index([str(a) for a in argv], index),
                name=f"{name}-{index}",
                output=Path(substitute_index([str(output)], index)[0]),
                options=options, wait_for=wait_for, after=after, array=name, index=index)

        # One sqsub call per element: a few at a time, as sqsub may take a
        # second each on a busy login node.
        results: dict[int, str] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=max(1, self.parallel_submissions)) as pool:
            futures = {pool.submit(element, index): index for index in range(n)}
            for future in as_completed(futures):
                try:
                    results[futures[future]] = future.result()
                except BaseException as exc:
                    if failure is None:
                        failure = exc
                        for pending in futures:
                            pending.cancel()
        if failure is not None:
            # Half an array is worse than none: the user would rerun it anyway.
            if results:
                self.kill(list(results.values()))
            raise failure
        ids = [results[index] for index in range(n)]
        return ",".join(ids) if len(ids) > 1 else ids[0] + ","

    # ------------------------------------------------------------ status
    def _listing(self) -> dict[str, SqjobsRow]:
        # A busy login node drops a request now and then: ask again before
        # giving up, so that one hiccup does not end a psy run --wait.
        for attempt in range(self.sqjobs_attempts):
            if attempt:
                time.sleep(self.sqjobs_retry_pause)
            result = run_tool(["sqjobs"], check=False)
            rows = parse_sqjobs(result.stdout)
            if result.returncode == 0 or rows or "jobid" in result.stdout:
                return rows
        raise SchedulerError(
            f"sqjobs failed ({result.stderr.strip() or result.returncode}); "
            "the job states cannot be read now: try again later.")

    def _from_exit(self, job_id: str, record: JobRecord, ended: ExitRecord) -> JobStatus:
        common = {"id": job_id, "name": record.name, "log": record.output}
        if ended.state == "completed":
            return JobStatus(state=JobState.COMPLETED, exit_code=ended.exit_code, **common)
        if ended.state == "failed":
            return JobStatus(state=JobState.FAILED, exit_code=ended.exit_code,
                             reason=ended.reason, **common)
        if ended.state == "cancelled":
            return JobStatus(state=JobState.CANCELLED, reason=ended.reason, **common)
        if ended.state == "terminated":
            if self.records.killed(record.token):
                return JobStatus(state=JobState.CANCELLED, exit_code=ended.exit_code,
                                 reason="killed by psyrun", **common)
            return JobStatus(state=JobState.FAILED, exit_code=ended.exit_code,
                             reason=ended.reason, **common)
        return JobStatus(state=JobState.UNKNOWN, reason=f"exit record says {ended.state!r}",
                         **common)

    def _element_status(self, job_id: str, record: JobRecord | None,
                        row: SqjobsRow | None) -> JobStatus:
        if record is None:
            if row is None:
                return JobStatus(id=job_id, state=JobState.UNKNOWN,
                                 reason="not a job of this task and not listed by sqjobs")
            state, reason = interpret_state(row.state)
            return JobStatus(id=job_id, state=state or JobState.UNKNOWN, name=row.name,
                             reason=reason)
        records = self.records
        ended = records.read_exit(record.token)  # read after the listing: no race with the end
        if ended is not None:
            return self._from_exit(job_id, record, ended)
        common = {"id": job_id, "name": record.name, "log": record.output}
        killed = records.killed(record.token)
        if row is not None:
            state, reason = interpret_state(row.state)
            if state is not None:
                return JobStatus(state=state, reason=reason, **common)
            if killed or row.state == "C":
                return JobStatus(state=JobState.CANCELLED, reason="killed", **common)
            return self._ended_without_record(record, common)
        if killed:
            return JobStatus(state=JobState.CANCELLED, reason="killed by psyrun", **common)
        if (time.time() - record.submitted < self.listing_grace
                and self._log_changed(record) is None):
            return JobStatus(state=JobState.QUEUED, reason="not listed by sqjobs yet", **common)
        return self._ended_without_record(record, common)

    @staticmethod
    def _log_changed(record: JobRecord) -> float | None:
        """When the job last wrote its log, if it did since its submission."""
        try:
            changed = Path(record.output).stat().st_mtime
        except OSError:
            return None
        return changed if changed >= record.submitted - 1 else None

    def _ended_without_record(self, record: JobRecord, common: dict[str, Any]) -> JobStatus:
        """A job sqjobs shows as done, or no longer lists, and whose wrapper recorded nothing.

        On a shared file system the exit record written on the node may show
        up late on the login node; while the job's log was written to
        recently, give the record time to appear.
        """
        last_activity = self._log_changed(record) or record.submitted
        if time.time() - last_activity < self.listing_grace:
            return JobStatus(state=JobState.RUNNING,
                             reason="ended; its exit record is not visible yet", **common)
        return JobStatus(state=JobState.FAILED, reason=_NO_RECORD, **common)

    def status(self, ids: Iterable[str]) -> dict[str, JobStatus]:
        ids = [str(i) for i in ids]
        records = self.records
        elements = {e for i in ids for e in split_id(i)}
        known = {e: records.load_job(e) for e in elements}
        done: dict[str, JobStatus] = {}
        for element, record in known.items():
            if record is not None:
                ended = records.read_exit(record.token)
                if ended is not None:
                    done[element] = self._from_exit(element, record, ended)
        listing = self._listing() if len(done) < len(elements) else {}
        each = {e: done.get(e) or self._element_status(e, known[e], listing.get(e))
                for e in elements}
        result: dict[str, JobStatus] = {}
        for job_id in ids:
            parts = split_id(job_id)
            if not parts:
                result[job_id] = JobStatus(id=job_id, state=JobState.UNKNOWN,
                                           reason="not an id of the sqsub scheduler")
            elif not is_array_id(job_id):
                result[job_id] = each[parts[0]]
            else:
                result[job_id] = self._array_status(job_id, [each[p] for p in parts],
                                                    [known[p] for p in parts])
        return result

    @staticmethod
    def _array_status(job_id: str, elements: list[JobStatus],
                      records: list[JobRecord | None]) -> JobStatus:
        active = [e.state for e in elements
                  if e.state in (JobState.QUEUED, JobState.RUNNING)]
        if not active:
            state = combine_states(e.state for e in elements)
        elif len(active) < len(elements) or JobState.RUNNING in active:
            # Not final while an element may still change, even if one failed:
            # whoever waits for the array must see every element's outcome.
            state = JobState.RUNNING
        else:
            state = JobState.QUEUED
        failed = [e for e in elements if e.state is JobState.FAILED]
        names = [r.array for r in records if r is not None and r.array]
        reason = None
        if failed:
            reason = f"{len(failed)} of {len(elements)} elements failed"
        return JobStatus(id=job_id, state=state, name=names[0] if names else None,
                         exit_code=failed[0].exit_code if failed else None,
                         reason=reason, elements=tuple(elements))

    # ------------------------------------------------------------ kill, jobs
    def kill(self, ids: Iterable[str]) -> None:
        """sqkill the unfinished jobs among ``ids`` that this scheduler submitted.

        Ids of other jobs are ignored: psyrun never kills a job it did not submit.
        """
        records = self.records
        targets = []
        for job_id in ids:
            for element in split_id(str(job_id)):
                record = records.load_job(element)
                if record is None or records.read_exit(record.token) is not None:
                    continue
                records.mark_killed(record.token)
                targets.append(element)
        if not targets:
            return
        result = run_tool(["sqkill", *targets], check=False)
        if result.returncode != 0:
            # sqkill also fails for jobs that ended meanwhile; only a job still
            # listed as active is a real failure.
            listing = self._listing()
            alive = [t for t in targets
                     if t in listing and interpret_state(listing[t].state)[0] is not None]
            if alive:
                raise SchedulerError(
                    f"sqkill could not kill the jobs {', '.join(alive)}: "
                    f"{result.stderr.strip() or result.stdout.strip()}. Try sqkill by hand.")

    def jobs(self) -> list[str]:
        records = self.records
        candidates = [r.id for r in records.all_jobs() if records.read_exit(r.token) is None]
        if not candidates:
            return []
        return [job_id for job_id, status in self.status(candidates).items()
                if not status.state.finished]

    @classmethod
    def task_template(cls) -> str:
        return _task_template()
