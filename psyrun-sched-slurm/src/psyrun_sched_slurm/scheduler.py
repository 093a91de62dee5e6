"""The Slurm scheduler: psyrun's jobs as sbatch jobs and job arrays.

* ``submit`` writes a batch script (see :mod:`psyrun_sched_slurm.batch_script`)
  and calls ``sbatch --parsable`` once; ``submit_array`` calls it once per
  chunk of at most MaxArraySize elements (:mod:`psyrun_sched_slurm.arrays`).
* Dependencies are ``afterok`` with ``--kill-on-invalid-dep=yes``: a job whose
  dependency failed is cancelled, not left pending for ever.
* Ids are the Slurm job ids, joined with ``+`` for an array split in chunks;
  a JSON record per submission (:mod:`psyrun_sched_slurm.records`) in
  ``<workdir>/slurm/`` remembers offsets, logs and the exit record.
* ``status`` combines squeue, sacct and the exit records
  (:mod:`psyrun_sched_slurm.status`); ``kill`` cancels exactly the given ids.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from psyrun.exceptions import SchedulerError
from psyrun.scheduler.base import ARRAY_INDEX, JobState, JobStatus, Scheduler

from psyrun_sched_slurm import arrays, batch_script, sbatch_options, status
from psyrun_sched_slurm.cluster import cluster_config
from psyrun_sched_slurm.commands import run_slurm
from psyrun_sched_slurm.records import RecordBook, Submission, slurm_ids_of
from psyrun_sched_slurm.template import task_template

#: Sub-directory of the workdir holding scripts, records and exit records.
STATE_DIRNAME = "slurm"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SLURM_ID = re.compile(r"^\d+(_\d+)?$")
#: squeue calls (and seconds between them) before its silence counts as no answer.
SQUEUE_ATTEMPTS = 3
SQUEUE_RETRY_PAUSE = 1.0


def _exit_fields(record: batch_script.ExitRecord | None) -> dict[str, Any]:
    if record is None:
        return {"exit_code": None}
    return {"exit_code": record.code, "stopped": record.stopped}


def _literal(path: Path) -> str:
    """``path`` for sbatch's --output, which expands %-patterns; %% is a literal %."""
    return str(path).replace("%", "%%")


def _log_path(output: str | os.PathLike[str]) -> Path:
    """The absolute log path; its directory is created now, since a job whose
    log directory is missing fails without a word (Slurm has nowhere to write)."""
    path = Path(output).absolute()
    if ARRAY_INDEX not in str(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


class Slurm(Scheduler):
    """Submits psyrun's jobs to Slurm with sbatch.

    ``workdir`` is where the scheduler keeps its batch scripts and records
    (``<workdir>/slurm``); psyrun passes the task's workdir.  Without one
    (``Slurm()``), scripts and exit records go next to each job's output file
    and the records live only as long as this object, so a later process
    knows the jobs only from squeue and sacct.
    """

    known_args = sbatch_options.KNOWN_ARGS

    def __init__(self, workdir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(workdir)
        self._book = RecordBook(None)

    # ------------------------------------------------------------ files
    def _state_dir(self, output: Path | None = None) -> Path | None:
        if self.workdir is not None:
            return Path(self.workdir).absolute() / STATE_DIRNAME
        if output is not None:
            return output.parent / f".{STATE_DIRNAME}"
        return None

    def _records(self) -> RecordBook:
        # The workdir may be set after construction (psyrun gives it the task's).
        self._book.directory = self._state_dir() / "records" if self.workdir is not None else None
        return self._book

    def _write_script(self, argv: Sequence[str], name: str, output: Path,
                      array: bool) -> tuple[Path, Path]:
        state = self._state_dir(output)
        assert state is not None
        stem = f"{_UNSAFE.sub('_', name)}-{uuid.uuid4().hex[:8]}"
        script = state / "scripts" / f"{stem}.sh"
        exits = state / "exits" / f"{stem}.exits"
        script.parent.mkdir(parents=True, exist_ok=True)
        exits.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(batch_script.render(argv, name=name, exits=exits,
                                              output=output if array else None))
        script.chmod(0o755)
        return script, exits

    # ------------------------------------------------------------ submission
    def validate_args(self, scheduler_args: Mapping[str, Any] | None, name: str = "") -> None:
        sbatch_options.validate(scheduler_args)
        if name:
            sbatch_options.sbatch_options(scheduler_args, name)

    @staticmethod
    def _dependencies(depends_on: Sequence[str]) -> list[str]:
        return [sid for job in depends_on for sid in slurm_ids_of(job)]

    @staticmethod
    def _sbatch(options: list[str], script: Path, offset: int | None = None) -> str:
        argv = ["sbatch", "--parsable", *options, str(script)]
        if offset is not None:
            argv.append(str(offset))
        out = run_slurm(argv).stdout.strip()
        job_id = out.splitlines()[-1].split(";")[0].strip() if out else ""
        if not job_id.isdigit():
            raise SchedulerError(f"sbatch did not return a job id (it printed {out!r}); "
                                 f"check the sbatch options in scheduler_args.")
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
        output = _log_path(output)
        options = sbatch_options.sbatch_options(scheduler_args, name)
        script, exits = self._write_script(argv, name, output, array=False)
        log = _literal(output)
        job_id = self._sbatch(
            [f"--job-name={name}", f"--output={log}", f"--error={log}", *options,
             *sbatch_options.depends_option(self._dependencies(depends_on))],
            script)
        self._records().add(Submission((job_id,), name, str(output), str(exits)))
        return job_id

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
        output = _log_path(output)
        options = sbatch_options.sbatch_options(scheduler_args, name)
        throttle = sbatch_options.max_running(scheduler_args, name)
        max_size = cluster_config().max_array_size
        chunks = arrays.split(n, max_size)
        script, exits = self._write_script(argv, name, output, array=True)
        # The script writes psyrun's log itself (sbatch cannot add the offset
        # to %a); Slurm's own messages (time limit, OOM) go to one file per chunk.
        logs = script.parent.parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        slurm_log = _literal(logs / script.stem) + "-%A.log"
        dependencies = self._dependencies(depends_on)
        slurm_ids: list[str] = []
        try:
            for chunk in chunks:
                chunk_options = [f"--job-name={name}", f"--output={slurm_log}",
                                 "--open-mode=append", *options]
                if max_size > 0:
                    chunk_options.append(f"--array={arrays.array_spec(chunk, throttle)}")
                # A throttle holds across chunks only if they run one after another.
                after_any = slurm_ids[-1:] if throttle else []
                chunk_options += sbatch_options.depends_option(dependencies, after_any)
                slurm_ids.append(self._sbatch(chunk_options, script, chunk.offset))
        except SchedulerError:
            if slurm_ids:  # never leave half an array behind
                run_slurm(["scancel", *slurm_ids], check=False)
            raise
        submission = Submission(slurm_ids, name, str(output), str(exits), n=n, chunks=chunks,
                                slurm_arrays=max_size > 0)
        self._records().add(submission)
        return submission.id

    # ------------------------------------------------------------ kill
    def kill(self, ids: Iterable[str]) -> None:
        slurm_ids = [sid for job in ids for sid in slurm_ids_of(job) if _SLURM_ID.match(sid)]
        if not slurm_ids:
            return
        # Last chunk first: a throttled array's next chunk waits for the one
        # before (afterany) and must not start in the moment that one ends.
        proc = run_slurm(["scancel", *reversed(slurm_ids)], check=False)
        if proc.returncode != 0:
            # Jobs that already ended are fine to "kill"; anything else is not.
            problems = [line for line in proc.stderr.splitlines() if line.strip()
                        and "already completed" not in line and "Invalid job id" not in line]
            if problems:
                raise SchedulerError(f"scancel failed: {'; '.join(problems)}. Check that the "
                                     f"Slurm controller is up with 'scontrol ping'.")

    # ------------------------------------------------------------ status
    def status(self, ids: Iterable[str]) -> dict[str, JobStatus]:
        ids = list(dict.fromkeys(str(i) for i in ids))
        book = self._records()
        submissions = {job: book.get(job) for job in ids}
        slurm_ids = sorted({sid for job in ids for sid in slurm_ids_of(job)
                            if _SLURM_ID.match(sid)}, key=lambda s: tuple(map(int, s.split("_"))))
        exit_codes = {job: batch_script.read_exit_records(Path(sub.exits))
                      for job, sub in submissions.items() if sub is not None}

        squeue, answered = self._squeue(slurm_ids)
        sacct: status.Entries = {}
        unresolved = self._needs_sacct(submissions, slurm_ids, squeue, exit_codes)
        if unresolved and cluster_config().accounting:
            sacct, sacct_answered = self._sacct(unresolved)
            answered = answered and sacct_answered

        result = {}
        for job in ids:
            sub = submissions[job]
            codes = exit_codes.get(job, {})
            if sub is not None and sub.is_array:
                elements = []
                for sid, chunk in zip(sub.slurm_ids, sub.chunks):
                    for task in range(chunk.count):
                        index = chunk.offset + task
                        elements.append(status.element_status(
                            f"{sid}_{task}" if sub.slurm_arrays else sid,
                            slurm_id=sid, task=task if sub.slurm_arrays else None,
                            name=sub.name, log=sub.log(index), squeue=squeue, sacct=sacct,
                            submitted=True, squeue_answered=answered,
                            **_exit_fields(codes.get(index))))
                result[job] = status.array_status(job, sub.name, elements)
            elif sub is not None:
                result[job] = status.element_status(
                    job, slurm_id=sub.slurm_ids[0], task=None, name=sub.name, log=sub.log(),
                    squeue=squeue, sacct=sacct, submitted=True, squeue_answered=answered,
                    **_exit_fields(codes.get(0)))
            else:
                result[job] = self._status_without_record(job, squeue, sacct, answered)
        return result

    @staticmethod
    def _needs_sacct(submissions: dict[str, Submission | None], slurm_ids: list[str],
                     squeue: status.Entries,
                     exit_codes: dict[str, dict[int, batch_script.ExitRecord]]) -> list[str]:
        """Slurm ids with a job or element that squeue and the exit record cannot settle.

        Finished array elements leave squeue one by one, so this is decided per
        element; a failure without an exit record (time limit, out of memory)
        needs sacct for its cause.
        """
        needed = set()
        for job, sub in submissions.items():
            if sub is None:
                needed.update(sid for sid in slurm_ids_of(job) if sid in slurm_ids)
                continue
            codes = exit_codes.get(job, {})
            for sid, chunk in zip(sub.slurm_ids, sub.chunks or (None,)):
                tasks = range(chunk.count) if chunk is not None and sub.slurm_arrays else [None]
                offset = chunk.offset if chunk is not None else 0
                for task in tasks:
                    if (offset + (task or 0)) in codes:
                        continue
                    entry = squeue.get((sid, task)) or squeue.get((sid, None))
                    if entry is None or entry.job_state is JobState.FAILED:
                        needed.add(sid)
                        break
        return sorted(needed, key=lambda s: tuple(map(int, s.split("_"))))

    @staticmethod
    def _status_without_record(job: str, squeue: status.Entries, sacct: status.Entries,
                               answered: bool) -> JobStatus:
        """Best effort for an id this workdir has no record of (Slurm's word only)."""
        parts = [sid for sid in slurm_ids_of(job) if _SLURM_ID.match(sid)]
        if len(parts) == 1 and "_" in parts[0]:
            sid, task = parts[0].split("_")
            return status.element_status(job, slurm_id=sid, task=int(task), name=None, log=None,
                                         squeue=squeue, sacct=sacct, exit_code=None,
                                         submitted=False, squeue_answered=answered)
        elements = []
        for sid in parts:
            tasks = sorted({t for s, t in (*squeue, *sacct) if s == sid and t is not None})
            for task in tasks:
                elements.append(status.element_status(
                    f"{sid}_{task}", slurm_id=sid, task=task, name=None, log=None, squeue=squeue,
                    sacct=sacct, exit_code=None, submitted=False, squeue_answered=answered))
        if elements:
            return status.array_status(job, None, elements)
        if len(parts) == 1:
            return status.element_status(job, slurm_id=parts[0], task=None, name=None, log=None,
                                         squeue=squeue, sacct=sacct, exit_code=None,
                                         submitted=False, squeue_answered=answered)
        return JobStatus(job, JobState.UNKNOWN)

    @staticmethod
    def _squeue(slurm_ids: list[str]) -> tuple[status.Entries, bool]:
        if not slurm_ids:
            return {}, True
        # A busy controller drops a request now and then; without an answer a
        # running job would be "unknown", which psy run takes for not running.
        for attempt in range(SQUEUE_ATTEMPTS):
            if attempt:
                time.sleep(SQUEUE_RETRY_PAUSE)
            proc = run_slurm(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(slurm_ids),
                              "-o", status.SQUEUE_FORMAT], check=False)
            if proc.returncode == 0:
                return status.parse_squeue(proc.stdout), True
            # squeue refuses a list in which it knows no job at all: that is an answer.
            if "Invalid job id" in proc.stderr:
                return {}, True
        return {}, False

    @staticmethod
    def _sacct(slurm_ids: list[str]) -> tuple[status.Entries, bool]:
        proc = run_slurm(["sacct", "-n", "-X", "-P", "-j", ",".join(slurm_ids),
                          "-o", status.SACCT_FIELDS], check=False)
        return status.parse_sacct(proc.stdout), proc.returncode == 0

    # ------------------------------------------------------------ the rest
    def jobs(self) -> list[str]:
        """Ids of this workdir's submissions that have not finished."""
        ids = [sub.id for sub in self._records().all()]
        return [job for job, s in self.status(ids).items() if not s.state.finished]

    @classmethod
    def task_template(cls) -> str:
        return task_template()

    def __repr__(self) -> str:
        return f"Slurm(workdir={str(self.workdir) if self.workdir else None!r})"
