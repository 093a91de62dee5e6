"""The LoadBalancing backend with real worker processes (``python -m psyrun.worker``).

The jobs run here the way a scheduler would run them (pspace, then the
process array as concurrent subprocesses, then finalize), without the CLI,
so that a test can kill a worker at a moment of its choosing.  Every test
checks the result file and the per-process logs: each assignment exactly once,
with the right values.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from psyrun.backend.item_queue import Claim, ItemQueue, Liveness, Owner
from psyrun.backend.load_balancing import (
    STALE_AFTER_SECONDS,
    InputRows,
    LoadBalancingBackend,
    _Heartbeat,
    claim_is_live,
)
from psyrun.backend.result_log import read_log
from psyrun.exceptions import JobFailedError
from psyrun.jobs import find_job
from psyrun.tasks import TaskDef

TASK = """\
import os, random, time
from psyrun import Param

pspace = Param(x=range({n}))
backend = "load-balancing"
store = {store!r}
max_jobs = {max_jobs}
pool_size = {pool_size}
exclude_from_result = ["context"]

def setup(proc_id):
    return {{"proc_id": proc_id}}

def execute(x, proc_id):
    # random durations: mostly nothing, some short sleeps
    r = random.Random(int(x)).random()
    if r < {slow_share}:
        time.sleep({slow_seconds} * r / {slow_share})
    if x in {fail!r}:
        raise ValueError("item %d refuses" % x)
    return {{"y": x * x + 1, "proc": proc_id, "context": object()}}
"""


def write_task(tmp_path: Path, name: str = "lb", *, n: int = 1000, store: str = "pickle",
               max_jobs: int = 2, pool_size: int = 4, slow_share: float = 0.01,
               slow_seconds: float = 0.002, fail: tuple[int, ...] = ()) -> Path:
    taskdir = tmp_path / "psy-tasks"
    taskdir.mkdir(exist_ok=True)
    path = taskdir / f"task_{name}.py"
    path.write_text(TASK.format(n=n, store=store, max_jobs=max_jobs, pool_size=pool_size,
                                slow_share=slow_share, slow_seconds=slow_seconds,
                                fail=tuple(fail)))
    return path


def start_workers(task: TaskDef, n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(
        [sys.executable, "-m", "psyrun.worker", "--taskdir", str(task.taskdir),
         "--task", task.name, "--job", "process", "--index", str(i), "--cwd", os.getcwd()],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]


def run_jobs(path: Path, cont: bool = False, finalize: bool = True) -> LoadBalancingBackend:
    """pspace, the process array (concurrently) and finalize, like a scheduler would."""
    task = TaskDef(path)
    backend = task.create_backend()
    graph = backend.create_job(cont=cont)
    backend.before_submit()
    backend.run_job("pspace")
    workers = start_workers(task, find_job(graph, "process").n)
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    if finalize:
        backend.run_job("finalize")
    return backend


def logged_positions(backend: LoadBalancingBackend) -> dict[str, list[int]]:
    """Round -> every position with a result, as often as it was logged."""
    found: dict[str, list[int]] = {}
    for round_dir in backend._round_dirs():
        for path in sorted((round_dir / "out").glob("*.log")):
            found.setdefault(round_dir.name, []).extend(read_log(path).results)
    return found


def check_result(task: TaskDef, n: int) -> dict:
    result = task.store.load(task.resultfile)
    xs = [int(x) for x in result["x"]]
    assert sorted(xs) == list(range(n))  # every assignment exactly once
    assert all(int(y) == x * x + 1 for x, y in zip(xs, result["y"]))
    assert "context" not in result  # exclude_from_result
    return result


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_eight_processes_over_ten_thousand_items(tmp_path):
    n = 10_000
    path = write_task(tmp_path, n=n, max_jobs=2, pool_size=4, slow_share=0.02)
    backend = run_jobs(path)
    task = backend.task
    result = check_result(task, n)
    procs = {int(p) for p in result["proc"]}
    assert procs <= set(range(8)) and len(procs) > 1  # distinct setup ids, shared work
    # no item was processed twice: each position appears in exactly one log
    (positions,) = logged_positions(backend).values()
    assert sorted(positions) == list(range(n))
    counts = backend.item_counts()
    assert (counts.total, counts.done, counts.failed, counts.in_progress, counts.missing) == (
        n, n, 0, 0, 0)
    # everything is up to date now: nothing to submit
    graph = backend.create_job()
    assert find_job(graph, "process").n == 0
    assert all(j.is_up_to_date() for j in (find_job(graph, "pspace"), find_job(graph, "finalize")))


def test_proc_ids_are_distinct_across_workers(tmp_path):
    path = write_task(tmp_path, n=40, max_jobs=3, pool_size=2, slow_share=1.0,
                      slow_seconds=0.05)
    backend = run_jobs(path)
    logs = [read_log(p) for p in (backend._current_round() / "out").glob("*.log")]
    ids = sorted(log.header["proc_id"] for log in logs)
    assert ids == list(range(6))  # worker index * pool_size + local index, each once
    for log in logs:  # each process passed its own id to execute
        assert {row["proc"] for row in log.results.values()} <= {log.header["proc_id"]}


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _wait_for_progress(round_dir: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((round_dir / "tickets").iterdir()):
            return
        time.sleep(0.01)
    raise AssertionError("no worker claimed anything")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_a_random_worker_then_continue(tmp_path, seed):
    rng = random.Random(seed)
    n = 3000
    path = write_task(tmp_path, n=n, max_jobs=2, pool_size=3, slow_share=0.2,
                      slow_seconds=0.02)
    task = TaskDef(path)
    backend = task.create_backend()
    graph = backend.create_job()
    backend.before_submit()
    backend.run_job("pspace")
    workers = start_workers(task, find_job(graph, "process").n)
    _wait_for_progress(backend._current_round())
    time.sleep(rng.uniform(0, 0.3))
    parent = rng.choice(workers)
    victims = [parent.pid] + _children(parent.pid)
    victim = rng.choice(victims)  # a worker or one of its pool processes
    try:
        os.kill(victim, signal.SIGKILL)
        killed = True
    except ProcessLookupError:  # it had finished already
        killed = False
    codes = [w.wait(60) for w in workers]
    if killed:
        assert codes[workers.index(parent)] != 0  # the killed worker's job fails
    first_round = backend._current_round()
    done_before = sorted(logged_positions(backend)[first_round.name])
    assert len(done_before) == len(set(done_before))  # nothing done twice
    counts = backend.item_counts()
    assert counts.in_progress == 0  # the dead worker's claims are not "in progress"
    assert counts.done + counts.missing == n
    assert counts.done == len(done_before)

    # psy run -c: a new round with exactly the missing assignments
    backend = run_jobs(path, cont=True)
    rounds = logged_positions(backend)
    second = backend._current_round()
    assert second != first_round
    assert ItemQueue(second).n_items == n - len(done_before)
    assert sorted(rounds.get(second.name, [])) == list(range(n - len(done_before)))
    check_result(backend.task, n)


def test_plain_run_after_interruption_computes_only_the_rest(tmp_path):
    n = 500
    path = write_task(tmp_path, n=n, max_jobs=1, pool_size=1)
    task = TaskDef(path)
    backend = task.create_backend()
    backend.create_job()
    backend.before_submit()
    backend.run_job("pspace")
    # a worker that processed only part of the queue (stopped by a claim limit)
    queue = ItemQueue(backend._current_round())
    queue.claim(Owner.current(), 100)  # claimed by this (live) process, never finished
    assert backend.item_counts().in_progress == 100
    missing = backend.get_missing().build()["x"]  # in progress is not missing
    assert sorted(missing) == list(range(100, n))
    workers = start_workers(task, 1)
    assert workers[0].wait(60) == 0
    counts = backend.item_counts()
    assert (counts.done, counts.in_progress, counts.missing) == (n - 100, 100, 0)
    # plain psy run (no -c) of an unchanged task resumes: 100 items in a new round
    backend = run_jobs(path)
    assert ItemQueue(backend._current_round()).n_items == 100
    check_result(backend.task, n)


def test_changed_task_without_continue_starts_over(tmp_path):
    path = write_task(tmp_path, n=50, max_jobs=1, pool_size=1)
    run_jobs(path)
    time.sleep(0.01)
    path = write_task(tmp_path, n=60, max_jobs=1, pool_size=1)
    os.utime(path, (time.time() + 1, time.time() + 1))
    backend = run_jobs(path)
    assert [d.name for d in backend._round_dirs()] == ["0001"]  # old rounds removed
    check_result(backend.task, 60)


def test_changed_task_with_continue_computes_only_new_assignments(tmp_path):
    path = write_task(tmp_path, n=50, max_jobs=1, pool_size=1)
    run_jobs(path)
    path = write_task(tmp_path, n=80, max_jobs=1, pool_size=1)
    os.utime(path, (time.time() + 1, time.time() + 1))
    backend = run_jobs(path, cont=True)
    assert ItemQueue(backend._current_round()).n_items == 30
    check_result(backend.task, 80)


def test_failed_items_are_recorded_and_retried(tmp_path):
    n = 200
    path = write_task(tmp_path, n=n, max_jobs=2, pool_size=2, fail=(3, 150))
    backend = run_jobs(path, finalize=False)
    with pytest.raises(JobFailedError, match="2 item"):
        backend.run_job("finalize")
    failed = backend.get_failed()
    assert sorted(f.params["x"] for f in failed) == [3, 150]
    assert all("item" in f.error and "refuses" in f.traceback for f in failed)
    counts = backend.item_counts()
    assert (counts.done, counts.failed, counts.missing) == (n - 2, 2, 0)
    result = backend.task.store.load(backend.task.resultfile)
    assert sorted(result["x"]) == sorted(set(range(n)) - {3, 150})
    assert sorted(backend.get_missing().build()["x"]) == [3, 150]
    # fixed task, psy run -c: only the two failures run again
    path = write_task(tmp_path, n=n, max_jobs=2, pool_size=2)
    backend = run_jobs(path, cont=True)
    assert ItemQueue(backend._current_round()).n_items == 2
    check_result(backend.task, n)
    assert backend.get_failed() == []


@pytest.mark.parametrize("store", ["pickle", "npz", "h5"])
def test_every_store(tmp_path, store):
    n = 600
    path = write_task(tmp_path, n=n, store=store, max_jobs=2, pool_size=2)
    backend = run_jobs(path)
    assert backend.task.resultfile.suffix == backend.task.store.ext
    check_result(backend.task, n)
    (positions,) = logged_positions(backend).values()
    assert sorted(positions) == list(range(n))


def test_input_rows_by_range_and_whole(tmp_path):
    task = TaskDef(write_task(tmp_path, n=10))
    store = task.store
    path = tmp_path / f"in{store.ext}"
    store.save(path, {"x": list(range(10)), "z": [f"s{i}" for i in range(10)]})

    class RangeReading(type(store)):
        reads_rows_cheaply = True

    whole = InputRows(store, path)
    ranged = InputRows(RangeReading(), path, whole_limit=0)
    assert not whole.by_range and ranged.by_range
    # small inputs are loaded whole even where batches could be read
    assert not InputRows(RangeReading(), path).by_range
    expected = [{"x": i, "z": f"s{i}"} for i in range(3, 6)]
    assert whole.rows(3, 6) == expected
    assert ranged.rows(3, 6) == expected


@pytest.mark.parametrize("store", ["pickle", "npz", "h5"])
def test_big_inputs_are_read_batch_by_batch_where_the_store_can(tmp_path, store):
    task = TaskDef(write_task(tmp_path, n=10, store=store))
    path = tmp_path / f"in{task.store.ext}"
    task.store.save(path, {"x": list(range(50)), "w": [0.5 * i for i in range(50)]})
    big = InputRows(task.store, path, whole_limit=0)
    assert big.by_range == task.store.reads_rows_cheaply
    rows = big.rows(7, 12) + big.rows(40, 41)
    assert [(int(r["x"]), float(r["w"])) for r in rows] == [
        (i, 0.5 * i) for i in [7, 8, 9, 10, 11, 40]]


def test_claims_of_other_hosts_live_by_the_heartbeat_of_their_log(tmp_path):
    round_dir = tmp_path / "0000"
    (round_dir / "out").mkdir(parents=True)
    remote = Owner("some-other-node", 1234, "99", "cafe")
    claim = Claim(0, 0, 5, remote)
    assert not claim_is_live(claim, round_dir)  # no log at all: it never got going
    log = round_dir / "out" / f"{remote.label}.log"
    log.write_bytes(b"")
    assert claim_is_live(claim, round_dir)
    old = time.time() - STALE_AFTER_SECONDS - 5
    os.utime(log, (old, old))
    assert not claim_is_live(claim, round_dir)
    with _Heartbeat(log, interval=0.05):
        deadline = time.monotonic() + 10
        while not claim_is_live(claim, round_dir) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert claim_is_live(claim, round_dir)
    # on this host the pid decides, whatever the log says
    me = Owner.current()
    assert claim_is_live(Claim(1, 5, 6, me), round_dir)


@pytest.mark.parametrize(("n_items", "max_jobs", "pool_size", "expected"), [
    (0, 4, 1, 0), (3, 4, 1, 3), (100, 4, 1, 4), (3, 4, 4, 1), (9, 4, 4, 3), (100, 1, 8, 1),
])
def test_number_of_workers(n_items, max_jobs, pool_size, expected):
    from psyrun.backend.load_balancing import n_workers

    assert n_workers(n_items, max_jobs, pool_size) == expected


def test_pool_processes_die_with_their_worker(tmp_path):
    # Orphans would keep computing items that psy run -c hands out again.
    path = write_task(tmp_path, n=200, max_jobs=1, pool_size=2, slow_share=1.0,
                      slow_seconds=0.05)
    task = TaskDef(path)
    backend = task.create_backend()
    backend.create_job()
    backend.before_submit()
    backend.run_job("pspace")
    (worker,) = start_workers(task, 1)
    deadline = time.monotonic() + 30
    while len(_children(worker.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    children = _children(worker.pid)
    assert len(children) == 2
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    owners = [Owner(socket.gethostname(), pid, "-", "x") for pid in children]

    def alive() -> bool:  # an unreaped zombie counts as gone
        return any(o.liveness() is not Liveness.DEAD for o in owners)

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive()
    counts = backend.item_counts()
    assert counts.in_progress == 0 and counts.done < 200
