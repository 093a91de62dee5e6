"""What the Slurm scheduler remembers of each submission, on disk.

Slurm forgets finished jobs (``squeue`` after MinJobAge; ``sacct`` may be off
or late), and a psyrun array may be several Slurm arrays.  A small JSON record
per submission, kept in the scheduler's workdir, keeps the mapping from
psyrun's id to the Slurm job ids, the chunk offsets, the log files and the
exit record, so ``psy status`` in a later process still knows them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
from psyrun.scheduler.base import substitute_index

from psyrun_sched_slurm.arrays import Chunk

#: Separates the Slurm job ids of the chunks in the id of a split array.
ID_SEPARATOR = "+"


def slurm_ids_of(job_id: str) -> list[str]:
    """The Slurm job ids behind a psyrun id (``"123+124"`` -> ``["123", "124"]``)."""
    return [part for part in str(job_id).split(ID_SEPARATOR) if part]


@attrs.frozen
class Submission:
    """One call of ``submit`` or ``submit_array``."""

    #: Slurm job ids, one per chunk (a single job has one).
    slurm_ids: tuple[str, ...] = attrs.field(converter=tuple)
    name: str
    #: The output path as given, with ARRAY_INDEX still in it for arrays.
    output: str
    #: The file the batch script appends ``<index> <exit code>`` to.
    exits: str
    #: Number of elements, or None for a single job.
    n: int | None = None
    chunks: tuple[Chunk, ...] = attrs.field(default=(), converter=tuple)
    #: False when the cluster disables arrays and each chunk is one plain job.
    slurm_arrays: bool = True

    @property
    def id(self) -> str:
        return ID_SEPARATOR.join(self.slurm_ids)

    @property
    def is_array(self) -> bool:
        return self.n is not None

    def log(self, index: int | None = None) -> Path:
        """The log file of the job, or of one element of an array."""
        if index is None:
            return Path(self.output)
        return Path(substitute_index([self.output], index)[0])

    def to_json(self) -> str:
        data = attrs.asdict(self)
        data["chunks"] = [[c.offset, c.count] for c in self.chunks]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Submission:
        data = json.loads(text)
        data["chunks"] = [Chunk(offset, count) for offset, count in data.get("chunks", [])]
        return cls(**data)


class RecordBook:
    """The records of one scheduler workdir: ``<dir>/<first slurm id>.json``."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        # Records of this process, also for a scheduler without a workdir.
        self._memory: dict[str, Submission] = {}

    def add(self, submission: Submission) -> None:
        self._memory[submission.id] = submission
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{submission.slurm_ids[0]}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(submission.to_json())
        os.replace(tmp, path)  # atomic: a reader never sees half a record

    def get(self, job_id: str) -> Submission | None:
        if job_id in self._memory:
            return self._memory[job_id]
        slurm_ids = slurm_ids_of(job_id)
        if self.directory is None or not slurm_ids or not all(s.isdigit() for s in slurm_ids):
            return None
        try:
            submission = Submission.from_json((self.directory / f"{slurm_ids[0]}.json").read_text())
        except (FileNotFoundError, ValueError, TypeError, KeyError):
            return None
        # A record from an earlier cluster whose job ids were reused would not match.
        return submission if submission.id == job_id else None

    def all(self) -> list[Submission]:
        found = dict(self._memory)
        if self.directory is not None and self.directory.is_dir():
            for path in self.directory.glob("*.json"):
                try:
                    submission = Submission.from_json(path.read_text())
                except (ValueError, TypeError, KeyError):
                    continue
                found.setdefault(submission.id, submission)
        return list(found.values())
