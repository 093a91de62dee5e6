"""The other commands: list, test, new-task, clean, kill, help; locks; 0.8 task files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from .conftest import psy_command, wait_for

GOOD = """\
from psyrun import Param
pspace = Param(x=range(4))
def execute(x):
    return {"y": x + 1}
"""

SLOW = """\
import time
from psyrun import Param
pspace = Param(x=range(4))
max_jobs = 1
def execute(x):
    time.sleep(30)
    return {"y": x}
"""


@pytest.mark.parametrize("command", ["run", "status", "kill", "clean", "list", "merge", "test",
                                     "new-task", "plugins"])
def test_every_command_has_help(command):
    proc = subprocess.run([*psy_command(), command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "Usage:" in proc.stdout


def test_a_misspelt_command_gets_the_closest_one(project):
    proc = project.psy("stauts", check=False)
    assert proc.returncode == 2
    assert "No such command 'stauts'. Did you mean 'status'?" in proc.stderr
    assert "Did you mean" not in project.psy("xyzzy", check=False).stderr


def test_list_and_test(project):
    project.write_task("alpha", GOOD)
    project.write_task("beta", GOOD.replace("x + 1", "x / 0"))
    assert project.psy("list").stdout.split() == ["alpha", "beta"]
    ok = project.psy("test", "alpha")
    assert "alpha: execute(x=0) -> {'y': 1}" in ok.stdout
    bad = project.psy("test", check=False)
    assert bad.returncode == 1
    assert "ZeroDivisionError" in bad.stderr
    assert not project.work.exists()  # test writes nothing


def test_test_refuses_an_output_that_replaces_a_parameter(project):
    project.write_task("delta", GOOD.replace('{"y": x + 1}', '{"x": x + 1}'))
    proc = project.psy("test", "delta", check=False)
    assert proc.returncode == 1
    assert "execute returned x=1 for the parameter x=0" in proc.stderr


def test_test_names_setup_when_setup_fails(project):
    project.write_task("gamma", GOOD.replace("def execute(x)", "def setup(proc_id):\n"
                                             "    return 5\ndef execute(x)"))
    proc = project.psy("test", "gamma", check=False)
    assert proc.returncode == 1
    assert "gamma: setup(0) raised:" in proc.stderr
    assert "execute(" not in proc.stderr


def test_new_task_writes_a_runnable_template_and_never_overwrites(project):
    out = project.psy("new-task", "fresh").stdout
    path = project.tasks / "task_fresh.py"
    assert "task_fresh.py" in out
    original = path.read_text()
    assert "scheduler_args" in original
    proc = project.psy("new-task", "fresh", check=False)
    assert proc.returncode == 2 and "exists already" in proc.stderr
    assert path.read_text() == original
    project.psy("run", "fresh")
    assert project.rows("fresh") == [(r, x, x ** 2) for r in (0, 1) for x in (1, 2, 3)]


def test_new_task_in_another_taskdir_says_the_commands_that_find_it(project):
    out = project.psy("new-task", "--taskdir", "more/tasks", "extra").stdout
    assert "psy test --taskdir more/tasks extra" in out
    assert "psy run --taskdir more/tasks extra" in out
    project.psy("test", "--taskdir", "more/tasks", "extra")  # the hint works as printed
    assert "psy test fresh;" in project.psy("new-task", "fresh").stdout


def test_new_task_for_a_named_scheduler_uses_its_template(project):
    project.psy("new-task", "--scheduler", "immediate", "local")
    text = (project.tasks / "task_local.py").read_text()
    assert "scheduler = 'immediate'" in text
    compile(text, "task_local.py", "exec")
    proc = project.psy("new-task", "--scheduler", "nosuch", "other", check=False)
    assert proc.returncode == 2 and "Unknown scheduler 'nosuch'" in proc.stderr
    assert not (project.tasks / "task_other.py").exists()


def test_clean_deletes_only_the_named_task(project):
    project.write_task("a", GOOD)
    project.write_task("b", GOOD)
    project.psy("run")
    project.psy("clean", "a")
    assert not (project.work / "a").exists()
    assert (project.work / "b" / "result.pkl").exists()
    assert "0 done" in project.psy("status", "a").stdout


def _running_psy(project, task):
    proc = project.start("run", task)
    lock = project.work / task / "psy.lock"
    wait_for(lambda: (project.work / task / "jobs.json").exists() or proc.poll() is not None,
             "psy run to submit")
    assert proc.poll() is None, proc.communicate()
    assert lock.exists()
    return proc


def test_second_run_of_a_running_task_is_refused_and_kill_stops_it(project):
    project.write_task("slow", SLOW)
    first = _running_psy(project, "slow")
    try:
        second = project.psy("run", "slow", check=False)
        assert second.returncode == 2
        assert "already being run" in second.stderr and str(first.pid) in second.stderr
        clean = project.psy("clean", "slow", check=False)
        assert clean.returncode == 2
        assert (project.work / "slow").exists()
        # cleaning all tasks leaves the running one alone but cleans the others,
        # also those after it
        project.write_task("zdone", GOOD)
        project.psy("run", "zdone")
        clean = project.psy("clean", check=False)
        assert clean.returncode == 2 and "already being run" in clean.stderr
        assert "zdone: deleted" in clean.stdout
        assert not (project.work / "zdone").exists()
        assert (project.work / "slow").exists()
        status = project.psy("status", "slow").stdout
        assert f"pid {first.pid}" in status

        killed = project.psy("kill", "slow")
        assert "slow" in killed.stdout
        _, err = first.communicate(timeout=60)
        assert first.returncode == 130  # interrupted, as by Ctrl-C
        assert "Interrupted" in err and "psy run -c slow" in err
        assert "Traceback" not in err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not (project.work / "slow" / "psy.lock").exists()
    assert "0 done" in project.psy("status", "slow").stdout


def test_kill_of_one_task_says_it_stops_the_others_of_the_same_run(project):
    project.write_task("one", SLOW)
    project.write_task("two", SLOW)
    run = project.start("run")  # both tasks, their jobs in this one process
    try:
        wait_for(lambda: all((project.work / t / "jobs.json").exists() for t in ("one", "two"))
                 or run.poll() is not None, "psy run to submit both tasks")
        assert run.poll() is None, run.communicate()
        killed = project.psy("kill").stdout
        assert f"one: interrupted psy run (pid {run.pid})" in killed
        assert "it also ran two, stopped as well" in killed
        # one SIGINT only: a second one could cut the run's clean-up short
        assert f"two: stopped with the psy run (pid {run.pid}) interrupted above" in killed
        run.communicate(timeout=60)
        assert run.returncode == 130
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_kill_leaves_a_reused_pid_alone(project):
    """A finished run's record names a pid that may now belong to another process."""
    project.write_task("t", GOOD)
    project.psy("run", "t")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = project.work / "t" / "jobs.json"
        data = json.loads(record.read_text())
        assert data["in_process"]
        record.write_text(json.dumps({**data, "pid": other.pid}))
        assert "t: no running jobs" in project.psy("kill", "t").stdout
        assert other.poll() is None  # not signalled
    finally:
        other.kill()
        other.wait()


def test_kill_of_a_run_on_another_host_says_where_to_kill_it(project):
    """On a shared file system, the psy run may be on another login node."""
    project.write_task("t", GOOD)
    project.psy("run", "t")
    record = project.work / "t" / "jobs.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "host": "login2", "pid": 4242}))
    (project.work / "t" / "psy.lock").write_text(json.dumps(
        {"pid": 4242, "host": "login2", "command": "psy run", "started": "today"}))
    proc = project.psy("kill", "t", check=False)
    assert proc.returncode == 2
    assert "t: its jobs run inside psy run (pid 4242) on login2; run psy kill t there" \
        in proc.stdout
    status = project.psy("status", "t").stdout
    assert "? queued, ? running" in status
    assert "(jobs run inside psy run (pid 4242) on login2)" in status


def test_stale_lock_of_a_dead_process_is_taken_over(project):
    project.write_task("t", GOOD)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = project.work / "t" / "psy.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                "command": "psy run", "started": "earlier"}))
    project.psy("run", "t")
    assert project.rows("t") == [(x, x + 1) for x in range(4)]
    assert not lock.exists()


def test_live_lock_is_respected(project):
    project.write_task("t", GOOD)
    lock = project.work / "t" / "psy.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                "command": "psy run", "started": "now"}))
    proc = project.psy("run", "t", check=False)
    assert proc.returncode == 2 and "already being run" in proc.stderr
    assert not (project.work / "t" / "result.pkl").exists()


def test_task_file_written_for_psyrun_08_runs_unchanged(project):
    project.write_task("old", """\
        from psyrun import Param, DistributeBackend
        from psyrun.scheduler import ImmediateRun
        from psyrun.store import DefaultStore

        pspace = Param(a=[1, 2, 3]) * Param(b=[10, 20])
        backend = DistributeBackend
        scheduler = ImmediateRun()
        scheduler_args = {}
        store = DefaultStore()
        max_jobs = 2
        min_items = 1
        file_dep = []
        overwrite_dirty = True

        def execute(a, b):
            return {"c": a * b}
    """)
    project.psy("run")
    assert project.rows("old") == [(a, b, a * b) for a in (1, 2, 3) for b in (10, 20)]


def test_the_shipped_examples_run(tmp_path):
    import shutil
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    shutil.copytree(examples / "psy-tasks", tmp_path / "psy-tasks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run([*psy_command(), "run"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    for name in ("pi", "noisy_fit", "logistic"):
        assert f"{name}: results in psy-work/{name}/result" in run.stdout
    status = subprocess.run([*psy_command(), "status"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert "pi: 20 total, 20 done" in status.stdout
    assert "logistic: 100 total, 100 done" in status.stdout
