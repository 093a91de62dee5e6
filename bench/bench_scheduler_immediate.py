"""What the ``immediate`` scheduler costs on top of starting the processes itself.

Run with ``python bench/bench_scheduler_immediate.py`` (about half a minute;
``--n 500`` for a larger array).  Prints, for trivial jobs (``/bin/true``):

* an array on all cores, against the same processes started by a plain
  pool of ``subprocess.run`` threads with the same parallelism;
* a chain of jobs each depending on the one before, against running them
  one after the other with ``subprocess.run`` (the difference is the
  dispatcher's latency from one job's end to the next one's start);
* an array of many elements that each wait for one long job, to show the
  cost of the queue's bookkeeping when much is queued.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from psyrun.scheduler import ARRAY_INDEX, ImmediateRun, JobState

TRUE = shutil.which("true") or "/bin/true"


def run_plain(n: int, workers: int, out: Path) -> float:
    def one(i: int) -> None:
        with open(out / f"plain-{i}.log", "wb") as log:
            subprocess.run([TRUE], stdout=log, stderr=subprocess.STDOUT, check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - start


def run_array(n: int, scheduler: ImmediateRun, out: Path) -> float:
    start = time.perf_counter()
    job = scheduler.submit_array(n, [TRUE], name="bench:array",
                                 output=out / f"array-{ARRAY_INDEX}.log")
    status = scheduler.wait([job], poll_interval=0.5)[job]
    elapsed = time.perf_counter() - start
    assert status.state is JobState.COMPLETED, status
    return elapsed


def run_chain(n: int, scheduler: ImmediateRun, out: Path) -> float:
    start = time.perf_counter()
    ids: list[str] = []
    for i in range(n):
        ids.append(scheduler.submit([TRUE], name=f"bench:link{i}", output=out / f"link-{i}.log",
                                    depends_on=ids[-1:]))
    statuses = scheduler.wait(ids, poll_interval=0.5)
    elapsed = time.perf_counter() - start
    assert all(s.state is JobState.COMPLETED for s in statuses.values())
    return elapsed


def run_plain_chain(n: int, out: Path) -> float:
    start = time.perf_counter()
    for i in range(n):
        with open(out / f"plainlink-{i}.log", "wb") as log:
            subprocess.run([TRUE], stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def run_wide_queue(n: int, scheduler: ImmediateRun, out: Path) -> tuple[float, float]:
    """Submit n elements behind one job; time the submission and the drain."""
    start = time.perf_counter()
    gate = scheduler.submit([sys.executable, "-c", "import time; time.sleep(1)"],
                            name="bench:gate", output=out / "gate.log")
    job = scheduler.submit_array(n, [TRUE], name="bench:wide",
                                 output=out / f"wide-{ARRAY_INDEX}.log", depends_on=[gate])
    submitted = time.perf_counter() - start
    status = scheduler.wait([job], poll_interval=0.5)[job]
    assert status.state is JobState.COMPLETED, status
    return submitted, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="elements of the array")
    parser.add_argument("--chain", type=int, default=50, help="links of the chain")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ImmediateRun() as scheduler:
        out = Path(tmp)
        cores = scheduler.cores
        print(f"cores used: {cores}; jobs: {TRUE}")
        plain = run_plain(args.n, cores, out)
        array = run_array(args.n, scheduler, out)
        print(f"array of {args.n}:   immediate {array:6.2f} s   plain threads {plain:6.2f} s   "
              f"ratio {array / plain:5.2f}   ({args.n / array:6.1f} jobs/s)")
        plain_chain = run_plain_chain(args.chain, out)
        chain = run_chain(args.chain, scheduler, out)
        per_link = (chain - plain_chain) / args.chain * 1000
        print(f"chain of {args.chain}:    immediate {chain:6.2f} s   plain serial  "
              f"{plain_chain:6.2f} s   overhead {per_link:6.2f} ms per link")
        wide = 10 * args.n
        submitted, total = run_wide_queue(wide, scheduler, out)
        print(f"{wide} queued behind a 1 s job: submitted in {submitted * 1000:6.1f} ms, "
              f"all done after {total:6.2f} s ({wide / max(total - 1, 1e-9):6.1f} jobs/s "
              "after the gate)")


if __name__ == "__main__":
    main()
