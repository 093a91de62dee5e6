"""Benchmark: submitting a big task to Slurm and asking for its status.

A task of 10 000 items with ``max_jobs = 1000`` is submitted with ``psy run``
to the running Slurm cluster (start it with ``bash tools/slurm/start-slurm.sh``).
A counting ``sbatch`` shim, first on PATH for this script only, counts sbatch
calls.  Figures printed: submission time, sbatch calls (target: one per array
chunk of at most MaxArraySize elements plus one per single job, never one per
item), ``psy status`` time (target: under 1 s) and the time of the scheduler's
own ``status`` call.  The jobs are cancelled with ``psy kill`` at the end,
unless ``--complete`` is given (then it waits for the result: minutes on a
small machine).

    python bench/bench_slurm.py [--items 10000] [--max-jobs 1000] [--complete]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def psy(cwd: Path, env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "psyrun", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    return time.perf_counter() - start, proc


def counting_shim(bindir: Path, real: str, counter: Path) -> None:
    shim = bindir / "sbatch"
    shim.write_text(f'#!/bin/sh\necho call >>"{counter}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--max-jobs", type=int, default=1000)
    parser.add_argument("--complete", action="store_true", help="wait for the whole task")
    options = parser.parse_args()

    real = shutil.which("sbatch")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True) if real else None
    if real is None or ping is None or "UP" not in ping.stdout:
        sys.exit("bench_slurm: no running Slurm; start one with bash tools/slurm/start-slurm.sh")
    from psyrun_sched_slurm.cluster import cluster_config

    max_size = cluster_config().max_array_size

    root = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    root.chmod(0o755)  # slurmd must reach it
    bindir = root / "bin"
    bindir.mkdir()
    counter = root / "sbatch-calls"
    counting_shim(bindir, real, counter)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    (root / "psy-tasks").mkdir()
    (root / "psy-tasks" / "task_big.py").write_text(textwrap.dedent(f"""\
        from psyrun import Param
        pspace = Param(x=range({options.items}))
        scheduler = "slurm"
        max_jobs = {options.max_jobs}

        def execute(x):
            return {{"y": x + 1}}
        """))

    try:
        submit_time, proc = psy(root, env, "run", "big")
        if proc.returncode != 0:
            sys.exit(f"psy run failed:\n{proc.stdout}{proc.stderr}")
        calls = len(counter.read_text().split()) if counter.exists() else 0
        chunks = math.ceil(options.max_jobs / max(max_size, 1))
        print(f"Slurm MaxArraySize {max_size}; task of {options.items} items, "
              f"max_jobs {options.max_jobs}")
        print(f"psy run (submission):      {submit_time:7.2f} s")
        print(f"sbatch calls:              {calls:7d}   (target: {chunks} array chunks "
              f"+ 2 single jobs = {chunks + 2})")

        status_times = []
        for _ in range(3):
            elapsed, proc = psy(root, env, "status", "big")
            status_times.append(elapsed)
        print(f"psy status (best of 3):    {min(status_times):7.2f} s   (target: < 1 s)")
        print(f"  {proc.stdout.strip()}")

        from psyrun_sched_slurm import Slurm

        records = root / "psy-work" / "big" / "scheduler" / "slurm" / "records"
        ids = ["+".join(json.loads(p.read_text())["slurm_ids"]) for p in records.glob("*.json")]
        scheduler = Slurm(root / "psy-work" / "big" / "scheduler")
        start = time.perf_counter()
        statuses = scheduler.status(ids)
        elements = sum(len(s.elements) or 1 for s in statuses.values())
        print(f"Slurm.status, {elements} jobs and elements: "
              f"{time.perf_counter() - start:7.3f} s (in process, no interpreter start)")

        if options.complete:
            start = time.perf_counter()
            statuses = scheduler.wait(ids, poll_interval=2)
            took = time.perf_counter() - start + submit_time
            states = sorted({s.state.value for s in statuses.values()})
            print(f"whole task finished after:  {took:7.1f} s   (jobs: {', '.join(states)})")
            elapsed, proc = psy(root, env, "status", "big")
            print(f"psy status when finished:  {elapsed:7.2f} s")
            print(f"  {proc.stdout.strip()}")
    finally:
        psy(root, env, "kill", "big")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
