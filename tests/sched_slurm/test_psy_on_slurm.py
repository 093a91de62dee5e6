"""Whole ``psy`` runs through the real Slurm: every row, splitting, failures, kill, LoadBalancing.

Each test writes task files into a tmp dir and runs ``psy`` as a subprocess
there, as a user would; jobs run as Slurm jobs with this test's Python.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from psyrun_sched_slurm.cluster import cluster_config

TIMEOUT = 180

pytestmark = pytest.mark.usefixtures("slurm_cluster")


def psy(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "psyrun", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def write_task(root: Path, name: str, body: str) -> None:
    (root / "psy-tasks").mkdir(exist_ok=True)
    (root / "psy-tasks" / f"task_{name}.py").write_text(textwrap.dedent(body))


def result_rows(root: Path, name: str) -> list[tuple]:
    from psyrun.store.pickle import PickleStore

    data = PickleStore().load(root / "psy-work" / name / "result.pkl")
    keys = sorted(data)
    return sorted(zip(*(list(data[k]) for k in keys)))


def calls(root: Path) -> list[int]:
    """The x of every execute call, from the calls log the task files append to."""
    log = root / "calls.log"
    return sorted(int(line) for line in log.read_text().split()) if log.exists() else []


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def slurm_records(root: Path, name: str) -> list[dict]:
    records = root / "psy-work" / name / "scheduler" / "slurm" / "records"
    return [json.loads(p.read_text()) for p in records.glob("*.json")]


def process_id(record: dict) -> str:
    return "+".join(record["slurm_ids"])


TASK = """\
    from psyrun import Param
    pspace = Param(x=range({n}))
    scheduler = "slurm"
    max_jobs = {max_jobs}

    def execute(x):
        with open({calls!r}, "a") as f:
            f.write(f"{{x}}\\n")
        return {{"y": x * x}}
"""


def test_task_bigger_than_max_array_size_is_split_and_ends_with_every_row(slurm_tmp):
    max_size = cluster_config().max_array_size
    n = 2 * max_size + 5
    write_task(slurm_tmp, "square", TASK.format(n=n, max_jobs=n, calls=str(slurm_tmp / "calls.log")))
    out = psy(slurm_tmp, "run", "--wait", "square").stdout
    assert ". square:split" in out and ". square:process" in out and ". square:merge" in out
    assert result_rows(slurm_tmp, "square") == [(x, x * x) for x in range(n)]
    assert calls(slurm_tmp) == list(range(n))
    process = [r for r in slurm_records(slurm_tmp, "square") if r["n"] is not None]
    assert len(process) == 1 and process[0]["n"] == n
    assert len(process[0]["slurm_ids"]) == -(-n // max_size)  # one sbatch per chunk
    status = psy(slurm_tmp, "status", "square").stdout
    assert f"{n} done" in status


def test_psy_run_returns_after_submission_and_the_jobs_finish_later(slurm_tmp):
    flag = slurm_tmp / "go"
    write_task(slurm_tmp, "later", f"""\
        import os, time
        from psyrun import Param
        pspace = Param(x=range(4))
        scheduler = "slurm"
        max_jobs = 2

        def execute(x):
            while not os.path.exists({str(flag)!r}):  # held until the test lets go
                time.sleep(0.1)
            return {{"y": -x}}
        """)
    out = psy(slurm_tmp, "run", "later").stdout
    assert ". later:merge" in out
    result = slurm_tmp / "psy-work" / "later" / "result.pkl"
    assert not result.exists()
    status = psy(slurm_tmp, "status", "later").stdout
    assert "0 done" in status
    # Queued and running come from Slurm: the two process elements (held by
    # the flag) and merge, plus split unless it has finished already.
    counts = re.search(r"(\d+) queued, (\d+) running", status)
    assert counts and int(counts[1]) + int(counts[2]) in (3, 4), status
    flag.touch()
    wait_for(result.exists, "the merge job")
    assert result_rows(slurm_tmp, "later") == [(x, -x) for x in range(4)]


def test_failed_job_shows_exit_code_and_run_c_resubmits_only_the_missing(slurm_tmp):
    flag = slurm_tmp / "fail-on-7"
    flag.touch()
    write_task(slurm_tmp, "flaky", f"""\
        import os
        from psyrun import Param
        pspace = Param(x=range(12))
        scheduler = "slurm"
        max_jobs = 4

        def execute(x):
            if x == 7 and os.path.exists({str(flag)!r}):
                os._exit(1)  # the whole job dies, as on a crashed node
            with open({str(slurm_tmp / "calls.log")!r}, "a") as f:
                f.write(f"{{x}}\\n")
            return {{"y": x + 100}}
        """)
    run = psy(slurm_tmp, "run", "--wait", "flaky", check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "flaky:process failed" in run.stderr
    assert "flaky:process:2.log" in run.stderr  # the element that held x=7, with its log
    # What psy learns from the scheduler in a later process: the exit code and log.
    from psyrun_sched_slurm import Slurm

    process = next(r for r in slurm_records(slurm_tmp, "flaky") if r["n"] is not None)
    workdir = slurm_tmp / "psy-work" / "flaky" / "scheduler"
    status = Slurm(workdir).status([process_id(process)])[process_id(process)]
    failed = [e for e in status.elements if e.state.value == "failed"]
    assert [(e.exit_code, e.log.name) for e in failed] == [(1, "flaky:process:2.log")]
    first = calls(slurm_tmp)
    assert 7 not in first and set(first) >= set(range(6)) | set(range(9, 12))
    assert "3 missing" in psy(slurm_tmp, "status", "flaky", check=False).stdout

    flag.unlink()
    (slurm_tmp / "calls.log").write_text("")
    psy(slurm_tmp, "run", "-c", "--wait", "flaky")
    again = calls(slurm_tmp)
    # Only the items of the job that died (x = 6, 7, 8: its output was never
    # written) are computed again; the other jobs' results are kept.
    assert again == [6, 7, 8]
    assert result_rows(slurm_tmp, "flaky") == [(x, x + 100) for x in range(12)]


def test_psy_kill_cancels_that_tasks_jobs_only(slurm_tmp):
    flag = slurm_tmp / "go"
    for name in ("victim", "bystander"):
        write_task(slurm_tmp, name, f"""\
            import os, time
            from psyrun import Param
            pspace = Param(x=range(3))
            scheduler = "slurm"
            max_jobs = 3

            def execute(x):
                open({str(slurm_tmp)!r} + "/started-{name}", "w").close()
                while not os.path.exists({str(flag)!r}):
                    time.sleep(0.1)
                return {{"y": x}}
            """)
    psy(slurm_tmp, "run", "victim", "bystander")
    wait_for(lambda: (slurm_tmp / "started-victim").exists()
             and (slurm_tmp / "started-bystander").exists(), "both tasks to start")
    psy(slurm_tmp, "kill", "victim")
    flag.touch()
    wait_for((slurm_tmp / "psy-work" / "bystander" / "result.pkl").exists, "the bystander")
    assert result_rows(slurm_tmp, "bystander") == [(x, x) for x in range(3)]
    assert not (slurm_tmp / "psy-work" / "victim" / "result.pkl").exists()
    status = psy(slurm_tmp, "status", "victim", check=False).stdout
    assert "0 done, 0 queued, 0 running" in status and "3 missing" in status
    from psyrun_sched_slurm import Slurm

    scheduler = Slurm(slurm_tmp / "psy-work" / "victim" / "scheduler")
    names = {process_id(r): r["name"] for r in slurm_records(slurm_tmp, "victim")}
    states = {names[i]: s.state.value for i, s in scheduler.status(list(names)).items()}
    assert states == {"victim:split": "completed", "victim:process": "cancelled",
                      "victim:merge": "cancelled"}


def test_load_balancing_with_three_workers_computes_every_item_once(slurm_tmp):
    write_task(slurm_tmp, "balanced", f"""\
        from psyrun import Param
        pspace = Param(x=range(40))
        scheduler = "slurm"
        backend = "load-balancing"
        max_jobs = 3

        def execute(x):
            with open({str(slurm_tmp / "calls.log")!r}, "a") as f:
                f.write(f"{{x}}\\n")
            return {{"y": 2 * x}}
        """)
    psy(slurm_tmp, "run", "--wait", "balanced")
    # One Slurm array of three workers (max_jobs), besides pspace and finalize.
    workers = [r["n"] for r in slurm_records(slurm_tmp, "balanced") if r["n"] is not None]
    assert workers == [3]
    assert calls(slurm_tmp) == list(range(40))
    assert result_rows(slurm_tmp, "balanced") == [(x, 2 * x) for x in range(40)]


def test_new_task_template_for_slurm_runs(slurm_tmp):
    psy(slurm_tmp, "new-task", "--scheduler", "slurm", "demo")
    text = (slurm_tmp / "psy-tasks" / "task_demo.py").read_text()
    assert 'scheduler = "slurm"' in text
    assert "# 'timelimit': \"1:00:00\",  # --time" in text
    assert "--mem-per-cpu" in text and "--array=...%N" in text
    psy(slurm_tmp, "run", "--wait", "demo")
    assert "6 done" in psy(slurm_tmp, "status", "demo").stdout


def test_task_file_written_for_psyrun_08_runs(slurm_tmp):
    write_task(slurm_tmp, "old", """\
        from psyrun import Param
        from psyrun.scheduler import Slurm

        pspace = Param(x=range(5))
        workdir = "psy-work"
        scheduler = Slurm(workdir)
        scheduler_args = {"timelimit": "10:00", "memory_per_cpu": "200M"}
        max_jobs = 2

        def execute(x):
            return {"y": x * 3}
        """)
    psy(slurm_tmp, "run", "--wait", "old")
    assert result_rows(slurm_tmp, "old") == [(x, x * 3) for x in range(5)]
    # The scheduler keeps its files under the directory the task file gave it.
    assert len(list((slurm_tmp / "psy-work" / "slurm" / "records").glob("*.json"))) == 3


@pytest.mark.parametrize("args, words", [
    ('{"timelimit": 5, "mem": "1G"}', ["Unknown scheduler_args", "mem", "memory_per_cpu"]),
    ('{"memory": lambda name: {"bad:split": "1G"}[name]}', ["'memory'", "'bad:process'"]),
])
def test_bad_scheduler_args_are_refused_before_anything_is_submitted(slurm_tmp, args, words):
    write_task(slurm_tmp, "bad", f"""\
        from psyrun import Param
        pspace = Param(x=range(3))
        scheduler = "slurm"
        scheduler_args = {args}

        def execute(x):
            return {{"y": x}}
        """)
    run = psy(slurm_tmp, "run", "bad", check=False)
    assert run.returncode == 2, run.stdout + run.stderr
    assert all(word in run.stderr for word in words), run.stderr
    assert "Traceback" not in run.stderr
    assert slurm_records(slurm_tmp, "bad") == []


def test_psy_run_and_clean_refuse_while_slurm_cannot_say_whether_jobs_still_run(slurm_tmp):
    flag = slurm_tmp / "go"
    write_task(slurm_tmp, "held", f"""\
        import os, time
        from psyrun import Param
        pspace = Param(x=range(2))
        scheduler = "slurm"
        max_jobs = 1

        def execute(x):
            while not os.path.exists({str(flag)!r}):
                time.sleep(0.1)
            return {{"y": x}}
        """)
    psy(slurm_tmp, "run", "held")
    jobs_json = slurm_tmp / "psy-work" / "held" / "jobs.json"
    before = jobs_json.read_text()
    # A controller that does not answer (overloaded, restarting) for the status
    # calls, while sbatch would still get through.
    down = slurm_tmp / "down"
    down.mkdir()
    for tool in ("squeue", "sacct", "scontrol"):
        (down / tool).write_text(f"#!/bin/sh\necho '{tool}: error: Unable to contact slurm "
                                 f"controller (connect failure)' >&2\nexit 1\n")
        (down / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{down}{os.pathsep}{os.environ['PATH']}"}
    try:
        for command in ("run", "clean"):
            refused = subprocess.run([sys.executable, "-m", "psyrun", command, "held"],
                                     cwd=slurm_tmp, env=env, capture_output=True, text=True,
                                     timeout=TIMEOUT)
            assert refused.returncode != 0, refused.stdout
            assert "Cannot tell whether the jobs of the last run of task held" in refused.stderr
            assert "jobs.json" in refused.stderr
            # the refusing command let go of the task's lock
            assert not (slurm_tmp / "psy-work" / "held" / "psy.lock").exists(), command
        # Nothing was submitted beside the running jobs, and psy kill still knows them.
        assert jobs_json.read_text() == before
        assert len(slurm_records(slurm_tmp, "held")) == 3
        killed = psy(slurm_tmp, "kill", "held").stdout
        # (held:split may have finished: psy kill names only what it cancels)
        assert "held:process" in killed and "held:merge" in killed
    finally:
        flag.touch()  # whatever happened, no job of this test waits for ever
