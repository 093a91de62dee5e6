"""The Slurm scheduler on the real test cluster: splitting, failures, kill, forgotten jobs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import attrs
import pytest
from psyrun.scheduler.base import ARRAY_INDEX, JobState
from psyrun_sched_slurm import Slurm, cluster
from psyrun_sched_slurm import scheduler as scheduler_module
from psyrun_sched_slurm.cluster import cluster_config
from psyrun_sched_slurm.records import slurm_ids_of

TIMEOUT = 120


@pytest.fixture
def workdir(slurm_tmp):
    return slurm_tmp / "psy-work"


def python(code):
    return [sys.executable, "-c", code]


def wait(scheduler, *ids):
    statuses = scheduler.wait(list(ids), timeout=TIMEOUT, poll_interval=0.3)
    assert all(s.state.finished for s in statuses.values()), statuses
    return statuses


def test_array_bigger_than_max_array_size_runs_every_index_once(slurm_tmp, workdir):
    n = 25
    scheduler = Slurm(workdir)
    code = f"import sys; open({str(slurm_tmp)!r} + '/el-' + sys.argv[1], 'a').write('x')"
    job = scheduler.submit_array(n, python(code) + [ARRAY_INDEX], name="t:process",
                                 output=slurm_tmp / f"p-{ARRAY_INDEX}.log")
    max_size = cluster_config().max_array_size
    assert len(slurm_ids_of(job)) == math.ceil(n / max_size)
    status = wait(scheduler, job)[job]
    assert status.state is JobState.COMPLETED
    assert len(status.elements) == n
    assert sorted(int(p.name[3:]) for p in slurm_tmp.glob("el-*")) == list(range(n))
    assert {p.read_text() for p in slurm_tmp.glob("el-*")} == {"x"}


def test_throttled_split_array_keeps_max_running_and_completes(slurm_tmp, workdir):
    # max_running holds across chunks: never more than 2 elements at once.
    scheduler = Slurm(workdir)
    code = (f"import os, sys, time; d = {str(slurm_tmp)!r}; "
            f"open(d + '/run-' + sys.argv[1], 'w'); "
            f"n = len([f for f in os.listdir(d) if f.startswith('run-')]); "
            f"open(d + '/seen-' + sys.argv[1], 'w').write(str(n)); time.sleep(0.5); "
            f"os.remove(d + '/run-' + sys.argv[1])")
    n = cluster_config().max_array_size + 2
    job = scheduler.submit_array(n, python(code) + [ARRAY_INDEX], name="t:throttled",
                                 output=slurm_tmp / f"t-{ARRAY_INDEX}.log",
                                 scheduler_args={"max_running": 2})
    assert wait(scheduler, job)[job].state is JobState.COMPLETED
    seen = [int(p.read_text()) for p in slurm_tmp.glob("seen-*")]
    assert len(seen) == n and max(seen) <= 2


def test_failed_element_is_reported_with_exit_code_and_log(slurm_tmp, workdir):
    scheduler = Slurm(workdir)
    n = cluster_config().max_array_size + 1  # the failing one is in the second chunk
    code = (f"import sys; print('element', sys.argv[1]); "
            f"raise SystemExit(7 if sys.argv[1] == '{n - 1}' else 0)")
    job = scheduler.submit_array(n, python(code) + [ARRAY_INDEX], name="t:fails",
                                 output=slurm_tmp / f"f-{ARRAY_INDEX}.log")
    status = wait(scheduler, job)[job]
    assert status.state is JobState.FAILED
    failed = [e for e in status.elements if e.state is JobState.FAILED]
    assert len(failed) == 1
    assert failed[0].exit_code == 7
    assert failed[0].log == slurm_tmp / f"f-{n - 1}.log"
    assert failed[0].log.read_text() == f"element {n - 1}\n"
    assert str(n - 1) in status.reason


def test_status_in_a_new_process_comes_from_the_record(slurm_tmp, workdir):
    first = Slurm(workdir)
    job = first.submit_array(3, python("import sys; raise SystemExit(int(sys.argv[1]) == 2)")
                             + [ARRAY_INDEX], name="t:later", output=slurm_tmp / f"l-{ARRAY_INDEX}.log")
    wait(first, job)
    code = ("import sys; from psyrun_sched_slurm import Slurm; "
            "s = Slurm(sys.argv[1]).status([sys.argv[2]])[sys.argv[2]]; "
            "print(s.state.value, [e.state.value for e in s.elements], s.elements[2].exit_code)")
    out = subprocess.run([sys.executable, "-c", code, str(workdir), job], capture_output=True,
                         text=True, check=True).stdout
    assert out.split("\n")[0] == "failed ['completed', 'completed', 'failed'] 1"


def test_kill_cancels_one_array_while_the_other_runs_on(slurm_tmp, workdir):
    scheduler = Slurm(workdir)
    n = cluster_config().max_array_size + 1
    started = slurm_tmp / "victim-started"
    victim = scheduler.submit_array(
        n, python(f"import time; open({str(started)!r}, 'a'); time.sleep(300)") + [ARRAY_INDEX],
        name="victim:process", output=slurm_tmp / f"v-{ARRAY_INDEX}.log",
        scheduler_args={"max_running": 1})
    code = f"import sys, time; time.sleep(2); open({str(slurm_tmp)!r} + '/ok-' + sys.argv[1], 'w')"
    bystander = scheduler.submit_array(3, python(code) + [ARRAY_INDEX], name="other:process",
                                       output=slurm_tmp / f"b-{ARRAY_INDEX}.log")
    deadline = time.monotonic() + TIMEOUT
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert set(scheduler.jobs()) == {victim, bystander}
    scheduler.kill([victim])
    statuses = wait(scheduler, victim, bystander)
    # Running and pending elements, in both chunks, are all cancelled.
    assert statuses[victim].state is JobState.CANCELLED
    assert {e.state for e in statuses[victim].elements} == {JobState.CANCELLED}
    assert statuses[bystander].state is JobState.COMPLETED
    assert sorted(p.name for p in slurm_tmp.glob("ok-*")) == ["ok-0", "ok-1", "ok-2"]
    assert scheduler.jobs() == []


def test_job_after_a_split_array_waits_for_every_chunk(slurm_tmp, workdir):
    scheduler = Slurm(workdir)
    n = cluster_config().max_array_size + 3
    code = (f"import sys, time; time.sleep(0.1 * (int(sys.argv[1]) % 4)); "
            f"open({str(slurm_tmp)!r} + '/el-' + sys.argv[1], 'w')")
    array = scheduler.submit_array(n, python(code) + [ARRAY_INDEX], name="t:process",
                                   output=slurm_tmp / f"a-{ARRAY_INDEX}.log")
    count = slurm_tmp / "count"
    merge = scheduler.submit(
        python(f"import glob; open({str(count)!r}, 'w').write(str(len(glob.glob("
               f"{str(slurm_tmp)!r} + '/el-*'))))"),
        name="t:merge", output=slurm_tmp / "merge.log", depends_on=[array])
    statuses = wait(scheduler, array, merge)
    assert statuses[merge].state is JobState.COMPLETED
    assert count.read_text() == str(n)


def test_job_after_a_failed_array_is_cancelled_with_the_reason(slurm_tmp, workdir):
    scheduler = Slurm(workdir)
    array = scheduler.submit_array(2, python("import sys; raise SystemExit(int(sys.argv[1]))")
                                   + [ARRAY_INDEX], name="t:process",
                                   output=slurm_tmp / f"a-{ARRAY_INDEX}.log")
    merge = scheduler.submit(python("pass"), name="t:merge", output=slurm_tmp / "merge.log",
                             depends_on=[array])
    status = wait(scheduler, array, merge)[merge]
    assert status.state is JobState.CANCELLED
    assert "dependency failed" in status.reason


def test_job_name_and_sbatch_options_reach_slurm(slurm_tmp, workdir):
    scheduler = Slurm(workdir)
    job = scheduler.submit(python("import time; time.sleep(30)"), name="mytask:split",
                           output=slurm_tmp / "s.log",
                           scheduler_args={"timelimit": 7, "n_cpus": 1, "memory": "100M",
                                           "sbatch_args": ["--comment=psyrun-test"]})
    try:
        shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                               text=True, check=True).stdout
    finally:
        scheduler.kill([job])
    assert "JobName=mytask:split" in shown
    assert "TimeLimit=00:07:00" in shown
    assert "Comment=psyrun-test" in shown
    assert f"StdOut={slurm_tmp / 's.log'}" in shown
    assert wait(scheduler, job)[job].state is JobState.CANCELLED


def test_status_after_squeue_forgot_comes_from_sacct_then_the_exit_records(
        slurm_tmp, workdir, monkeypatch):
    scheduler = Slurm(workdir)
    started = slurm_tmp / "third-started"
    code = (f"import sys, time; i = int(sys.argv[1])\n"
            f"if i == 1: raise SystemExit(4)\n"
            f"if i == 2: open({str(started)!r}, 'w'); time.sleep(300)\n")
    job = scheduler.submit_array(4, python(code) + [ARRAY_INDEX], name="t:forgotten",
                                 output=slurm_tmp / f"g-{ARRAY_INDEX}.log",
                                 scheduler_args={"max_running": 1})
    deadline = time.monotonic() + TIMEOUT
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    scheduler.kill([job])  # element 2 is running, element 3 still pending
    expected = [(JobState.COMPLETED, 0), (JobState.FAILED, 4), (JobState.CANCELLED, None),
                (JobState.CANCELLED, None)]

    def seen():
        status = scheduler.status([job])[job]
        return [(e.state, e.exit_code) for e in status.elements]

    wait(scheduler, job)
    assert seen() == expected
    # MinJobAge has passed: squeue knows nothing any more.
    monkeypatch.setattr(Slurm, "_squeue", staticmethod(lambda ids: ({}, True)))
    if cluster_config().accounting:
        # sacct's records arrive late; until then the exit records stand in.
        while seen() != expected:
            assert time.monotonic() < deadline, seen()
            time.sleep(0.3)
    # Without accounting, only the exit records are left.
    no_accounting = attrs.evolve(cluster_config(), accounting=False)
    monkeypatch.setattr(scheduler_module, "cluster_config", lambda: no_accounting)
    assert seen() == expected
    assert cluster.cluster_config().max_array_size > 0


def test_missing_log_directories_are_created_so_the_job_can_write(slurm_tmp, workdir):
    scheduler = Slurm(workdir)
    single = scheduler.submit(python("print('single')"), name="t:single",
                              output=slurm_tmp / "new" / "single.log")
    array = scheduler.submit_array(2, python("import sys; print('el', sys.argv[1])") + [ARRAY_INDEX],
                                   name="t:arr", output=slurm_tmp / "other" / f"a-{ARRAY_INDEX}.log")
    statuses = wait(scheduler, single, array)
    assert {s.state for s in statuses.values()} == {JobState.COMPLETED}
    assert (slurm_tmp / "new" / "single.log").read_text() == "single\n"
    assert (slurm_tmp / "other" / "a-1.log").read_text() == "el 1\n"


def test_without_job_arrays_each_element_is_a_plain_job(slurm_tmp, workdir, monkeypatch):
    # MaxArraySize=0 is how a cluster disables job arrays.
    no_arrays = attrs.evolve(cluster_config(), max_array_size=0)
    monkeypatch.setattr(scheduler_module, "cluster_config", lambda: no_arrays)
    scheduler = Slurm(workdir)
    code = f"import sys; open({str(slurm_tmp)!r} + '/el-' + sys.argv[1], 'w')"
    job = scheduler.submit_array(3, python(code) + [ARRAY_INDEX], name="t:plain",
                                 output=slurm_tmp / f"p-{ARRAY_INDEX}.log")
    assert len(slurm_ids_of(job)) == 3
    status = wait(scheduler, job)[job]
    assert status.state is JobState.COMPLETED
    assert [e.id for e in status.elements] == slurm_ids_of(job)
    assert sorted(p.name for p in slurm_tmp.glob("el-*")) == ["el-0", "el-1", "el-2"]
    shown = subprocess.run(["scontrol", "show", "job", slurm_ids_of(job)[0]],
                           capture_output=True, text=True).stdout
    assert "ArrayJobId" not in shown


def test_percent_signs_in_paths_are_not_slurm_patterns(slurm_tmp):
    odd = slurm_tmp / "100%j"
    scheduler = Slurm(odd / "psy-work")
    single = scheduler.submit(python("print('one')"), name="t:one", output=odd / "one %j.log")
    array = scheduler.submit_array(2, python("print('el')"), name="t:arr",
                                   output=odd / f"el %a {ARRAY_INDEX}.log")
    statuses = wait(scheduler, single, array)
    assert {s.state for s in statuses.values()} == {JobState.COMPLETED}
    assert (odd / "one %j.log").read_text() == "one\n"
    assert (odd / "el %a 1.log").read_text() == "el\n"


def test_squeue_that_fails_once_is_asked_again(slurm_tmp, workdir, monkeypatch):
    # Without accounting only squeue knows a running job: one dropped request
    # must not make it "unknown" (psy run would take that for not running).
    no_accounting = attrs.evolve(cluster_config(), accounting=False)
    monkeypatch.setattr(scheduler_module, "cluster_config", lambda: no_accounting)
    scheduler = Slurm(workdir)
    started, go = slurm_tmp / "started", slurm_tmp / "go"
    job = scheduler.submit(
        python(f"import os, time; open({str(started)!r}, 'w')\n"
               f"while not os.path.exists({str(go)!r}): time.sleep(0.1)"),
        name="t:busy", output=slurm_tmp / "busy.log")
    try:
        deadline = time.monotonic() + TIMEOUT
        while not started.exists():
            assert time.monotonic() < deadline, "job never started"
            time.sleep(0.1)
        shim = slurm_tmp / "shim"
        shim.mkdir()
        failed_once = slurm_tmp / "failed-once"
        real = subprocess.run(["which", "squeue"], capture_output=True, text=True).stdout.strip()
        (shim / "squeue").write_text(
            f"#!/bin/sh\nif [ ! -e {failed_once} ]; then touch {failed_once}\n"
            f"echo 'squeue: error: Socket timed out on send/recv operation' >&2; exit 1; fi\n"
            f'exec {real} "$@"\n')
        (shim / "squeue").chmod(0o755)
        monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
        status = scheduler.status([job])[job]
        assert failed_once.exists()
        assert status.state is JobState.RUNNING, status
    finally:
        go.touch()
    assert wait(scheduler, job)[job].state is JobState.COMPLETED
