"""The scheduler contract suite.

Subclass :class:`SchedulerContract` in a test module and provide a
``scheduler`` fixture returning the scheduler under test::

    import pytest
    from psyrun.testing.scheduler import SchedulerContract

    class TestMyScheduler(SchedulerContract):
        @pytest.fixture
        def scheduler(self, tmp_path):
            return MyScheduler(workdir=tmp_path / "sched")

Jobs in the suite are small Python programs run with ``sys.executable``; the
``jobdir`` fixture (default: pytest's ``tmp_path``) must be visible to the
nodes that run them.  Set :attr:`SchedulerContract.scheduler_args` when the
scheduler needs arguments for every job (a time limit, memory).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from psyrun.exceptions import SchedulerArgumentError
from psyrun.scheduler.base import ARRAY_INDEX, JobState, Scheduler


class SchedulerContract:
    """Behaviour every :class:`~psyrun.scheduler.Scheduler` must show."""

    #: Seconds to wait for a job before the test fails.
    timeout: float = 120.0
    #: scheduler_args given to every submission of the suite.
    scheduler_args: dict[str, Any] = {}

    @pytest.fixture
    def scheduler(self) -> Scheduler:
        raise NotImplementedError("provide a 'scheduler' fixture in the subclass")

    @pytest.fixture
    def jobdir(self, tmp_path: Path) -> Path:
        return tmp_path

    # ------------------------------------------------------------ helpers
    @staticmethod
    def python(code: str) -> list[str]:
        return [sys.executable, "-c", code]

    def submit(self, scheduler: Scheduler, code: str, name: str, output: Path,
               depends_on: tuple[str, ...] = ()) -> str:
        return scheduler.submit(self.python(code), name=name, output=output,
                                depends_on=list(depends_on),
                                scheduler_args=dict(self.scheduler_args))

    def wait(self, scheduler: Scheduler, *ids: str):
        statuses = scheduler.wait(list(ids), timeout=self.timeout, poll_interval=0.2)
        unfinished = {i: s.state for i, s in statuses.items() if not s.state.finished}
        assert not unfinished, f"jobs did not finish within {self.timeout}s: {unfinished}"
        return statuses

    def wait_until_started(self, scheduler: Scheduler, job_id: str, marker: Path) -> None:
        deadline = time.monotonic() + self.timeout
        while not marker.exists():
            assert time.monotonic() < deadline, "job never started"
            time.sleep(0.1)

    def skip_if_blocking(self, scheduler: Scheduler) -> None:
        if scheduler.blocking:
            pytest.skip("the scheduler runs jobs to the end inside submit()")

    # ------------------------------------------------------------ single jobs
    def test_submit_runs_the_job_and_returns_a_string_id(self, scheduler, jobdir):
        out = jobdir / "out.txt"
        job = self.submit(scheduler, f"open({str(out)!r}, 'w').write('ran')", "contract:single",
                          jobdir / "single.log")
        assert isinstance(job, str) and job
        status = self.wait(scheduler, job)[job]
        assert status.state is JobState.COMPLETED
        assert out.read_text() == "ran"

    def test_output_file_receives_stdout_and_stderr(self, scheduler, jobdir):
        log = jobdir / "logs" / "echo.log"
        log.parent.mkdir()
        code = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
        job = self.submit(scheduler, code, "contract:echo", log)
        self.wait(scheduler, job)
        text = log.read_text()
        assert "to stdout" in text and "to stderr" in text

    def test_failed_job_has_state_failed_and_its_exit_code(self, scheduler, jobdir):
        job = self.submit(scheduler, "raise SystemExit(3)", "contract:fail", jobdir / "fail.log")
        status = self.wait(scheduler, job)[job]
        assert status.state is JobState.FAILED
        assert status.exit_code == 3

    def test_status_of_an_id_never_submitted_is_unknown(self, scheduler):
        statuses = scheduler.status(["987654321"])
        assert statuses["987654321"].state is JobState.UNKNOWN

    # ------------------------------------------------------------ dependencies
    def test_dependent_job_starts_after_its_dependency_completed(self, scheduler, jobdir):
        first = jobdir / "first.txt"
        seen = jobdir / "seen.txt"
        a = self.submit(scheduler, f"import time; time.sleep(1.5); open({str(first)!r}, 'w').write('a')",
                        "contract:first", jobdir / "first.log")
        b = self.submit(
            scheduler,
            f"import os; open({str(seen)!r}, 'w').write(str(os.path.exists({str(first)!r})))",
            "contract:second", jobdir / "second.log", depends_on=(a,),
        )
        statuses = self.wait(scheduler, a, b)
        assert statuses[b].state is JobState.COMPLETED
        assert seen.read_text() == "True"

    def test_job_depending_on_a_failed_job_is_cancelled_not_left_pending(self, scheduler, jobdir):
        marker = jobdir / "must-not-exist"
        a = self.submit(scheduler, "raise SystemExit(1)", "contract:bad", jobdir / "bad.log")
        b = self.submit(scheduler, f"open({str(marker)!r}, 'w')", "contract:after-bad",
                        jobdir / "after.log", depends_on=(a,))
        statuses = self.wait(scheduler, a, b)
        assert statuses[a].state is JobState.FAILED
        assert statuses[b].state is JobState.CANCELLED
        # psy run reports the failure once, at its cause, not again here.
        assert statuses[b].cancelled_by_dependency, statuses[b].reason
        assert not marker.exists()

    # ------------------------------------------------------------ arrays
    def test_array_runs_every_index_once(self, scheduler, jobdir):
        n = 5
        code = f"import sys; open({str(jobdir)!r} + '/el-' + sys.argv[1], 'a').write('x')"
        argv = self.python(code) + [ARRAY_INDEX]
        job = scheduler.submit_array(n, argv, name="contract:array",
                                     output=jobdir / f"array-{ARRAY_INDEX}.log",
                                     scheduler_args=dict(self.scheduler_args))
        status = self.wait(scheduler, job)[job]
        assert status.state is JobState.COMPLETED
        assert sorted(p.name for p in jobdir.glob("el-*")) == [f"el-{i}" for i in range(n)]
        assert all(p.read_text() == "x" for p in jobdir.glob("el-*"))
        assert sorted(p.name for p in jobdir.glob("array-*.log")) == [
            f"array-{i}.log" for i in range(n)]

    def test_job_depending_on_an_array_waits_for_every_element(self, scheduler, jobdir):
        n = 4
        code = (f"import sys, time; time.sleep(0.3 * int(sys.argv[1])); "
                f"open({str(jobdir)!r} + '/el-' + sys.argv[1], 'w')")
        array = scheduler.submit_array(n, self.python(code) + [ARRAY_INDEX], name="contract:arr",
                                       output=jobdir / f"arr-{ARRAY_INDEX}.log",
                                       scheduler_args=dict(self.scheduler_args))
        count = jobdir / "count.txt"
        after = self.submit(
            scheduler,
            f"import glob; open({str(count)!r}, 'w').write(str(len(glob.glob({str(jobdir)!r} + '/el-*'))))",
            "contract:after-array", jobdir / "after-array.log", depends_on=(array,))
        statuses = self.wait(scheduler, array, after)
        assert statuses[after].state is JobState.COMPLETED
        assert count.read_text() == str(n)

    def test_failed_array_element_is_reported_with_its_exit_code(self, scheduler, jobdir):
        code = "import sys; raise SystemExit(2 if sys.argv[1] == '1' else 0)"
        job = scheduler.submit_array(3, self.python(code) + [ARRAY_INDEX], name="contract:arrfail",
                                     output=jobdir / f"af-{ARRAY_INDEX}.log",
                                     scheduler_args=dict(self.scheduler_args))
        status = self.wait(scheduler, job)[job]
        assert status.state is JobState.FAILED
        assert [e.state for e in status.elements] == [
            JobState.COMPLETED, JobState.FAILED, JobState.COMPLETED]
        assert status.elements[1].exit_code == 2

    # ------------------------------------------------------------ kill
    def test_kill_cancels_a_running_job_and_only_that_job(self, scheduler, jobdir):
        self.skip_if_blocking(scheduler)
        started = jobdir / "started"
        victim = self.submit(scheduler, f"import time; open({str(started)!r}, 'w'); time.sleep(300)",
                             "contract:victim", jobdir / "victim.log")
        bystander_out = jobdir / "bystander.txt"
        bystander = self.submit(
            scheduler, f"import time; time.sleep(2); open({str(bystander_out)!r}, 'w').write('ok')",
            "contract:bystander", jobdir / "bystander.log")
        self.wait_until_started(scheduler, victim, started)
        scheduler.kill([victim])
        statuses = self.wait(scheduler, victim, bystander)
        assert statuses[victim].state is JobState.CANCELLED
        assert statuses[bystander].state is JobState.COMPLETED
        assert bystander_out.read_text() == "ok"

    def test_killed_queued_job_is_cancelled_and_so_are_its_dependents(self, scheduler, jobdir):
        # A job killed before it started never runs, and whatever waits for it
        # is cancelled too instead of waiting for ever.
        self.skip_if_blocking(scheduler)
        started, go = jobdir / "gate-started", jobdir / "gate-go"
        ran = jobdir / "ran"
        gate = self.submit(
            scheduler,
            f"import os, time; open({str(started)!r}, 'w')\n"
            f"for _ in range(1200):\n"
            f"    if os.path.exists({str(go)!r}): break\n"
            f"    time.sleep(0.1)",
            "contract:gate", jobdir / "gate.log")
        queued = self.submit(scheduler, f"open({str(ran)!r} + '-queued', 'w')", "contract:queued",
                             jobdir / "queued.log", depends_on=(gate,))
        after = self.submit(scheduler, f"open({str(ran)!r} + '-after', 'w')", "contract:after",
                            jobdir / "after-queued.log", depends_on=(queued,))
        self.wait_until_started(scheduler, gate, started)
        assert scheduler.status([queued])[queued].state is JobState.QUEUED
        scheduler.kill([queued])
        go.touch()
        statuses = self.wait(scheduler, gate, queued, after)
        assert statuses[gate].state is JobState.COMPLETED
        assert statuses[queued].state is JobState.CANCELLED
        assert statuses[after].state is JobState.CANCELLED
        assert sorted(p.name for p in jobdir.glob("ran-*")) == []

    def test_kill_of_a_finished_job_is_harmless(self, scheduler, jobdir):
        job = self.submit(scheduler, "pass", "contract:done", jobdir / "done.log")
        self.wait(scheduler, job)
        scheduler.kill([job])
        assert scheduler.status([job])[job].state is JobState.COMPLETED

    # ------------------------------------------------------------ arguments and template
    def test_unknown_scheduler_args_are_refused_naming_the_known_ones(self, scheduler):
        if not scheduler.known_args:
            pytest.skip("the scheduler accepts any scheduler_args")
        with pytest.raises(SchedulerArgumentError) as info:
            scheduler.validate_args({**self.scheduler_args, "no_such_option": 1})
        assert "no_such_option" in str(info.value)
        assert sorted(scheduler.known_args)[0] in str(info.value)

    def test_task_template_is_valid_python(self, scheduler):
        compile(type(scheduler).task_template(), "<template>", "exec")
