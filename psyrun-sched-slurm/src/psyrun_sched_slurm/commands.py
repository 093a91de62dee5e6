"""Running Slurm's command-line tools (sbatch, squeue, sacct, scancel, scontrol).

Every call goes through :func:`run_slurm` so that a missing tool or an
unreachable controller becomes one :class:`~psyrun.exceptions.SchedulerError`
that says what to do, instead of a bare ``CalledProcessError``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from psyrun.exceptions import SchedulerError

#: Seconds to wait for one Slurm command; a busy controller can be slow, a dead one hangs.
COMMAND_TIMEOUT = 60.0


def run_slurm(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a Slurm command and return its completed process (text mode).

    With ``check`` a non-zero exit raises :class:`SchedulerError` carrying the
    command's own error message.
    """
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise SchedulerError(
            f"The Slurm command {argv[0]!r} is not on PATH. Run psyrun on a machine with "
            f"Slurm's client tools (a login node of the cluster), or pick another scheduler "
            f"in the task file."
        ) from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(
            f"{argv[0]} did not answer within {COMMAND_TIMEOUT:.0f}s; the Slurm controller "
            f"may be down or overloaded. Check it with 'scontrol ping' and try again."
        ) from None
    if check and proc.returncode != 0:
        raise SchedulerError(
            f"{' '.join(argv[:2])} ... failed (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}. Check the message above; "
            f"'scontrol ping' tells whether the Slurm controller is up."
        )
    return proc
