"""``psy run``, ``status`` and friends on the Distribute backend, end to end."""

from __future__ import annotations

import json

import pytest

SQUARES = """\
    from psyrun import Param
    pspace = Param(x=range({n})) * Param(k=[1, 2])
    max_jobs = {max_jobs}
    version = {version}

    def execute(x, k):
        with open({calls!r}, "a") as f:
            f.write(f"{{x}},{{k}}\\n")
        return {{"y": x * k, "version": version}}
"""


def squares(project, n=5, max_jobs=3, version=1):
    return SQUARES.format(n=n, max_jobs=max_jobs, version=version,
                          calls=str(project.root / "calls.log"))


def calls(project) -> list[tuple[int, int]]:
    log = project.root / "calls.log"
    if not log.exists():
        return []
    return sorted(tuple(int(v) for v in line.split(",")) for line in log.read_text().split())


def test_run_writes_every_row_once_and_says_where(project):
    project.write_task("sq", squares(project))
    out = project.psy("run").stdout
    assert out.splitlines()[:3] == [". sq:split", ". sq:process", ". sq:merge"]
    assert "psy-work/sq/result.pkl" in out.splitlines()[-1]
    assert project.rows("sq") == [(k, 1, x, x * k) for k in (1, 2) for x in range(5)]
    assert calls(project) == sorted((x, k) for x in range(5) for k in (1, 2))
    # three input files for max_jobs = 3, one log per array element
    assert len(list((project.work / "sq").glob("sq:process:*.log"))) == 3


def test_second_run_skips_everything_up_to_date(project):
    project.write_task("sq", squares(project))
    project.psy("run")
    out = project.psy("run").stdout
    assert out.splitlines()[:3] == ["- sq:split", "- sq:process", "- sq:merge"]
    assert len(calls(project)) == 10  # nothing computed again


def test_changed_task_file_reruns_the_task(project):
    project.write_task("sq", squares(project))
    project.psy("run")
    project.write_task("sq", squares(project, version=2))
    out = project.psy("run").stdout
    assert ". sq:split" in out
    assert {row[1] for row in project.rows("sq")} == {2}
    assert len(calls(project)) == 20


def test_continue_keeps_rows_still_in_the_space_and_computes_only_new_ones(project):
    project.write_task("sq", squares(project, n=5))
    project.psy("run")
    # x = 0 leaves the space, x = 5, 6 join it; the version marks new rows
    body = squares(project, n=7, version=2).replace("range(7)", "range(1, 7)")
    project.write_task("sq", body)
    project.psy("run", "-c")
    rows = project.rows("sq")
    # rows are (k, version, x, y)
    assert sorted((r[2], r[0]) for r in rows) == sorted(
        (x, k) for x in range(1, 7) for k in (1, 2))
    assert {(r[2], r[1]) for r in rows} == (
        {(x, 1) for x in range(1, 5)} | {(x, 2) for x in (5, 6)})
    assert sorted(calls(project)) == sorted(
        [(x, k) for x in range(5) for k in (1, 2)] + [(x, k) for x in (5, 6) for k in (1, 2)])
    assert all(r[3] == r[2] * r[0] for r in rows)


def test_continue_with_nothing_missing_computes_nothing(project):
    project.write_task("sq", squares(project))
    project.psy("run")
    out = project.psy("run", "-c").stdout
    assert "- sq:process" in out
    assert len(calls(project)) == 10
    assert len(project.rows("sq")) == 10


def test_status_counts_and_json(project):
    project.write_task("sq", squares(project))
    before = json.loads(project.psy("status", "--json").stdout)
    assert before[0]["total"] == 10 and before[0]["done"] == 0 and before[0]["missing"] == 10
    project.psy("run")
    out = project.psy("status").stdout
    assert "sq: 10 total, 10 done, 0 queued, 0 running, 0 failed, 0 missing" in out
    assert "psy-work/sq/result.pkl" in out
    assert "out of date" not in out
    assert json.loads(project.psy("status", "--json").stdout)[0]["out_of_date"] is False


def test_status_says_when_the_task_changed_since_the_result(project):
    project.write_task("sq", squares(project))
    project.psy("run")
    project.write_task("sq", squares(project, n=3))  # fewer rows: all "done" still
    out = project.psy("status").stdout
    assert "sq: 6 total, 6 done" in out
    assert "out of date: the task file (or a file_dep) changed" in out
    assert json.loads(project.psy("status", "--json").stdout)[0]["out_of_date"] is True
    project.psy("run")
    assert "out of date" not in project.psy("status").stdout
    project.write_task("sq", squares(project, n=2) + "    overwrite_dirty = False\n")
    assert "psy run sq skips it (overwrite_dirty = False)" in project.psy("status").stdout


def test_status_verbose_lists_missing_assignments(project):
    project.write_task("sq", squares(project, n=2))
    out = project.psy("status", "-v").stdout
    assert "x=0, k=1" in out and "x=1, k=2" in out


def test_status_json_gives_array_values_as_lists(project):
    project.write_task("arr", """\
        import numpy as np
        from psyrun import Param
        pspace = Param(v=[np.zeros(2), np.arange(2.0) + 1])
        def execute(v):
            return {"s": v.sum()}
    """)
    report = json.loads(project.psy("status", "-v", "--json").stdout)[0]
    assert report["missing_assignments"] == [{"v": [0.0, 0.0]}, {"v": [1.0, 2.0]}]


ONE_FAILS = """\
    from psyrun import Param
    pspace = Param(x=range(6))
    max_jobs = 2
    bad = {bad}

    def execute(x):
        with open({calls!r}, "a") as f:
            f.write(f"{{x}}\\n")
        if x == bad:
            raise ValueError(f"cannot handle x={{x}}")
        return {{"y": 10 * x}}
"""


def test_failing_item_is_reported_and_retried_by_continue(project):
    calls_log = project.root / "calls.log"
    project.write_task("f", ONE_FAILS.format(bad=3, calls=str(calls_log)))
    proc = project.psy("run", check=False)
    assert proc.returncode == 1
    assert "1 item(s) of task f failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    # the other items of the batch still ran and are in the result
    assert project.rows("f") == [(x, 10 * x) for x in (0, 1, 2, 4, 5)]

    status = json.loads(project.psy("status", "--json", "-v").stdout)[0]
    assert (status["done"], status["failed"], status["missing"]) == (5, 1, 0)
    failure = status["failed_assignments"][0]
    assert failure["params"] == {"x": 3}
    assert "ValueError: cannot handle x=3" in failure["traceback"]
    assert "psy-tasks/task_f.py" in failure["traceback"]
    text = project.psy("status", "-v").stdout
    assert "1 failed" in text and "cannot handle x=3" in text

    project.write_task("f", ONE_FAILS.format(bad=99, calls=str(calls_log)))
    project.psy("run", "-c")
    assert project.rows("f") == [(x, 10 * x) for x in range(6)]
    computed = [int(v) for v in calls_log.read_text().split()]
    assert sorted(computed) == [0, 1, 2, 3, 3, 4, 5]  # only x=3 ran again
    assert "0 failed, 0 missing" in project.psy("status").stdout


def test_crashing_setup_fails_the_job_with_its_traceback_in_the_log(project):
    project.write_task("s", """\
        from psyrun import Param
        pspace = Param(x=range(3))
        def setup(proc_id):
            raise RuntimeError("no licence server")
        def execute(x):
            return {"y": x}
    """)
    proc = project.psy("run", check=False)
    assert proc.returncode == 1
    assert "s:process" in proc.stderr and "failed" in proc.stderr
    log = (project.work / "s" / "s:process:0.log").read_text()
    assert "RuntimeError: no licence server" in log and "Traceback" in log


def test_pool_size_runs_setup_once_per_process(project):
    marks = project.root / "setup"
    marks.mkdir()
    project.write_task("p", f"""\
        import os
        from psyrun import Param
        pspace = Param(x=range(12))
        max_jobs = 1
        pool_size = 2

        def setup(proc_id):
            open(os.path.join({str(marks)!r}, f"{{proc_id}}-{{os.getpid()}}"), "w").close()
            return {{"offset": 100 * (proc_id + 1), "proc": proc_id}}

        def execute(x, offset, proc):
            return {{"y": x, "proc": proc, "pid": os.getpid()}}
    """)
    project.psy("run")
    data = project.result("p")
    assert sorted(data["x"]) == list(range(12))
    assert list(data["x"]) == sorted(data["x"])  # rows keep the order of the space
    made = sorted(p.name.split("-")[0] for p in marks.iterdir())
    assert made == ["0", "1"]
    assert set(data["proc"]) <= {0, 1}
    assert len(set(data["pid"])) <= 2


def test_exclude_from_result_and_npz_store(project):
    project.write_task("n", """\
        from psyrun import Param
        pspace = Param(a=[0.5, 1.5, 2.5])
        store = "npz"
        exclude_from_result = ["scratch"]
        def execute(a):
            return {"b": 2 * a, "scratch": [a] * 3}
    """)
    project.psy("run")
    data = project.result("n", "result.npz")
    assert sorted(data) == ["a", "b"]
    assert sorted(zip(data["a"].tolist(), data["b"].tolist())) == [(0.5, 1.0), (1.5, 3.0),
                                                                 (2.5, 5.0)]


def test_h5_store_when_installed(project):
    pytest.importorskip("psyrun_store_h5")
    pytest.importorskip("tables")
    project.write_task("h", """\
        from psyrun import Param
        pspace = Param(a=range(4)) * Param(b=[0.1, 0.2])
        store = "h5"
        def execute(a, b):
            return {"c": a + b}
    """)
    project.psy("run")
    project.psy("run", "-c")
    data = project.result("h", "result.h5")
    assert len(data["a"]) == 8
    assert sorted(round(float(c), 6) for c in data["c"]) == sorted(
        round(a + b, 6) for a in range(4) for b in (0.1, 0.2))


def test_wait_flag_and_selected_tasks_only(project):
    project.write_task("one", squares(project, n=2))
    project.write_task("two", squares(project, n=3))
    out = project.psy("run", "--wait", "two").stdout
    assert "two:" in out and "one:" not in out
    assert not (project.work / "one").exists()


def test_run_from_a_psy_conf_default(project):
    (project.tasks / "psy-conf.py").write_text("max_jobs = 2\nworkdir = 'elsewhere'\n")
    project.write_task("sq", squares(project).replace("max_jobs = 3", ""))
    project.psy("run")
    assert len(list((project.root / "elsewhere" / "sq").glob("sq:process:*.log"))) == 2


def test_overwrite_dirty_false_keeps_an_older_result(project):
    keep = "max_jobs = 3\n    overwrite_dirty = False"
    project.write_task("sq", squares(project).replace("max_jobs = 3", keep))
    project.psy("run")
    before = (project.work / "sq" / "result.pkl").read_bytes()
    project.write_task("sq", squares(project, version=2).replace("max_jobs = 3", keep))
    proc = project.psy("run")
    assert "overwrite_dirty = False keeps it: skipped" in proc.stderr
    assert (project.work / "sq" / "result.pkl").read_bytes() == before
    project.psy("run", "-c")  # adds to it: nothing is missing, old rows stay
    assert {row[1] for row in project.rows("sq")} == {1}


def test_a_job_that_dies_is_reported_with_its_exit_code_and_log(project):
    project.write_task("d", """\
        import os
        from psyrun import Param
        pspace = Param(x=range(3))
        max_jobs = 1
        def execute(x):
            os._exit(7)  # the process dies; nothing psyrun could record
    """)
    proc = project.psy("run", check=False)
    assert proc.returncode == 1
    assert "d:process failed with exit code 7" in proc.stderr
    assert "d:process:0.log" in proc.stderr
