"""What the sqsub scheduler keeps on disk about its jobs.

sqjobs forgets a job soon after it ends and never says how it ended, so the
scheduler keeps its own records in a directory (by default ``sqsub/`` in the
task's work directory, which the cluster's nodes see too):

``jobs/<jobid>.json``
    written at submission: the job's name, output file and *token*.
``run/<token>.exit.json``
    written by the job wrapper (:mod:`psyrun_sched_sqsub.wrap`) when the job
    ends: ``completed``, ``failed``, ``cancelled`` or ``terminated``, with the
    exit code.
``run/<token>.killed``
    written by :meth:`Sqsub.kill <psyrun_sched_sqsub.scheduler.Sqsub.kill>`
    before it calls sqkill.
``run/<token>.id``
    sqsub's ``--idfile``.

The token exists before sqsub hands out the job id, so the wrapper can be
told where to write its exit record in the very command that sqsub submits.
Every file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import attrs

EXIT_SUFFIX = ".exit.json"
KILL_SUFFIX = ".killed"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see all of it or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def kill_marker_for(exit_record: Path) -> Path:
    """The kill marker that belongs to an exit record path."""
    name = exit_record.name
    if name.endswith(EXIT_SUFFIX):
        name = name[: -len(EXIT_SUFFIX)]
    return exit_record.with_name(name + KILL_SUFFIX)


@attrs.frozen
class ExitRecord:
    """How a job ended, as its wrapper recorded it."""

    #: completed, failed, cancelled (a dependency did not complete) or
    #: terminated (the job received a signal).
    state: str
    exit_code: int | None = None
    reason: str | None = None
    #: The job's name (dependents name it when they are cancelled).
    name: str | None = None

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self))

    @classmethod
    def read(cls, path: Path) -> ExitRecord | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return cls(state="failed", reason=f"unreadable exit record {path}")
        return cls(state=str(data.get("state")), exit_code=data.get("exit_code"),
                   reason=data.get("reason"), name=data.get("name"))


@attrs.frozen
class JobRecord:
    """One sqsub job that this scheduler submitted."""

    id: str
    token: str
    name: str
    output: str
    submitted: float
    #: For an element of an array: the array's name and the element's index.
    array: str | None = None
    index: int | None = None


class RecordStore:
    """The records of one scheduler directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.run_dir = self.root / "run"

    def new_token(self) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(6)}"

    def exit_path(self, token: str) -> Path:
        return self.run_dir / f"{token}{EXIT_SUFFIX}"

    def kill_path(self, token: str) -> Path:
        return self.run_dir / f"{token}{KILL_SUFFIX}"

    def id_path(self, token: str) -> Path:
        return self.run_dir / f"{token}.id"

    def _job_path(self, job_id: str) -> Path | None:
        return self.jobs_dir / f"{job_id}.json" if _SAFE_ID.match(job_id) else None

    def save_job(self, record: JobRecord) -> None:
        path = self._job_path(record.id)
        if path is None:
            raise ValueError(f"unusable job id {record.id!r}")
        write_atomically(path, json.dumps(attrs.asdict(record)))

    def load_job(self, job_id: str) -> JobRecord | None:
        path = self._job_path(job_id)
        if path is None:
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return JobRecord(**data)

    def all_jobs(self) -> list[JobRecord]:
        if not self.jobs_dir.is_dir():
            return []
        records = (self.load_job(p.name[: -len(".json")])
                   for p in sorted(self.jobs_dir.glob("*.json")))
        return [r for r in records if r is not None]

    def read_exit(self, token: str) -> ExitRecord | None:
        return ExitRecord.read(self.exit_path(token))

    def mark_killed(self, token: str) -> None:
        write_atomically(self.kill_path(token), f"{time.time()}\n")

    def killed(self, token: str) -> bool:
        return self.kill_path(token).exists()
