"""The Distribute backend's jobs run in this process: split, process, merge, -c."""

from __future__ import annotations

import math
import textwrap

import pytest
from psyrun.exceptions import JobFailedError
from psyrun.jobs import iter_jobs
from psyrun.tasks import TaskDef

TASK = """\
from psyrun import Param
pspace = {pspace}
max_jobs = {max_jobs}
{extra}

def execute(**params):
    with open({calls!r}, "a") as f:
        f.write(repr(sorted(params.items())) + "\\n")
    if params.get("x") == {bad!r}:
        raise ValueError("bad item")
    return {{"out": {expr}}}
"""


@pytest.fixture
def make_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = tmp_path / "calls.log"

    def make(pspace="Param(x=range(10))", max_jobs=3, extra="", bad=None, expr="params['x'] * 2"):
        path = tmp_path / "psy-tasks" / "task_d.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(TASK.format(pspace=pspace, max_jobs=max_jobs, extra=extra,
                                                    calls=str(calls), bad=bad, expr=expr)))
        return TaskDef(path)

    make.calls = calls
    return make


def run(task, cont=False, only=None):
    """Run the graph like psy run would, all jobs here; ``only`` limits process elements."""
    backend = task.create_backend()
    graph = backend.create_job(cont=cont)
    backend.before_submit()
    jobs = list(iter_jobs(graph))
    backend.run_job("split")
    n = jobs[1].n
    for i in range(n) if only is None else only:
        backend.run_job("process", i)
    if only is None:
        backend.run_job("merge")
    return backend


def n_calls(make_task) -> int:
    return len(make_task.calls.read_text().splitlines()) if make_task.calls.exists() else 0


def rows(task):
    data = task.store.load(task.resultfile)
    keys = sorted(data)
    return sorted(zip(*(list(data[k]) for k in keys)))


def test_whole_run(make_task):
    task = make_task()
    backend = run(task)
    assert rows(task) == [(2 * x, x) for x in range(10)]
    assert len(list(backend.indir.iterdir())) == 3
    assert backend.summary().done == 10


def test_continue_after_an_interrupted_process_computes_only_the_missing(make_task):
    task = make_task()
    run(task, only=[0])  # element 0 done, the others were killed before they wrote
    assert n_calls(make_task) == 4
    summary = task.create_backend().summary()
    assert (summary.total, summary.done, summary.missing) == (10, 4, 6)
    assert len(task.create_backend().get_missing()) == 6
    run(task, cont=True)
    assert n_calls(make_task) == 10
    assert rows(task) == [(2 * x, x) for x in range(10)]


def test_late_output_of_an_orphaned_job_is_folded_in_once(make_task):
    task = make_task()
    backend = run(task)
    # An orphan of an earlier, killed run writes its output after all.
    late = backend.outdir / f"19990101000000-1_0{backend.ext}"
    task.store.save(late, {"x": [0, 1], "out": [-1, -1]})
    assert task.create_backend().summary().done == 10
    run(task, cont=True)
    assert rows(task) == [(2 * x, x) for x in range(10)]  # first value kept
    assert not late.exists()


def test_failed_items_are_recorded_and_merge_fails_after_writing(make_task):
    task = make_task(bad=4)
    with pytest.raises(JobFailedError, match="1 item"):
        run(task)
    assert [r[1] for r in rows(task)] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    backend = task.create_backend()
    failed = backend.get_failed()
    assert [f.params for f in failed] == [{"x": 4}]
    assert "ValueError: bad item" in failed[0].traceback
    assert backend.summary().failed == 1
    assert not any(j.is_up_to_date() for j in iter_jobs(backend.create_job()))


def test_nan_and_list_parameters_are_matched_by_value(make_task):
    pspace = "Param(x=[1, 2]) + Param(x=[3], y=[[1, 2]])"
    task = make_task(pspace=pspace, expr="params['x']")
    run(task, only=[0])
    missing = list(task.create_backend().get_missing().iterate())
    assert len(missing) == 2
    run(task, cont=True)
    data = task.store.load(task.resultfile)
    assert sorted(data["x"]) == [1, 2, 3]
    ys = [y for x, y in zip(data["x"], data["y"]) if x != 3]
    assert all(isinstance(y, float) and math.isnan(y) for y in ys)
    assert n_calls(make_task) == 3


def test_continue_drops_rows_that_left_the_space(make_task):
    task = make_task()
    run(task)
    task = make_task(pspace="Param(x=range(5, 12))")
    run(task, cont=True)
    assert [r[1] for r in rows(task)] == list(range(5, 12))
    assert n_calls(make_task) == 12  # only x = 10, 11 were new


def test_unknown_job_name(make_task):
    with pytest.raises(JobFailedError, match="split, process and merge"):
        make_task().create_backend().run_job("nope")


def test_a_run_killed_before_its_merge_is_not_up_to_date(make_task):
    task = make_task()
    run(task)
    backend = task.create_backend()
    assert all(j.is_up_to_date() for j in iter_jobs(backend.create_job()))
    backend.before_submit()  # up to date: the plan of the finished run stays
    assert all(j.is_up_to_date() for j in iter_jobs(task.create_backend().create_job()))
    # A failing item, then a rerun killed during process: the old result is
    # still newer than the task file, but the task is not complete.
    task = make_task(bad=4)
    with pytest.raises(JobFailedError):
        run(task)
    task.resultfile.touch()
    backend = task.create_backend()
    backend.create_job()
    backend.before_submit()
    backend.run_job("split")
    assert not any(j.is_up_to_date() for j in iter_jobs(task.create_backend().create_job()))
