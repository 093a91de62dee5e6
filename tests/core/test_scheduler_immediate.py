"""The embedded ``immediate`` scheduler: the contract suite plus its own promises.

Its own promises: the core limit, dependency chains, cancellation that
propagates, kill of arrays and of a job's children, no zombies, and a job
that cannot start failing cleanly.  Orderings are checked through files the
jobs write (start and end stamps), never through durations.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from psyrun.exceptions import SchedulerArgumentError, SchedulerError
from psyrun.plugins.manager import get_plugin_manager
from psyrun.scheduler import ARRAY_INDEX, ImmediateRun, JobState
from psyrun.testing.scheduler import SchedulerContract

TIMEOUT = 60.0


class TestImmediateContract(SchedulerContract):
    timeout = TIMEOUT

    @pytest.fixture
    def scheduler(self, tmp_path):
        # Two cores whatever the machine: the kill test needs its two jobs side by side.
        with ImmediateRun(tmp_path / "sched", cores=2, kill_grace=1.0) as scheduler:
            yield scheduler


# ------------------------------------------------------------------ helpers
def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def stamp_job(directory: Path, label: str, sleep: float = 0.3) -> list[str]:
    """A job that writes the order in which it starts and ends into ``directory``.

    A shared counter file (appended with O_APPEND, one line per event) gives
    a total order of events without comparing clocks.
    """
    events = directory / "events"
    code = (
        "import os, sys, time\n"
        f"def log(what):\n"
        f"    fd = os.open({str(events)!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT)\n"
        f"    os.write(fd, (sys.argv[1] + ' ' + what + '\\n').encode()); os.close(fd)\n"
        "log('start')\n"
        f"time.sleep({sleep})\n"
        "log('end')\n"
    )
    return python(code) + [label]


def events(directory: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in (directory / "events").read_text().splitlines()]


def wait(scheduler: ImmediateRun, *ids: str):
    statuses = scheduler.wait(list(ids), timeout=TIMEOUT, poll_interval=0.2)
    assert all(s.state.finished for s in statuses.values()), statuses
    return statuses


def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """True if the process exists, zombie included (our zombies are what we look for)."""
    return Path(f"/proc/{pid}").exists()


def pid_running(pid: int) -> bool:
    """True if the process exists and is not a zombie.

    A job's orphaned child is reaped by init, not by us; in a container init
    may leave it a zombie, which is not our leak.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def children_of_this_process() -> set[int]:
    pids = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


linux_only = pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                reason="needs Linux /proc")


@pytest.fixture
def scheduler(tmp_path):
    with ImmediateRun(tmp_path / "sched", cores=2, kill_grace=1.0) as scheduler:
        yield scheduler


# ------------------------------------------------------------------ construction, registry
def test_no_arguments_work_as_in_psyrun_0_8():
    scheduler = ImmediateRun()
    assert scheduler.workdir is None
    assert scheduler.cores >= 1
    assert scheduler.in_process and not scheduler.blocking


def test_registered_as_the_immediate_plugin_and_exported():
    import psyrun

    assert get_plugin_manager().get("scheduler", "immediate").scheduler is ImmediateRun
    assert psyrun.ImmediateRun is ImmediateRun


def test_cores_must_be_positive():
    with pytest.raises(SchedulerArgumentError, match="cores must be a positive"):
        ImmediateRun(cores=0)


# ------------------------------------------------------------------ scheduler_args
def test_cluster_arguments_are_accepted_and_typos_refused(scheduler):
    scheduler.validate_args({"n_cpus": 2, "timelimit": "1:00:00", "memory": "4G"})
    with pytest.raises(SchedulerArgumentError) as info:
        scheduler.validate_args({"n_cpu": 2})
    assert "n_cpu" in str(info.value) and "n_cpus" in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_n_cpus_must_be_a_positive_integer(scheduler, tmp_path, bad):
    with pytest.raises(SchedulerArgumentError, match="n_cpus"):
        scheduler.submit(python("pass"), name="t:bad", output=tmp_path / "bad.log",
                         scheduler_args={"n_cpus": bad})


def test_n_cpus_may_be_a_function_of_the_job_name(scheduler, tmp_path):
    seen = []

    def n_cpus(name):
        seen.append(name)
        return 1

    job = scheduler.submit(python("pass"), name="t:callable", output=tmp_path / "c.log",
                           scheduler_args={"n_cpus": n_cpus})
    assert wait(scheduler, job)[job].state is JobState.COMPLETED
    assert "t:callable" in seen


def test_unknown_dependency_is_refused_at_submission(scheduler, tmp_path):
    with pytest.raises(SchedulerError, match="never returned"):
        scheduler.submit(python("pass"), name="t:orphan", output=tmp_path / "o.log",
                         depends_on=["42"])


# ------------------------------------------------------------------ cores
def test_jobs_that_each_need_every_core_never_overlap(scheduler, tmp_path):
    args = {"n_cpus": scheduler.cores}
    ids = [scheduler.submit(stamp_job(tmp_path, f"j{i}"), name=f"t:full{i}",
                            output=tmp_path / f"full{i}.log", scheduler_args=args)
           for i in range(3)]
    wait(scheduler, *ids)
    # One job at a time, in submission order.
    assert events(tmp_path) == [(f"j{i}", what) for i in range(3) for what in ("start", "end")]


def test_a_job_needing_more_cores_than_exist_runs_alone(scheduler, tmp_path):
    small = scheduler.submit(stamp_job(tmp_path, "small", sleep=1.0), name="t:small",
                             output=tmp_path / "small.log")
    big = scheduler.submit(stamp_job(tmp_path, "big"), name="t:big", output=tmp_path / "big.log",
                           scheduler_args={"n_cpus": scheduler.cores + 5})
    after = scheduler.submit(stamp_job(tmp_path, "after"), name="t:after",
                             output=tmp_path / "after.log")
    statuses = wait(scheduler, small, big, after)
    assert {s.state for s in statuses.values()} == {JobState.COMPLETED}
    # The big job waits for the small one and nothing overtakes it.
    assert events(tmp_path) == [("small", "start"), ("small", "end"), ("big", "start"),
                                ("big", "end"), ("after", "start"), ("after", "end")]


def test_independent_jobs_run_side_by_side(tmp_path):
    # Each job waits for the other's marker: they can only finish if both run at once.
    code = ("import os, sys, time; open(sys.argv[1], 'w')\n"
            "deadline = time.time() + 30\n"
            "while not os.path.exists(sys.argv[2]):\n"
            "    if time.time() > deadline: raise SystemExit(9)\n"
            "    time.sleep(0.05)\n")
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with ImmediateRun(cores=2) as scheduler:
        first = scheduler.submit(python(code) + [a, b], name="t:a", output=tmp_path / "a.log")
        second = scheduler.submit(python(code) + [b, a], name="t:b", output=tmp_path / "b.log")
        statuses = wait(scheduler, first, second)
    assert [statuses[i].exit_code for i in (first, second)] == [0, 0]


# ------------------------------------------------------------------ dependencies
def test_a_chain_of_three_runs_in_order(scheduler, tmp_path):
    a = scheduler.submit(stamp_job(tmp_path, "a"), name="t:a", output=tmp_path / "a.log")
    b = scheduler.submit(stamp_job(tmp_path, "b"), name="t:b", output=tmp_path / "b.log",
                         depends_on=[a])
    c = scheduler.submit(stamp_job(tmp_path, "c"), name="t:c", output=tmp_path / "c.log",
                         depends_on=[b])
    statuses = wait(scheduler, a, b, c)
    assert all(s.state is JobState.COMPLETED for s in statuses.values())
    assert events(tmp_path) == [(x, what) for x in "abc" for what in ("start", "end")]


def test_failure_cancels_the_rest_of_the_chain(scheduler, tmp_path):
    a = scheduler.submit(python("raise SystemExit(4)"), name="t:a", output=tmp_path / "a.log")
    b = scheduler.submit(stamp_job(tmp_path, "b"), name="t:b", output=tmp_path / "b.log",
                         depends_on=[a])
    c = scheduler.submit(stamp_job(tmp_path, "c"), name="t:c", output=tmp_path / "c.log",
                         depends_on=[b])
    statuses = wait(scheduler, a, b, c)
    assert [statuses[i].state for i in (a, b, c)] == [
        JobState.FAILED, JobState.CANCELLED, JobState.CANCELLED]
    assert statuses[b].reason == f"dependency {a} failed"
    assert not (tmp_path / "events").exists()


def test_killing_the_head_of_a_chain_cancels_it_all(scheduler, tmp_path):
    started = tmp_path / "started"
    a = scheduler.submit(python(f"import time; open({str(started)!r}, 'w'); time.sleep(60)"),
                         name="t:a", output=tmp_path / "a.log")
    b = scheduler.submit(stamp_job(tmp_path, "b"), name="t:b", output=tmp_path / "b.log",
                         depends_on=[a])
    c = scheduler.submit(stamp_job(tmp_path, "c"), name="t:c", output=tmp_path / "c.log",
                         depends_on=[b])
    wait_for_file(started)
    assert scheduler.status([b])[b].state is JobState.QUEUED
    assert sorted(scheduler.jobs()) == sorted([a, b, c])
    scheduler.kill([a])
    statuses = wait(scheduler, a, b, c)
    assert [statuses[i].state for i in (a, b, c)] == [JobState.CANCELLED] * 3
    assert not (tmp_path / "events").exists()
    assert scheduler.jobs() == []


def test_job_depending_on_a_killed_queued_job_is_cancelled(scheduler, tmp_path):
    blocker = scheduler.submit(python("import time; time.sleep(60)"), name="t:block",
                               output=tmp_path / "block.log",
                               scheduler_args={"n_cpus": scheduler.cores})
    queued = scheduler.submit(python("pass"), name="t:queued", output=tmp_path / "q.log")
    after = scheduler.submit(python("pass"), name="t:after", output=tmp_path / "after.log",
                             depends_on=[queued])
    wait_until(lambda: (scheduler.status([queued])[queued].reason or "").startswith(
        "waiting for cores"), "the second job waits for cores")
    scheduler.kill([queued, blocker])
    statuses = wait(scheduler, blocker, queued, after)
    assert {s.state for s in statuses.values()} == {JobState.CANCELLED}
    assert not (tmp_path / "q.log").exists()


# ------------------------------------------------------------------ arrays
def test_array_status_lists_element_states_for_progress(scheduler, tmp_path):
    gate = tmp_path / "gate"
    code = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
    array = scheduler.submit_array(3, python(code) + [ARRAY_INDEX], name="t:prog",
                                   output=tmp_path / f"p{ARRAY_INDEX}.log")
    polls = []
    two_running = [JobState.RUNNING, JobState.RUNNING, JobState.QUEUED]

    def on_poll(statuses):
        polls.append([e.state for e in statuses[array].elements])
        # Two cores, three elements: the third must be seen waiting before any may end.
        if polls[-1] == two_running:
            gate.touch()

    status = scheduler.wait([array], timeout=20, poll_interval=0.1, on_poll=on_poll)[array]
    assert status.state is JobState.COMPLETED and status.exit_code == 0
    assert two_running in polls
    assert [e.id for e in status.elements] == [f"{array}_{i}" for i in range(3)]
    assert [e.log for e in status.elements] == [tmp_path / f"p{i}.log" for i in range(3)]
    assert polls[-1] == [JobState.COMPLETED] * 3
    assert scheduler.status([f"{array}_1"])[f"{array}_1"].state is JobState.COMPLETED


def test_kill_of_an_array_stops_running_and_queued_elements(scheduler, tmp_path):
    code = "import sys, time; open(sys.argv[1], 'w'); time.sleep(60)"
    array = scheduler.submit_array(4, python(code) + [str(tmp_path / f"started-{ARRAY_INDEX}")],
                                   name="t:arr", output=tmp_path / f"a{ARRAY_INDEX}.log")
    wait_for_file(tmp_path / "started-0")
    wait_for_file(tmp_path / "started-1")
    scheduler.kill([array])
    status = wait(scheduler, array)[array]
    assert status.state is JobState.CANCELLED
    assert [e.state for e in status.elements] == [JobState.CANCELLED] * 4
    assert sorted(p.name for p in tmp_path.glob("started-*")) == ["started-0", "started-1"]


def test_empty_array_is_completed_at_once(scheduler, tmp_path):
    array = scheduler.submit_array(0, python("pass"), name="t:empty",
                                   output=tmp_path / f"e{ARRAY_INDEX}.log")
    after = scheduler.submit(python("pass"), name="t:after", output=tmp_path / "after.log",
                             depends_on=[array])
    statuses = wait(scheduler, array, after)
    assert statuses[array].state is JobState.COMPLETED
    assert statuses[after].state is JobState.COMPLETED


# ------------------------------------------------------------------ processes
@linux_only
def test_no_zombies_and_no_stray_children_after_wait(scheduler, tmp_path):
    # Each job starts a grandchild that would outlive it; neither may remain.
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "open(sys.argv[1], 'w').write(str(child.pid))\n")
    ids = [scheduler.submit(python(code) + [str(tmp_path / f"pid{i}")], name=f"t:z{i}",
                            output=tmp_path / f"z{i}.log") for i in range(3)]
    statuses = wait(scheduler, *ids)
    assert {s.state for s in statuses.values()} == {JobState.COMPLETED}
    assert not children_of_this_process() & {int(p) for p in _job_pids(scheduler, ids)}
    grandchildren = [int((tmp_path / f"pid{i}").read_text()) for i in range(3)]
    _assert_gone(grandchildren)


@linux_only
def test_kill_reaches_the_children_of_a_job(scheduler, tmp_path):
    pidfile = tmp_path / "pid"
    code = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(60)\n")
    job = scheduler.submit(python(code), name="t:tree", output=tmp_path / "tree.log")
    wait_for_file(pidfile)
    while not pidfile.read_text():
        time.sleep(0.05)
    scheduler.kill([job])
    status = wait(scheduler, job)[job]
    assert status.state is JobState.CANCELLED
    assert not pid_alive(_job_pids(scheduler, [job])[0])
    _assert_gone([int(pidfile.read_text())])


@linux_only
def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    started = tmp_path / "started"
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"open({str(started)!r}, 'w')\n"
            "time.sleep(60)\n")
    with ImmediateRun(cores=1, kill_grace=0.5) as scheduler:
        job = scheduler.submit(python(code), name="t:stubborn", output=tmp_path / "s.log")
        wait_for_file(started)
        scheduler.kill([job])
        status = wait(scheduler, job)[job]
    assert status.state is JobState.CANCELLED
    assert status.exit_code == 128 + 9  # SIGKILL, after SIGTERM was ignored


@linux_only
def test_shutdown_stops_running_jobs_and_cancels_queued_ones(tmp_path):
    started = tmp_path / "started"
    scheduler = ImmediateRun(cores=1, kill_grace=1.0)
    running = scheduler.submit(python(f"import time; open({str(started)!r}, 'w'); time.sleep(60)"),
                               name="t:run", output=tmp_path / "run.log")
    queued = scheduler.submit(python("pass"), name="t:q", output=tmp_path / "q.log")
    wait_for_file(started)
    pid = _job_pids(scheduler, [running])[0]
    scheduler.shutdown()
    statuses = scheduler.status([running, queued])
    assert statuses[running].state is JobState.CANCELLED
    assert statuses[queued].state is JobState.CANCELLED
    assert not pid_alive(pid)


def test_jobs_die_with_the_submitting_process(tmp_path):
    # A psy-like process submits a long job and exits: atexit stops the job.
    import subprocess

    pidfile = tmp_path / "pid"
    job_code = (f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                "time.sleep(60)")
    program = tmp_path / "submitter.py"
    program.write_text(
        "import sys, time\n"
        "from psyrun.scheduler import ImmediateRun\n"
        "s = ImmediateRun()\n"
        f"s.submit([sys.executable, '-c', {job_code!r}], name='t:long', "
        f"output={str(tmp_path / 'long.log')!r})\n"
        f"while not open({str(pidfile)!r}, 'a+').tell(): time.sleep(0.05)\n"
    )
    subprocess.run([sys.executable, str(program)], check=True, timeout=TIMEOUT)
    _assert_gone([int(pidfile.read_text())])


@linux_only
def test_ctrl_c_while_waiting_stops_the_jobs(tmp_path):
    import signal
    import subprocess

    pidfile = tmp_path / "pid"
    job_code = (f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                "time.sleep(60)")
    program = tmp_path / "waiter.py"
    program.write_text(
        "import sys\n"
        "from psyrun.scheduler import ImmediateRun\n"
        "s = ImmediateRun()\n"
        f"job = s.submit([sys.executable, '-c', {job_code!r}], name='t:long', "
        f"output={str(tmp_path / 'long.log')!r})\n"
        "try:\n"
        "    s.wait([job])\n"
        "except KeyboardInterrupt:\n"
        "    print(s.status([job])[job].state)\n"
        "    raise SystemExit(5)\n"
    )
    waiter = subprocess.Popen([sys.executable, str(program)], stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text(), "the job started")
        waiter.send_signal(signal.SIGINT)
        out, _ = waiter.communicate(timeout=TIMEOUT)
    finally:
        waiter.kill()
        waiter.wait()
    assert waiter.returncode == 5
    assert out.strip() == "cancelled"
    _assert_gone([int(pidfile.read_text())])


@linux_only
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_terminating_the_submitting_process_stops_the_jobs(tmp_path, signame):
    import signal
    import subprocess

    pidfile = tmp_path / "pid"
    job_code = (f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                "time.sleep(60)")
    program = tmp_path / "waiter.py"
    program.write_text(
        "import sys\n"
        "from psyrun.scheduler import ImmediateRun\n"
        "s = ImmediateRun()\n"
        f"job = s.submit([sys.executable, '-c', {job_code!r}], name='t:long', "
        f"output={str(tmp_path / 'long.log')!r})\n"
        "s.wait([job])\n"
    )
    waiter = subprocess.Popen([sys.executable, str(program)])
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text(), "the job started")
        waiter.send_signal(getattr(signal, signame))
        waiter.wait(timeout=TIMEOUT)
    finally:
        waiter.kill()
        waiter.wait()
    assert waiter.returncode == 128 + getattr(signal, signame)
    _assert_gone([int(pidfile.read_text())])


def test_missing_program_fails_with_a_message_in_the_log(scheduler, tmp_path):
    log = tmp_path / "missing.log"
    job = scheduler.submit([str(tmp_path / "no-such-program"), "x"], name="t:missing",
                           output=log)
    after = scheduler.submit(python("pass"), name="t:after", output=tmp_path / "after.log",
                             depends_on=[job])
    statuses = wait(scheduler, job, after)
    assert statuses[job].state is JobState.FAILED
    assert statuses[job].exit_code == 127
    assert statuses[job].log == log
    assert "no-such-program" in log.read_text()
    assert statuses[after].state is JobState.CANCELLED
    # The dispatcher survived: later jobs still run.
    ok = scheduler.submit(python("pass"), name="t:ok", output=tmp_path / "ok.log")
    assert wait(scheduler, ok)[ok].state is JobState.COMPLETED


def test_job_runs_in_the_directory_it_was_submitted_from(scheduler, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = scheduler.submit(python("open('here.txt', 'w')"), name="t:cwd", output="cwd.log")
    monkeypatch.chdir("/")
    assert wait(scheduler, job)[job].state is JobState.COMPLETED
    assert (tmp_path / "here.txt").exists() and (tmp_path / "cwd.log").exists()


def test_output_directory_is_created(scheduler, tmp_path):
    log = tmp_path / "deep" / "er" / "job.log"
    job = scheduler.submit(python("print('hello')"), name="t:deep", output=log)
    wait(scheduler, job)
    assert log.read_text() == "hello\n"


def test_task_template_mentions_n_cpus_and_defines_scheduler_args():
    namespace: dict = {}
    exec(ImmediateRun.task_template(), namespace)
    assert namespace["scheduler_args"] == {}
    assert "n_cpus" in ImmediateRun.task_template()


# ------------------------------------------------------------------ helpers needing internals
def _job_pids(scheduler: ImmediateRun, ids: list[str]) -> list[int]:
    with scheduler._lock:
        return [e.process.pid for i in ids for e in scheduler._lookup(i)]


def _assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(pid_running(p) for p in pids):
        assert time.monotonic() < deadline, f"processes still alive: {pids}"
        time.sleep(0.05)
