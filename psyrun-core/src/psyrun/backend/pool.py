"""Evaluating a batch of items with ``pool_size`` processes inside one job.

Each process calls the task's ``setup(proc_id)`` once (``proc_id`` counts
from the number the caller gives, so ids are distinct across jobs) and then ``execute`` for the chunks of items it is given.
Processes are forked where the platform allows it, so they inherit the task
already loaded; elsewhere each process loads the task file itself.  Only
plain data (parameter dicts and result rows) crosses process boundaries, so
``execute`` need not be picklable.  A process that dies (a crash in native
code, the OOM killer) breaks the pool and fails the job instead of hanging.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from psyrun.backend.base import FailedItem, call_setup, evaluate_items

if TYPE_CHECKING:
    from psyrun.tasks import TaskDef

# State of a pool process: the task and the keyword arguments setup returned.
_parent_task: TaskDef | None = None
_state: dict[str, Any] = {}


def _init(task_path: str, cwd: str, counter: Any) -> None:
    with counter.get_lock():
        proc_id = counter.value
        counter.value += 1
    try:
        task = _parent_task
        if task is None:  # a spawned process: load the task like the worker did
            from psyrun.tasks import TaskDef

            os.chdir(cwd)
            task = TaskDef(task_path)
        _state["task"] = task
        _state["kwargs"] = call_setup(task, proc_id)
    except Exception:
        _state["setup_error"] = traceback.format_exc()


def _run_chunk(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[FailedItem]]:
    if "setup_error" in _state:
        raise RuntimeError("setup() failed in a pool process:\n" + _state["setup_error"])
    task = _state["task"]
    return evaluate_items(task.execute, items, _state["kwargs"], task.exclude_from_result)


def _chunks(items: Sequence[dict[str, Any]], pool_size: int) -> list[list[dict[str, Any]]]:
    # A few chunks per process balance uneven item costs without paying
    # inter-process traffic for every single item.
    n_chunks = min(len(items), pool_size * 4)
    size, extra = divmod(len(items), n_chunks) if n_chunks else (0, 0)
    chunks, start = [], 0
    for i in range(n_chunks):
        stop = start + size + (1 if i < extra else 0)
        chunks.append(list(items[start:stop]))
        start = stop
    return chunks


def evaluate_in_pool(
    task: TaskDef, items: Sequence[dict[str, Any]], pool_size: int, first_proc_id: int = 0
) -> tuple[list[dict[str, Any]], list[FailedItem]]:
    """Evaluate ``items`` with ``pool_size`` processes; rows keep the item order.

    The processes get the ``proc_id`` ``first_proc_id`` to
    ``first_proc_id + pool_size - 1``.
    """
    global _parent_task
    from concurrent.futures import ProcessPoolExecutor

    if not items:
        return [], []
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    counter = context.Value("i", first_proc_id)
    rows: list[dict[str, Any]] = []
    failures: list[FailedItem] = []
    _parent_task = task
    try:
        with ProcessPoolExecutor(max_workers=pool_size, mp_context=context, initializer=_init,
                                 initargs=(str(task.path), os.getcwd(), counter)) as pool:
            for chunk_rows, chunk_failures in pool.map(_run_chunk, _chunks(items, pool_size)):
                rows.extend(chunk_rows)
                failures.extend(chunk_failures)
    finally:
        _parent_task = None
    return rows, failures
