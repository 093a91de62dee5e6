"""The Distribute backend (plugin ``distribute``, the default).

A task becomes a chain of three jobs:

``split``
    writes the assignments into at most ``max_jobs`` input files
    ``in/<run>_<i><ext>`` of at least ``min_items`` rows each;
``process``
    a job array with one element per input file; element ``i`` evaluates its
    file with ``pool_size`` processes (``setup`` gets the ``proc_id``
    ``i * pool_size`` to ``i * pool_size + pool_size - 1``) and writes ``out/<run>_<i><ext>`` (rows)
    and, if items raised, ``failed/<run>_<i>.pkl`` (their parameters and
    tracebacks);
``merge``
    joins the outputs into the result file.  It fails (exit code 1) after
    writing the result if items failed, so the scheduler and ``psy run``
    report it.

With ``psy run -c`` (``cont``) the existing result is kept: ``split`` first
folds any outputs of an interrupted run into the result (each assignment once,
only those still in the parameter space), then writes input files for the
assignments that have no result, and ``merge`` adds the new rows to the
result.  Every file is replaced atomically, so after ``kill -9`` at any moment
``psy run -c`` ends with each assignment present exactly once.

``plan.json`` in the task's work directory tells the jobs how many input
files there are, whether the run continues, and the run's id.  ``psy run``
writes it (:meth:`DistributeBackend.before_submit`) just before submitting.  File names carry the run id so that a job
orphaned by a killed ``psy run`` can never overwrite the output of a later
run; its late output is folded in (once) by the next ``psy run -c``.

The task is up to date when its result file is newer than the task file and
its ``file_dep``, no item failed, and the last planned run got to its merge
(``merged.json`` holds its id); then all three jobs are skipped.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from psyrun.backend.base import (
    Backend,
    FailedItem,
    TaskSummary,
    call_setup,
    columns_to_rows,
    evaluate_items,
    load_failures,
    rows_to_columns,
    save_failures,
)
from psyrun.backend.table import (
    concat,
    row_keys,
    slice_table,
    table_len,
    take,
    unique_rows_in,
)
from psyrun.exceptions import JobFailedError
from psyrun.jobs import Job, JobArray, JobChain, JobNode, is_up_to_date
from psyrun.store.atomic import atomic_write_bytes

SPLIT, PROCESS, MERGE = "split", "process", "merge"


def n_batches(n_items: int, max_jobs: int, min_items: int) -> int:
    """How many input files ``n_items`` assignments are split into."""
    if n_items <= 0:
        return 0
    return max(1, min(max_jobs, n_items // min_items))


def batch_bounds(n_items: int, n: int) -> list[tuple[int, int]]:
    """``n`` (start, stop) ranges covering ``n_items``, sizes differing by at most one."""
    size, extra = divmod(n_items, n) if n else (0, 0)
    bounds, start = [], 0
    for i in range(n):
        stop = start + size + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class DistributeBackend(Backend):
    """Split the space into input files, process them as a job array, merge."""

    def __init__(self, task: Any) -> None:
        super().__init__(task)
        self.store = task.store
        self.ext = getattr(self.store, "ext", "") or ".pkl"
        self.indir = self.workdir / "in"
        self.outdir = self.workdir / "out"
        self.faildir = self.workdir / "failed"
        #: Written by merge: the id of the last run whose result is complete.
        self.mergedfile = self.workdir / "merged.json"
        self._settled = False

    # -------------------------------------------------------- file names
    def infile(self, run: str, i: int) -> Path:
        return self.indir / f"{run}_{i}{self.ext}"

    def outfile(self, run: str, i: int) -> Path:
        return self.outdir / f"{run}_{i}{self.ext}"

    def failfile(self, run: str, i: int) -> Path:
        return self.faildir / f"{run}_{i}.pkl"

    def _files(self, directory: Path, suffix: str) -> list[Path]:
        if not directory.is_dir():
            return []
        return sorted((p for p in directory.iterdir()
                       if p.name.endswith(suffix) and not p.name.startswith(".")),
                      key=lambda p: (len(p.name), p.name))

    def _outfiles(self) -> list[Path]:
        return self._files(self.outdir, self.ext)

    def _pending_outfiles(self) -> list[Path]:
        """Outputs written after the result file, so not merged into it yet."""
        result = self.task.resultfile
        since = result.stat().st_mtime_ns if result.exists() else -1
        return [p for p in self._outfiles() if p.stat().st_mtime_ns > since]

    def _failfiles(self) -> list[Path]:
        return self._files(self.faildir, ".pkl")

    # -------------------------------------------------------- plan
    def before_submit(self) -> None:
        """Write the plan of the graph :meth:`create_job` made last.

        Not when the task is up to date: nothing will run, and the plan on
        disk must stay the one of the run that made the result.
        """
        if self._plan is None:
            raise JobFailedError("create_job() must be called before before_submit().")
        if self._settled and is_up_to_date(self.task.dependencies, [self.task.resultfile]):
            return
        super().before_submit()

    def _run_id(self, path: Path) -> str | None:
        try:
            return json.loads(path.read_text()).get("run")
        except (OSError, ValueError, AttributeError):
            return None

    def _interrupted(self) -> bool:
        """True if the last planned run has not merged (it was killed or failed)."""
        planned = self._run_id(self.planfile)
        return planned is not None and planned != self._run_id(self.mergedfile)

    # -------------------------------------------------------- the graph
    def create_job(self, cont: bool = False) -> JobNode:
        task = self.task
        deps = task.dependencies
        clean = not self._failfiles()
        if cont:
            n = n_batches(table_len(self._missing_table()), task.max_jobs, task.min_items)
            settled = n == 0 and clean and not self._pending_outfiles()
        else:
            n = n_batches(len(task.pspace), task.max_jobs, task.min_items)
            settled = clean and not self._interrupted()
        self._settled = settled
        self._plan = {"n": n, "cont": cont,
                      "run": f"{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}",
                      "created": time.time()}
        # Up to date only as a whole: a result newer than the task file.
        targets = [task.resultfile] if settled else []
        args = task.scheduler_args
        return JobChain([
            Job(SPLIT, dependencies=deps, targets=targets, scheduler_args=args),
            JobArray(PROCESS, n, dependencies=deps, targets=targets, scheduler_args=args,
                     n_cpus=task.pool_size),
            Job(MERGE, dependencies=deps, targets=targets, scheduler_args=args),
        ])

    def run_job(self, job: str, index: int | None = None) -> None:
        if job == SPLIT:
            self.split()
        elif job == PROCESS:
            if index is None:
                raise JobFailedError("The process job needs --index (the input file number).")
            self.process(index)
        elif job == MERGE:
            self.merge()
        else:
            raise JobFailedError(
                f"The distribute backend has no job {job!r}; its jobs are "
                f"{SPLIT}, {PROCESS} and {MERGE}."
            )

    # -------------------------------------------------------- reading results
    @property
    def _keys(self) -> list[str]:
        return list(self.task.pspace.keys())

    def _load(self, path: Path) -> dict[str, Any]:
        return self.store.load(path)

    def _done_table(self) -> dict[str, Any]:
        """Rows of the result and of outputs not yet merged, each assignment once."""
        parts = []
        if self.task.resultfile.exists():
            parts.append(self._load(self.task.resultfile))
        parts.extend(self._load(p) for p in self._outfiles())
        return concat(parts)

    def _missing_table(self, done: dict[str, Any] | None = None) -> dict[str, Any]:
        space = self.task.pspace.build()
        if done is None:
            done = self._done_table()
        keys = self._keys
        if table_len(done) == 0:
            return space
        done_keys = set(row_keys(done, keys))
        indices = [i for i, k in enumerate(row_keys(space, keys)) if k not in done_keys]
        return take(space, indices)

    # -------------------------------------------------------- jobs
    @staticmethod
    def _clear(*directories: Path) -> None:
        for directory in directories:
            if directory.is_dir():
                for path in directory.iterdir():
                    path.unlink()

    def split(self) -> None:
        """Write the input files (only the missing assignments when continuing)."""
        plan = self.read_plan()
        n, run = plan["n"], plan["run"]
        if plan["cont"]:
            self._consolidate()
            self._clear(self.indir)
            todo = self._missing_table()
        else:
            self._clear(self.indir, self.outdir, self.faildir)
            todo = self.task.pspace.build()
        self.indir.mkdir(parents=True, exist_ok=True)
        total = table_len(todo)
        for i, (start, stop) in enumerate(batch_bounds(total, n)):
            if stop > start:
                self.store.save(self.infile(run, i), slice_table(todo, start, stop))
        print(f"split {total} assignments into {n} input files", flush=True)

    def _unique_chunks(self, paths: list[Path], allowed: set[Any]) -> Iterator[dict[str, Any]]:
        """The rows of each file whose assignment is in ``allowed`` and not seen before."""
        seen: set[Any] = set()
        for path in paths:
            table = self._load(path)
            indices = []
            for i, key in enumerate(row_keys(table, self._keys)):
                if key in allowed and key not in seen:
                    seen.add(key)
                    indices.append(i)
            yield table if len(indices) == table_len(table) else take(table, indices)

    def _write_result(self, chunks: Iterable[dict[str, Any]]) -> int:
        """Write the non-empty chunks as the result file (atomically); return the rows.

        Nothing is written when there are no rows at all.
        """
        counted = [0]

        def non_empty() -> Iterator[dict[str, Any]]:
            for chunk in chunks:
                n = table_len(chunk)
                if n:
                    counted[0] += n
                    yield chunk

        rows = non_empty()
        first = next(rows, None)
        if first is None:
            return 0
        self.task.resultfile.parent.mkdir(parents=True, exist_ok=True)
        self.store.save_many(self.task.resultfile, itertools.chain([first], rows))
        return counted[0]

    def _space_keys(self) -> set[Any]:
        return set(row_keys(self.task.pspace.build(), self._keys))

    def _consolidate(self) -> None:
        """Fold outputs of an earlier run into the result, then drop them.

        The result is written (atomically) before any output is deleted, and
        each assignment is kept once, so this is safe to repeat after a kill.
        Rows no longer in the parameter space are left out; if none is left,
        the old result stays as it is (the merge replaces it).
        """
        outs = self._outfiles()
        result = self.task.resultfile
        inputs = ([result] if result.exists() else []) + outs
        if inputs:
            if outs:
                self._write_result(self._unique_chunks(inputs, self._space_keys()))
            else:
                old = self._load(result)
                kept = unique_rows_in(old, self._keys, allowed=self._space_keys())
                if 0 < table_len(kept) < table_len(old):
                    self.store.save(result, kept)
        for path in outs + self._failfiles():
            path.unlink()

    def process(self, index: int) -> None:
        """Evaluate input file ``index`` and write its rows and failures."""
        run = self.read_plan()["run"]
        infile = self.infile(run, index)
        if not infile.exists():  # fewer assignments than planned: nothing to do
            print(f"no input file {infile.name}: nothing to do", flush=True)
            return
        items = list(columns_to_rows(self._load(infile)))
        task = self.task
        if task.pool_size > 1 and len(items) > 1:
            from psyrun.backend.pool import evaluate_in_pool

            rows, failures = evaluate_in_pool(task, items, task.pool_size,
                                              first_proc_id=index * task.pool_size)
        else:
            # proc_id is distinct across all processes of all elements.
            kwargs = call_setup(task, index * task.pool_size)
            rows, failures = evaluate_items(task.execute, items, kwargs,
                                            task.exclude_from_result)
        if failures:
            save_failures(self.failfile(run, index), failures)
            for failure in failures:
                print(f"item {failure.params} failed: {failure.traceback}", flush=True)
        if rows:
            self.outdir.mkdir(parents=True, exist_ok=True)
            self.store.save(self.outfile(run, index), rows_to_columns(rows))
        print(f"processed {len(items)} assignments: {len(rows)} done, "
              f"{len(failures)} failed", flush=True)

    def merge(self) -> None:
        """Write the result file from the outputs (and the kept result with ``-c``).

        The store's ``save_many`` writes the files one after the other, so
        the merge is linear in the number of rows.
        """
        plan = self.read_plan()
        task = self.task
        outs = [p for p in (self.outfile(plan["run"], i) for i in range(plan["n"]))
                if p.exists()]
        if plan["cont"]:
            inputs = ([task.resultfile] if task.resultfile.exists() else []) + outs
            rows = self._write_result(self._unique_chunks(inputs, self._space_keys()))
        else:
            rows = self._write_result(self._load(p) for p in outs)
        if rows == 0 and (plan["cont"] or not task.resultfile.exists()):
            # No row of this definition (yet): an empty result says so.  Without
            # -c an older result is left as it was (out of date) instead.
            task.resultfile.parent.mkdir(parents=True, exist_ok=True)
            self.store.save(task.resultfile, {k: [] for k in self._keys})
        atomic_write_bytes(self.mergedfile, json.dumps({"run": plan["run"]}).encode())
        n_failed = sum(len(load_failures(self.failfile(plan["run"], i)))
                       for i in range(plan["n"]))
        print(f"merged {rows} rows into {task.resultfile}", flush=True)
        if n_failed:
            raise JobFailedError(
                f"{n_failed} item(s) of task {task.name} failed; the result holds the "
                f"others. See them with: psy status -v {task.name}; fix the task and "
                f"retry them with: psy run -c {task.name}"
            )

    # -------------------------------------------------------- status
    def get_missing(self) -> Any:
        from psyrun.pspace import Param

        missing = self._missing_table()
        if table_len(missing) == 0:
            return Param(**{k: [] for k in self._keys})
        return Param(**missing)

    def get_failed(self) -> list[FailedItem]:
        failures: list[FailedItem] = []
        for path in self._failfiles():
            failures.extend(load_failures(path))
        return failures

    def _count(self, path: Path) -> int:
        count = getattr(self.store, "count", None)
        if count is not None:
            return count(path)
        return table_len(self._load(path))

    def summary(self) -> TaskSummary:
        task = self.task
        total = len(task.pspace)
        failed = len(self.get_failed())
        result = task.resultfile
        result_current = is_up_to_date(task.dependencies, [result])
        pending = self._pending_outfiles()
        if result_current or not result.exists():
            done = (self._count(result) if result.exists() else 0)
            done += sum(self._count(p) for p in pending)
        else:
            # The result predates the task file: count what -c would keep.
            done = total - table_len(self._missing_table())
        done = min(done, total)
        return TaskSummary(total=total, done=done, failed=min(failed, total - done),
                           missing=max(0, total - done - failed))


#: The backend used when a task does not choose one (psyrun 0.8 name).
DefaultBackend = DistributeBackend
