"""Whole ``psy`` runs of load-balancing tasks: run, status while running, kill -9, run -c."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest


def wait_for(predicate, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


TASK = """\
import random, time
from psyrun import Param
from psyrun.scheduler.immediate import ImmediateRun

pspace = Param(x=range({n}))
backend = "load-balancing"
scheduler = ImmediateRun(cores={cores})
max_jobs = {max_jobs}
pool_size = {pool_size}

def setup(proc_id):
    return {{"proc_id": proc_id}}

def execute(x, proc_id):
    r = random.Random(int(x)).random()
    if r < {slow_share}:
        time.sleep({slow_seconds})
    return {{"y": 2 * x, "proc": proc_id}}
"""


def task_text(n: int, *, max_jobs: int = 2, pool_size: int = 2, slow_share: float = 0.0,
              slow_seconds: float = 0.0) -> str:
    return TASK.format(n=n, cores=max_jobs * pool_size, max_jobs=max_jobs,
                       pool_size=pool_size, slow_share=slow_share, slow_seconds=slow_seconds)


def check_rows(project, n: int) -> None:
    data = project.result("lb")
    xs = [int(x) for x in data["x"]]
    assert sorted(xs) == list(range(n))
    assert all(int(y) == 2 * x for x, y in zip(xs, data["y"]))


def status_json(project) -> dict:
    return json.loads(project.psy("status", "--json", "lb").stdout)[0]


def test_run_status_and_rerun(project):
    n = 2000
    project.write_task("lb", task_text(n, max_jobs=2, pool_size=4))
    out = project.psy("run").stdout
    assert ". lb:pspace" in out and ". lb:process" in out and ". lb:finalize" in out
    check_rows(project, n)
    procs = {int(p) for p in project.result("lb")["proc"]}
    assert procs <= set(range(8))
    status = project.psy("status", "lb").stdout
    assert f"{n} total, {n} done" in status and "0 missing, 0 in progress" in status
    again = project.psy("run").stdout
    assert "- lb:pspace" in again and "- lb:process" in again and "- lb:finalize" in again


def test_status_shows_items_in_progress_while_running(project):
    project.write_task("lb", task_text(12, max_jobs=1, pool_size=2, slow_share=1.0,
                                       slow_seconds=0.5))
    run = project.start("run")
    try:
        seen = []

        def in_progress() -> bool:
            report = status_json(project)
            seen.append(report)
            return bool(report["in_progress"])

        wait_for(in_progress, "items in progress", timeout=60)
        report = seen[-1]
        assert 1 <= report["in_progress"] <= 12
        assert report["done"] + report["in_progress"] + report["missing"] == 12
    finally:
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert status_json(project)["in_progress"] == 0
    check_rows(project, 12)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    children: list[str] = []
    # Each thread has its own list (the immediate scheduler starts jobs from a thread).
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.extend((task / "children").read_text().split())
        except OSError:
            continue
    for child in map(int, children):
        found.append(child)
        found.extend(_descendants(child))
    return found


def _workers(pid: int) -> list[int]:
    """The worker processes (and their pool processes) below ``psy run``."""
    result = []
    for child in _descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"psyrun.worker" in cmdline and b"process" in cmdline:
            result.append(child)
            result.extend(_descendants(child))
    return result


@pytest.mark.parametrize("seed", [11])
def test_kill_a_worker_then_run_continue(project, seed):
    rng = random.Random(seed)
    n = 3000
    project.write_task("lb", task_text(n, max_jobs=2, pool_size=2, slow_share=0.2,
                                       slow_seconds=0.01))
    run = project.start("run")
    try:
        # (a run that ends before we look is fine too: then nothing is killed)
        wait_for(lambda: len(_workers(run.pid)) >= 2 or run.poll() is not None, "workers",
                 timeout=60)
        tickets = project.work / "lb" / "rounds" / "0000" / "tickets"
        wait_for(lambda: (tickets.is_dir() and any(tickets.iterdir())) or run.poll() is not None,
                 "claims", timeout=60)
        time.sleep(rng.uniform(0, 0.3))
        victims = _workers(run.pid)
        if victims:
            os.kill(rng.choice(victims), signal.SIGKILL)
    finally:
        out, err = run.communicate(timeout=120)
    status = status_json(project)
    assert status["in_progress"] == 0  # nothing claims to run once the jobs are gone
    assert status["done"] + status["missing"] == n
    if status["missing"]:
        assert run.returncode != 0, out + err
        assert "psy run -c" in out + err
    project.psy("run", "-c")
    check_rows(project, n)
    final = status_json(project)
    assert (final["done"], final["missing"], final["in_progress"]) == (n, 0, 0)
