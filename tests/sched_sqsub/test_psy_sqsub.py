"""Whole tasks through sqsub: ``psy`` run as a user would, with the emulator on PATH."""

from __future__ import annotations

import time

from psyrun.store import load_result

SQUARES = """\
    from psyrun import Param
    pspace = Param(x=range(7))
    max_jobs = 3
    backend = {backend!r}
    scheduler = "sqsub"
    scheduler_args = {{"timelimit": "10m", "memory": "500M"}}

    def execute(x):
        {body}
        return {{"y": x * x}}
"""


def squares(backend: str = "distribute", body: str = "pass") -> str:
    return SQUARES.format(backend=backend, body=body)


def rows(project, task: str) -> list[tuple]:
    data = load_result(project.work / task / "result.pkl")
    return sorted(zip((int(v) for v in data["x"]), (int(v) for v in data["y"])))


def test_distribute_through_sqsub_ends_with_every_row(sqsub_project):
    sqsub_project.write_task("sq", squares())
    out = sqsub_project.psy("run").stdout
    assert out.splitlines()[:3] == [". sq:split", ". sq:process", ". sq:merge"]
    assert "psy status sq" in out  # psy run returned after submitting
    report = sqsub_project.wait_idle("sq")
    assert (report["total"], report["done"], report["failed"], report["missing"]) == (7, 7, 0, 0)
    assert rows(sqsub_project, "sq") == [(x, x * x) for x in range(7)]
    jobs = {j["name"]: j for j in sqsub_project.emulator.jobs()}
    # split, one job per process element (max_jobs = 3), merge
    process = ["sq:process-0", "sq:process-1", "sq:process-2"]
    assert sorted(jobs) == sorted(["sq:split", *process, "sq:merge"])
    assert {(j["runtime"], j["mpp"]) for j in jobs.values()} == {("10m", "500M")}
    split_id = str(jobs["sq:split"]["id"])
    process_ids = {str(jobs[p]["id"]) for p in process}
    # Every process element waits for split, merge for every element: through -w
    # while they were unfinished at submission, and always through the wrapper.
    assert all(jobs[p]["waitfor"] in ([], [split_id]) for p in process)
    assert set(jobs["sq:merge"]["waitfor"]) <= process_ids
    assert {name: j["command"].count("--after") for name, j in jobs.items()} == {
        "sq:split": 0, **{p: 1 for p in process}, "sq:merge": 3}


def test_load_balancing_through_sqsub_ends_with_every_row(sqsub_project):
    sqsub_project.write_task("lb", squares("load-balancing"))
    sqsub_project.psy("run")
    sqsub_project.wait_idle("lb")
    assert rows(sqsub_project, "lb") == [(x, x * x) for x in range(7)]
    names = sorted(j["name"] for j in sqsub_project.emulator.jobs())
    assert names == ["lb:finalize", "lb:process-0", "lb:process-1", "lb:process-2",
                     "lb:pspace"]
    report = sqsub_project.status("lb")
    assert (report["done"], report["failed"], report["queued"], report["running"]) == (
        7, 0, 0, 0)


def test_failing_item_is_shown_as_failed(sqsub_project):
    body = "if x == 3: raise ValueError('x = 3 is cursed')"
    sqsub_project.write_task("sq", squares(body=body))
    sqsub_project.psy("run")
    report = sqsub_project.wait_idle("sq")
    assert (report["done"], report["failed"]) == (6, 1)
    verbose = sqsub_project.psy("status", "-v", "sq").stdout
    assert "1 failed" in verbose and "cursed" in verbose


def test_crashing_job_is_reported_failed_with_its_log(sqsub_project):
    body = "if x == 6: import os; os._exit(3)"
    sqsub_project.write_task("sq", squares(body=body))
    run = sqsub_project.psy("run", "--wait", check=False)
    assert run.returncode == 1
    assert "sq:process-2 failed" in run.stderr
    assert "sq:process:2.log" in run.stderr
    report = sqsub_project.status("sq")
    assert report["missing"] >= 1 and report["queued"] == report["running"] == 0


def test_psy_kill_cancels_the_tasks_jobs_and_only_them(sqsub_project):
    started = sqsub_project.root / "started"
    body = f"open({str(started)!r}, 'a').write('x'); import time; time.sleep(300)"
    sqsub_project.write_task("slow", squares(body=body))
    sqsub_project.write_task("quick", squares(body="import time; time.sleep(0.3)"))
    sqsub_project.psy("run", "slow", "quick")
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "no slow job started"
        time.sleep(0.1)
    out = sqsub_project.psy("kill", "slow")
    assert out.returncode == 0
    slow = [j for j in sqsub_project.emulator.jobs() if j["name"].startswith("slow:")]
    assert {j["state"] for j in slow} <= {"C", "D"}
    assert any(j["state"] == "C" for j in slow)
    report = sqsub_project.wait_idle("slow")
    assert report["done"] == 0
    assert sqsub_project.wait_idle("quick")["done"] == 7
    assert rows(sqsub_project, "quick") == [(x, x * x) for x in range(7)]


def test_missing_required_option_is_refused_before_anything_is_submitted(sqsub_project):
    sqsub_project.write_task("sq", squares().replace(', "memory": "500M"', ""))
    run = sqsub_project.psy("run", check=False)
    assert run.returncode == 2
    assert "memory" in run.stderr
    assert ". sq:" not in run.stdout
    assert sqsub_project.emulator.jobs() == []


def test_new_task_template_runs_through_sqsub(sqsub_project):
    sqsub_project.psy("new-task", "--scheduler", "sqsub", "demo")
    text = (sqsub_project.tasks / "task_demo.py").read_text()
    assert '"timelimit": "1h"' in text and '# "n_cpus"' in text
    sqsub_project.psy("run", "demo")
    sqsub_project.wait_idle("demo")
    jobs = sqsub_project.emulator.jobs()
    assert jobs and {(j["runtime"], j["mpp"], j["ncpus"]) for j in jobs} == {("1h", "1G", 1)}
    report = sqsub_project.status("demo")
    assert report["done"] == report["total"] > 0


def test_task_file_written_for_psyrun_08_runs(sqsub_project):
    sqsub_project.write_task("old", """\
        from psyrun import Param, Sqsub

        pspace = Param(x=range(4))
        workdir = "psy-work"
        scheduler = Sqsub(workdir)
        scheduler_args = {"timelimit": "30m", "memory": "1G", "n_cpus": 1}
        max_jobs = 2

        def execute(x):
            return {"y": x * x}
    """)
    sqsub_project.psy("run", "old")
    report = sqsub_project.wait_idle("old")
    assert (report["done"], report["failed"]) == (4, 0)
    assert rows(sqsub_project, "old") == [(x, x * x) for x in range(4)]
    # The scheduler keeps its records under the directory the task file gave it.
    assert list((sqsub_project.work / "sqsub" / "jobs").glob("*.json"))
