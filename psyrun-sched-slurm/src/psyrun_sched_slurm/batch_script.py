"""The small bash script sbatch runs for each psyrun job.

sbatch needs a script; ours only computes psyrun's array index, runs the
job's argument list (each word quoted with :func:`shlex.quote`, so nothing in
it is interpreted by the shell) and appends ``<index> <exit code>`` to an
exit record.  That record is what lets :mod:`psyrun_sched_slurm.status` tell a
finished job from a vanished one after Slurm has forgotten it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import attrs
from psyrun.scheduler.base import ARRAY_INDEX


def quote_with_index(word: str) -> str:
    """``word`` quoted for bash, with :data:`ARRAY_INDEX` turned into ``"$index"``."""
    if ARRAY_INDEX not in word:
        return shlex.quote(word)
    return '"$index"'.join(shlex.quote(part) if part else "" for part in word.split(ARRAY_INDEX))


def render(argv: Sequence[str], *, name: str, exits: Path, output: Path | None) -> str:
    """The script text.

    Its first argument is the index offset of the chunk (see
    :mod:`psyrun_sched_slurm.arrays`).  With ``output`` (arrays) the script
    sends its own stdout and stderr to that file, indexed; single jobs leave
    that to sbatch's ``--output``.
    """
    lines = [
        "#!/bin/bash",
        f"# psyrun job {name}: written and submitted by psyrun-sched-slurm.",
        "# The first argument is the offset of this Slurm array within psyrun's array.",
        'index=$(( ${SLURM_ARRAY_TASK_ID:-0} + ${1:-0} ))',
        "# SIGTERM comes from Slurm (scancel, time limit): note it in the exit record.",
        "stopped=",
        "trap 'stopped=TERM' TERM",
    ]
    if output is not None:
        lines.append(f"exec >{quote_with_index(str(output))} 2>&1")
    lines += [
        " ".join(quote_with_index(word) for word in argv),
        "code=$?",
        "# The exit record outlives Slurm's memory of the job (MinJobAge, late sacct).",
        f'printf \'%s %s %s\\n\' "$index" "$code" "$stopped" >>{shlex.quote(str(exits))}',
        'exit "$code"',
    ]
    return "\n".join(lines) + "\n"


@attrs.frozen
class ExitRecord:
    """How one job or element ended, as its batch script saw it."""

    code: int
    #: True if Slurm sent SIGTERM (cancelled, or over its time limit).
    stopped: bool = False


def read_exit_records(exits: Path) -> dict[int, ExitRecord]:
    """psyrun index -> :class:`ExitRecord` from an exit record file (the last line of an index wins)."""
    records: dict[int, ExitRecord] = {}
    try:
        text = exits.read_text()
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        words = line.split()
        # A line cut short by a crash is ignored rather than trusted.
        if (len(words) in (2, 3) and words[0].isdigit() and words[1].isdigit()
                and (len(words) == 2 or words[2] == "TERM")):
            records[int(words[0])] = ExitRecord(int(words[1]), stopped=len(words) == 3)
    return records
