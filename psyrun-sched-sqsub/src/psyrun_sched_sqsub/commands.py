"""Run Sharcnet's command-line tools (sqsub, sqjobs, sqkill).

One place that knows how to call them, so that a missing tool or a refused
submission always becomes a :class:`~psyrun.exceptions.SchedulerError` that
says what happened and what to do.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from psyrun.exceptions import SchedulerError


def run_tool(argv: Sequence[str], *, check: bool = True,
             timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (a sqsub tool) and return its result.

    With ``check``, a non-zero exit status raises :class:`SchedulerError`
    with the tool's own message.
    """
    tool = argv[0]
    if shutil.which(tool) is None:
        raise SchedulerError(
            f"{tool} was not found on PATH. The sqsub scheduler runs Sharcnet's sqsub, sqjobs "
            "and sqkill: run psy on a cluster login node where they are installed, or choose "
            "another scheduler in the task file (for example scheduler = 'immediate').")
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SchedulerError(
            f"{tool} did not answer within {timeout:.0f} s ({shlex.join(argv)}); "
            "the cluster may be overloaded: try again later.") from None
    if check and result.returncode != 0:
        message = (result.stderr.strip() or result.stdout.strip()
                   or f"exit status {result.returncode}")
        raise SchedulerError(
            f"{tool} failed: {message}\nCommand: {shlex.join(argv)}\n"
            "Check the task's scheduler_args; sqsub's message above says what it refused.")
    return result
