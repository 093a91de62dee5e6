"""The wrapper every sqsub job runs: ``python -m psyrun_sched_sqsub.wrap``.

sqsub starts a job once the jobs it waits for (``-w``) are *done*, however
they ended, and sqjobs forgets a job shortly after it ends without saying
whether it succeeded.  psyrun needs both: a job whose dependency failed must be
cancelled, and ``psy status`` must know, days later, which job failed.  So each
job is submitted as::

    python -m psyrun_sched_sqsub.wrap --record R --name N [--after D ...] -- argv...

The wrapper first reads the exit record of every dependency ``D``; unless all
of them completed, it records ``cancelled`` and does not run ``argv``.
Otherwise it runs ``argv`` (its output goes where sqsub sends the job's) and
writes how it ended to ``R``.  A job killed with SIGTERM records
``terminated``; one killed with SIGKILL records nothing, which the scheduler
reads as cancelled (if psyrun killed it) or failed.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import attrs

from psyrun_sched_sqsub.records import ExitRecord, kill_marker_for, write_atomically

#: Seconds to wait for a dependency's exit record to appear: on a shared file
#: system a file written on one node may show up late on another.
DEFAULT_GRACE = 30.0


def blocking_dependency(records: Sequence[Path], grace: float) -> str | None:
    """Why the job must not run, or ``None`` if every dependency completed."""
    for path in records:
        deadline = time.monotonic() + grace
        while True:
            record = ExitRecord.read(path)
            if record is not None or kill_marker_for(path).exists():
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, grace / 10 or 0.1))
        if record is None:
            how = "was killed" if kill_marker_for(path).exists() else \
                "ended without recording how"
            return f"dependency {path.name} {how}"
        if record.state != "completed":
            return f"dependency {record.name or path.name} {record.state}" + (
                f" with exit code {record.exit_code}" if record.exit_code is not None else "")
    return None


def run(argv: Sequence[str]) -> ExitRecord:
    """Run ``argv``, passing on the signals that end a job, and say how it ended."""
    try:
        child = subprocess.Popen(list(argv))
    except OSError as exc:
        print(f"psyrun: cannot start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        return ExitRecord(state="failed", exit_code=127, reason=f"cannot start the job: {exc}")
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
                   signal.SIGUSR2):
        signal.signal(signum, forward)
    code = child.wait()
    if received or code < 0:
        signum = received[0] if received else -code
        return ExitRecord(state="terminated", exit_code=code,
                          reason=f"ended by signal {signal.Signals(signum).name}")
    if code == 0:
        return ExitRecord(state="completed", exit_code=0)
    return ExitRecord(state="failed", exit_code=code)


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m psyrun_sched_sqsub.wrap")
    parser.add_argument("--record", required=True, type=Path,
                        help="where to write how the job ended")
    parser.add_argument("--name", default="", help="the job's name (for messages)")
    parser.add_argument("--after", action="append", default=[], type=Path,
                        help="exit record of a job that must have completed")
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(arguments)
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        parser.error("no command given after --")
    reason = blocking_dependency(args.after, args.grace)
    if reason is not None:
        print(f"psyrun: job {args.name} cancelled: {reason}.", file=sys.stderr, flush=True)
        record = ExitRecord(state="cancelled", reason=reason)
    else:
        record = run(argv)
    record = attrs.evolve(record, name=args.name or None)
    write_atomically(args.record, record.to_json())
    if record.state == "completed":
        return 0
    code = record.exit_code
    return code if code is not None and code > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
