"""The job graph: up-to-date rules, the runner's walk, Distribute's batches."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from psyrun.backend.distribute import batch_bounds, n_batches
from psyrun.jobs import Job, JobArray, JobChain, JobGroup, find_job, is_up_to_date, iter_jobs
from psyrun.runner import Submitter, TaskRun
from psyrun.scheduler.base import ARRAY_INDEX


def touch(path: Path, age: float = 0.0) -> Path:
    path.write_text("x")
    t = time.time() - age
    os.utime(path, (t, t))
    return path


def test_up_to_date_needs_targets_newer_than_every_dependency(tmp_path):
    dep = touch(tmp_path / "dep", age=10)
    target = touch(tmp_path / "target")
    assert is_up_to_date([dep], [target])
    touch(dep)  # the dependency changed after the target was written
    os.utime(target, (time.time() - 5, time.time() - 5))
    assert not is_up_to_date([dep], [target])


def test_no_targets_or_a_missing_file_is_out_of_date(tmp_path):
    dep = touch(tmp_path / "dep", age=10)
    target = touch(tmp_path / "target")
    assert not is_up_to_date([dep], [])
    assert not is_up_to_date([dep], [target, tmp_path / "absent"])
    assert not is_up_to_date([tmp_path / "absent-dep"], [target])


def test_empty_array_is_up_to_date():
    assert JobArray("process", 0).is_up_to_date()


class FakeScheduler:
    """Records submissions; ids are 'j1', 'j2', ..."""

    known_args = frozenset()
    in_process = False

    def __init__(self):
        self.calls = []

    def submit(self, argv, *, name, output, depends_on=(), scheduler_args=None):
        self.calls.append(("job", name, list(argv), str(output), list(depends_on),
                           dict(scheduler_args or {})))
        return f"j{len(self.calls)}"

    def submit_array(self, n, argv, *, name, output, depends_on=(), scheduler_args=None):
        self.calls.append(("array", name, list(argv), str(output), list(depends_on),
                           dict(scheduler_args or {}), n))
        return f"j{len(self.calls)}"


class FakeTask:
    name = "t"
    file_task_name = "t"
    python = "python"

    def __init__(self, root: Path):
        self.taskdir = root / "psy-tasks"
        self.taskworkdir = root / "psy-work" / "t"

    def plugin_paths(self):
        return {"store": "psyrun.store.pickle:PickleStore"}


def walk(tmp_path, graph):
    scheduler = FakeScheduler()
    run = TaskRun(FakeTask(tmp_path), scheduler, lock=None)  # type: ignore[arg-type]
    lines = []
    Submitter(run, lines.append).walk(graph, [], False)
    return scheduler.calls, lines, run


def test_chain_passes_ids_and_a_submitted_job_forces_the_rest(tmp_path):
    fresh = touch(tmp_path / "fresh")
    dep = touch(tmp_path / "dep", age=10)
    graph = JobChain([
        Job("a"),                                          # no targets: runs
        JobArray("b", 3, dependencies=[dep], targets=[fresh], n_cpus=2),  # forced
        Job("c", dependencies=[dep], targets=[fresh], scheduler_args={"x": lambda n: n}),
    ])
    calls, lines, run = walk(tmp_path, graph)
    assert lines == [". t:a", ". t:b", ". t:c"]
    assert [c[4] for c in calls] == [[], ["j1"], ["j2"]]
    array = calls[1]
    assert array[0] == "array" and array[6] == 3
    assert array[2][-4:] == ["--index", ARRAY_INDEX, "--plugin",
                             "store=psyrun.store.pickle:PickleStore"]
    assert array[3].endswith(f"t:b:{ARRAY_INDEX}.log")
    assert array[5]["n_cpus"] == 2
    assert calls[2][5] == {"x": "t:c", "n_cpus": 1}
    assert [j.name for j in run.submitted] == ["t:a", "t:b", "t:c"]
    assert run.submitted[1].n == 3


def test_up_to_date_jobs_are_skipped_and_later_ones_wait_for_earlier_ids(tmp_path):
    fresh = touch(tmp_path / "fresh")
    dep = touch(tmp_path / "dep", age=10)
    graph = JobChain([
        Job("a", dependencies=[dep], targets=[fresh]),
        JobGroup([Job("b1"), Job("b2", dependencies=[dep], targets=[fresh])]),
        Job("c", dependencies=[dep], targets=[fresh]),
    ])
    calls, lines, _ = walk(tmp_path, graph)
    assert lines == ["- t:a", ". t:b1", "- t:b2", ". t:c"]
    assert calls[1][4] == ["j1"]  # c waits for the group's submitted job


def test_group_members_share_upstream_and_downstream_waits_for_all(tmp_path):
    graph = JobChain([Job("a"), JobGroup([Job("b1"), Job("b2")]), Job("c")])
    calls, _, _ = walk(tmp_path, graph)
    assert [c[4] for c in calls] == [[], ["j1"], ["j1"], ["j2", "j3"]]


def test_iter_and_find(tmp_path):
    graph = JobChain([Job("a"), JobGroup([JobArray("b", 2), Job("c")])])
    assert [j.name for j in iter_jobs(graph)] == ["a", "b", "c"]
    assert find_job(graph, "b").n == 2
    with pytest.raises(KeyError):
        find_job(graph, "zzz")


@pytest.mark.parametrize("n_items, max_jobs, min_items, expected", [
    (0, 100, 1, 0), (1, 100, 1, 1), (10, 3, 1, 3), (10, 100, 4, 2), (3, 100, 5, 1),
    (100_000, 100, 1000, 100), (7, 7, 1, 7),
])
def test_number_of_batches(n_items, max_jobs, min_items, expected):
    assert n_batches(n_items, max_jobs, min_items) == expected


def test_batches_cover_everything_and_differ_by_at_most_one():
    bounds = batch_bounds(10, 3)
    assert bounds == [(0, 4), (4, 7), (7, 10)]
    sizes = [b - a for a, b in batch_bounds(1001, 7)]
    assert sum(sizes) == 1001 and max(sizes) - min(sizes) <= 1


def test_progress_waits_and_counts_array_elements(capsys):
    from psyrun.progress import _units, wait_for_jobs
    from psyrun.scheduler.base import JobState, JobStatus

    class Ticking:
        """Two polls: the array half done, then everything finished."""

        in_process = True

        def __init__(self):
            self.polls = 0

        def status(self, ids):
            done = self.polls >= 1
            elements = (JobStatus("a_0", JobState.COMPLETED),
                        JobStatus("a_1", JobState.COMPLETED if done else JobState.RUNNING))
            return {"a": JobStatus("a", JobState.COMPLETED if done else JobState.RUNNING,
                                   elements=elements),
                    "b": JobStatus("b", JobState.COMPLETED if done else JobState.QUEUED)}

        def wait(self, ids, timeout=None, poll_interval=0.5, on_poll=None):
            while True:
                statuses = self.status(ids)
                on_poll(statuses) if on_poll else None
                self.polls += 1
                if all(s.state.finished for s in statuses.values()):
                    return statuses

    scheduler = Ticking()
    assert _units(scheduler.status(["a", "b"])) == (1, 3)
    statuses = wait_for_jobs(scheduler, ["a", "b"], show=True)
    assert all(s.state is JobState.COMPLETED for s in statuses.values())
    assert "running" in capsys.readouterr().err  # the bar (its label, off a terminal)
    assert wait_for_jobs(scheduler, []) == {}
