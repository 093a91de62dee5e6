"""Benchmark: the cost of the sqsub scheduler's own work, against the emulator.

sqsub has no arrays, so an array of n elements is n ``sqsub`` calls; status
reads one ``sqjobs`` table plus one exit record per job.  This prints:

* submission: seconds per array element (one sqsub call each), with one
  and with four sqsub calls at a time;
* status of every element while jobs are queued or running (one sqjobs call);
* status once every job has ended (exit records only, no sqjobs call).

Run it with ``python bench/bench_sqsub.py [n]`` (default n = 40).  The
figures include the emulator's own start-up (a Python process per command),
which the real tools, being small programs on a login node, did not all pay.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / "tests" / "sched_sqsub" / "emulator"


def measure(n: int, parallel: int) -> None:
    from psyrun.scheduler.base import ARRAY_INDEX
    from psyrun_sched_sqsub.scheduler import Sqsub

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ["SQSUB_EMULATOR_STATE"] = str(tmp_path / "state")
        scheduler = Sqsub(tmp_path / "work")
        scheduler.parallel_submissions = parallel
        args = {"timelimit": "10m", "memory": "100M"}
        argv = [sys.executable, "-c", "import sys, time; time.sleep(2)", ARRAY_INDEX]
        try:
            start = time.perf_counter()
            array = scheduler.submit_array(n, argv, name="bench:process",
                                           output=tmp_path / f"p{ARRAY_INDEX}.log",
                                           scheduler_args=args)
            submit = time.perf_counter() - start
            start = time.perf_counter()
            busy = scheduler.status([array])[array]
            status_busy = time.perf_counter() - start
            active = sum(1 for e in busy.elements if not e.state.finished)
            scheduler.wait([array], timeout=300, poll_interval=0.5)
            start = time.perf_counter()
            done = scheduler.status([array])[array]
            status_done = time.perf_counter() - start
        finally:
            for path in (tmp_path / "state" / "jobs").glob("*.json"):
                job = json.loads(path.read_text())
                if job.get("state") not in ("D", "C") and job.get("pgid"):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(job["pgid"], signal.SIGKILL)
    print(f"sqsub scheduler with the emulator, array of {n} elements, "
          f"{parallel} sqsub call(s) at a time")
    print(f"  submit_array: {submit:.2f} s ({submit / n * 1000:.0f} ms per element)")
    print(f"  status while {active} elements were unfinished (sqjobs + records): "
          f"{status_busy * 1000:.0f} ms")
    print(f"  status after the end ({done.state.value}, exit records only): "
          f"{status_done * 1000:.0f} ms")


def main(n: int) -> None:
    os.environ["PATH"] = f"{EMULATOR}{os.pathsep}{os.environ['PATH']}"
    for parallel in (1, 4):
        measure(n, parallel)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
