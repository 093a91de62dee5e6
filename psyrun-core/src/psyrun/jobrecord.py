"""What ``psy run`` submitted: ``<workdir>/<task>/jobs.json``.

``psy status`` and ``psy kill`` read it to find the task's jobs again in a
later process: each job's name (``<task>:<job>``), its scheduler id and, for
an array, its number of elements; plus the scheduler and the submitting
process.  Ids are only ever given back to the task's own scheduler.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import attrs

RECORD_NAME = "jobs.json"


@attrs.frozen
class SubmittedJob:
    """One submission: a job or a whole array (``n`` elements)."""

    name: str
    id: str
    n: int | None = None


@attrs.frozen
class JobRecord:
    """The jobs of the last ``psy run`` of a task."""

    task: str
    scheduler: str
    in_process: bool
    pid: int
    host: str
    submitted: str
    jobs: tuple[SubmittedJob, ...] = attrs.field(converter=tuple)

    @property
    def ids(self) -> list[str]:
        return [job.id for job in self.jobs]

    def process_alive(self) -> bool:
        """True if the submitting process still runs (checkable on its own host only)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def new_record(task: str, scheduler: Any, jobs: list[SubmittedJob]) -> JobRecord:
    from psyrun.plugins.manager import get_plugin_manager

    cls = type(scheduler)
    name = get_plugin_manager().name_of("scheduler", scheduler) or f"{cls.__module__}.{cls.__name__}"
    return JobRecord(task=task, scheduler=name, in_process=bool(getattr(scheduler, "in_process", False)),
                     pid=os.getpid(), host=socket.gethostname(),
                     submitted=time.strftime("%Y-%m-%d %H:%M:%S"), jobs=jobs)


def save_record(taskworkdir: Path, record: JobRecord) -> None:
    from psyrun.store.atomic import atomic_write_bytes

    data = attrs.asdict(record)
    atomic_write_bytes(Path(taskworkdir) / RECORD_NAME, json.dumps(data, indent=1).encode())


def load_record(taskworkdir: Path) -> JobRecord | None:
    """The record of the last submission, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(taskworkdir) / RECORD_NAME).read_text())
        jobs = [SubmittedJob(**j) for j in data.pop("jobs")]
        return JobRecord(jobs=jobs, **data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
