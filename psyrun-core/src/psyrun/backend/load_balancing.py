"""The LoadBalancing backend (plugin ``load-balancing``): workers pull items until none is left.

When items take very different times, equal batches (the Distribute backend)
leave most workers idle while one works through its long items.  Here every
process takes the next unprocessed items from one shared queue, so all of them
stay busy until the space is exhausted.

A task becomes a chain of three jobs:

``pspace``
    writes the assignments still to compute into the input file of a new
    *round* (``rounds/<r>/in<ext>``) and creates the round's shared progress
    record, the item queue (:mod:`psyrun.backend.item_queue`);
``process``
    a job array of up to ``max_jobs`` workers (no more than it takes to give
    each process an item) with ``pool_size`` processes each.  Every process calls ``setup(proc_id)`` once (``proc_id``
    is ``worker index * pool_size + local index``, so ids are distinct across
    all processes of all workers), then claims small batches of items,
    evaluates them and appends each outcome to its own result log
    (:mod:`psyrun.backend.result_log`) until the queue is empty;
``finalize``
    merges the result logs of every round (and, with ``psy run -c``, the
    existing result file) into the result file, each assignment once.  Like
    Distribute's ``merge``, it fails after writing the result if items raised.

Files in ``psy-work/<task>/``::

    plan.json                 written by psy run: fresh or continuing, workers
    current.json              the round the workers pull from
    rounds/<r>/in<ext>        the round's input (the task's store)
    rounds/<r>/meta.json      number of items and processes
    rounds/<r>/tickets/<t>    the claims (see item_queue)
    rounds/<r>/out/<host>-<pid>-<token>.log   one result log per process

Correctness under concurrency comes from two rules: a claim is published with
``link()`` (atomic on NFS too) and every process writes only its own log.  A
worker killed with ``kill -9`` loses at most the items it had claimed and not
finished; its claims name a process that no longer exists (on another host:
whose result log has not been touched by its heartbeat thread for
:data:`STALE_AFTER_SECONDS`), so ``psy status`` shows those items as missing
rather than in progress, and ``psy run -c`` (or a plain ``psy run`` of an
unchanged task) starts a new round with exactly the assignments that have no
result: everything in a log counts as done.

Reading the input: each process loads it once and keeps it in memory, the
fastest way for inputs of ordinary size.  An input larger than
:data:`WHOLE_INPUT_LIMIT_BYTES` is read batch by batch instead if its store
can read a range of rows cheaply (it says so with
:attr:`psyrun.store.base.Store.reads_rows_cheaply`, as h5 and npz do); with
other stores (pickle) start-up time and memory then grow with the input size
times the number of processes (:class:`InputRows`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from psyrun.backend.base import (
    Backend,
    FailedItem,
    TaskSummary,
    call_setup,
    columns_to_rows,
    evaluate_items,
    rows_to_columns,
)
from psyrun.backend.item_queue import BatchSizer, Claim, ItemQueue, Liveness, Owner
from psyrun.backend.result_log import LogContents, ResultLog, read_log
from psyrun.exceptions import JobFailedError
from psyrun.jobs import Job, JobArray, JobChain, JobNode, is_up_to_date
from psyrun.store.atomic import atomic_write_bytes

PSPACE, PROCESS, FINALIZE = "pspace", "process", "finalize"

#: How often a pulling process touches its result log to say it is alive.
HEARTBEAT_SECONDS = 30.0
#: A log untouched for this long marks its process on another host as gone.
STALE_AFTER_SECONDS = 4 * HEARTBEAT_SECONDS


def n_workers(n_items: int, max_jobs: int, pool_size: int = 1) -> int:
    """How many workers (array elements) a round of ``n_items`` gets.

    No more than ``max_jobs``, and no more than it takes to give every
    process at least one item.
    """
    if n_items <= 0:
        return 0
    return max(1, min(max_jobs, -(-n_items // max(1, pool_size))))


@attrs.frozen
class ItemCounts:
    """Where the assignments of a task stand (``psy status``)."""

    total: int
    done: int
    failed: int
    in_progress: int
    missing: int


# ------------------------------------------------------------------ reading the input
#: Inputs larger than this are read batch by batch where the store can do that.
WHOLE_INPUT_LIMIT_BYTES = 256 * 2**20


class InputRows:
    """The rows of a round's input, read in batches as the store allows.

    Loading the input once and keeping it is the fastest for every store as
    long as it fits comfortably in memory: reading a batch from an h5 file
    costs a few milliseconds (the file is opened each time), loading 100,000
    rows about as much.  So the input is read batch by batch only when it is
    larger than ``whole_limit`` bytes and the store reads row ranges cheaply
    (:attr:`psyrun.store.base.Store.reads_rows_cheaply`).
    """

    def __init__(self, store: Any, path: Path,
                 whole_limit: int = WHOLE_INPUT_LIMIT_BYTES) -> None:
        self.store = store
        self.path = path
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        self.by_range = bool(getattr(store, "reads_rows_cheaply", False)) and size > whole_limit
        self._whole: dict[str, Any] | None = None

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        if self.by_range:
            data = self.store.load(self.path, row=slice(start, stop))
        else:
            if self._whole is None:
                self._whole = self.store.load(self.path)
            data = {k: v[start:stop] for k, v in self._whole.items()}
        return list(columns_to_rows(data))


# ------------------------------------------------------------------ one pulling process
def _die_with_parent() -> None:
    """Ask Linux to kill this process when the worker that forked it dies.

    Otherwise a process orphaned by a killed worker would keep computing
    items that ``psy run -c`` hands out again.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    except Exception:  # no prctl: the parent check in the loop still applies
        pass


def pull_items(task: Any, round_dir: Path, proc_id: int, parent_pid: int | None = None,
               target_seconds: float = 0.05) -> tuple[int, int]:
    """Claim and evaluate items of one round until none is left; (done, failed)."""
    queue = ItemQueue(round_dir)
    if queue.n_items == 0:
        return 0, 0
    owner = Owner.current()
    inputs = InputRows(task.store, round_dir / f"in{_ext(task)}")
    kwargs = call_setup(task, proc_id)
    sizer = BatchSizer(queue.meta.n_processes, target_seconds=target_seconds)
    header = {"round": round_dir.name, "proc_id": proc_id, "host": owner.host,
              "pid": owner.pid, "token": owner.token, "started": time.time()}
    done = failed = 0
    with ResultLog(round_dir / "out" / f"{owner.label}.log", header) as log, \
            _Heartbeat(log.path):
        while parent_pid is None or os.getppid() == parent_pid:
            began = time.perf_counter()
            claim = queue.claim(owner, sizer.next_size(queue.unclaimed))
            if claim is None:
                break
            for position, params in zip(claim.positions(), inputs.rows(claim.start, claim.stop)):
                rows, failures = evaluate_items(task.execute, [params], kwargs,
                                                task.exclude_from_result)
                if rows:
                    log.add_result(position, rows[0])
                    done += 1
                else:
                    log.add_failure(position, attrs.asdict(failures[0], recurse=False))
                    print(f"item {failures[0].params} failed: {failures[0].traceback}",
                          flush=True)
                    failed += 1
            sizer.record(len(claim), time.perf_counter() - began)
    return done, failed


class _Heartbeat:
    """Touches a result log every few seconds while its process runs.

    Liveness of a process on another host cannot be checked with its pid; the
    log's modification time (set by the file server) can: while an item runs
    for hours nothing is written, so a thread touches the file.
    """

    def __init__(self, path: Path, interval: float = HEARTBEAT_SECONDS) -> None:
        import threading

        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="psyrun-heartbeat",
                                        daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                os.utime(self.path)
            except OSError:  # the log was removed (psy clean): nothing to keep alive
                return

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()


def claim_is_live(claim: Claim, round_dir: Path, now: float | None = None) -> bool:
    """Whether the process that made ``claim`` may still be working on it.

    On its own host the pid decides (:meth:`Owner.liveness`); on another host
    the heartbeat of its result log does.
    """
    liveness = claim.owner.liveness()
    if liveness is not Liveness.UNKNOWN:
        return liveness is Liveness.ALIVE
    log = round_dir / "out" / f"{claim.owner.label}.log"
    try:
        age = (time.time() if now is None else now) - log.stat().st_mtime
    except OSError:
        return False
    return age < STALE_AFTER_SECONDS


def _pool_child(task: Any, round_dir: str, proc_id: int, parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(3)  # the worker died before this process got going
    if isinstance(task, str):  # spawned, not forked: load the task like the worker did
        from psyrun.tasks import TaskDef

        task = TaskDef(task)
    pull_items(task, Path(round_dir), proc_id, parent_pid)


def _ext(task: Any) -> str:
    return getattr(task.store, "ext", "") or ".pkl"


# ------------------------------------------------------------------ the backend
class LoadBalancingBackend(Backend):
    """Workers with ``pool_size`` processes each pull items from one shared queue."""

    def __init__(self, task: Any) -> None:
        super().__init__(task)
        self.store = task.store
        self.ext = _ext(task)
        self.currentfile = self.workdir / "current.json"
        self.roundsdir = self.workdir / "rounds"

    # -------------------------------------------------------- rounds
    def _round_dirs(self) -> list[Path]:
        if not self.roundsdir.is_dir():
            return []
        return sorted(p for p in self.roundsdir.iterdir() if p.is_dir() and p.name.isdigit())

    def _current_round(self) -> Path | None:
        try:
            name = json.loads(self.currentfile.read_text())["round"]
        except (OSError, ValueError, KeyError):
            return None
        path = self.roundsdir / name
        return path if path.is_dir() else None

    def _logs(self, round_dir: Path) -> Iterator[LogContents]:
        outdir = round_dir / "out"
        if outdir.is_dir():
            for path in sorted(outdir.glob("*.log")):
                yield read_log(path)

    def _log_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for round_dir in self._round_dirs():
            for log in self._logs(round_dir):
                rows.extend(log.results[p] for p in sorted(log.results))
        return rows

    # -------------------------------------------------------- what is done
    @property
    def _keys(self) -> list[str]:
        return list(self.task.pspace.keys())

    def _result_counts(self, keep_result: bool) -> bool:
        return self.task.resultfile.exists() and (
            keep_result or is_up_to_date(self.task.dependencies, [self.task.resultfile]))

    def _done_table(self, keep_result: bool) -> dict[str, Any]:
        from psyrun.backend.table import concat

        parts = []
        if self._result_counts(keep_result):
            parts.append(self.store.load(self.task.resultfile))
        rows = self._log_rows()
        if rows:
            parts.append(rows_to_columns(rows))
        return concat(parts)

    def _missing_table(self, keep_result: bool) -> dict[str, Any]:
        from psyrun.backend.table import row_keys, table_len, take

        space = self.task.pspace.build()
        done = self._done_table(keep_result)
        if table_len(done) == 0:
            return space
        done_keys = set(row_keys(done, self._keys))
        return take(space, [i for i, k in enumerate(row_keys(space, self._keys))
                            if k not in done_keys])

    def _is_fresh(self) -> bool:
        """True if the rounds on disk belong to an older task definition (or none exist)."""
        return self._current_round() is None or not is_up_to_date(
            self.task.dependencies, [self.currentfile])

    # -------------------------------------------------------- plan and graph
    def before_submit(self) -> None:
        """Write the plan of the graph :meth:`create_job` made last (the jobs read it)."""
        if self._plan is None:
            raise JobFailedError("create_job() must be called before before_submit().")
        super().before_submit()

    def create_job(self, cont: bool = False) -> JobNode:
        from psyrun.backend.table import table_len

        task = self.task
        deps = task.dependencies
        fresh = not cont and self._is_fresh()
        # The result file counts as done with -c, or when it was written for
        # this definition (a plain psy run resuming an interrupted run).
        keep_result = cont or (not fresh and self._result_counts(False))
        if fresh:
            n_items = len(task.pspace)
            settled = False
        else:
            # Same definition (or -c): only what has no result yet, failures included.
            n_items = table_len(self._missing_table(keep_result))
            settled = n_items == 0 and is_up_to_date(
                deps + [p for p in [self.currentfile] if p.exists()], [task.resultfile])
        workers = 0 if settled else n_workers(n_items, task.max_jobs, task.pool_size)
        self._plan = {"fresh": fresh, "keep_result": keep_result, "n_items": n_items,
                      "workers": workers, "pool_size": task.pool_size, "created": time.time()}
        done_marker = [task.resultfile] if settled else []
        args = task.scheduler_args
        return JobChain([
            Job(PSPACE, dependencies=deps, targets=done_marker, scheduler_args=args),
            JobArray(PROCESS, workers, targets=done_marker, scheduler_args=args,
                     n_cpus=task.pool_size),
            Job(FINALIZE, dependencies=deps, targets=[task.resultfile], scheduler_args=args),
        ])

    def run_job(self, job: str, index: int | None = None) -> None:
        if job == PSPACE:
            self.write_pspace()
        elif job == PROCESS:
            if index is None:
                raise JobFailedError("The process job needs --index (the worker number).")
            self.process(index)
        elif job == FINALIZE:
            self.finalize()
        else:
            raise JobFailedError(
                f"The load-balancing backend has no job {job!r}; its jobs are "
                f"{PSPACE}, {PROCESS} and {FINALIZE}."
            )

    # -------------------------------------------------------- jobs
    def write_pspace(self) -> None:
        """Start a new round with the assignments that have no result yet."""
        from psyrun.backend.table import table_len

        plan = self.read_plan()
        existing = self._round_dirs()
        # Round numbers are never reused, not even after a fresh start, so a
        # process left over from an old round can never write into a new one.
        number = int(existing[-1].name) + 1 if existing else 0
        if plan["fresh"]:
            # A new task definition: the old rounds describe other work.
            if self.roundsdir.exists():
                shutil.rmtree(self.roundsdir)
            todo = self.task.pspace.build()
        else:
            todo = self._missing_table(plan["keep_result"])
        round_dir = self.roundsdir / f"{number:04d}"
        n = table_len(todo)
        round_dir.mkdir(parents=True)
        if n:
            self.store.save(round_dir / f"in{self.ext}", todo)
        n_processes = max(1, plan["workers"]) * max(1, plan.get("pool_size", 1))
        ItemQueue.create(round_dir, n, n_processes)
        atomic_write_bytes(self.currentfile, json.dumps({"round": round_dir.name}).encode())
        print(f"round {round_dir.name}: {n} assignments for {plan['workers']} worker(s) "
              f"of {plan.get('pool_size', 1)} process(es)", flush=True)

    def process(self, index: int) -> None:
        """Worker ``index``: run ``pool_size`` pulling processes until the queue is empty."""
        round_dir = self._current_round()
        if round_dir is None:
            raise JobFailedError(f"{self.currentfile} is missing: the pspace job of task "
                                 f"{self.task.name} must run first (psy run).")
        pool_size = self.task.pool_size
        first_id = index * pool_size
        if pool_size == 1:
            done, failed = pull_items(self.task, round_dir, first_id)
            print(f"worker {index}: {done} done, {failed} failed", flush=True)
            return
        methods = multiprocessing.get_all_start_methods()
        forked = "fork" in methods
        context = multiprocessing.get_context("fork" if forked else "spawn")
        task_arg = self.task if forked else str(self.task.path)
        children = [context.Process(target=_pool_child, name=f"psyrun-lb-{first_id + k}",
                                    args=(task_arg, str(round_dir), first_id + k, os.getpid()))
                    for k in range(pool_size)]
        for child in children:
            child.start()
        for child in children:
            child.join()
        broken = [(c.name, c.exitcode) for c in children if c.exitcode != 0]
        if broken:
            raise JobFailedError(
                f"worker {index}: process(es) {', '.join(f'{n} (exit code {c})' for n, c in broken)} "
                f"ended abnormally; their unfinished items have no result. See the log above "
                f"and compute them with: psy run -c {self.task.name}"
            )
        print(f"worker {index}: {pool_size} processes finished", flush=True)

    def finalize(self) -> None:
        """Write the result file from every round's logs (and the kept result with -c)."""
        from psyrun.backend.table import concat, row_keys, table_len, unique_rows_in

        plan = self.read_plan()
        task = self.task
        parts = []
        if plan["keep_result"] and task.resultfile.exists():
            parts.append(self.store.load(task.resultfile))
        rows = self._log_rows()
        if rows:
            parts.append(rows_to_columns(rows))
        space_keys = set(row_keys(task.pspace.build(), self._keys))
        merged = unique_rows_in(concat(parts), self._keys, allowed=space_keys)
        task.resultfile.parent.mkdir(parents=True, exist_ok=True)
        if table_len(merged) > 0:
            self.store.save(task.resultfile, merged)
        elif task.resultfile.exists():
            task.resultfile.touch()
        else:
            self.store.save(task.resultfile, {k: [] for k in self._keys})
        print(f"finalized {table_len(merged)} rows into {task.resultfile}", flush=True)
        n_failed = len(self.get_failed())
        if n_failed:
            raise JobFailedError(
                f"{n_failed} item(s) of task {task.name} failed; the result holds the "
                f"others. See them with: psy status -v {task.name}; fix the task and "
                f"retry them with: psy run -c {task.name}"
            )

    # -------------------------------------------------------- status
    def _key_sets(self) -> tuple[dict[str, Any], list[tuple[Any, ...]], set[tuple[Any, ...]],
                                 set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        """The space, its row keys, and the keys done, failed and in progress."""
        from psyrun.backend.table import row_keys

        keys = self._keys
        space = self.task.pspace.build()
        space_keys = row_keys(space, keys)
        # Like Distribute: done is what psy run -c would keep.
        done_keys = set(row_keys(self._done_table(keep_result=True), keys))
        failed_keys: set[tuple[Any, ...]] = set()
        busy_keys: set[tuple[Any, ...]] = set()
        round_dir = self._current_round()
        if round_dir is not None and not self._is_fresh():
            failed_keys, busy_keys = self._round_state(round_dir, done_keys)
        return space, space_keys, done_keys, failed_keys, busy_keys - failed_keys

    def item_counts(self) -> ItemCounts:
        """Done, failed, in progress and missing assignments, from the files on disk."""
        _, space_keys, done_keys, failed_keys, busy_keys = self._key_sets()
        total = len(space_keys)
        done = sum(1 for k in space_keys if k in done_keys)
        failed = sum(1 for k in space_keys if k in failed_keys)
        busy = sum(1 for k in space_keys if k in busy_keys)
        return ItemCounts(total, done, failed, busy, max(0, total - done - failed - busy))

    def _round_state(self, round_dir: Path, done_keys: set[tuple[Any, ...]]
                     ) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        """Keys of the failed and of the in-progress items of one round."""
        from psyrun.backend.table import row_keys

        keys = self._keys
        failed = set()
        finished: set[int] = set()
        for log in self._logs(round_dir):
            finished.update(log.results)
            finished.update(log.failures)
            for failure in log.failures.values():
                key = row_keys(rows_to_columns([failure["params"]], keys), keys)[0]
                if key not in done_keys:
                    failed.add(key)
        queue = ItemQueue(round_dir)
        now = time.time()
        live: list[Claim] = [c for c in queue.claims() if claim_is_live(c, round_dir, now)]
        busy: set[tuple[Any, ...]] = set()
        inputs = InputRows(self.store, round_dir / f"in{self.ext}")
        for claim in live:
            if all(p in finished for p in claim.positions()):
                continue
            rows = inputs.rows(claim.start, claim.stop)  # one read per claim
            unfinished = [row for p, row in zip(claim.positions(), rows) if p not in finished]
            busy.update(row_keys(rows_to_columns(unfinished, keys), keys))
        return failed, busy - done_keys

    def summary(self) -> TaskSummary:
        counts = self.item_counts()
        return TaskSummary(total=counts.total, done=counts.done, failed=counts.failed,
                           missing=counts.missing, in_progress=counts.in_progress)

    def get_missing(self) -> Any:
        """The assignments without a result that no live process is working on.

        Failed assignments are included (they have no result); ``psy status``
        lists them separately.
        """
        from psyrun.backend.table import take
        from psyrun.pspace import Param

        space, space_keys, done_keys, _, busy_keys = self._key_sets()
        missing = take(space, [i for i, k in enumerate(space_keys)
                               if k not in done_keys and k not in busy_keys])
        if not missing or not len(next(iter(missing.values()))):
            return Param(**{k: [] for k in self._keys})
        return Param(**missing)

    def get_failed(self) -> list[FailedItem]:
        """Items that raised in the current round and have no result since."""
        round_dir = self._current_round()
        if round_dir is None:
            return []
        failures: dict[int, FailedItem] = {}
        done: set[int] = set()
        for log in self._logs(round_dir):
            done.update(log.results)
            for position, record in log.failures.items():
                failures[position] = FailedItem(**record)
        return [failures[p] for p in sorted(failures) if p not in done]
