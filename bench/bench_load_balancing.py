"""Benchmark of the LoadBalancing backend: per-item overhead and balance.

Run with ``python bench/bench_load_balancing.py`` (``--quick`` for smaller
figures).  It prints:

1. throughput for trivial items (``execute`` returns at once) with 1, 2 and 4
   processes (one worker with ``pool_size`` processes, run in this process so
   that interpreter start-up is not counted): items per second and the
   per-item overhead, the CPU time per item of all processes together
   (claiming, reading the input, calling ``execute``, writing the result
   log; with more processes than cores, wall time would count waiting for a
   core).  Target: under 1 ms.
   Also for each installed store, since the input is read through it, and
   the raw cost of one claim, which batching spreads over many short items.
   Then, for a large input, how long a process waits for its first batch
   (stores that cannot read row ranges load everything first) and how long
   100 further batches take.
2. the uneven task: items that sleep for exponentially distributed times,
   run by Distribute and by LoadBalancing with the same number of processes
   (4 workers of one process each, started together as subprocesses, the way
   a scheduler starts an array).  Two workloads: the mean duration grows with
   a parameter along the space (a scan where bigger problems take longer:
   contiguous batches get very different loads) and independent, identically
   distributed durations.  Printed: wall time from start to the last worker's
   exit (interpreter start-up included for both), the processing span (first
   item's start to last item's end) and the idle share of the processes over
   that span, 1 - work / (processes x span).  Target: LoadBalancing finishes
   the scan at least 1.5x sooner than Distribute.

The machine's other load shows in the figures: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TRIVIAL = """\
from psyrun import Param
pspace = Param(x=range({n}))
backend = "load-balancing"
store = {store!r}
max_jobs = 1
pool_size = {pool_size}

def execute(x):
    return {{"y": x + 1}}
"""

UNEVEN = """\
import random, time
from psyrun import Param
pspace = Param(size=range({sizes})) * Param(seed=range({seeds}))
backend = {backend!r}
max_jobs = {workers}
pool_size = 1

def mean_duration(size, seed):
    return {unit} * {mean_expr}

def execute(size, seed):
    began = time.time()
    duration = random.Random(int(size) * 1000 + int(seed)).expovariate(
        1.0 / mean_duration(size, seed))
    time.sleep(duration)
    return {{"duration": duration, "began": began, "ended": time.time()}}
"""


def _task(directory: Path, name: str, text: str):
    from psyrun.tasks import TaskDef

    taskdir = directory / "psy-tasks"
    taskdir.mkdir(parents=True, exist_ok=True)
    path = taskdir / f"task_{name}.py"
    path.write_text(textwrap.dedent(text))
    return TaskDef(path)


def _stores() -> list[str]:
    """The installed stores that can hold this benchmark's numbers."""
    from psyrun.plugins.manager import get_plugin_manager

    return get_plugin_manager().names("store")


def throughput(directory: Path, n: int, pool_size: int, store: str) -> tuple[float, float]:
    """(items per second, CPU milliseconds per item) for trivial items."""
    task = _task(directory, f"trivial_{store}_{pool_size}",
                 TRIVIAL.format(n=n, store=store, pool_size=pool_size))
    backend = task.create_backend()
    backend.create_job()
    backend.before_submit()
    backend.run_job("pspace")
    cpu_before = _cpu_seconds()
    began = time.perf_counter()
    backend.run_job("process", 0)
    seconds = time.perf_counter() - began
    cpu = _cpu_seconds() - cpu_before
    counts = backend.item_counts()
    assert counts.done == n, counts
    return n / seconds, 1000 * cpu / n


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool processes)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def first_batch_seconds(directory: Path, store_name: str, n_rows: int) -> tuple[float, float]:
    """(seconds to the first batch of 10 rows, seconds for 100 later batches) of a big input.

    Stores that read row ranges cheaply read only the batch; the others load
    the whole input first and then slice it in memory.
    """
    from psyrun.backend.load_balancing import InputRows
    from psyrun.plugins.manager import get_plugin_manager

    store = get_plugin_manager().get("store", store_name).implementation()
    path = directory / f"big-input{store.ext}"
    store.save(path, {"a": list(range(n_rows)), "b": [0.5 * i for i in range(n_rows)],
                      "c": [i % 7 for i in range(n_rows)]})
    inputs = InputRows(store, path, whole_limit=0)  # batch by batch where the store can
    began = time.perf_counter()
    inputs.rows(0, 10)
    first = time.perf_counter() - began
    began = time.perf_counter()
    for k in range(1, 101):
        inputs.rows(k * 1000, k * 1000 + 10)
    later = time.perf_counter() - began
    path.unlink()
    return first, later


def claim_cost(directory: Path, n: int = 500) -> float:
    """Milliseconds per claim of a single item, one process, no contention."""
    from psyrun.backend.item_queue import ItemQueue, Owner

    queue = ItemQueue.create(directory / "claim-cost", n, 1)
    owner = Owner.current()
    began = time.perf_counter()
    while queue.claim(owner, 1) is not None:
        pass
    return 1000 * (time.perf_counter() - began) / n


_RUN_NUMBERS = itertools.count()


def run_uneven(directory: Path, backend_name: str, workers: int, sizes: int, seeds: int,
               unit: float, mean_expr: str) -> tuple[float, float, float]:
    """(wall seconds, processing span, total work seconds) of one backend on the uneven task.

    The processing span runs from the first item's start to the last item's
    end: the wall time without interpreter start-up.
    """
    name = f"uneven_{backend_name.replace('-', '_')}_{next(_RUN_NUMBERS)}"  # a fresh task
    task = _task(directory, name, UNEVEN.format(
        sizes=sizes, seeds=seeds, backend=backend_name, workers=workers, unit=unit,
        mean_expr=mean_expr))
    backend = task.create_backend()
    from psyrun.jobs import iter_jobs

    jobs = list(iter_jobs(backend.create_job()))
    backend.before_submit()
    first, array, last = jobs
    backend.run_job(first.name)
    began = time.perf_counter()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "psyrun.worker", "--taskdir", str(task.taskdir),
         "--task", task.name, "--job", array.name, "--index", str(i), "--cwd", os.getcwd()],
        stdout=subprocess.DEVNULL) for i in range(array.n)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"{backend_name}: worker failed with exit code {p.returncode}")
    wall = time.perf_counter() - began
    backend.run_job(last.name)
    result = task.store.load(task.resultfile)
    assert len(result["duration"]) == sizes * seeds
    span = float(max(result["ended"]) - min(result["began"]))
    return wall, span, float(sum(result["duration"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    args = parser.parse_args()
    n_trivial = 5_000 if args.quick else 20_000
    unit = 0.004 if args.quick else 0.01
    repeats = 1 if args.quick else 2

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.chdir(directory)
        print(f"Trivial items ({n_trivial} per run), one worker with pool_size processes,"
              f" {os.cpu_count()} cores")
        print(f"{'store':<8} {'processes':>9} {'items/s':>10} {'CPU ms/item':>11}")
        for store in _stores():
            for pool_size in (1, 2, 4):
                try:
                    rate, ms = throughput(directory, n_trivial, pool_size, store)
                except Exception as exc:  # a store that cannot take this data
                    print(f"{store:<8} {pool_size:>9}  skipped: {type(exc).__name__}: {exc}")
                    break
                flag = "" if ms < 1 else "  (over the 1 ms target)"
                print(f"{store:<8} {pool_size:>9} {rate:>10.0f} {ms:>11.3f}{flag}")

        print(f"one claim (a file created and hard-linked): {claim_cost(directory):.3f} ms;"
              " batches make it rare for short items")

        n_big = 100_000 if args.quick else 1_000_000
        print()
        print(f"Reading the input of {n_big} rows: a process's first batch of 10 rows,"
              " then 100 more batches")
        print(f"{'store':<8} {'first ms':>9} {'100 more ms':>12}  how")
        for store in _stores():
            first, later = first_batch_seconds(directory, store, n_big)
            from psyrun.plugins.manager import get_plugin_manager

            ranged = getattr(get_plugin_manager().get("store", store).implementation,
                             "reads_rows_cheaply", False)
            how = ("reads each batch (inputs over 256 MiB)" if ranged
                   else "loads the whole input once, keeps it")
            print(f"{store:<8} {1000 * first:>9.1f} {1000 * later:>12.1f}  {how}")

        workers = 4
        workloads = [
            # (label, sizes, seeds, mean duration in units, judged by the 1.5x target)
            ("scan: mean grows with size (size+1)^2", 8, 10, "(size + 1) ** 2", True),
            ("i.i.d. exponential, mean constant", 8, 10, "20", False),
        ]
        print()
        print(f"Uneven task, {workers} processes (4 workers x 1 process for both backends),"
              f" best of {repeats}. wall: launch to last exit;")
        print("span: first item start to last item end (no interpreter start-up);"
              " idle: 1 - work / (processes x span)")
        print(f"{'workload':<40} {'backend':<15} {'wall s':>7} {'span s':>7} {'work s':>7}"
              f" {'idle':>6}")
        for label, sizes, seeds, expr, judged in workloads:
            spans, walls = {}, {}
            for backend_name in ("distribute", "load-balancing"):
                # best of `repeats`: other load on the machine only ever adds time
                runs = [run_uneven(directory, backend_name, workers, sizes, seeds, unit, expr)
                        for _ in range(repeats)]
                wall = min(r[0] for r in runs)
                span = min(r[1] for r in runs)
                work = runs[0][2]
                idle = 1 - work / (workers * span)
                spans[backend_name], walls[backend_name] = span, wall
                print(f"{label:<40} {backend_name:<15} {wall:>7.2f} {span:>7.2f} {work:>7.2f}"
                      f" {idle:>6.0%}")
            by_span = spans["distribute"] / spans["load-balancing"]
            by_wall = walls["distribute"] / walls["load-balancing"]
            print(f"{'':<40} {'LB sooner by':<15} {by_wall:>6.2f}x {by_span:>6.2f}x"
                  + ("  (under the 1.5x target)" if judged and by_span < 1.5 else ""))


if __name__ == "__main__":
    random.seed(0)
    main()
